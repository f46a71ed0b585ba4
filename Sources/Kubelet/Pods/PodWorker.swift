import CRI
import Foundation
import KubeAPI
import Logging

/// One pod's worker: serializes everything done to the pod. Each round it reads the pod's sandboxes and
/// containers from the runtime, asks its ``StateMachine`` what to do, does it (sandbox, volumes, image, env,
/// create, start, hooks, kills), and publishes the resulting status. It wakes when the pod changes, a container
/// of the pod exits, a probe result changes, a backoff ends, or every resync interval.
///
/// Daemon shutdown only stops the worker: containers keep running and are adopted by the next start.
actor PodWorker {
    nonisolated let uid: String
    private var desired: DesiredPod
    private var removed = false
    private(set) var machine: StateMachine
    private nonisolated let signal = WakeSignal()
    private var timer: Task<Void, Never>?
    private let context: PodContext
    private let logger: Logger
    private var lastObserved = ObservedPod()
    private var terminationMessages: [String: String] = [:]
    private(set) var rounds = 0

    /// - Parameter rejection: admission refused the pod: it never runs and shows Failed with this reason.
    init(pod: DesiredPod, context: PodContext, rejection: (reason: String, message: String)? = nil) {
        self.uid = pod.uid
        self.desired = pod
        self.context = context
        var logger = context.logger
        logger[metadataKey: "pod"] = "\(pod.fullName)"
        self.logger = logger
        let backoff = RestartBackoff(initial: context.configuration.backoffInitial, maximum: context.configuration.backoffMaximum)
        var machine = StateMachine(backoff: backoff, startTime: pod.pod.status?.startTime?.date)
        if let rejection {
            machine.reject(reason: rejection.reason, message: rejection.message)
        } else if let phase = pod.pod.status?.phase, phase == "Succeeded" || phase == "Failed" {
            // A terminal phase is final: the kubelet never restarts such a pod.
            machine.adoptTerminal(phase: phase, reason: pod.pod.status?.reason, message: pod.pod.status?.message)
        }
        self.machine = machine
    }

    /// The pod as its source wants it now.
    func update(_ pod: DesiredPod) {
        desired = pod
        signal.fire()
    }

    /// The pod left its source: terminate it, then remove everything of it.
    func remove() {
        removed = true
        signal.fire()
    }

    /// Look again now.
    nonisolated func wake() { signal.fire() }

    var currentPod: DesiredPod { desired }
    var isRemoved: Bool { removed }

    /// Runs rounds until the pod is cleaned up or the task is cancelled.
    func run() async {
        signal.fire()
        while !Task.isCancelled {
            await signal.wait()
            if Task.isCancelled { break }
            // Each round runs in a child task. A task's allocator keeps the slabs of its deepest moment until the
            // task ends, and a round's frames (sandbox, image, create, start, hooks) come to about 100 KB: run
            // in this long-lived task, every idle pod would hold them for good.
            await withDiscardingTaskGroup { group in group.addTask { await self.round() } }
            if case .finished = machine.lifecycle { break }
            schedule()
        }
        timer?.cancel()
    }

    private func schedule() {
        let clock = context.clock
        var deadline = clock.now().adding(context.configuration.resyncInterval)
        if let wake = machine.nextWakeup { deadline = min(deadline, wake) }
        timer?.cancel()
        let signal = self.signal
        timer = Task {
            do {
                try await clock.sleep(until: deadline)
                signal.fire()
            } catch {}
        }
    }

    // MARK: A round

    private func round() async {
        rounds += 1
        for _ in 0..<8 {
            guard let observed = await observe() else { return }
            let input = StateMachine.Input(
                pod: desired, removed: removed, observed: observed, probes: probeStatus(observed), now: context.clock.now())
            let waitingBefore = machine.waiting
            let actions = machine.sync(input)
            reportWaiting(before: waitingBefore)
            if actions.isEmpty { break }
            logger.debug("sync", metadata: ["actions": "\(actions.count)"])
            var succeeded = true
            for action in actions where !Task.isCancelled {
                if await !execute(action, observed: observed) { succeeded = false }
            }
            if case .finished = machine.lifecycle { return }
            if !succeeded || Task.isCancelled { break }
        }
        if let observed = await observe() {
            await refreshVolumes(observed)
            publish(observed)
        }
    }

    /// Rewrites configMap, secret, downwardAPI and projected volumes of a running pod when their source changed
    /// (the files change in place, atomically, as the kubelet's periodic sync does).
    private func refreshVolumes(_ observed: ObservedPod) async {
        guard case .syncing = machine.lifecycle, machine.terminal == nil, let sandbox = observed.readySandbox else { return }
        let dynamic = (desired.spec.volumes ?? []).contains { $0.configMap != nil || $0.secret != nil || $0.downwardAPI != nil || $0.projected != nil }
        guard dynamic else { return }
        let podIPs = desired.spec.isHostNetwork ? context.configuration.nodeIPs : sandbox.podIPs
        do {
            _ = try await context.volumes.setUp(desired, downward: context.downward(desired, podIPs: podIPs))
        } catch {
            context.events.record(desired, type: "Warning", reason: "FailedMount", message: "MountVolume.SetUp failed: \(error.description)")
        }
    }

    private func probeStatus(_ observed: ObservedPod) -> [String: ContainerProbeStatus] {
        context.probes.status(desired, running: observed.running)
    }

    private func observe() async -> ObservedPod? {
        do {
            let sandboxes = try await context.runtime.listPodSandboxes().filter { $0.config.pod.uid == uid }
            let containers = try await context.runtime.listContainers().filter { $0.pod.uid == uid }
            context.runtimeHealth(nil)
            context.sandboxesObserved(uid, sandboxes.map(\.id))
            lastObserved = ObservedPod(sandboxes: sandboxes, containers: containers)
            return lastObserved
        } catch {
            context.runtimeHealth(error as? ContainerRuntimeError)
            logger.warning("cannot read the pod from the runtime", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Events for containers that started waiting in a backoff.
    private func reportWaiting(before: [String: StateMachine.Waiting]) {
        for (name, waiting) in machine.waiting where before[name] != waiting {
            switch waiting.reason {
            case "CrashLoopBackOff":
                context.events.record(
                    desired, type: "Warning", reason: "BackOff", message: "Back-off restarting failed container \(name) in pod \(desired.name)_\(desired.namespace)(\(uid))",
                    fieldPath: fieldPath(name))
            case "ImagePullBackOff":
                context.events.record(desired, reason: "BackOff", message: waiting.message ?? "Back-off pulling image", fieldPath: fieldPath(name))
            default:
                break
            }
        }
    }

    private func fieldPath(_ name: String) -> String? {
        if let index = desired.spec.containers.firstIndex(where: { $0.name == name }) { return "spec.containers{\(desired.spec.containers[index].name)}" }
        if desired.spec.initContainerList.contains(where: { $0.name == name }) { return "spec.initContainers{\(name)}" }
        return nil
    }

    // MARK: Actions

    private func execute(_ action: StateMachine.Action, observed: ObservedPod) async -> Bool {
        let now = { self.context.clock.now() }
        switch action {
        case .createSandbox(let attempt):
            if attempt == 0, desired.source == .api, desired.pod.status?.startTime == nil, observed.sandboxes.isEmpty {
                context.events.record(desired, reason: "Scheduled", message: "Successfully assigned \(desired.fullName) to \(context.configuration.nodeName)")
            }
            do {
                _ = try await context.volumes.setUp(desired, downward: context.downward(desired, podIPs: []))
            } catch {
                machine.record(.volumesFailed(message: error.description), now: now())
                context.events.record(desired, type: "Warning", reason: "FailedMount", message: "MountVolume.SetUp failed: \(error.description)")
                return false
            }
            do {
                let status = try await context.runtime.runPodSandbox(ContainerConfigBuilder.sandboxConfig(desired, attempt: attempt))
                machine.record(.sandboxCreated, now: now())
                logger.info("sandbox ready", metadata: ["sandbox": "\(status.id)", "ip": "\(status.podIPs.joined(separator: ","))"])
                return true
            } catch {
                context.runtimeHealth(error as? ContainerRuntimeError)
                machine.record(.sandboxFailed(message: "\(error)"), now: now())
                context.events.record(desired, type: "Warning", reason: "FailedCreatePodSandBox", message: "Failed to create pod sandbox: \(error)")
                return false
            }
        case .startContainer(let request):
            return await start(request, observed: observed)
        case .killContainer(let target):
            return await kill(target)
        case .killPod(let targets, let sandboxes, _):
            var stopped = true
            await withTaskGroup(of: Bool.self) { group in
                for target in targets { group.addTask { await self.kill(target) } }
                for await ok in group where !ok { stopped = false }
            }
            for sandbox in sandboxes {
                do {
                    try await context.runtime.stopPodSandbox(sandbox, gracePeriod: StateMachine.minimumGrace)
                } catch {
                    stopped = false
                    logger.warning("cannot stop the pod sandbox", metadata: ["sandbox": "\(sandbox)", "error": "\(error)"])
                }
            }
            machine.record(.podKilled(stoppedEverything: stopped), now: now())
            return stopped
        case .removeContainer(let id):
            do {
                try await context.runtime.removeContainer(id)
                terminationMessages[id] = nil
                return true
            } catch {
                logger.warning("cannot remove an old container", metadata: ["container": "\(id)", "error": "\(error)"])
                return false
            }
        case .removeSandbox(let id):
            do {
                try await context.runtime.removePodSandbox(id)
                return true
            } catch {
                logger.warning("cannot remove an old sandbox", metadata: ["sandbox": "\(id)", "error": "\(error)"])
                return false
            }
        case .removePod(let sandboxes, let containers):
            var clean = true
            for id in containers where !sandboxes.contains(observed.containers.first { $0.id == id }?.sandboxID ?? "") {
                do { try await context.runtime.removeContainer(id) } catch { clean = false }
            }
            for id in sandboxes {
                do { try await context.runtime.removePodSandbox(id) } catch {
                    clean = false
                    logger.warning("cannot remove the pod sandbox", metadata: ["sandbox": "\(id)", "error": "\(error)"])
                }
            }
            guard clean else { return false }
            context.probes.remove(uid: uid)
            context.volumes.tearDown(uid: uid)
            context.statusManager.forget(uid)
            context.events.forget(desired)
            machine.record(.podRemoved, now: now())
            logger.info("pod removed")
            return true
        }
    }

    private func container(_ name: String) -> (Container, ContainerKind, Int)? {
        if let index = desired.spec.containers.firstIndex(where: { $0.name == name }) { return (desired.spec.containers[index], .app, index) }
        if let index = desired.spec.initContainerList.firstIndex(where: { $0.name == name }) {
            return (desired.spec.initContainerList[index], .initContainer, index)
        }
        return nil
    }

    /// Volumes, image, environment, create, start, postStart: the kubelet's `startContainer`.
    private func start(_ request: StateMachine.StartRequest, observed: ObservedPod) async -> Bool {
        let list = request.kind == .app ? desired.spec.containers : desired.spec.initContainerList
        guard request.index < list.count else { return false }
        let container = list[request.index]
        let image = container.image ?? ""
        let path = request.kind == .app ? "spec.containers{\(container.name)}" : "spec.initContainers{\(container.name)}"
        let now = { self.context.clock.now() }
        func fail(_ reason: String, _ message: String, event: String? = "Failed", type: String = "Warning") -> Bool {
            machine.record(.containerFailed(name: container.name, reason: reason, message: message, image: image), now: now())
            if let event { context.events.record(desired, type: type, reason: event, message: message, fieldPath: path) }
            logger.warning("container not started", metadata: ["container": "\(container.name)", "reason": "\(reason)", "message": "\(message)"])
            return false
        }
        let podIPs = observed.sandboxes.first { $0.id == request.sandboxID }?.podIPs ?? []
        let downward = context.downward(desired, podIPs: desired.spec.isHostNetwork ? context.configuration.nodeIPs : podIPs)
        // Volumes.
        let volumes: [String: PreparedVolume]
        do {
            volumes = try await context.volumes.setUp(desired, downward: downward)
        } catch {
            machine.record(.containerFailed(name: container.name, reason: "ContainerCreating", message: error.description, image: nil), now: now())
            context.events.record(desired, type: "Warning", reason: "FailedMount", message: "MountVolume.SetUp failed: \(error.description)")
            return false
        }
        // Image.
        let policy: ImagePullPolicy
        do {
            policy = try ImageManager.policy(container.imagePullPolicy, image: image)
        } catch let error as ContainerRuntimeError {
            return fail("InvalidImageName", "Failed to apply default image tag \"\(image)\": \(error.message)", event: "InspectFailed")
        } catch {
            return fail("CreateContainerConfigError", "Error: \(error)")
        }
        let events = context.events
        let pod = desired
        do {
            let outcome = try await context.images.ensure(image, policy: policy) {
                events.record(pod, reason: "Pulling", message: "Pulling image \"\(image)\"", fieldPath: path)
            }
            switch outcome {
            case .alreadyPresent:
                context.events.record(desired, reason: "Pulled", message: "Container image \"\(image)\" already present on machine", fieldPath: path)
            case .pulled(_, let seconds):
                context.events.record(
                    desired, reason: "Pulled", message: "Successfully pulled image \"\(image)\" in \(String(format: "%.3f", seconds))s", fieldPath: path)
            }
        } catch let error as KubeletError where error.kind == .imageNeverPull {
            return fail("ErrImageNeverPull", error.message, event: "ErrImageNeverPull")
        } catch let error as ContainerRuntimeError {
            switch error.kind {
            case .invalidImageName:
                return fail("InvalidImageName", "Failed to apply default image tag \"\(image)\": \(error.message)", event: "InspectFailed")
            case .runtimeUnavailable:
                context.runtimeHealth(error)
                return fail("ErrImagePull", "Failed to pull image \"\(image)\": \(error.message)")
            default:
                return fail("ErrImagePull", "Failed to pull image \"\(image)\": \(error.message)")
            }
        } catch {
            return fail("ErrImagePull", "Failed to pull image \"\(image)\": \(error)")
        }
        // Environment and the container's configuration.
        let config: ContainerConfig
        do {
            let base = request.kind == .app ? "spec.containers[\(request.index)]" : "spec.initContainers[\(request.index)]"
            let resolved = try await EnvironmentResolver(downward: downward, objects: context.objects).resolve(container, field: base)
            if !resolved.skippedKeys.isEmpty {
                context.events.record(
                    desired, type: "Warning", reason: "InvalidEnvironmentVariableNames",
                    message: "Keys [\(resolved.skippedKeys.joined(separator: ", "))] from the EnvFrom were skipped since they are considered invalid environment variable names.",
                    fieldPath: path)
            }
            let messageFile = terminationMessageFile(container.name, attempt: request.attempt)
            config = try ContainerConfigBuilder.build(
                container, kind: request.kind, index: request.index, attempt: request.attempt, pod: desired, env: resolved.env, volumes: volumes,
                terminationMessageFile: messageFile)
        } catch {
            return fail("CreateContainerConfigError", "Error: \(error.description)")
        }
        // Create and start.
        let id: String
        do {
            id = try await context.runtime.createContainer(in: request.sandboxID, config: config)
        } catch {
            if let error = error as? ContainerRuntimeError, error.kind == .imageNotFound { context.images.forget(image) }
            return fail("CreateContainerError", "Error: \(error)")
        }
        context.events.record(desired, reason: "Created", message: "Created container: \(container.name)", fieldPath: path)
        do {
            try await context.runtime.startContainer(id)
        } catch {
            try? await context.runtime.removeContainer(id)
            return fail("RunContainerError", "Error: failed to start container \"\(container.name)\": \(error)")
        }
        context.events.record(desired, reason: "Started", message: "Started container \(container.name)", fieldPath: path)
        logger.info("container started", metadata: ["container": "\(container.name)", "id": "\(id)", "attempt": "\(request.attempt)"])
        // postStart runs before the container counts as started; a failure kills it.
        if let hook = container.lifecycle?.postStart {
            let target = HandlerRunner.Target(containerID: id, container: container, podIP: downward.podIPs.first)
            let result = await context.handlers.hook(hook, target, timeout: desired.spec.terminationGrace)
            if case .failure(let message) = result {
                context.events.record(desired, type: "Warning", reason: "FailedPostStartHook", message: "PostStartHook failed: \(message)", fieldPath: path)
                try? await context.runtime.stopContainer(id, gracePeriod: max(StateMachine.minimumGrace, desired.spec.terminationGrace))
                return fail("PostStartHookError", "PostStartHook failed: \(message)", event: nil)
            }
        }
        machine.record(.containerStarted(name: container.name, image: image), now: now())
        return true
    }

    /// preStop (within the grace), then the stop signal, the rest of the grace, KILL.
    private func kill(_ target: StateMachine.KillTarget) async -> Bool {
        let clock = context.clock
        let begin = clock.now()
        let path = fieldPath(target.name)
        context.events.record(desired, reason: "Killing", message: target.reason.message(target.name), fieldPath: path)
        if let (container, _, _) = container(target.name), let hook = container.lifecycle?.preStop {
            let handlerTarget = HandlerRunner.Target(containerID: target.id, container: container, podIP: lastObserved.readySandbox?.podIP)
            let result = await context.handlers.hook(hook, handlerTarget, timeout: target.grace)
            if case .failure(let message) = result {
                context.events.record(desired, type: "Warning", reason: "FailedPreStopHook", message: "PreStopHook failed: \(message)", fieldPath: path)
            }
        }
        let spent = Duration.interval(clock.now().timeIntervalSince(begin))
        let remaining = max(StateMachine.minimumGrace, target.grace - spent)
        do {
            try await context.runtime.stopContainer(target.id, gracePeriod: remaining)
            return true
        } catch {
            logger.warning("cannot stop a container", metadata: ["container": "\(target.name)", "id": "\(target.id)", "error": "\(error)"])
            return false
        }
    }

    // MARK: Termination messages

    /// An empty file the container may write its termination message to.
    private func terminationMessageFile(_ name: String, attempt: Int) -> String? {
        let directory = "\(context.volumes.podDirectory(uid))/containers/\(name)"
        let file = "\(directory)/\(attempt)"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // An empty file, world-writable (any container user may write its message): one open, where
            // `FileManager.createFile` writes a temporary file and renames it.
            let descriptor = open(file, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o666)
            guard descriptor >= 0 else { return nil }
            defer { close(descriptor) }
            guard fchmod(descriptor, 0o666) == 0 else { return nil }
            return file
        } catch {
            return nil
        }
    }

    /// Reads the termination message of exited containers once: the message file (at most 4096 bytes), else with
    /// `FallbackToLogsOnError` the end of the log for a failed container.
    private func readTerminationMessages(_ observed: ObservedPod) {
        for status in observed.containers where status.state == .exited && terminationMessages[status.id] == nil {
            var message = ""
            if let file = status.labels[KubeletLabels.terminationMessagePath], let data = FileManager.default.contents(atPath: file) {
                message = String(decoding: data.prefix(4096), as: UTF8.self)
            }
            let policy = container(status.name)?.0.terminationMessagePolicy
            if message.isEmpty, policy == "FallbackToLogsOnError", (status.exitCode ?? 0) != 0, let log = status.logPath {
                message = Self.logTail(log)
            }
            terminationMessages[status.id] = message
        }
    }

    /// The last lines of a CRI-format log file (at most 80 lines, 2048 bytes), without the time and stream fields.
    static func logTail(_ path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 8192 ? size - 8192 : 0)
        let data = (try? handle.readToEnd()) ?? Data()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(80).map { line -> String in
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            return fields.count == 4 ? String(fields[3]) : String(line)
        }
        var text = lines.joined(separator: "\n")
        if text.utf8.count > 2048 { text = String(decoding: Array(text.utf8.suffix(2048)), as: UTF8.self) }
        return text
    }

    // MARK: Status

    private func publish(_ observed: ObservedPod) {
        readTerminationMessages(observed)
        let running = machine.isTerminating || machine.terminal != nil ? [] : observed.running.filter { $0.sandboxID == observed.readySandbox?.id }
        let probes = context.probes.status(desired, running: running)
        var previous = context.statusManager.status(uid) ?? (desired.isStatic ? nil : desired.pod.status)
        if !desired.isStatic, let apiConditions = desired.pod.status?.conditions {
            // Conditions others own (readiness gates) come from the API's copy.
            let owned = PodStatusBuilder.ownedConditions
            let ours = (previous?.conditions ?? []).filter { owned.contains($0.type) }
            previous?.conditions = ours + apiConditions.filter { !owned.contains($0.type) }
        }
        let status = PodStatusBuilder(
            pod: desired, observed: observed, probes: probes, machine: machine, nodeIPs: context.configuration.nodeIPs, previous: previous,
            terminationMessages: terminationMessages, now: context.clock.now()
        ).build()
        context.statusManager.set(desired, status: status)
        context.probes.update(desired, running: running, podIP: desired.spec.isHostNetwork ? context.configuration.nodeIPs.first : observed.readySandbox?.podIP)
        if case .terminated = machine.lifecycle, desired.source == .api, desired.deletionRequested {
            context.statusManager.requestDeletion(uid)
        }
    }
}
