public import CRI
public import Foundation

/// An in-memory ``ContainerRuntime`` for the kubelet's unit tests, following the real runtime's rules: the same
/// state transitions (created → running → exited), the same typed errors for the same mistakes, exit events
/// delivered once per container, IDs and pod IPs handed out like the real one.
///
/// Tests drive it: ``addImage(_:digest:)`` makes an image present, ``exit(_:code:)`` ends a running container,
/// ``failNext(_:with:)`` makes the next call of an operation throw, ``calls`` records every operation in order.
public actor FakeContainerRuntime: ContainerRuntime {
    /// The operations tests can inspect or make fail.
    public enum Operation: String, Sendable, Hashable {
        case ensureImage, pullImage, imageStatus, runPodSandbox, stopPodSandbox, removePodSandbox, podSandboxStatus, listPodSandboxes
        case createContainer, startContainer, stopContainer, removeContainer, exec, containerStatus, listContainers
    }

    public private(set) var calls: [(Operation, String)] = []
    private var images: [String: ImageStatus] = [:]
    /// Images a pull can fetch (a registry that has them); pulls of others fail with `.imagePullFailed`.
    private var pullable: [String: String] = [:]
    private var sandboxes: [String: PodSandboxStatus] = [:]
    private var containers: [String: ContainerStatus] = [:]
    private var failures: [Operation: any Error] = [:]
    private var execResults: [String: ExecResult] = [:]
    private var delivered: Set<String> = []
    private nonisolated let subscribers = ExitSubscribers()
    private var nextID = 0
    private var nextIP = 2
    private let now: @Sendable () -> Date
    /// Containers that exit by themselves when stopped with TERM (others need the grace to pass: they get 137).
    private var ignoresTerm: Set<String> = []
    /// What ``runtimeStatus()`` answers; tests change it to take the runtime or the network down.
    public var status = RuntimeStatus(version: "containerd://1.6.20-fake")

    /// Sets what ``runtimeStatus()`` answers.
    public func setStatus(_ status: RuntimeStatus) { self.status = status }

    public func runtimeStatus() async -> RuntimeStatus { status }

    /// - Parameter now: the clock used for created/started/finished times (inject a fixed one for determinism).
    public init(now: @escaping @Sendable () -> Date = { Date() }) {
        self.now = now
    }

    // MARK: Test controls

    /// Makes `reference` present (as a pre-imported image is).
    public func addImage(_ reference: String, digest: String = "sha256:" + String(repeating: "ab", count: 32)) throws {
        let name = try ImageReference(parsing: reference).description
        images[name] = ImageStatus(reference: name, digest: digest)
    }

    /// Lets a pull of `reference` succeed.
    public func allowPull(_ reference: String, digest: String = "sha256:" + String(repeating: "cd", count: 32)) throws {
        pullable[try ImageReference(parsing: reference).description] = digest
    }

    /// The next call of `operation` throws `error`.
    public func failNext(_ operation: Operation, with error: any Error) { failures[operation] = error }

    /// What an exec in `containerID` returns.
    public func setExecResult(_ result: ExecResult, for containerID: String) { execResults[containerID] = result }

    /// Makes the container ignore SIGTERM, so a stop takes the whole grace period and ends with 137.
    public func ignoreTerm(_ containerID: String) { ignoresTerm.insert(containerID) }

    /// Ends a running container with `code` and delivers its exit event.
    public func exit(_ containerID: String, code: Int32) throws {
        guard var status = containers[containerID] else { throw ContainerRuntimeError.fake(.containerNotFound, "container \(containerID)") }
        guard status.state == .running else { return }
        status.state = .exited
        status.exitCode = code
        status.finishedAt = now()
        status.reason = code == 0 ? "Completed" : "Error"
        containers[containerID] = status
        guard delivered.insert(containerID).inserted else { return }
        let event = ContainerExit(containerID: containerID, sandboxID: status.sandboxID, exitCode: code, finishedAt: status.finishedAt!, source: .events)
        subscribers.yield(event)
    }

    private func record(_ operation: Operation, _ detail: String) throws {
        calls.append((operation, detail))
        if let error = failures.removeValue(forKey: operation) { throw error }
    }

    // MARK: Images

    public func ensureImage(_ image: String, policy: ImagePullPolicy?) async throws -> ImageStatus {
        try record(.ensureImage, image)
        let reference = try ImageReference(parsing: image)
        let present = images[reference.description]
        switch policy ?? ImagePullPolicy.default(for: reference) {
        case .never:
            guard let present else { throw ContainerRuntimeError.fake(.imageNeverPull, "image \"\(reference)\"", field: "imagePullPolicy") }
            return present
        case .ifNotPresent:
            if let present { return present }
            return try pull(reference.description)
        case .always:
            if let present, pullable[reference.description] == nil { return present }
            return try pull(reference.description)
        }
    }

    private func pull(_ name: String) throws -> ImageStatus {
        guard let digest = pullable[name] else { throw ContainerRuntimeError.fake(.imagePullFailed, "image \"\(name)\"", field: "image") }
        let status = ImageStatus(reference: name, digest: digest)
        images[name] = status
        return status
    }

    public func pullImage(_ image: String) async throws -> ImageStatus {
        try record(.pullImage, image)
        return try pull(try ImageReference(parsing: image).description)
    }

    public func imageStatus(_ image: String) async throws -> ImageStatus? {
        try record(.imageStatus, image)
        return images[try ImageReference(parsing: image).description]
    }

    // MARK: Sandboxes

    private func makeID() -> String {
        nextID += 1
        return String(format: "fake-%016x", nextID)
    }

    public func runPodSandbox(_ config: PodSandboxConfig) async throws -> PodSandboxStatus {
        try record(.runPodSandbox, config.pod.description)
        let id = makeID()
        var ips: [String] = []
        if !config.hostNetwork {
            ips = ["10.244.0.\(nextIP)"]
            nextIP += 1
        }
        let status = PodSandboxStatus(
            id: id, config: config, state: .ready, createdAt: now(), podIPs: ips, networkNamespacePath: config.hostNetwork ? nil : "/var/run/netns/\(id)")
        sandboxes[id] = status
        return status
    }

    public func stopPodSandbox(_ id: String, gracePeriod: Duration) async throws {
        try record(.stopPodSandbox, id)
        guard var sandbox = sandboxes[id] else { throw ContainerRuntimeError.fake(.sandboxNotFound, "sandbox \(id)") }
        for container in containers.values where container.sandboxID == id && container.state == .running {
            try await stopContainer(container.id, gracePeriod: gracePeriod)
        }
        sandbox.state = .notReady
        sandboxes[id] = sandbox
    }

    public func removePodSandbox(_ id: String) async throws {
        try record(.removePodSandbox, id)
        guard sandboxes[id] != nil else { return }
        for container in containers.values where container.sandboxID == id { try await removeContainer(container.id) }
        sandboxes[id] = nil
    }

    public func podSandboxStatus(_ id: String) async throws -> PodSandboxStatus {
        try record(.podSandboxStatus, id)
        guard let sandbox = sandboxes[id] else { throw ContainerRuntimeError.fake(.sandboxNotFound, "sandbox \(id)") }
        return sandbox
    }

    public func listPodSandboxes() async throws -> [PodSandboxStatus] {
        try record(.listPodSandboxes, "")
        return sandboxes.values.sorted { $0.id < $1.id }
    }

    // MARK: Containers

    public func createContainer(in sandboxID: String, config: ContainerConfig) async throws -> String {
        try record(.createContainer, config.name)
        guard let sandbox = sandboxes[sandboxID] else { throw ContainerRuntimeError.fake(.sandboxNotFound, "sandbox \(sandboxID)") }
        guard sandbox.state == .ready else { throw ContainerRuntimeError.fake(.sandboxNotReady, "container \"\(config.name)\" of pod \(sandbox.config.pod)") }
        let reference = try ImageReference(parsing: config.image).description
        guard let image = images[reference] else { throw ContainerRuntimeError.fake(.imageNotFound, "image \"\(reference)\"") }
        let id = makeID()
        let pod = sandbox.config.pod
        containers[id] = ContainerStatus(
            id: id, sandboxID: sandboxID, pod: pod, name: config.name, attempt: config.attempt, state: .created, image: reference,
            imageDigest: image.digest, createdAt: now(), logPath: logPath(pod: pod, containerName: config.name, attempt: config.attempt),
            labels: config.labels.merging([
                RuntimeLabels.podUID: pod.uid, RuntimeLabels.podName: pod.name, RuntimeLabels.podNamespace: pod.namespace,
                RuntimeLabels.containerName: config.name, RuntimeLabels.containerAttempt: String(config.attempt),
            ]) { _, new in new })
        return id
    }

    public func startContainer(_ id: String) async throws {
        try record(.startContainer, id)
        guard var status = containers[id] else { throw ContainerRuntimeError.fake(.containerNotFound, "container \(id)") }
        guard status.state == .created else { throw ContainerRuntimeError.fake(.invalidState, "container \(id)") }
        status.state = .running
        status.startedAt = now()
        containers[id] = status
    }

    public func stopContainer(_ id: String, gracePeriod: Duration) async throws {
        try record(.stopContainer, id)
        guard let status = containers[id] else { throw ContainerRuntimeError.fake(.containerNotFound, "container \(id)") }
        guard status.state == .running else { return }
        try exit(id, code: ignoresTerm.contains(id) ? 137 : 0)
    }

    public func removeContainer(_ id: String) async throws {
        try record(.removeContainer, id)
        if containers[id]?.state == .running { try exit(id, code: 137) }
        containers[id] = nil
        delivered.remove(id)
    }

    public func exec(in id: String, command: [String], timeout: Duration) async throws -> ExecResult {
        try record(.exec, "\(id) \(command.joined(separator: " "))")
        guard let status = containers[id] else { throw ContainerRuntimeError.fake(.containerNotFound, "container \(id)") }
        guard status.state == .running else { throw ContainerRuntimeError.fake(.invalidState, "container \(id)") }
        return execResults[id] ?? ExecResult(exitCode: 0, stdout: "", stderr: "")
    }

    public func containerStatus(_ id: String) async throws -> ContainerStatus {
        try record(.containerStatus, id)
        guard let status = containers[id] else { throw ContainerRuntimeError.fake(.containerNotFound, "container \(id)") }
        return status
    }

    public func listContainers() async throws -> [ContainerStatus] {
        try record(.listContainers, "")
        return containers.values.sorted { $0.id < $1.id }
    }

    // MARK: Events and logs

    public nonisolated func exitEvents() -> AsyncStream<ContainerExit> { subscribers.subscribe() }

    public nonisolated func logPath(pod: PodIdentity, containerName: String, attempt: Int) -> String {
        "/var/log/pods/\(pod.logDirectoryName)/\(containerName)/\(attempt).log"
    }
}
