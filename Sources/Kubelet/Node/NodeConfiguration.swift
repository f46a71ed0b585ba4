public import Foundation
public import KubeAPI

/// How this node registers and reports itself; kubelet's flags and defaults.
public struct NodeConfiguration: Sendable {
    /// The Node's name (`--hostname-override` or the hostname).
    public var nodeName: String
    /// `--node-labels`, added to the defaults (kubernetes.io/hostname, os, arch).
    public var labels: [String: String] = [:]
    /// `--register-with-taints`.
    public var taints: [Taint] = []
    /// `--register-node`.
    public var registerNode = true
    /// `--max-pods`.
    public var maxPods = 110
    /// `--node-ip`: empty means "the default-route interface's".
    public var nodeIPs: [String] = []
    /// `--system-reserved` and `--kube-reserved`, summed: resource name → amount (`cpu` in cores, others in bytes).
    public var reserved: [String: Decimal] = [:]
    public var evictionThresholds = EvictionThresholds()
    /// The port reported in `daemonEndpoints.kubeletEndpoint.Port`.
    public var kubeletPort: Int32 = 10250
    /// The agent's state folder; its filesystem is `ephemeral-storage`.
    public var stateDirectory = "/var/lib/node-agent"
    /// `leaseDurationSeconds` of the node Lease (kubelet's `nodeLeaseDurationSeconds`).
    public var leaseDuration: Duration = .seconds(40)
    /// How often the Lease is renewed: a quarter of the duration, as the kubelet does (10 s).
    public var leaseRenewInterval: Duration { leaseDuration / 4 }
    /// `--node-status-update-frequency`: how often node status is computed.
    public var statusUpdateFrequency: Duration = .seconds(10)
    /// `nodeStatusReportFrequency`: an unchanged status is still posted this often.
    public var statusReportFrequency: Duration = .seconds(300)
    /// The kubelet version the Node reports.
    public var kubeletVersion: String

    public init(nodeName: String, kubeletVersion: String) {
        self.nodeName = nodeName
        self.kubeletVersion = kubeletVersion
    }

    /// The namespace of node Leases.
    public static let leaseNamespace = "kube-node-lease"
}

/// What the node knows of its container runtime and network when it reports Ready.
public struct RuntimeReadiness: Sendable, Equatable {
    /// containerd's version, e.g. `containerd://1.6.20`.
    public var runtimeVersion: String
    /// nil when the runtime answers; else why it does not.
    public var runtimeProblem: String?
    /// nil when the pod network is ready; else why not (e.g. no CNI configuration).
    public var networkProblem: String?

    public init(runtimeVersion: String, runtimeProblem: String? = nil, networkProblem: String? = nil) {
        self.runtimeVersion = runtimeVersion
        self.runtimeProblem = runtimeProblem
        self.networkProblem = networkProblem
    }
}
