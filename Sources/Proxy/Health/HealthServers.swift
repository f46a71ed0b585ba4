public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Serves the proxy's `/healthz` (and `/livez`) on `--healthz-bind-address`, as a `Service`.
///
/// 200 with `{"currentTime":…,"healthy":true,"lastUpdated":…,"nodeEligible":true}` while the proxy keeps up,
/// 503 with the same JSON when a queued change waited longer than 2 × the sync period.
public struct ProxyHealthServer: Service {
    public var host: String
    public var port: Int
    public var health: ProxyHealth
    public var logger: Logger
    /// Called with the bound port once listening (port 0 picks one).
    public var onBound: @Sendable (Int) -> Void

    public init(host: String = "0.0.0.0", port: Int = 10256, health: ProxyHealth, logger: Logger, onBound: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.host = host
        self.port = port
        self.health = health
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        let health = self.health
        let listener = try await HTTPListener(host: host, port: port) { path in
            switch path {
            case "/healthz", "/livez": return health.healthzResponse()
            default: return (404, "404 page not found\n")
            }
        }
        logger.info("proxy health server listening", metadata: ["address": "\(host):\(listener.port)"])
        onBound(listener.port)
        try? await gracefulShutdown()
        await listener.close()
    }
}

/// The per-Service health-check node ports of `externalTrafficPolicy: Local` Services: each answers 200 with
/// the number of local endpoints while this node has one, else 503, so external load balancers only send
/// traffic to nodes that can serve it locally (kube-proxy's `ServiceHealthServer`).
public final class ServiceHealthServer: Sendable {
    /// One Service's health-check port and what it reports.
    public struct Entry: Sendable, Hashable {
        public var service: NamespacedName
        public var localEndpoints: Int
    }

    private struct Listening: Sendable {
        var listener: HTTPListener
        var entry: SharedEntry
    }

    private let host: String
    private let health: ProxyHealth
    private let logger: Logger
    private let listeners = Mutex<[Int: Listening]>([:])

    public init(host: String = "0.0.0.0", health: ProxyHealth, logger: Logger) {
        self.host = host
        self.health = health
        self.logger = logger
    }

    /// The ports currently served.
    public var ports: [Int] { listeners.withLock { Array($0.keys).sorted() } }

    /// Opens, updates and closes listeners so that exactly `entries` (by port) are served.
    public func sync(_ entries: [Int: Entry]) async {
        let (stale, missing) = listeners.withLock { listeners -> ([Listening], [Int]) in
            var stale: [Listening] = []
            for (port, listening) in listeners where entries[port] == nil {
                stale.append(listening)
                listeners.removeValue(forKey: port)
            }
            for (port, entry) in entries {
                listeners[port]?.entry.set(entry)
            }
            return (stale, entries.keys.filter { listeners[$0] == nil }.sorted())
        }
        for listening in stale { await listening.listener.close() }
        for port in missing {
            let shared = SharedEntry(entries[port]!)
            let health = self.health
            do {
                let listener = try await HTTPListener(host: host, port: port) { _ in
                    let entry = shared.get()
                    let healthy = health.report().healthy
                    let body = """
                        {"localEndpoints":\(entry.localEndpoints),"service":{"name":"\(entry.service.name)","namespace":"\(entry.service.namespace)"},"serviceProxyHealthy":\(healthy)}
                        """
                    return (entry.localEndpoints > 0 && healthy ? 200 : 503, body)
                }
                listeners.withLock { $0[port] = Listening(listener: listener, entry: shared) }
            } catch {
                logger.error(
                    "cannot open health check node port",
                    metadata: ["port": "\(port)", "service": "\(entries[port]!.service)", "error": "\(error)"]
                )
            }
        }
    }

    /// Closes every listener.
    public func closeAll() async {
        await sync([:])
    }
}

/// Lets a listener's closure read the entry its port serves now.
final class SharedEntry: Sendable {
    private let box: Mutex<ServiceHealthServer.Entry>
    init(_ entry: ServiceHealthServer.Entry) { box = Mutex(entry) }
    func get() -> ServiceHealthServer.Entry { box.withLock { $0 } }
    func set(_ entry: ServiceHealthServer.Entry) { box.withLock { $0 = entry } }
}
