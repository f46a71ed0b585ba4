import CRI
import Foundation
import KubeAPI
import Kubelet
import Logging
import ServiceLifecycle

/// The kubelet's node duties wired for the daemon: registration, the Lease heartbeat and node status, plus the
/// `heartbeat` section of `/status` and the `lease-renewal` check behind `/healthz` and `/readyz`.
struct HeartbeatComponent: Sendable {
    let registration: NodeRegistration
    let state: HeartbeatState
    let services: [any Service]

    /// Builds the heartbeat services for `client`; the node's Ready condition follows `runtime`'s status.
    init(settings: AgentSettings, nodeName: String, client: any KubeClientProtocol, runtime: any ContainerRuntime, makeLogger: @Sendable (String) -> Logger) {
        var configuration = NodeConfiguration(nodeName: nodeName, kubeletVersion: AgentVersion.kubeletVersion)
        configuration.labels = settings.nodeLabels
        configuration.taints = settings.registerWithTaints
        configuration.registerNode = settings.registerNode
        configuration.maxPods = settings.maxPods
        configuration.nodeIPs = settings.nodeIPs
        configuration.reserved = settings.systemReserved.merging(settings.kubeReserved, uniquingKeysWith: +)
        configuration.evictionThresholds = settings.evictionHard
        configuration.stateDirectory = settings.rootDirectory
        configuration.leaseDuration = .seconds(settings.nodeLeaseDurationSeconds)
        configuration.statusUpdateFrequency = settings.nodeStatusUpdateFrequency

        let logger = makeLogger("kubelet")
        let stateDirectory = settings.rootDirectory
        let machine = MachineInfo.read(stateDirectory: stateDirectory)
        let labels = NodeStatusBuilder(configuration: configuration, machine: machine, addresses: []).labels
        let nodeIPs = settings.nodeIPs
        state = HeartbeatState(nodeName: nodeName, leaseDuration: configuration.leaseDuration, renewInterval: configuration.leaseRenewInterval)
        registration = NodeRegistration(client: client, configuration: configuration, labels: labels, logger: logger)
        let sources = NodeStatusController<ContinuousClock>.Sources(
            machine: { MachineInfo.read(stateDirectory: stateDirectory) },
            readings: { ResourceReadings.read(stateDirectory: stateDirectory) },
            readiness: {
                let status = await runtime.runtimeStatus()
                return RuntimeReadiness(runtimeVersion: status.version, runtimeProblem: status.runtimeProblem, networkProblem: status.networkProblem)
            },
            addresses: { NodeAddresses.resolve(nodeIPs: nodeIPs, hostname: nodeName) }
        )
        services = [
            NodeLeaseController(
                client: client, registration: registration, configuration: configuration, state: state, clock: ContinuousClock(),
                now: { Date() }, logger: logger),
            NodeStatusController(
                client: client, registration: registration, configuration: configuration, sources: sources, state: state,
                clock: ContinuousClock(), now: { Date() }, logger: logger),
        ]
    }

    /// Registers the `heartbeat` status section and the `lease-renewal` check.
    func register(in registry: HealthRegistry) {
        let state = self.state
        registry.register(HeartbeatReporter(state: state))
        registry.register(
            ClosureHealthCheck(name: "lease-renewal", component: "kubelet", kinds: .readiness) {
                if state.isFresh { return .healthy }
                guard let age = state.renewAge else { return .failing("the node lease \(state.lease) has not been renewed yet") }
                return .failing("the node lease \(state.lease) was last renewed \(Int(age))s ago, over its \(state.leaseDuration) duration")
            }
        )
    }
}

/// The `heartbeat` section of `/status`.
struct HeartbeatReporter: StatusReporter {
    let state: HeartbeatState
    var statusKey: String { "heartbeat" }
    func statusSnapshot() async -> any Encodable & Sendable { state.snapshot }
}

/// Where the daemon's apiserver client comes from.
enum KubeClientFactory {
    /// The client for `--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`, else in-cluster; nil when none of
    /// them exists (the kubelet then runs standalone on its manifest folder).
    /// - Throws: `KubeAPIError` naming the file, entry and field when a kubeconfig exists but is broken.
    static func make(settings: AgentSettings, environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger) throws -> KubeClient? {
        let candidates = KubeconfigLocator.candidates(explicit: settings.kubeconfig, environment: environment)
        let anyFile = candidates.contains { FileManager.default.fileExists(atPath: $0) }
        let inCluster = environment["KUBERNETES_SERVICE_HOST"] != nil && environment["KUBERNETES_SERVICE_PORT"] != nil
        guard settings.kubeconfig != nil || anyFile || inCluster else { return nil }
        let configuration = try Kubeconfig.load(explicitPath: settings.kubeconfig, environment: environment)
        logger.info("API server", metadata: ["server": "\(configuration.server)", "source": "\(configuration.source)"])
        return try KubeClient(configuration: configuration, logger: logger)
    }
}
