import CRI
import Foundation
import KubeAPI
import Logging
import Synchronization

/// Runs one worker per probe of each running container (startup, liveness, readiness), like the kubelet's prober
/// manager: a worker waits `initialDelaySeconds` after the container started, probes every `periodSeconds`, counts
/// results against the thresholds, and publishes a changed result, which wakes the pod's worker. Liveness and
/// readiness wait until the startup probe has succeeded. Workers started within one period of the daemon's start
/// wait a random part of the period first, so a restarted daemon does not probe everything at once.
final class ProbeManager: Sendable {
    struct WorkerKey: Hashable, Sendable {
        var uid: String
        var container: String
        var kind: ProbeKind
    }

    private struct WorkerEntry {
        var containerID: String
        var task: Task<Void, Never>
    }

    private struct State {
        var workers: [WorkerKey: WorkerEntry] = [:]
        /// Published results by container ID, with the pod they belong to.
        var results: [String: (uid: String, values: [ProbeKind: ProbeResult])] = [:]
        var stopped = false
    }

    private let runner: HandlerRunner
    private let clock: any KubeletClock
    private let startedAt: Date
    private let logger: Logger
    private let random: @Sendable () -> Double
    private let state = Mutex(State())
    /// Called with a pod UID when one of its results changed.
    let onChange: @Sendable (String) -> Void
    /// Called for every failed probe (the `Unhealthy` event).
    let onFailure: @Sendable (DesiredPod, String, ProbeKind, String) -> Void

    init(
        runner: HandlerRunner, clock: any KubeletClock, logger: Logger, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        onChange: @escaping @Sendable (String) -> Void, onFailure: @escaping @Sendable (DesiredPod, String, ProbeKind, String) -> Void
    ) {
        self.runner = runner
        self.clock = clock
        self.startedAt = clock.now()
        self.logger = logger
        self.random = random
        self.onChange = onChange
        self.onFailure = onFailure
    }

    private static func probe(_ container: Container, _ kind: ProbeKind) -> Probe? {
        switch kind {
        case .startup: container.startupProbe
        case .liveness: container.livenessProbe
        case .readiness: container.readinessProbe
        }
    }

    /// Starts workers for running containers that have probes and stops those whose container is gone.
    func update(_ pod: DesiredPod, running: [CRI.ContainerStatus], podIP: String?) {
        let specs = pod.spec.containers
        var toStart: [(WorkerKey, String, Date, Probe, Container)] = []
        var toCancel: [Task<Void, Never>] = []
        state.withLock { state in
            guard !state.stopped else { return }
            let runningIDs = Set(running.map(\.id))
            for container in specs {
                let instance = running.first { $0.name == container.name }
                for kind in ProbeKind.allCases {
                    let key = WorkerKey(uid: pod.uid, container: container.name, kind: kind)
                    let existing = state.workers[key]
                    guard let probe = Self.probe(container, kind), let instance else {
                        if let existing {
                            toCancel.append(existing.task)
                            state.workers[key] = nil
                        }
                        continue
                    }
                    if existing?.containerID == instance.id { continue }
                    if let existing { toCancel.append(existing.task) }
                    state.workers[key] = nil
                    toStart.append((key, instance.id, instance.startedAt ?? clock.now(), probe, container))
                }
            }
            // Results of containers of this pod that no longer run are forgotten.
            for (id, entry) in state.results where entry.uid == pod.uid && !runningIDs.contains(id) {
                state.results[id] = nil
            }
        }
        for task in toCancel { task.cancel() }
        for (key, containerID, started, probe, container) in toStart {
            let target = HandlerRunner.Target(containerID: containerID, container: container, podIP: podIP)
            let task = Task { [self] in
                await self.work(key: key, pod: pod, containerID: containerID, containerStarted: started, probe: probe, target: target)
            }
            let stale = state.withLock { state -> Task<Void, Never>? in
                if state.stopped { return task }
                let old = state.workers[key]?.task
                state.workers[key] = WorkerEntry(containerID: containerID, task: task)
                return old
            }
            stale?.cancel()
        }
    }

