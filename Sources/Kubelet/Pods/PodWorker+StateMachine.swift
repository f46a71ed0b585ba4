import CRI
import Foundation
import KubeAPI

extension PodWorker {
    /// The decisions of one pod's worker, as a pure value: given the pod as its source wants it and the pod as the
    /// runtime shows it, ``sync(_:)`` returns the actions that close the gap (the kubelet's `computePodActions`),
    /// and ``record(_:now:)`` learns how they went. It remembers what the runtime cannot tell: restart and image
    /// pull backoff, why a container waits, whether the pod reached a terminal phase, and where termination stands.
    ///
    /// Rules followed (Kubernetes' documented pod lifecycle): one sandbox per pod, recreated when it dies; init
    /// containers one at a time, each to success before the next (a failure fails the pod under `Never`, else
    /// restarts with backoff); app containers restarted per `restartPolicy` with CrashLoopBackOff (10 s doubling to
    /// 300 s, reset after 10 min); a failed liveness or startup probe kills the container; a terminal pod stops its
    /// sandbox; deletion runs preStop, TERM, the grace, KILL.
    struct StateMachine: Sendable {
        /// Where the pod's life stands.
        enum Lifecycle: Sendable, Hashable {
            /// Running the pod towards its spec.
            case syncing
            /// Stopping every container (deletion or removal from the source).
            case terminating(since: Date, grace: Duration)
            /// Everything stopped; waiting for the pod to leave its source.
            case terminated
            /// Cleaned up; the worker ends.
            case finished
        }

        /// Why a container is not running, as its status shows it.
        struct Waiting: Sendable, Hashable {
            var reason: String
            var message: String?
        }

        /// A phase the pod reached for good.
        struct Terminal: Sendable, Hashable {
            var phase: String
            var reason: String?
            var message: String?
        }

        /// One thing the worker must do.
        enum Action: Sendable, Hashable {
            case createSandbox(attempt: Int)
            case startContainer(StartRequest)
            case killContainer(KillTarget)
            /// Stops every listed container in parallel (preStop hook first, then the stop signal, the grace, KILL),
            /// then stops the listed sandboxes (networking torn down).
            case killPod(containers: [KillTarget], sandboxes: [String], grace: Duration)
            /// Removes an old, exited attempt (only the newest two of each container are kept).
            case removeContainer(id: String)
            /// Removes a stopped sandbox that is no longer the pod's newest.
            case removeSandbox(id: String)
            /// Removes every sandbox, container and volume of the pod: it has left its source.
            case removePod(sandboxes: [String], containers: [String])
        }

        struct StartRequest: Sendable, Hashable {
            var name: String
            var kind: ContainerKind
            var index: Int
            var attempt: Int
            var sandboxID: String
        }

        struct KillTarget: Sendable, Hashable {
            var id: String
            var name: String
            var reason: KillReason
            var grace: Duration
        }

        enum KillReason: String, Sendable, Hashable {
            case deleted
            case livenessFailed
            case startupFailed
            case specChanged
            case podTerminal
            case sandboxChanged
            case initFailed

            /// The message of the `Killing` event.
            func message(_ container: String) -> String {
                switch self {
                case .deleted: "Stopping container \(container)"
                case .livenessFailed: "Container \(container) failed liveness probe, will be restarted"
                case .startupFailed: "Container \(container) failed startup probe, will be restarted"
                case .specChanged: "Container \(container) definition changed, will be restarted"
                case .podTerminal: "Stopping container \(container): the pod reached a terminal phase"
                case .sandboxChanged: "Stopping container \(container): its pod sandbox is gone"
                case .initFailed: "Stopping container \(container): an init container failed"
                }
            }
        }

        /// How an action went.
        enum Outcome: Sendable, Hashable {
            case sandboxCreated
            case sandboxFailed(message: String)
            /// Volumes could not be set up before the sandbox (retried at the next resync, no backoff).
            case volumesFailed(message: String)
            case containerStarted(name: String, image: String)
            /// A start failed before or at the runtime: `reason` is the waiting reason users see.
            case containerFailed(name: String, reason: String, message: String, image: String?)
            case podKilled(stoppedEverything: Bool)
            case podRemoved
        }

        /// What a sync needs to know.
        struct Input: Sendable {
            var pod: DesiredPod
            /// The pod left every source (API object gone, manifest removed).
            var removed: Bool
            var observed: ObservedPod
            /// Probe results by container ID.
            var probes: [String: ContainerProbeStatus]
            var now: Date
        }

        static let minimumGrace: Duration = .seconds(2)

