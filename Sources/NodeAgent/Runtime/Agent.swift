import Foundation
import CRI
import Hummingbird
import KubeAPI
import Kubelet
import Logging
import NIOCore
import Prometheus
import Proxy
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The running daemon: builds every service from the settings and runs them in one `ServiceGroup`.
///
/// SIGTERM and SIGINT start a graceful shutdown bounded by ``gracefulShutdownLimit``; services still running
/// after it are cancelled. The daemon (not tests) also sets ``hardExitDeadline``: if the process has not ended that
/// long after shutdown began, it logs what happened and exits with status 1 rather than hang.
struct Agent: Sendable {
    static let gracefulShutdownLimit: Duration = .seconds(3)

    var settings: AgentSettings
    /// Makes the logger of one component (`status`, `kubelet`, `proxy`, ...); the label is the component.
    var makeLogger: @Sendable (String) -> Logger
    var metrics: PrometheusCollectorRegistry
    var notifier: SystemdNotifier
    var registry = HealthRegistry()
    /// The apiserver client; nil when the node runs standalone (no kubeconfig).
    var kubeClient: KubeClient? = nil
    /// The IPVS proxier (`--proxy-mode=ipvs`, ``IPVSProxierFactory/daemon(_:)`` in `node-agent run`); nil (tests)
    /// makes ipvs mode fall back to iptables, saying so.
    var ipvsProxierFactory: IPVSProxierFactory? = nil
    /// This node's pods for standalone Services' endpoints; nil takes the kubelet's when it runs, else only
    /// hand-written EndpointSlices count.
    var localPodSource: (any LocalPodSource)? = nil
    var startTime = Date()

    /// How long after shutdown begins the process exits regardless; nil (tests) never exits the process.
    var hardExitDeadline: Duration? = nil

    /// How often the daemon gives free malloc memory back (``MemoryTrimmer``); nil (tests) never trims.
    var memoryTrimInterval: Duration? = nil

    /// Called with the status server's bound address once it listens (tests learn port 0's pick from it).
    var onStatusServerBound: @Sendable (BindAddress) -> Void = { _ in }

    var nodeName: String { NodeName.resolve(override: settings.hostnameOverride) }

    /// Builds the services in start order. The status server announces readiness to systemd once bound.
    func makeServices() -> [any Service] {
        let server = StatusServer(
            identity: .init(nodeName: nodeName, components: settings.components.sorted(), startTime: startTime),
            registry: registry,
            metrics: metrics
        )
        var services: [any Service] = []
        let statusLogger = makeLogger("status")
        let bound = settings.healthzBindAddress
        let notifier = self.notifier
        let onBound = onStatusServerBound
        services.append(
            Application(
                router: server.makeRouter(),
                configuration: .init(address: .hostname(bound.host, port: bound.port), serverName: nil),
                onServerRunning: { channel in
                    let actual = BindAddress(host: bound.host, port: channel.localAddress?.port ?? bound.port)
                    statusLogger.info("status server listening", metadata: ["address": "\(actual)"])
                    onBound(actual)
                    do {
                        try notifier.ready(status: "serving status on \(actual)")
                    } catch {
                        statusLogger.warning("cannot notify systemd", metadata: ["error": "\(error)"])
                    }
                },
                logger: statusLogger
            )
        )
        if let metricsAddress = settings.metricsBindAddress, metricsAddress.port == 0 || metricsAddress != settings.healthzBindAddress {
            let metricsLogger = makeLogger("metrics")
            services.append(
                Application(
                    router: server.makeMetricsRouter(),
                    configuration: .init(address: .hostname(metricsAddress.host, port: metricsAddress.port), serverName: nil),
                    onServerRunning: { channel in
                        metricsLogger.info(
                            "metrics server listening",
                            metadata: ["address": "\(BindAddress(host: metricsAddress.host, port: channel.localAddress?.port ?? 0))"]
                        )
                    },
                    logger: metricsLogger
                )
            )
        }
        var localPods = localPodSource
        if settings.components.contains(.kubelet) {
            // One runtime for the node's Ready condition and the pods.
            let runtime = makeRuntime()
            if let kubeClient {
                let heartbeat = HeartbeatComponent(
                    settings: settings, nodeName: nodeName, client: kubeClient, runtime: runtime, makeLogger: makeLogger)
                heartbeat.register(in: registry)
                services += heartbeat.services
            }
            let kubelet = KubeletComponent(settings: settings, nodeName: nodeName, makeLogger: makeLogger, registry: registry, client: kubeClient)
                .make(runtime: runtime)
            services += kubelet.services
            if localPods == nil { localPods = KubeletLocalPods(statusManager: kubelet.kubelet.statusManager) }
        }
        if settings.components.contains(.proxy) {
            // Standalone Services with a selector take their endpoints from this node's pods (the kubelet's).
            let proxy = ProxyComponent(
                settings: settings, nodeName: nodeName, client: kubeClient, ipvsFactory: ipvsProxierFactory, localPods: localPods,
                makeLogger: makeLogger)
            proxy.register(in: registry)
            services += proxy.services
        }
        if let memoryTrimInterval { services.append(MemoryTrimmer(interval: memoryTrimInterval, logger: makeLogger("agent"))) }
        services.append(SystemdLifecycleService(notifier: notifier, registry: registry, hardExitDeadline: hardExitDeadline, logger: makeLogger("systemd")))
        return services
    }

