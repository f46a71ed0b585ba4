import CoreMetrics
import Foundation
import IPVS
import Iptables
import KubeAPI
import Kubelet
import Logging
import Metrics
import Proxy
import ServiceLifecycle
import Synchronization

/// kube-proxy's job wired for the daemon: mode selection, the proxier and its sync loop, its input (informers on
/// the API server, or the manifest folder in standalone mode), Events for bad objects, the proxy's own
/// `/healthz` on `--proxy-healthz-bind-address` (10256), the `proxy` section of `/status`, the `proxy-sync` and
/// `proxy-informers-synced` checks, and the `node_agent_proxy_mode` metric.
///
/// The mode is decided when the component is built (``ProxyModeSelection``): `--proxy-mode=ipvs` runs the IPVS
/// proxier when the kernel has IPVS and this build has an IPVS proxier (``Agent/ipvsProxierFactory``), otherwise
/// the nftables proxier with one warning naming the reason. The proxier itself starts in ``ProxyRunner``, once
/// the node's IPs are known (they decide where NodePorts are accepted).
struct ProxyComponent: Sendable {
    let state: ProxyComponentState
    let health: ProxyHealth
    let services: [any Service]

    /// - Parameters:
    ///   - client: the API client; nil in standalone mode (Services from `--pod-manifest-path`).
    ///   - ipvsAvailability: asked only for `--proxy-mode=ipvs`.
    ///   - ipvsFactory: the IPVS proxier, when this build has one.
    ///   - localPods: this node's pods, for the endpoints of standalone Services (the kubelet's).
    ///   - nftables, conntrack, sysctl: the kernel seams (tests pass in-memory fakes).
    init(
        settings: AgentSettings,
        nodeName: String,
        client: (any KubeClientProtocol)?,
        ipvsAvailability: @escaping @Sendable (Scheduler) -> IPVSAvailability = { IPVSKernel.isAvailable(schedulers: [$0.rawValue]) },
        ipvsFactory: IPVSProxierFactory? = nil,
        localPods: (any LocalPodSource)? = nil,
        nftables: @escaping @Sendable () throws -> any Nftables = { try LibNftables() },
        conntrack: (any ConntrackCleaner)? = nil,
        sysctl: any SysctlWriter = ProcSysctl(),
        metricsFactory: (any MetricsFactory)? = nil,
        nodeIPAttempts: Int = 6,
        makeLogger: @Sendable (String) -> Logger
    ) {
        let logger = makeLogger("proxy")
        let decision = ProxyModeSelection.select(
            requested: settings.proxyMode, ipvs: { ipvsAvailability(settings.ipvsScheduler) }, ipvsProxierAvailable: ipvsFactory != nil)
        let syncPeriod = decision.chosen == .ipvs ? settings.ipvsSyncPeriod : settings.iptablesSyncPeriod
        health = ProxyHealth(timeout: syncPeriod * 2)
        let sourceStatus = ProxySourceStatus(source: client == nil ? "manifests" : "apiserver")
        state = ProxyComponentState(decision: decision, source: sourceStatus, healthzAddress: settings.proxyHealthzBindAddress)
        let metrics = metricsFactory ?? MetricsSystem.factory
        state.recordModeMetric(factory: metrics)

        var services: [any Service] = []
        let recorder = client.map { KubeEventRecorder(client: $0, host: nodeName, logger: logger) }
        state.setEvents(recorder)
        if let recorder { services.append(recorder) }
        services.append(
            ProxyRunner(
                settings: settings, nodeName: nodeName, client: client, ipvsFactory: ipvsFactory, localPods: localPods,
                nftables: nftables, conntrack: conntrack ?? ConntrackTool(logger: logger), sysctl: sysctl, events: recorder, health: health,
                metricsFactory: metrics, state: state, nodeIPAttempts: nodeIPAttempts, logger: logger))
        if let address = settings.proxyHealthzBindAddress {
            services.append(RetryingProxyHealthServer(address: address, health: health, state: state, logger: logger))
        }
        self.services = services
    }