        private(set) var lifecycle: Lifecycle = .syncing
        private(set) var crashBackoff: RestartBackoff
        private(set) var pullBackoff: RestartBackoff
        private(set) var sandboxBackoff: RestartBackoff
        /// Why each container (by name) waits, from the last start attempt or backoff decision.
        private(set) var waiting: [String: Waiting] = [:]
        private(set) var terminal: Terminal?
        /// When the worker first saw the pod (status `startTime`).
        private(set) var startTime: Date?
        /// The earliest time a backoff or grace ends, when the worker must look again.
        private(set) var nextWakeup: Date?
        /// The last sandbox failure, shown in the pod's conditions.
        private(set) var sandboxError: String?
        /// Why a container was killed, by container ID (its terminated status says so).
        private(set) var killReasons: [String: KillReason] = [:]

        init(backoff: RestartBackoff = RestartBackoff(), startTime: Date? = nil) {
            crashBackoff = backoff
            pullBackoff = backoff
            sandboxBackoff = backoff
            self.startTime = startTime
        }

        /// Marks the pod terminal from outside (admission refused it).
        mutating func reject(reason: String, message: String) {
            terminal = Terminal(phase: "Failed", reason: reason, message: message)
        }

        /// Takes over a terminal phase the API already shows (a terminal phase is final).
        mutating func adoptTerminal(phase: String, reason: String?, message: String?) {
            terminal = Terminal(phase: phase, reason: reason, message: message)
        }

        // MARK: Sync

        /// The actions that move the runtime towards the pod's spec (or its end).
        mutating func sync(_ input: Input) -> [Action] {
            nextWakeup = nil
            if startTime == nil { startTime = input.now }
            switch lifecycle {
            case .finished:
                return []
            case .terminated:
                if input.removed {
                    return [.removePod(sandboxes: input.observed.sandboxes.map(\.id), containers: input.observed.containers.map(\.id))]
                }
                // Something came back to life (an adopted container after a restart): stop it again.
                return stopEverything(input, grace: Self.minimumGrace, reason: .deleted)
            case .terminating(let since, let grace):
                let remaining = max(Self.minimumGrace, grace - .interval(input.now.timeIntervalSince(since)))
                return stopEverything(input, grace: remaining, reason: .deleted, always: true)
            case .syncing:
                if input.removed || input.pod.deletionRequested {
                    let grace = input.pod.pod.metadata.deletionGracePeriodSeconds.map { Duration.seconds($0) } ?? input.pod.spec.terminationGrace
                    lifecycle = .terminating(since: input.now, grace: grace)
                    return stopEverything(input, grace: max(Self.minimumGrace, grace), reason: .deleted, always: true)
                }
                if terminal == nil, let deadline = input.pod.spec.activeDeadlineSeconds, let startTime {
                    let end = startTime.addingTimeInterval(TimeInterval(deadline))
                    if input.now >= end {
                        terminal = Terminal(
                            phase: "Failed", reason: "DeadlineExceeded", message: "Pod was active on the node longer than the specified deadline")
                        waiting = [:]
                    } else {
                        wake(at: end)
                    }
                }
                if terminal != nil {
                    return stopEverything(input, grace: max(Self.minimumGrace, input.pod.spec.terminationGrace), reason: .podTerminal)
                }
                let deadlineWake = nextWakeup
                let actions = syncRunning(input)
                if let deadlineWake { wake(at: deadlineWake) }
                return actions
            }
        }

        /// Stops what runs and every ready sandbox. With `always`, answers a kill even when nothing runs, so the
        /// outcome moves termination on.
        private func stopEverything(_ input: Input, grace: Duration, reason: KillReason, always: Bool = false) -> [Action] {
            let targets = input.observed.running.map { KillTarget(id: $0.id, name: $0.name, reason: reason, grace: grace) }
            let sandboxes = input.observed.sandboxes.filter { $0.state == .ready }.map(\.id)
            if targets.isEmpty && sandboxes.isEmpty && !always { return [] }
            return [.killPod(containers: targets, sandboxes: sandboxes, grace: grace)]
        }

        private func backoffKey(_ name: String, _ kind: ContainerKind) -> String { "\(kind.rawValue)/\(name)" }

        private mutating func wake(at deadline: Date) {
            nextWakeup = min(nextWakeup ?? deadline, deadline)
        }

        /// The next attempt number of a container: one more than any seen, or 0.
        private func nextAttempt(_ name: String, _ observed: ObservedPod) -> Int {
            (observed.attempts(name).map(\.attempt).max() ?? -1) + 1
        }

