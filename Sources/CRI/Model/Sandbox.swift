/// Which pod a sandbox or container belongs to.
public struct PodIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public var uid: String
    public var name: String
    public var namespace: String

    public init(uid: String, name: String, namespace: String) {
        self.uid = uid
        self.name = name
        self.namespace = namespace
    }

    public var description: String { "\(namespace)/\(name)" }
    /// `<namespace>_<name>_<uid>`, the pod's folder name under `/var/log/pods`.
    public var logDirectoryName: String { "\(namespace)_\(name)_\(uid)" }
}

/// The pod's DNS settings, as `dnsPolicy` and `dnsConfig` say.
public struct PodDNS: Sendable, Hashable, Codable {
    public enum Policy: String, Sendable, Hashable, Codable {
        case clusterFirst = "ClusterFirst"
        case clusterFirstWithHostNet = "ClusterFirstWithHostNet"
        case `default` = "Default"
        case none = "None"
    }

    public var policy: Policy
    public var nameservers: [String]
    public var searches: [String]
    public var options: [String]

    public init(policy: Policy = .clusterFirst, nameservers: [String] = [], searches: [String] = [], options: [String] = []) {
        self.policy = policy
        self.nameservers = nameservers
        self.searches = searches
        self.options = options
    }
}

/// What the kubelet asks for when it creates a pod sandbox.
public struct PodSandboxConfig: Sendable, Hashable, Codable {
    public var pod: PodIdentity
    /// The attempt number of this sandbox for the pod (0 for the first).
    public var attempt: Int
    /// The pod's hostname (defaults to the pod name).
    public var hostname: String
    /// Run in the node's network namespace: no netns, no CNI.
    public var hostNetwork: Bool
    public var dns: PodDNS
    /// Extra `/etc/hosts` entries (`hostAliases`): IP to names.
    public var hostAliases: [HostAlias]
    public var labels: [String: String]

    public struct HostAlias: Sendable, Hashable, Codable {
        public var ip: String
        public var hostnames: [String]
        public init(ip: String, hostnames: [String]) {
            self.ip = ip
            self.hostnames = hostnames
        }
    }

    public init(
        pod: PodIdentity, attempt: Int = 0, hostname: String? = nil, hostNetwork: Bool = false, dns: PodDNS = PodDNS(),
        hostAliases: [HostAlias] = [], labels: [String: String] = [:]
    ) {
        self.pod = pod
        self.attempt = attempt
        self.hostname = hostname ?? pod.name
        self.hostNetwork = hostNetwork
        self.dns = dns
        self.hostAliases = hostAliases
        self.labels = labels
    }
}

/// A sandbox's lifecycle state.
public enum SandboxState: String, Sendable, Hashable, Codable {
    /// Namespaces and networking are set up.
    case ready = "SANDBOX_READY"
    /// Stopped: networking torn down; the record stays until the sandbox is removed.
    case notReady = "SANDBOX_NOTREADY"
}

/// A pod sandbox as the runtime knows it.
public struct PodSandboxStatus: Sendable, Hashable, Codable {
    public var id: String
    public var config: PodSandboxConfig
    public var state: SandboxState
    public var createdAt: Date
    /// The pod's IPs from the CNI result, first is the primary (empty for hostNetwork pods).
    public var podIPs: [String]
    /// The network namespace path (nil for hostNetwork pods).
    public var networkNamespacePath: String?

    public init(id: String, config: PodSandboxConfig, state: SandboxState, createdAt: Date, podIPs: [String], networkNamespacePath: String?) {
        self.id = id
        self.config = config
        self.state = state
        self.createdAt = createdAt
        self.podIPs = podIPs
        self.networkNamespacePath = networkNamespacePath
    }

    public var podIP: String? { podIPs.first }
}

public import struct Foundation.Date