    /// Registers the `proxy` section of `/status` and the proxy's checks.
    func register(in registry: HealthRegistry) {
        let state = self.state
        let health = self.health
        registry.register(ProxyReporter(state: state, health: health))
        registry.register(
            ClosureHealthCheck(name: "proxy-sync", component: "proxy", kinds: .all) {
                if let failure = state.failure { return .failing(failure) }
                let report = health.report()
                if report.healthy { return .healthy }
                return .failing("a Service or EndpointSlice change has waited over \(health.timeout) (2 × the sync period) without being applied")
            }
        )
        registry.register(
            ClosureHealthCheck(name: "proxy-informers-synced", component: "proxy", kinds: .readiness) {
                if state.source.synced { return .healthy }
                let snapshot = state.source.snapshot
                return .failing(snapshot.source == "apiserver"
                    ? "waiting for the initial Service and EndpointSlice lists from the apiserver"
                    : "waiting for the first read of the manifest folder")
            }
        )
    }
}

/// What the proxy component reports, shared by its services, its checks and `/status`.
final class ProxyComponentState: Sendable {
    private struct Mutable {
        var decision: ProxyModeSelection.Decision
        var nodePortAddresses: [String]?
        var families: [String] = []
        var failure: String?
    }

    let source: ProxySourceStatus
    let healthzAddress: BindAddress?
    private let mutable: Mutex<Mutable>
    private let eventsBox = Mutex<KubeEventRecorder?>(nil)
    private let healthzProblem = Mutex<String?>(nil)
    private let modeGauges = Mutex<[Gauge]>([])

    init(decision: ProxyModeSelection.Decision, source: ProxySourceStatus, healthzAddress: BindAddress?) {
        mutable = Mutex(Mutable(decision: decision))
        self.source = source
        self.healthzAddress = healthzAddress
    }

    var decision: ProxyModeSelection.Decision { mutable.withLock { $0.decision } }
    /// Why the proxy cannot run at all (nil while it can).
    var failure: String? { mutable.withLock { $0.failure } }

    func setEvents(_ recorder: KubeEventRecorder?) { eventsBox.withLock { $0 = recorder } }
    func setFailure(_ failure: String?) { mutable.withLock { $0.failure = failure } }
    func setHealthzProblem(_ problem: String?) { healthzProblem.withLock { $0 = problem } }

    func started(nodePortAddresses: [Proxy.IPAddress], families: [IPFamily]) {
        mutable.withLock {
            $0.nodePortAddresses = nodePortAddresses.map(\.text)
            $0.families = families.map(\.rawValue)
        }
    }

    /// The IPVS proxier could not start: the nftables proxier runs instead.
    func fellBack(reason: String, factory: any MetricsFactory) {
        mutable.withLock { $0.decision = .init(requested: $0.decision.requested, chosen: .iptables, fallbackReason: reason) }
        recordModeMetric(factory: factory)
    }

    /// `node_agent_proxy_mode{mode, requested}`: 1 for the mode running, 0 for the other.
    func recordModeMetric(factory: any MetricsFactory) {
        let decision = self.decision
        let gauges = ProxyMode.allCases.map { mode in
            let gauge = Gauge(label: "node_agent_proxy_mode", dimensions: [("mode", mode.rawValue), ("requested", decision.requested.rawValue)], factory: factory)
            gauge.record(mode == decision.chosen ? 1 : 0)
            return gauge
        }
        modeGauges.withLock { $0 = gauges }
    }

    /// The `proxy` section of `/status`.
    struct Snapshot: Encodable, Sendable {
        var requestedMode: String
        var proxyMode: String
        var fallbackReason: String?
        var source: String
        var families: [String]
        var nodePortAddresses: [String]?
        var healthzAddress: String?
        var healthzProblem: String?
        var healthy: Bool
        var lastSync: Date?
        var servicesSynced: Bool
        var endpointSlicesSynced: Bool
        var services: Int
        var endpointSlices: Int
        var nodeIPs: [String]?
        var eventsWritten: Int?
        var eventsNotWritten: Int?
        var failure: String?
    }

    func snapshot(health: ProxyHealth) -> Snapshot {
        let mutable = self.mutable.withLock { $0 }
        let source = self.source.snapshot
        let report = health.report()
        let events = eventsBox.withLock { $0 }?.counts
        return Snapshot(
            requestedMode: mutable.decision.requested.rawValue,
            proxyMode: mutable.decision.chosen.rawValue,
            fallbackReason: mutable.decision.fallbackReason,
            source: source.source,
            families: mutable.families,
            nodePortAddresses: mutable.nodePortAddresses,
            healthzAddress: healthzAddress?.description,
            healthzProblem: healthzProblem.withLock { $0 },
            healthy: report.healthy && mutable.failure == nil,
            lastSync: report.lastUpdated,
            servicesSynced: source.servicesSynced,
            endpointSlicesSynced: source.endpointSlicesSynced,
            services: source.services,
            endpointSlices: source.endpointSlices,
            nodeIPs: source.nodeIPs,
            eventsWritten: events?.written,
            eventsNotWritten: events?.dropped,
            failure: mutable.failure
        )
    }
}