        private mutating func syncRunning(_ input: Input) -> [Action] {
            let observed = input.observed
            let spec = input.pod.spec
            let policy = spec.effectiveRestartPolicy
            let now = input.now
            var actions: [Action] = []
            actions += garbage(observed)

            guard let sandbox = observed.readySandbox else {
                let leftovers = observed.running.map {
                    KillTarget(id: $0.id, name: $0.name, reason: .sandboxChanged, grace: max(Self.minimumGrace, spec.terminationGrace))
                }
                if !leftovers.isEmpty { actions.append(.killPod(containers: leftovers, sandboxes: [], grace: max(Self.minimumGrace, spec.terminationGrace))) }
                let appNames = Set(spec.containers.map(\.name))
                let appRan = observed.containers.contains { appNames.contains($0.name) && $0.state != .created }
                if !observed.sandboxes.isEmpty && policy == .never && appRan {
                    // The sandbox died under restartPolicy Never: no new one; the pod ends with its containers.
                    terminal = Self.terminalFromContainers(spec, observed) ?? Terminal(phase: "Failed", reason: nil, message: "the pod sandbox died")
                    return actions
                }
                if let deadline = sandboxBackoff.backoffDeadlineSinceUpdate("sandbox", now: now) {
                    wake(at: deadline)
                    return actions
                }
                let attempt = (observed.sandboxes.map(\.config.attempt).max() ?? -1) + 1
                actions.append(.createSandbox(attempt: attempt))
                return actions
            }

            // Containers still running in an older sandbox: stop them.
            let strays = observed.running.filter { $0.sandboxID != sandbox.id }
            for stray in strays {
                actions.append(.killContainer(KillTarget(id: stray.id, name: stray.name, reason: .sandboxChanged, grace: Self.minimumGrace)))
            }

            // Init containers, one at a time, in the current sandbox.
            for (index, container) in spec.initContainerList.enumerated() {
                guard let latest = observed.latest(container.name, in: sandbox.id) else {
                    if let start = startDecision(container, .initContainer, index: index, previous: nil, attempt: nextAttempt(container.name, observed), sandbox: sandbox.id, input) {
                        actions.append(start)
                    }
                    return actions
                }
                switch latest.state {
                case .running:
                    return actions
                case .created, .unknown:
                    actions.append(.removeContainer(id: latest.id))
                    if let start = startDecision(container, .initContainer, index: index, previous: nil, attempt: latest.attempt, sandbox: sandbox.id, input) {
                        actions.append(start)
                    }
                    return actions
                case .exited:
                    if latest.exitCode == 0 { continue }
                    if policy == .never {
                        terminal = Terminal(phase: "Failed", reason: nil, message: nil)
                        waiting = [:]
                        return actions + stopEverything(input, grace: max(Self.minimumGrace, spec.terminationGrace), reason: .initFailed)
                    }
                    if let start = startDecision(container, .initContainer, index: index, previous: latest, attempt: latest.attempt + 1, sandbox: sandbox.id, input) {
                        actions.append(start)
                    }
                    return actions
                }
            }

            // App containers.
            for (index, container) in spec.containers.enumerated() {
                guard let latest = observed.latest(container.name) else {
                    if let start = startDecision(container, .app, index: index, previous: nil, attempt: 0, sandbox: sandbox.id, input) {
                        actions.append(start)
                    }
                    continue
                }
                switch latest.state {
                case .running:
                    guard latest.sandboxID == sandbox.id else { continue }
                    let probes = input.probes[latest.id]
                    var kill: KillReason?
                    if let hash = latest.labels[KubeletLabels.containerHash], hash != container.specHash {
                        kill = .specChanged
                    } else if probes?.startupFailed == true {
                        kill = .startupFailed
                    } else if probes?.livenessFailed == true {
                        kill = .livenessFailed
                    }
                    if let kill {
                        let probe = kill == .livenessFailed ? container.livenessProbe : (kill == .startupFailed ? container.startupProbe : nil)
                        let grace = probe?.terminationGracePeriodSeconds.map { Duration.seconds($0) } ?? spec.terminationGrace
                        killReasons[latest.id] = kill
                        actions.append(.killContainer(KillTarget(id: latest.id, name: latest.name, reason: kill, grace: max(Self.minimumGrace, grace))))
                    }
                case .created, .unknown:
                    actions.append(.removeContainer(id: latest.id))
                    if let start = startDecision(container, .app, index: index, previous: nil, attempt: latest.attempt, sandbox: sandbox.id, input) {
                        actions.append(start)
                    }
                case .exited:
                    guard Self.shouldRestart(policy, exitCode: latest.exitCode) else {
                        waiting[container.name] = nil
                        continue
                    }
                    if let start = startDecision(container, .app, index: index, previous: latest, attempt: latest.attempt + 1, sandbox: sandbox.id, input) {
                        actions.append(start)
                    }
                }
            }

            // Every app container exited for good: the pod reached its terminal phase; stop its sandbox.
            if let ending = Self.terminalFromContainers(spec, observed), actions.allSatisfy({ if case .startContainer = $0 { false } else { true } }) {
                terminal = ending
                waiting = [:]
                actions += stopEverything(input, grace: max(Self.minimumGrace, spec.terminationGrace), reason: .podTerminal)
            }
            return actions
        }

