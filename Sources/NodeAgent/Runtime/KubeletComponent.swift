import CRI
import Foundation
import KubeAPI
import Kubelet
import Logging
import ServiceLifecycle

/// Wires the kubelet half into the daemon: the container runtime (containerd through ctr or nerdctl) with its
/// monitor, the kubelet (pod sources, workers, probes, status, events), its health checks (`container-runtime`,
/// `pod-sources`) and the `pods` status section that `/pods` serves.
struct KubeletComponent {
    var settings: AgentSettings
    var nodeName: String
    var makeLogger: @Sendable (String) -> Logger
    var registry: HealthRegistry
    /// The API server (``KubeClientFactory``); nil runs the kubelet standalone on `--pod-manifest-path`.
    var client: (any KubeClientProtocol)?

    /// The runtime's settings from the daemon's.
    static func runtimeConfiguration(settings: AgentSettings) -> CLIRuntimeConfiguration {
        var configuration = CLIRuntimeConfiguration()
        configuration.cli = settings.runtimeCLI
        configuration.endpoint = settings.containerRuntimeEndpoint
        configuration.requestTimeout = settings.runtimeRequestTimeout
        configuration.idPrefix = settings.runtimeIDPrefix
        configuration.stateDirectory = settings.rootDirectory + "/cri"
        configuration.podLogDirectory = settings.podLogsDir
        configuration.logMaxSize = settings.containerLogMaxSize
        configuration.logMaxFiles = settings.containerLogMaxFiles
        configuration.cniConfDirectory = settings.cniConfDir
        configuration.cniBinDirectories = CNIPluginRunner.defaultBinDirectories(settings.cniBinDir)
        configuration.cniPluginNamespace = settings.cniPluginNetns
        configuration.clusterDNS = PodFiles.ClusterDNS(
            servers: settings.clusterDNS, domain: settings.clusterDomain,
            hostResolvConf: (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "")
        configuration.serializeImagePulls = settings.serializeImagePulls
        configuration.maxParallelImagePulls = settings.maxParallelImagePulls
        return configuration
    }

    /// The kubelet's settings from the daemon's.
    func kubeletConfiguration() -> KubeletConfiguration {
        var configuration = KubeletConfiguration(
            nodeName: nodeName, nodeIPs: settings.nodeIPs.isEmpty ? NodeAddresses.detect() : settings.nodeIPs, rootDirectory: settings.rootDirectory,
            podManifestPath: settings.podManifestPath.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        configuration.probeNetworkNamespace = settings.cniPluginNetns
        return configuration
    }

    /// Builds the kubelet over `runtime` (``Agent/makeRuntime()``, shared with the heartbeat) and registers its checks
    /// and status section. Returns the kubelet (its `statusManager` feeds standalone Services, ``KubeletLocalPods``)
    /// and the services to run: the runtime monitor and the kubelet's own.
    func make(runtime: CLIContainerRuntime) -> (kubelet: Kubelet, services: [any Service]) {
        let kubelet = Kubelet(configuration: kubeletConfiguration(), runtime: runtime, client: client, logger: makeLogger("kubelet"))
        registry.register(
            ClosureHealthCheck(name: "container-runtime", component: "kubelet", kinds: .readiness) {
                if let error = kubelet.currentHealth.runtimeError { return .failing(error) }
                return .healthy
            })
        registry.register(
            ClosureHealthCheck(name: "pod-sources", component: "kubelet", kinds: .readiness) {
                kubelet.currentHealth.sourcesReady ? .healthy : .failing("the pod sources have not been read yet")
            })
        registry.register(PodsSection(kubelet: kubelet))
        return (kubelet, [RuntimeMonitor(runtime: runtime)] + kubelet.services)
    }
}

/// The `pods` section of `/status`, also served alone at `/pods`.
struct PodsSection: StatusReporter {
    let kubelet: Kubelet
    var statusKey: String { "pods" }
    func statusSnapshot() async -> any Encodable & Sendable { kubelet.podsReport() }
}