/// The `proxy` section of `/status`.
struct ProxyReporter: StatusReporter {
    let state: ProxyComponentState
    let health: ProxyHealth
    var statusKey: String { "proxy" }
    func statusSnapshot() async -> any Encodable & Sendable { state.snapshot(health: health) }
}

/// Starts the proxier once the node's IPs are known, and runs it with its input until graceful shutdown.
///
/// 1. NodePort addresses: the local addresses inside `--nodeport-addresses` CIDRs; else the node's primary IPs:
///    `--node-ip`, else the Node object's (retried as kube-proxy does while the kubelet registers it), else the
///    default-route interface's, else loopback (with a warning, as kube-proxy).
/// 2. The other mode's leftovers are removed (the nftables tables when IPVS runs; the IPVS factory's cleanup when
///    the nftables proxier runs).
/// 3. The proxier (one per IP family), the source (``ProxyAPISource`` or ``StandaloneServiceSource``) run together.
struct ProxyRunner: Service {
    let settings: AgentSettings
    let nodeName: String
    let client: (any KubeClientProtocol)?
    let ipvsFactory: IPVSProxierFactory?
    let localPods: (any LocalPodSource)?
    let nftables: @Sendable () throws -> any Nftables
    let conntrack: any ConntrackCleaner
    let sysctl: any SysctlWriter
    let events: KubeEventRecorder?
    let health: ProxyHealth
    let metricsFactory: any MetricsFactory
    let state: ProxyComponentState
    let nodeIPAttempts: Int
    let logger: Logger

    /// How often standalone mode rescans the manifest folder (the kubelet's `--file-check-frequency` default).
    static let manifestRescanInterval: Duration = .seconds(20)