    /// The container runtime over containerd's CLI, as the settings configure it (``KubeletComponent/runtimeConfiguration(settings:)``).
    func makeRuntime() -> CLIContainerRuntime {
        CLIContainerRuntime(configuration: KubeletComponent.runtimeConfiguration(settings: settings), logger: makeLogger("cri"))
    }

    /// The group that runs every service until one of `signals` (SIGTERM and SIGINT for the daemon) or until
    /// the caller triggers a graceful shutdown.
    func makeServiceGroup(signals: [UnixSignal] = [.sigterm, .sigint]) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: makeServices().map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            gracefulShutdownSignals: signals,
            logger: makeLogger("agent")
        )
        configuration.maximumGracefulShutdownDuration = Self.gracefulShutdownLimit
        return ServiceGroup(configuration: configuration)
    }
}

/// Sends systemd `WATCHDOG=1` at half of `WATCHDOG_USEC` while the liveness checks pass, and `STOPPING=1`
/// when graceful shutdown begins. A wedged daemon thus stops pinging and systemd restarts it.
struct SystemdLifecycleService: Service {
    var notifier: SystemdNotifier
    var registry: HealthRegistry
    var hardExitDeadline: Duration?
    var logger: Logger

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            if let interval = notifier.watchdogInterval {
                group.addTask {
                    while !Task.isCancelled {
                        let failing = await registry.evaluate(.liveness).filter { !$0.healthy }
                        if failing.isEmpty {
                            try? notifier.watchdog()
                        } else {
                            logger.warning(
                                "liveness failing, withholding the systemd watchdog ping",
                                metadata: ["checks": "\(failing.map(\.name).joined(separator: ","))"]
                            )
                        }
                        try? await Task.sleep(for: interval)
                    }
                }
            }
            group.addTask {
                try? await gracefulShutdown()
                logger.info("graceful shutdown started")
                if let deadline = hardExitDeadline { Self.exitAfter(deadline, logger: logger) }
                do {
                    try notifier.stopping(status: "shutting down")
                } catch {
                    logger.warning("cannot notify systemd", metadata: ["error": "\(error)"])
                }
            }
            // The shutdown watcher ends first (the watchdog loop never ends on its own); then stop the loop.
            _ = await group.next()
            group.cancelAll()
        }
    }

    /// Exits the process with status 1 after `deadline`, on a thread of its own so a starved or wedged task pool
    /// cannot hold it up.
    static func exitAfter(_ deadline: Duration, logger: Logger) {
        let (seconds, attoseconds) = deadline.components
        let interval = Double(seconds) + Double(attoseconds) / 1e18
        let thread = Thread {
            Thread.sleep(forTimeInterval: interval)
            logger.error("shutdown did not finish in time; exiting", metadata: ["deadline": "\(deadline)"])
            exit(1)
        }
        thread.start()
    }
}