        /// Succeeded or Failed when every app container has exited and none will be restarted.
        static func terminalFromContainers(_ spec: PodSpec, _ observed: ObservedPod) -> Terminal? {
            let policy = spec.effectiveRestartPolicy
            guard policy != .always, !spec.containers.isEmpty else { return nil }
            var allSucceeded = true
            for container in spec.containers {
                guard let latest = observed.latest(container.name), latest.state == .exited else { return nil }
                if shouldRestart(policy, exitCode: latest.exitCode) { return nil }
                if latest.exitCode != 0 { allSucceeded = false }
            }
            return Terminal(phase: allSucceeded ? "Succeeded" : "Failed", reason: nil, message: nil)
        }

        static func shouldRestart(_ policy: RestartPolicy, exitCode: Int32?) -> Bool {
            switch policy {
            case .always: true
            case .onFailure: (exitCode ?? 1) != 0
            case .never: false
            }
        }

        /// A start, unless a backoff holds it (then the container waits and the worker wakes when it ends).
        private mutating func startDecision(
            _ container: Container, _ kind: ContainerKind, index: Int, previous: CRI.ContainerStatus?, attempt: Int, sandbox: String, _ input: Input
        ) -> Action? {
            let now = input.now
            if let previous, previous.state == .exited {
                let key = backoffKey(container.name, kind)
                let finished = previous.finishedAt ?? now
                if let deadline = crashBackoff.backoffDeadline(key, since: finished, now: now) {
                    let delay = crashBackoff.delay(key) ?? crashBackoff.initial
                    waiting[container.name] = Waiting(
                        reason: "CrashLoopBackOff",
                        message: "back-off \(Self.format(delay)) restarting failed container=\(container.name) pod=\(input.pod.name)_\(input.pod.namespace)(\(input.pod.uid))")
                    wake(at: deadline)
                    return nil
                }
                crashBackoff.next(key, eventTime: finished, now: now)
            }
            if let image = container.image, let deadline = pullBackoff.backoffDeadlineSinceUpdate(image, now: now) {
                waiting[container.name] = Waiting(reason: "ImagePullBackOff", message: "Back-off pulling image \"\(image)\"")
                wake(at: deadline)
                return nil
            }
            return .startContainer(StartRequest(name: container.name, kind: kind, index: index, attempt: attempt, sandboxID: sandbox))
        }

        /// Old attempts beyond the newest two per container, and stopped sandboxes other than the newest.
        private func garbage(_ observed: ObservedPod) -> [Action] {
            var actions: [Action] = []
            for name in Set(observed.containers.map(\.name)) {
                for old in observed.attempts(name).dropFirst(2) where old.state == .exited {
                    actions.append(.removeContainer(id: old.id))
                }
            }
            let newest = observed.newestSandbox?.id
            for sandbox in observed.sandboxes where sandbox.state == .notReady && sandbox.id != newest {
                if !observed.containers.contains(where: { $0.sandboxID == sandbox.id && $0.state == .running }),
                    !observed.containers.contains(where: { $0.sandboxID == sandbox.id && observed.attempts($0.name).prefix(2).contains($0) })
                {
                    actions.append(.removeSandbox(id: sandbox.id))
                }
            }
            return actions
        }

        /// `10s`, `1m20s`, `5m0s`, as Go prints durations in the kubelet's messages.
        static func format(_ duration: Duration) -> String {
            let seconds = Int(duration.components.seconds)
            if seconds < 60 { return "\(seconds)s" }
            return "\(seconds / 60)m\(seconds % 60)s"
        }

        // MARK: Outcomes

        /// Learns how an action went.
        mutating func record(_ outcome: Outcome, now: Date) {
            switch outcome {
            case .sandboxCreated:
                sandboxBackoff.reset("sandbox")
                sandboxError = nil
            case .sandboxFailed(let message):
                sandboxBackoff.next("sandbox", eventTime: now, now: now)
                sandboxError = message
            case .volumesFailed(let message):
                sandboxError = message
            case .containerStarted(let name, let image):
                waiting[name] = nil
                pullBackoff.reset(image)
            case .containerFailed(let name, let reason, let message, let image):
                waiting[name] = Waiting(reason: reason, message: message)
                if reason == "ErrImagePull", let image { pullBackoff.next(image, eventTime: now, now: now) }
            case .podKilled(let stoppedEverything):
                if case .terminating = lifecycle, stoppedEverything {
                    lifecycle = .terminated
                    waiting = [:]
                }
            case .podRemoved:
                lifecycle = .finished
            }
        }

        /// True while termination or removal is under way or done.
        var isTerminating: Bool {
            if case .syncing = lifecycle { return false }
            return true
        }
    }
}
