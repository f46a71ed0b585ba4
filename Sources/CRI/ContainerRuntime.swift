/// The container runtime seam the kubelet's pod workers drive: images, pod sandboxes, containers, exits, logs.
///
/// Mirrors what kubelet's `container.Runtime` needs from CRI, cut down to what a pod worker uses. The real
/// implementation is ``CLIContainerRuntime`` (containerd through `ctr`, or `nerdctl`); the kubelet's unit tests
/// use the in-memory `FakeContainerRuntime` from NodeAgentTesting, which follows the same state transitions.
///
/// Every method throws ``ContainerRuntimeError``.
public protocol ContainerRuntime: Sendable {
    // MARK: Images

    /// Makes `image` present per `policy` (nil: Kubernetes' default for the tag) and returns its status.
    func ensureImage(_ image: String, policy: ImagePullPolicy?) async throws -> ImageStatus
    /// Pulls `image` unconditionally.
    func pullImage(_ image: String) async throws -> ImageStatus
    /// The image's status, or nil when it is not present.
    func imageStatus(_ image: String) async throws -> ImageStatus?

    // MARK: Pod sandboxes

    /// Creates the pod's namespaces, networking (CNI ADD) and hostname/hosts/resolv.conf files.
    /// On failure nothing of the sandbox is left behind.
    func runPodSandbox(_ config: PodSandboxConfig) async throws -> PodSandboxStatus
    /// Stops every container of the sandbox (with `gracePeriod`) and tears its networking down (CNI DEL).
    /// Idempotent.
    func stopPodSandbox(_ id: String, gracePeriod: Duration) async throws
    /// Removes a sandbox, its containers, namespaces and files. Idempotent.
    func removePodSandbox(_ id: String) async throws
    func podSandboxStatus(_ id: String) async throws -> PodSandboxStatus
    func listPodSandboxes() async throws -> [PodSandboxStatus]

    // MARK: Containers

    /// Creates a container in the sandbox's namespaces; returns its ID. Not started yet.
    func createContainer(in sandboxID: String, config: ContainerConfig) async throws -> String
    func startContainer(_ id: String) async throws
    /// Sends the stop signal, waits up to `gracePeriod`, then SIGKILL. Returns once the container has exited.
    func stopContainer(_ id: String, gracePeriod: Duration) async throws
    /// Removes a container (stopping it first if it still runs). Idempotent.
    func removeContainer(_ id: String) async throws
    /// Runs `command` inside a running container (exec probes, preStop hooks), killed after `timeout`.
    func exec(in id: String, command: [String], timeout: Duration) async throws -> ExecResult
    func containerStatus(_ id: String) async throws -> ContainerStatus
    func listContainers() async throws -> [ContainerStatus]

    // MARK: Runtime

    /// The runtime's version and whether the runtime and the pod network are ready (CRI's `Version` and `Status`),
    /// for the node's Ready condition. Never throws: a problem is reported in the status.
    func runtimeStatus() async -> RuntimeStatus

    // MARK: Events and logs

    /// A stream of container exits (each exit delivered once). Every call returns a new subscriber.
    func exitEvents() -> AsyncStream<ContainerExit>
    /// Where a container's CRI-format log file lives.
    func logPath(pod: PodIdentity, containerName: String, attempt: Int) -> String
}