    func run() async throws {
        let decision = state.decision
        if let reason = decision.fallbackReason {
            logger.warning(
                "proxy mode \(decision.requested.rawValue) is not usable here; running the iptables (nf_tables) mode instead",
                metadata: ["reason": "\(reason)"])
        }
        let nodeIPs = await primaryNodeIPs()
        let cidrs = settings.nodePortAddresses.compactMap(IPPrefix.init)
        let nodePortAddresses = NodePortAddresses.select(cidrs: cidrs, primary: nodeIPs, local: cidrs.isEmpty ? [] : NodePortAddresses.localAddresses())
        if nodePortAddresses.isEmpty {
            logger.warning("no local address matches --nodeport-addresses; NodePorts are not served", metadata: ["cidrs": "\(settings.nodePortAddresses)"])
        }
        let families = ProxierSettings.families(nodeIPs: nodeIPs)
        let serviceHealth = ServiceHealthServer(health: health, logger: logger)
        var proxierSettings = ProxierSettings(
            nodeName: nodeName,
            families: families,
            nodePortAddresses: nodePortAddresses,
            clusterCIDRs: settings.clusterCIDRs.compactMap(IPPrefix.init),
            masqueradeAll: settings.masqueradeAll,
            syncPeriod: settings.iptablesSyncPeriod,
            minSyncPeriod: settings.iptablesMinSyncPeriod,
            ipvsScheduler: settings.ipvsScheduler.rawValue,
            health: health,
            serviceHealth: serviceHealth,
            events: events,
            metricsFactory: metricsFactory,
            logger: logger
        )
        let proxier: any Proxier
        do {
            proxier = try makeProxier(&proxierSettings, decision: decision)
        } catch {
            let message = "the proxy cannot start: \(error)"
            logger.error("\(message)")
            state.setFailure(message)
            try? await gracefulShutdown()
            return
        }
        state.started(nodePortAddresses: nodePortAddresses, families: families)
        logger.info(
            "proxy starting",
            metadata: [
                "mode": "\(state.decision.chosen.rawValue)", "nodePortAddresses": "\(nodePortAddresses.map(\.text).joined(separator: ","))",
                "families": "\(families.map(\.rawValue).joined(separator: ","))", "source": "\(state.source.snapshot.source)",
            ])

        let source: (any Service)?
        if let client {
            source = ProxyAPISource(client: client, nodeName: nodeName, proxier: proxier, status: state.source, logger: logger)
        } else if let path = settings.podManifestPath {
            source = StandaloneServiceSource(
                folder: ServiceManifestFolder(path: path), pods: localPods, nodeName: nodeName, proxier: proxier,
                rescanInterval: Self.manifestRescanInterval, status: state.source, logger: logger)
        } else {
            logger.info("standalone without --pod-manifest-path: no Services to proxy")
            source = nil
        }
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await proxier.run() }
            if let source {
                group.addTask { try await source.run() }
            } else {
                proxier.servicesSynced()
                proxier.endpointSlicesSynced()
                state.source.update {
                    $0.servicesSynced = true
                    $0.endpointSlicesSynced = true
                }
            }
            do {
                try await group.waitForAll()
            } catch {
                logger.error("the proxy stopped", metadata: ["error": "\(error)"])
                state.setFailure("the proxy stopped: \(error)")
            }
        }
        await serviceHealth.closeAll()
    }

    /// The proxier of the chosen mode, after removing the other mode's leftovers.
    private func makeProxier(_ proxierSettings: inout ProxierSettings, decision: ProxyModeSelection.Decision) throws -> any Proxier {
        let nft = try nftables()
        if decision.chosen == .ipvs, let ipvsFactory {
            proxierSettings.syncPeriod = settings.ipvsSyncPeriod
            proxierSettings.minSyncPeriod = settings.ipvsMinSyncPeriod
            do {
                try NftablesCleanup.removeTables(nft, logger: logger)
            } catch {
                logger.warning("cannot remove the nftables proxier's tables", metadata: ["error": "\(error)"])
            }
            do {
                return try ipvsFactory.make(proxierSettings)
            } catch {
                let reason = "the IPVS proxier could not start: \(error)"
                logger.warning("running the iptables (nf_tables) mode instead", metadata: ["reason": "\(reason)"])
                state.fellBack(reason: reason, factory: metricsFactory)
                proxierSettings.syncPeriod = settings.iptablesSyncPeriod
                proxierSettings.minSyncPeriod = settings.iptablesMinSyncPeriod
            }
        }
        // Leftovers of an earlier run in IPVS mode (virtual servers, kube-ipvs0 addresses) are the IPVS side's to remove.
        ipvsFactory?.cleanUp(logger)
        let proxiers = proxierSettings.families.map { family in
            NftablesProxier(
                configuration: proxierSettings.nftablesConfiguration(family: family),
                nftables: nft,
                conntrack: conntrack,
                sysctl: sysctl,
                health: health,
                serviceHealth: proxierSettings.serviceHealth,
                events: events,
                metricsFactory: metricsFactory,
                logger: logger
            ) as any Proxier
        }
        return proxiers.count == 1 ? proxiers[0] : MetaProxier(proxiers)
    }

    private func primaryNodeIPs() async -> [Proxy.IPAddress] {
        let given = settings.nodeIPs.compactMap(Proxy.IPAddress.init)
        if !given.isEmpty { return given }
        if let client {
            let fromNode = await NodePortAddresses.fromNode(client: client, nodeName: nodeName, attempts: nodeIPAttempts, logger: logger)
            if !fromNode.isEmpty {
                state.source.nodePortAddressesChosen(fromNode: fromNode)
                return fromNode
            }
        }
        if let detected = NodeAddresses.defaultRouteAddress().flatMap(Proxy.IPAddress.init) {
            if client != nil {
                logger.warning("cannot find this node's IPs on its Node object; using the default-route interface's", metadata: ["ip": "\(detected)"])
            }
            return [detected]
        }
        logger.warning("cannot determine this node's IP; assuming loopback (set --node-ip or --nodeport-addresses if this is wrong)")
        return [Proxy.IPAddress("127.0.0.1")!]
    }
}

/// Serves the proxy's `/healthz` on `--proxy-healthz-bind-address`; when the address cannot be bound (in use), says
/// so in `/status` and retries every 5 s, as kube-proxy does, instead of stopping the whole agent.
struct RetryingProxyHealthServer: Service {
    let address: BindAddress
    let health: ProxyHealth
    let state: ProxyComponentState
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await ProxyHealthServer(host: address.host, port: address.port, health: health, logger: logger) { _ in
                    state.setHealthzProblem(nil)
                }.run()
                return
            } catch {
                state.setHealthzProblem("cannot listen on \(address): \(error)")
                logger.error("cannot serve the proxy's /healthz; retrying in 5s", metadata: ["address": "\(address)", "error": "\(error)"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
            }
        }
    }
}
