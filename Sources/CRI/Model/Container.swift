public import struct Foundation.Date

/// A bind mount from the node into a container (volumes the kubelet prepared).
public struct ContainerMount: Sendable, Hashable, Codable {
    public var hostPath: String
    public var containerPath: String
    public var readOnly: Bool

    public init(hostPath: String, containerPath: String, readOnly: Bool = false) {
        self.hostPath = hostPath
        self.containerPath = containerPath
        self.readOnly = readOnly
    }
}

/// Resource limits for a container, already converted from requests/limits the way the kubelet does it.
public struct ContainerResources: Sendable, Hashable, Codable {
    /// Memory limit in bytes.
    public var memoryLimitBytes: Int64?
    /// CFS quota in microseconds per `cpuPeriod` (from the CPU limit).
    public var cpuQuota: Int64?
    public var cpuPeriod: Int64?
    /// CPU shares (from the CPU request: millicores * 1024 / 1000, at least 2).
    public var cpuShares: Int64?

    public init(memoryLimitBytes: Int64? = nil, cpuQuota: Int64? = nil, cpuPeriod: Int64? = nil, cpuShares: Int64? = nil) {
        self.memoryLimitBytes = memoryLimitBytes
        self.cpuQuota = cpuQuota
        self.cpuPeriod = cpuPeriod
        self.cpuShares = cpuShares
    }

    /// Converts Kubernetes CPU millicores and memory bytes the way the kubelet does (period 100 ms).
    public static func kubernetes(cpuRequestMillis: Int64? = nil, cpuLimitMillis: Int64? = nil, memoryLimitBytes: Int64? = nil) -> Self {
        var resources = ContainerResources(memoryLimitBytes: memoryLimitBytes)
        if let request = cpuRequestMillis { resources.cpuShares = max(2, request * 1024 / 1000) }
        if let limit = cpuLimitMillis {
            resources.cpuPeriod = 100_000
            resources.cpuQuota = max(1000, limit * 100_000 / 1000)
        }
        return resources
    }
}

/// What the kubelet asks for when it creates a container in a sandbox.
public struct ContainerConfig: Sendable, Hashable, Codable {
    /// The container's name in the pod spec.
    public var name: String
    /// Restart count: the log file is `<attempt>.log`.
    public var attempt: Int
    public var image: String
    /// Replaces the image's entrypoint when set (`command`).
    public var command: [String]
    /// Replaces the image's cmd when set (`args`).
    public var args: [String]
    public var env: [EnvVar]
    public var workingDirectory: String?
    public var mounts: [ContainerMount]
    public var resources: ContainerResources
    /// `runAsUser` / `runAsGroup`.
    public var user: UInt32?
    public var group: UInt32?
    public var readOnlyRootFilesystem: Bool
    public var privileged: Bool
    /// The signal that asks the process to stop (`STOPSIGNAL` of the image, else TERM).
    public var stopSignal: String?
    public var labels: [String: String]

    public struct EnvVar: Sendable, Hashable, Codable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(
        name: String, attempt: Int = 0, image: String, command: [String] = [], args: [String] = [], env: [EnvVar] = [],
        workingDirectory: String? = nil, mounts: [ContainerMount] = [], resources: ContainerResources = ContainerResources(),
        user: UInt32? = nil, group: UInt32? = nil, readOnlyRootFilesystem: Bool = false, privileged: Bool = false,
        stopSignal: String? = nil, labels: [String: String] = [:]
    ) {
        self.name = name
        self.attempt = attempt
        self.image = image
        self.command = command
        self.args = args
        self.env = env
        self.workingDirectory = workingDirectory
        self.mounts = mounts
        self.resources = resources
        self.user = user
        self.group = group
        self.readOnlyRootFilesystem = readOnlyRootFilesystem
        self.privileged = privileged
        self.stopSignal = stopSignal
        self.labels = labels
    }
}

/// A container's lifecycle state, as CRI names them.
public enum ContainerState: String, Sendable, Hashable, Codable {
    case created = "CONTAINER_CREATED"
    case running = "CONTAINER_RUNNING"
    case exited = "CONTAINER_EXITED"
    case unknown = "CONTAINER_UNKNOWN"
}

/// A container as the runtime reports it: what pod workers need to compute pod status.
public struct ContainerStatus: Sendable, Hashable {
    /// The containerd container ID (report as `containerd://<id>`).
    public var id: String
    public var sandboxID: String
    public var pod: PodIdentity
    public var name: String
    public var attempt: Int
    public var state: ContainerState
    public var image: String
    /// The image's digest at creation.
    public var imageDigest: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var exitCode: Int32?
    /// `Completed` (exit 0), `Error` (non-zero), `OOMKilled`, ... for exited containers.
    public var reason: String?
    public var logPath: String?
    public var labels: [String: String]

    public init(
        id: String, sandboxID: String, pod: PodIdentity, name: String, attempt: Int, state: ContainerState, image: String,
        imageDigest: String? = nil, createdAt: Date, startedAt: Date? = nil, finishedAt: Date? = nil, exitCode: Int32? = nil,
        reason: String? = nil, logPath: String? = nil, labels: [String: String] = [:]
    ) {
        self.id = id
        self.sandboxID = sandboxID
        self.pod = pod
        self.name = name
        self.attempt = attempt
        self.state = state
        self.image = image
        self.imageDigest = imageDigest
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.exitCode = exitCode
        self.reason = reason
        self.logPath = logPath
        self.labels = labels
    }

    /// `containerd://<id>`, as pod status reports container IDs.
    public var runtimeID: String { "containerd://\(id)" }
}

/// A container's end, as learned from the events stream or a relist.
public struct ContainerExit: Sendable, Hashable {
    public enum Source: String, Sendable, Hashable {
        case events
        case relist
    }

    public var containerID: String
    public var sandboxID: String?
    public var exitCode: Int32
    public var finishedAt: Date
    public var source: Source

    public init(containerID: String, sandboxID: String?, exitCode: Int32, finishedAt: Date, source: Source) {
        self.containerID = containerID
        self.sandboxID = sandboxID
        self.exitCode = exitCode
        self.finishedAt = finishedAt
        self.source = source
    }
}

/// What a command run inside a container printed and returned.
public struct ExecResult: Sendable, Hashable {
    public var exitCode: Int32
    public var stdout: String
    public var stderr: String

    public init(exitCode: Int32, stdout: String, stderr: String) {
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
    }
}
