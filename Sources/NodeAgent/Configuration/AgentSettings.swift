import CRI
import Foundation
import IPVS
import KubeAPI
import Kubelet
import Logging
import Proxy

/// Which halves of the node agent run. An operator can replace the kubelet or kube-proxy one at a time.
enum Component: String, Sendable, CaseIterable, Hashable, Comparable {
    case kubelet
    case proxy

    static func < (lhs: Component, rhs: Component) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Every setting of `node-agent run`, with kubelet's and kube-proxy's defaults.
///
/// Values arrive as text from three places, in rising priority: these defaults, the `--config` YAML file,
/// then command-line flags. ``SettingKey`` is the one table that parses and validates them, so a value is
/// refused with the same message wherever it came from.
struct AgentSettings: Sendable, Equatable {
    var components: Set<Component> = Set(Component.allCases)
    var kubeconfig: String? = nil
    var hostnameOverride: String? = nil
    var nodeIPs: [String] = []
    var podManifestPath: String? = nil
    var rootDirectory = "/var/lib/node-agent"

    // Node registration and heartbeats (kubelet)
    var nodeLabels: [String: String] = [:]
    var registerWithTaints: [Taint] = []
    var registerNode = true
    var maxPods = 110
    var nodeStatusUpdateFrequency: Duration = .seconds(10)
    var nodeLeaseDurationSeconds = 40
    /// `--system-reserved` and `--kube-reserved`, kept apart so each flag can be given alone.
    var systemReserved: [String: Decimal] = [:]
    var kubeReserved: [String: Decimal] = [:]
    var evictionHard = EvictionThresholds()

    // kube-proxy
    var proxyMode: ProxyMode = .ipvs
    var ipvsScheduler: Scheduler = .rr
    var ipvsSyncPeriod: Duration = .seconds(30)
    var ipvsMinSyncPeriod: Duration = .zero
    /// `--ipvs-tcp-timeout`, `--ipvs-tcpfin-timeout`, `--ipvs-udp-timeout`: zero leaves the kernel's values.
    var ipvsTCPTimeout: Duration = .zero
    var ipvsTCPFinTimeout: Duration = .zero
    var ipvsUDPTimeout: Duration = .zero
    var ipvsStrictARP = false
    var ipvsExcludeCIDRs: [String] = []
    var iptablesSyncPeriod: Duration = .seconds(30)
    var iptablesMinSyncPeriod: Duration = .seconds(1)
    var clusterCIDRs: [String] = []
    /// `--nodeport-addresses`: CIDRs whose local addresses accept NodePorts; empty means the node's primary IPs.
    var nodePortAddresses: [String] = []
    var masqueradeAll = false
    /// kube-proxy's own `/healthz` (its `--healthz-bind-address`, 0.0.0.0:10256); nil disables it.
    var proxyHealthzBindAddress: BindAddress? = BindAddress(host: "0.0.0.0", port: 10256)

    // Endpoints of the daemon itself
    var healthzBindAddress = BindAddress(host: "127.0.0.1", port: 10248)
    var metricsBindAddress: BindAddress? = BindAddress(host: "127.0.0.1", port: 10249)

    // Container runtime and networking
    var containerRuntimeEndpoint: RuntimeEndpoint = .containerdDefault
    var cniConfDir = "/etc/cni/net.d"
    var cniBinDir = "/opt/cni/bin"

    // Kubelet: runtime client, pod DNS, container logs (see KubeletComponent)
    var runtimeCLI: RuntimeCLIKind? = nil
    var runtimeRequestTimeout: Duration = .seconds(120)
    var clusterDNS: [String] = []
    var clusterDomain = "cluster.local"
    var serializeImagePulls = true
    var maxParallelImagePulls = 5
    var containerLogMaxSize = 10 * 1024 * 1024
    var containerLogMaxFiles = 5
    /// Testing only: the network namespace CNI plugins, probes and hooks run in (an isolated node namespace).
    var cniPluginNetns: String? = nil
    /// Testing only: the prefix of sandbox/container IDs, so a test daemon never touches another's objects.
    var runtimeIDPrefix = "na-"
    /// Testing only: where container logs go instead of /var/log/pods.
    var podLogsDir = "/var/log/pods"

    // Logging
    var verbosity = 0
    var logLevel: Logger.Level? = nil

    /// The level logs are written at: `--log-level` when given, else derived from klog's `--v`
    /// (0–3 info, 4–5 debug, 6 and above trace).
    var effectiveLogLevel: Logger.Level {
        if let logLevel { return logLevel }
        switch verbosity {
        case ..<4: return .info
        case 4...5: return .debug
        default: return .trace
        }
    }
}