    /// What the probes say about each container of the pod, by container ID.
    func status(_ pod: DesiredPod, running: [CRI.ContainerStatus]) -> [String: ContainerProbeStatus] {
        state.withLock { state in
            var result: [String: ContainerProbeStatus] = [:]
            for instance in running {
                guard let container = pod.spec.containers.first(where: { $0.name == instance.name }) else { continue }
                let published = state.results[instance.id]?.values ?? [:]
                let started = container.startupProbe == nil || published[.startup] == .success
                let ready = container.readinessProbe == nil ? started : published[.readiness] == .success
                result[instance.id] = ContainerProbeStatus(
                    started: started, ready: ready, livenessFailed: published[.liveness] == .failure,
                    startupFailed: published[.startup] == .failure)
            }
            return result
        }
    }

    /// Stops every worker of a pod and forgets its results.
    func remove(uid: String) {
        let tasks = state.withLock { state -> [Task<Void, Never>] in
            let keys = state.workers.keys.filter { $0.uid == uid }
            for (id, entry) in state.results where entry.uid == uid { state.results[id] = nil }
            return keys.compactMap { state.workers.removeValue(forKey: $0)?.task }
        }
        for task in tasks { task.cancel() }
    }

    /// Stops every worker (graceful shutdown).
    func stopAll() {
        let tasks = state.withLock { state -> [Task<Void, Never>] in
            state.stopped = true
            defer { state.workers = [:] }
            return state.workers.values.map(\.task)
        }
        for task in tasks { task.cancel() }
    }

    /// The number of probe workers running (tests, `/pods`).
    var workerCount: Int { state.withLock { $0.workers.count } }

    private func publish(_ result: ProbeResult, kind: ProbeKind, containerID: String, uid: String) {
        state.withLock { state in
            var entry = state.results[containerID] ?? (uid: uid, values: [:])
            entry.values[kind] = result
            state.results[containerID] = entry
        }
        onChange(uid)
    }

    private func published(_ containerID: String, _ kind: ProbeKind) -> ProbeResult? {
        state.withLock { $0.results[containerID]?.values[kind] }
    }

    /// One probe worker's life.
    private func work(key: WorkerKey, pod: DesiredPod, containerID: String, containerStarted: Date, probe: Probe, target: HandlerRunner.Target) async {
        let timing = ProbeTiming(probe, kind: key.kind)
        var machine = ProbeWorker.StateMachine(kind: key.kind, timing: timing)
        let hasStartupProbe = target.container.startupProbe != nil
        do {
            if clock.now().timeIntervalSince(startedAt) < timing.period.timeInterval {
                try await clock.sleep(for: .interval(random() * timing.period.timeInterval))
            }
            let firstProbe = containerStarted.adding(timing.initialDelay)
            if clock.now() < firstProbe { try await clock.sleep(until: firstProbe) }
            while !Task.isCancelled {
                if key.kind == .startup && published(containerID, .startup) == .success { return }
                if key.kind != .startup && hasStartupProbe && published(containerID, .startup) != .success {
                    try await clock.sleep(for: timing.period)
                    continue
                }
                let outcome = await runner.probe(probe, target)
                try Task.checkCancellation()
                if !outcome.isSuccess {
                    logger.debug(
                        "probe failed",
                        metadata: ["pod": "\(pod.fullName)", "container": "\(key.container)", "probe": "\(key.kind.rawValue)", "output": "\(outcome.message)"])
                    onFailure(pod, key.container, key.kind, outcome.message)
                }
                if case .publish(let result) = machine.observe(success: outcome.isSuccess) {
                    logger.info(
                        "probe result changed",
                        metadata: ["pod": "\(pod.fullName)", "container": "\(key.container)", "probe": "\(key.kind.rawValue)", "result": "\(result.rawValue)"])
                    publish(result, kind: key.kind, containerID: containerID, uid: pod.uid)
                }
                if machine.onHold { return }
                try await clock.sleep(for: timing.period)
            }
        } catch {
            // Cancelled: the container is gone or the daemon stops.
        }
    }
}
