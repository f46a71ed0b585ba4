public import struct Foundation.Date
public import Logging

/// Which command-line client drives containerd.
public enum RuntimeCLIKind: String, Sendable, Hashable, CaseIterable {
    case ctr
    case nerdctl
}

/// Everything needed to create one container through a CLI.
public struct CLIContainerSpec: Sendable, Hashable {
    public var id: String
    public var image: String
    /// The full process argv; empty means the image's entrypoint + cmd.
    public var processArgs: [String]
    public var env: [ContainerConfig.EnvVar]
    public var workingDirectory: String?
    public var mounts: [ContainerMount]
    public var labels: [String: String]
    /// Namespaces to join (`network`, `uts`, `ipc` to paths); empty with `hostNetwork` for the node's own.
    public var namespaces: [String: String]
    public var hostNetwork: Bool
    public var hostname: String?
    public var resources: ContainerResources
    public var user: UInt32?
    public var group: UInt32?
    public var readOnlyRootFilesystem: Bool
    public var privileged: Bool
    /// Where output goes (nerdctl fixes it at create; ctr takes it at start).
    public var logURI: String?

    public init(
        id: String, image: String, processArgs: [String] = [], env: [ContainerConfig.EnvVar] = [], workingDirectory: String? = nil,
        mounts: [ContainerMount] = [], labels: [String: String] = [:], namespaces: [String: String] = [:], hostNetwork: Bool = false,
        hostname: String? = nil, resources: ContainerResources = ContainerResources(), user: UInt32? = nil, group: UInt32? = nil,
        readOnlyRootFilesystem: Bool = false, privileged: Bool = false, logURI: String? = nil
    ) {
        self.logURI = logURI
        self.id = id
        self.image = image
        self.processArgs = processArgs
        self.env = env
        self.workingDirectory = workingDirectory
        self.mounts = mounts
        self.labels = labels
        self.namespaces = namespaces
        self.hostNetwork = hostNetwork
        self.hostname = hostname
        self.resources = resources
        self.user = user
        self.group = group
        self.readOnlyRootFilesystem = readOnlyRootFilesystem
        self.privileged = privileged
    }
}

/// A container as the CLI reports it.
public struct CLIContainer: Sendable, Hashable {
    public var id: String
    public var image: String
    public var labels: [String: String]
    public var createdAt: Date

    public init(id: String, image: String, labels: [String: String], createdAt: Date) {
        self.id = id
        self.image = image
        self.labels = labels
        self.createdAt = createdAt
    }
}

/// A task (the running process of a container) as the CLI reports it.
public struct CLITask: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        case created = "CREATED"
        case running = "RUNNING"
        case stopped = "STOPPED"
        case paused = "PAUSED"
        case unknown = "UNKNOWN"
    }

    public var id: String
    public var pid: Int32
    public var status: Status
    /// The exit code when the CLI reports it for a stopped task (nerdctl does; ctr only on delete).
    public var exitCode: Int32?
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(id: String, pid: Int32, status: Status, exitCode: Int32? = nil, startedAt: Date? = nil, finishedAt: Date? = nil) {
        self.id = id
        self.pid = pid
        self.status = status
        self.exitCode = exitCode
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// A task exit read from the CLI's event stream.
public struct CLIExitEvent: Sendable, Hashable {
    public var containerID: String
    public var exitCode: Int32
    public var exitedAt: Date

    public init(containerID: String, exitCode: Int32, exitedAt: Date) {
        self.containerID = containerID
        self.exitCode = exitCode
        self.exitedAt = exitedAt
    }
}

/// The operations the runtime needs from a containerd client CLI; `ctr` and `nerdctl` implement it.
///
/// Every method throws ``CommandError`` (wrapped by the runtime into ``ContainerRuntimeError``).
public protocol RuntimeCLI: Sendable {
    var kind: RuntimeCLIKind { get }
    /// Checks the daemon answers; returns containerd's server version (e.g. `1.6.20`).
    @discardableResult
    func ping() async throws -> String
    /// The image stored under `reference`, or nil.
    func image(_ reference: String) async throws -> ImageStatus?
    /// The image's entrypoint and cmd from its config (for `args` without `command`).
    func imageEntrypoint(_ reference: String) async throws -> (entrypoint: [String], cmd: [String])
    /// Pulls `reference`, logging progress lines.
    func pull(_ reference: String, logger: Logger) async throws -> ImageStatus
    func create(_ spec: CLIContainerSpec) async throws
    /// Creates and starts the container in one call (`ctr run -d`), output to `spec.logURI`.
    func run(_ spec: CLIContainerSpec) async throws
    /// Starts the container's task detached, its output sent to `logURI` (a `binary://` URI for the CRI logger).
    func start(_ id: String, logURI: String?) async throws
    /// IDs of all containers in the namespace.
    func containerIDs() async throws -> [String]
    /// One container's details, or nil when it does not exist.
    func container(_ id: String) async throws -> CLIContainer?
    /// All tasks by container ID.
    func tasks() async throws -> [String: CLITask]
    func kill(_ id: String, signal: String) async throws
    /// Deletes a stopped task; returns its exit code when the CLI reports it. Quiet when there is no task.
    func deleteTask(_ id: String) async throws -> Int32?
    /// Deletes the container and its snapshot. Quiet when it does not exist.
    func deleteContainer(_ id: String) async throws
    /// Sets labels on an existing container.
    func setLabels(_ id: String, _ labels: [String: String]) async throws
    func exec(_ id: String, execID: String, command: [String], user: UInt32?, timeout: Duration) async throws -> ExecResult
    /// Streams task exits until cancelled or the stream ends (then returns; the caller restarts it).
    func exitEvents(_ handler: @Sendable (CLIExitEvent) async -> Void) async throws
    /// Keys of the snapshots in the namespace (for leak checks and sweeps).
    func snapshotKeys() async throws -> [String]
}
