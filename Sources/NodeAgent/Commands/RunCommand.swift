import ArgumentParser
import Foundation
import KubeAPI
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `node-agent run`: the daemon.
///
/// Every flag is also a key of the `--config` file (the same name without dashes). Values are validated by
/// ``SettingKey``; a refused value exits with status 2 and a message naming the key and the allowed values.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the node agent (the default subcommand).",
        discussion: """
            Every flag below can also be set in the --config YAML file under the same name without dashes, \
            e.g. `proxy-mode: iptables`. Lists are comma-separated or YAML sequences. \
            Durations are written as kubelet writes them: 500ms, 30s, 1m30s.
            """
    )

    @Option(name: .customLong("config"), help: ArgumentHelp("YAML file with settings; flags given on the command line win.", valueName: "file"))
    var configFile: String?

    @Option(help: ArgumentHelp("Halves to run: kubelet, proxy, or both. (default: kubelet,proxy)", valueName: "list"))
    var components: String?

    @Option(help: ArgumentHelp("kubeconfig for the apiserver. Without one (and no KUBECONFIG or in-cluster config) the kubelet runs standalone on --pod-manifest-path.", valueName: "file"))
    var kubeconfig: String?

    @Option(name: .customLong("hostname-override"), help: ArgumentHelp("Node name to use instead of the hostname.", valueName: "name"))
    var hostnameOverride: String?

    @Option(name: .customLong("node-ip"), help: ArgumentHelp("The node's IP address(es), IPv4 and/or IPv6, comma-separated. (default: the default-route interface's)", valueName: "ip"))
    var nodeIP: String?

    @Option(name: .customLong("pod-manifest-path"), help: ArgumentHelp("Folder of static pod manifests (YAML or JSON).", valueName: "dir"))
    var podManifestPath: String?

    @Option(name: .customLong("root-dir"), help: ArgumentHelp("Folder for the agent's state. (default: /var/lib/node-agent)", valueName: "dir"))
    var rootDir: String?

    @Option(name: .customLong("node-labels"), help: ArgumentHelp("Labels to register the node with, e.g. pool=blue,zone=a.", valueName: "list"))
    var nodeLabels: String?

    @Option(name: .customLong("register-with-taints"), help: ArgumentHelp("Taints to register the node with, e.g. dedicated=infra:NoSchedule.", valueName: "list"))
    var registerWithTaints: String?

    @Option(name: .customLong("register-node"), help: ArgumentHelp("Register the node with the apiserver. (default: true)", valueName: "bool"))
    var registerNode: String?

    @Option(name: .customLong("max-pods"), help: ArgumentHelp("Pods this node can run. (default: 110)", valueName: "n"))
    var maxPods: String?

    @Option(name: .customLong("node-status-update-frequency"), help: ArgumentHelp("How often node status is computed; posted when changed or every 5m. (default: 10s)", valueName: "duration"))
    var nodeStatusUpdateFrequency: String?

    @Option(name: .customLong("node-lease-duration-seconds"), help: ArgumentHelp("leaseDurationSeconds of the node Lease, renewed every quarter of it. (default: 40)", valueName: "n"))
    var nodeLeaseDurationSeconds: String?

    @Option(name: .customLong("system-reserved"), help: ArgumentHelp("Resources reserved for the system, e.g. cpu=100m,memory=256Mi.", valueName: "list"))
    var systemReserved: String?

    @Option(name: .customLong("kube-reserved"), help: ArgumentHelp("Resources reserved for Kubernetes daemons, e.g. cpu=100m,memory=256Mi.", valueName: "list"))
    var kubeReserved: String?

    @Option(name: .customLong("eviction-hard"), help: ArgumentHelp("Hard eviction thresholds. (default: memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%)", valueName: "list"))
    var evictionHard: String?

    @Option(name: .customLong("proxy-mode"), help: ArgumentHelp("ipvs or iptables. ipvs falls back to iptables when the kernel has no ip_vs. (default: ipvs)", valueName: "mode"))
    var proxyMode: String?

    @Option(name: .customLong("ipvs-scheduler"), help: ArgumentHelp("IPVS scheduler: rr, lc, dh, sh, sed, nq, wrr, wlc, lblc, lblcr, mh. (default: rr)", valueName: "name"))
    var ipvsScheduler: String?

    @Option(name: .customLong("ipvs-sync-period"), help: ArgumentHelp("Full resync period of the IPVS rules. (default: 30s)", valueName: "duration"))
    var ipvsSyncPeriod: String?

    @Option(name: .customLong("ipvs-min-sync-period"), help: ArgumentHelp("Minimum time between IPVS syncs. (default: 0s)", valueName: "duration"))
    var ipvsMinSyncPeriod: String?

    @Option(name: .customLong("ipvs-tcp-timeout"), help: ArgumentHelp("IPVS idle timeout of established TCP connections; 0 leaves the kernel's (900s). (default: 0s)", valueName: "duration"))
    var ipvsTCPTimeout: String?

    @Option(name: .customLong("ipvs-tcpfin-timeout"), help: ArgumentHelp("IPVS timeout of TCP connections after a FIN; 0 leaves the kernel's (120s). (default: 0s)", valueName: "duration"))
    var ipvsTCPFinTimeout: String?

    @Option(name: .customLong("ipvs-udp-timeout"), help: ArgumentHelp("IPVS timeout of UDP flows; 0 leaves the kernel's (300s). (default: 0s)", valueName: "duration"))
    var ipvsUDPTimeout: String?

    @Option(name: .customLong("ipvs-strict-arp"), help: ArgumentHelp("Set arp_ignore=1 and arp_announce=2 so the node never answers ARP for kube-ipvs0's addresses. (default: false)", valueName: "bool"))
    var ipvsStrictARP: String?

    @Option(name: .customLong("ipvs-exclude-cidrs"), help: ArgumentHelp("CIDRs whose IPVS virtual servers the proxy never touches, comma-separated.", valueName: "list"))
    var ipvsExcludeCIDRs: String?

    @Option(name: .customLong("iptables-sync-period"), help: ArgumentHelp("Full resync period of the nf_tables rules. (default: 30s)", valueName: "duration"))
    var iptablesSyncPeriod: String?

    @Option(name: .customLong("iptables-min-sync-period"), help: ArgumentHelp("Minimum time between nf_tables syncs. (default: 1s)", valueName: "duration"))
    var iptablesMinSyncPeriod: String?

    @Option(name: .customLong("cluster-cidr"), help: ArgumentHelp("The pods' CIDR(s); traffic from outside it to a service is masqueraded.", valueName: "cidr"))
    var clusterCIDR: String?

    @Option(name: .customLong("nodeport-addresses"), help: ArgumentHelp("CIDRs whose local addresses accept NodePorts, or primary (the node's IPs). (default: primary)", valueName: "list"))
    var nodePortAddresses: String?

    @Option(name: .customLong("masquerade-all"), help: ArgumentHelp("SNAT all traffic to Service IPs, not only from outside --cluster-cidr. (default: false)", valueName: "bool"))
    var masqueradeAll: String?

    @Option(name: .customLong("proxy-healthz-bind-address"), help: ArgumentHelp("Where the proxy's own /healthz is served (kube-proxy's --healthz-bind-address); \"\" disables. (default: 0.0.0.0:10256)", valueName: "host:port"))
    var proxyHealthzBindAddress: String?

    @Option(name: .customLong("healthz-bind-address"), help: ArgumentHelp("Where /healthz, /livez, /readyz, /metrics and /status are served. (default: 127.0.0.1:10248)", valueName: "host:port"))
    var healthzBindAddress: String?

    @Option(name: .customLong("metrics-bind-address"), help: ArgumentHelp("Where kube-proxy's /metrics is served; \"\" disables. (default: 127.0.0.1:10249)", valueName: "host:port"))
    var metricsBindAddress: String?

    @Option(name: .customLong("container-runtime-endpoint"), help: ArgumentHelp("containerd's socket. (default: unix:///run/containerd/containerd.sock)", valueName: "endpoint"))
    var containerRuntimeEndpoint: String?

    @Option(name: .customLong("cni-conf-dir"), help: ArgumentHelp("CNI network configurations. (default: /etc/cni/net.d)", valueName: "dir"))
    var cniConfDir: String?

    @Option(name: .customLong("cni-bin-dir"), help: ArgumentHelp("CNI plugin binaries. (default: /opt/cni/bin)", valueName: "dir"))
    var cniBinDir: String?

    @Option(name: .customLong("runtime-cli"), help: ArgumentHelp("Client that drives containerd: ctr or nerdctl. (default: ctr, nerdctl when only it is installed)", valueName: "name"))
    var runtimeCLI: String?

    @Option(name: .customLong("runtime-request-timeout"), help: ArgumentHelp("Limit on every container runtime and CNI call. (default: 2m)", valueName: "duration"))
    var runtimeRequestTimeout: String?

    @Option(name: .customLong("cluster-dns"), help: ArgumentHelp("DNS server IP(s) for pods with dnsPolicy ClusterFirst, comma-separated. (default: none: the node's resolv.conf)", valueName: "ips"))
    var clusterDNS: String?

    @Option(name: .customLong("cluster-domain"), help: ArgumentHelp("The cluster's DNS domain, searched by pods. (default: cluster.local)", valueName: "domain"))
    var clusterDomain: String?

    @Option(name: .customLong("serialize-image-pulls"), help: ArgumentHelp("Pull one image at a time. (default: true)", valueName: "bool"))
    var serializeImagePulls: String?

    @Option(name: .customLong("max-parallel-image-pulls"), help: ArgumentHelp("Concurrent pulls when --serialize-image-pulls=false. (default: 5)", valueName: "count"))
    var maxParallelImagePulls: String?

    @Option(name: .customLong("container-log-max-size"), help: ArgumentHelp("Size at which a container log file is rotated. (default: 10Mi)", valueName: "size"))
    var containerLogMaxSize: String?

    @Option(name: .customLong("container-log-max-files"), help: ArgumentHelp("Log files kept per container, the live one included. (default: 5)", valueName: "count"))
    var containerLogMaxFiles: String?

    @Option(name: .customLong("cni-plugin-netns"), help: ArgumentHelp("Testing only: run CNI plugins, probes and hooks inside this network namespace.", valueName: "name", visibility: .hidden))
    var cniPluginNetns: String?

    @Option(name: .customLong("runtime-id-prefix"), help: ArgumentHelp("Testing only: prefix of sandbox and container IDs. (default: na-)", valueName: "prefix", visibility: .hidden))
    var runtimeIDPrefix: String?

    @Option(name: .customLong("pod-logs-dir"), help: ArgumentHelp("Testing only: folder for container logs. (default: /var/log/pods)", valueName: "dir", visibility: .hidden))
    var podLogsDir: String?

    @Option(name: .customLong("v"), help: ArgumentHelp("Log verbosity as klog counts it: 0-3 info, 4-5 debug, 6+ trace. (default: 0)", valueName: "level"))
    var verbosity: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical. Overrides --v.", valueName: "level"))
    var logLevel: String?

    /// The flags given, as `(key, value)` pairs in the order of ``SettingKey/all``.
    var flagValues: [(key: String, value: String)] {
        allFlags.compactMap { key, value in value.map { (key: key, value: $0) } }
    }

    /// The setting key of every flag, whether given or not.
    static var flagKeys: [String] { (try? RunCommand.parse([]))?.allFlags.map(\.0) ?? [] }

    private var allFlags: [(String, String?)] {
        [
            ("components", components), ("kubeconfig", kubeconfig), ("hostname-override", hostnameOverride),
            ("node-ip", nodeIP), ("pod-manifest-path", podManifestPath), ("root-dir", rootDir),
            ("node-labels", nodeLabels), ("register-with-taints", registerWithTaints), ("register-node", registerNode),
            ("max-pods", maxPods), ("node-status-update-frequency", nodeStatusUpdateFrequency),
            ("node-lease-duration-seconds", nodeLeaseDurationSeconds), ("system-reserved", systemReserved),
            ("kube-reserved", kubeReserved), ("eviction-hard", evictionHard),
            ("proxy-mode", proxyMode), ("ipvs-scheduler", ipvsScheduler), ("ipvs-sync-period", ipvsSyncPeriod),
            ("ipvs-min-sync-period", ipvsMinSyncPeriod), ("ipvs-tcp-timeout", ipvsTCPTimeout),
            ("ipvs-tcpfin-timeout", ipvsTCPFinTimeout), ("ipvs-udp-timeout", ipvsUDPTimeout), ("ipvs-strict-arp", ipvsStrictARP),
            ("ipvs-exclude-cidrs", ipvsExcludeCIDRs), ("iptables-sync-period", iptablesSyncPeriod),
            ("iptables-min-sync-period", iptablesMinSyncPeriod), ("cluster-cidr", clusterCIDR),
            ("nodeport-addresses", nodePortAddresses), ("masquerade-all", masqueradeAll),
            ("proxy-healthz-bind-address", proxyHealthzBindAddress),
            ("healthz-bind-address", healthzBindAddress), ("metrics-bind-address", metricsBindAddress),
            ("container-runtime-endpoint", containerRuntimeEndpoint), ("cni-conf-dir", cniConfDir),
            ("cni-bin-dir", cniBinDir), ("runtime-cli", runtimeCLI), ("runtime-request-timeout", runtimeRequestTimeout),
            ("cluster-dns", clusterDNS), ("cluster-domain", clusterDomain), ("serialize-image-pulls", serializeImagePulls),
            ("max-parallel-image-pulls", maxParallelImagePulls), ("container-log-max-size", containerLogMaxSize),
            ("container-log-max-files", containerLogMaxFiles), ("cni-plugin-netns", cniPluginNetns), ("runtime-id-prefix", runtimeIDPrefix),
            ("pod-logs-dir", podLogsDir), ("v", verbosity), ("log-level", logLevel),
        ]
    }

    /// Defaults, then the config file, then flags.
    /// - Throws: `ValidationError` naming the file, line or flag and the allowed values.
    func resolveSettings() throws -> AgentSettings {
        do {
            let file = try configFile.map { path throws(ConfigFileError) in try ConfigFile(contentsOf: path) }
            return try AgentSettings.resolve(file: file, flags: flagValues)
        } catch let error as ConfigFileError {
            throw ValidationError(error.description)
        } catch let error as SettingError {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        let settings = try resolveSettings()
        let level = settings.effectiveLogLevel
        LoggingSystem.bootstrap { label in StructuredLogHandler(label: label, level: level) }
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))

        let makeLogger: @Sendable (String) -> Logger = { label in
            var logger = Logger(label: label)
            logger.logLevel = level
            return logger
        }
        let logger = makeLogger("agent")
        var agent = Agent(settings: settings, makeLogger: makeLogger, metrics: metrics, notifier: SystemdNotifier())
        agent.ipvsProxierFactory = .daemon(settings)
        agent.hardExitDeadline = .seconds(8)
        agent.memoryTrimInterval = .seconds(10)
        do {
            agent.kubeClient = try KubeClientFactory.make(settings: settings, logger: makeLogger("kubeapi"))
        } catch {
            throw ValidationError("\(error)")
        }
        if agent.kubeClient == nil {
            logger.info("no kubeconfig found: the kubelet runs standalone on --pod-manifest-path, without node registration or heartbeats")
        }
        logger.info(
            "starting node-agent",
            metadata: [
                "version": "\(AgentVersion.version)", "node": "\(agent.nodeName)",
                "components": "\(settings.components.sorted().map(\.rawValue).joined(separator: ","))",
            ]
        )
        do {
            try await agent.makeServiceGroup().run()
        } catch {
            try? await agent.kubeClient?.shutdown()
            throw error
        }
        try? await agent.kubeClient?.shutdown()
        logger.info("node-agent stopped")
    }
}
