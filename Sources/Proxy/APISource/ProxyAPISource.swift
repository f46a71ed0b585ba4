public import KubeAPI
public import Logging
public import ServiceLifecycle
import Synchronization

/// Feeds a proxier from the API server, as kube-proxy's `ServiceConfig`, `EndpointSliceConfig` and `NodeConfig`:
/// list+watch informers on Services and EndpointSlices in every namespace and on this node's own Node, their
/// objects turned into the proxy's input model (``ServiceObject`` and friends) and handed to the proxier's
/// callbacks. `servicesSynced` / `endpointSlicesSynced` are called once the first LIST of each has been delivered
/// in full, so the proxier never programs a half-listed state.
///
/// Delivery is level-based: an informer event only says which object changed; the feeder reads that object's
/// current state from the informer's cache and hands the proxier the difference from what it last delivered
/// (nothing when the proxy's view of it did not change, e.g. a status-only update). Reordering or duplicates in
/// the event stream therefore cannot leave the proxier on a stale version.
public final class ProxyAPISource: Service, Sendable {
    public let services: Informer<KubeService>
    public let endpointSlices: Informer<KubeAPI.EndpointSlice>
    public let node: Informer<KubeAPI.Node>
    public let status: ProxySourceStatus
    private let proxier: any Proxier
    private let nodeName: String
    private let logger: Logger

    /// - Parameters:
    ///   - nodeName: this node (its Node object gives topology labels; a change of its IPs away from the NodePort
    ///     addresses chosen at start, see ``ProxySourceStatus/nodePortAddressesChosen(fromNode:)``, is logged).
    ///   - status: where counts and sync state are kept for `/status`.
    public init(
        client: any KubeClientProtocol,
        nodeName: String,
        proxier: any Proxier,
        status: ProxySourceStatus = ProxySourceStatus(source: "apiserver"),
        informerConfiguration: InformerConfiguration = InformerConfiguration(),
        logger: Logger
    ) {
        self.proxier = proxier
        self.nodeName = nodeName
        self.status = status
        self.logger = logger
        services = Informer(KubeService.self, client: client, configuration: informerConfiguration, logger: logger)
        endpointSlices = Informer(KubeAPI.EndpointSlice.self, client: client, configuration: informerConfiguration, logger: logger)
        var nodeConfiguration = informerConfiguration
        nodeConfiguration.namespace = nil
        nodeConfiguration.fieldSelector = "metadata.name=\(nodeName)"
        node = Informer(KubeAPI.Node.self, client: client, configuration: nodeConfiguration, logger: logger)
    }

    /// Runs the three informers and their feeders until graceful shutdown.
    public func run() async throws {
        let proxier = self.proxier
        let status = self.status
        let logger = self.logger
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.services.run() }
            group.addTask { try await self.endpointSlices.run() }
            group.addTask { try await self.node.run() }
            group.addTask {
                await Self.feed(
                    self.services, convert: ServiceObject.init,
                    deliver: { proxier.serviceChanged(previous: $0, current: $1) },
                    synced: {
                        proxier.servicesSynced()
                        status.update { $0.servicesSynced = true }
                        logger.info("Services listed", metadata: ["count": "\(status.snapshot.services)"])
                    },
                    count: { count in status.update { $0.services = count } }
                )
            }
            group.addTask {
                await Self.feed(
                    self.endpointSlices, convert: EndpointSliceObject.init,
                    deliver: { proxier.endpointSliceChanged(previous: $0, current: $1) },
                    synced: {
                        proxier.endpointSlicesSynced()
                        status.update { $0.endpointSlicesSynced = true }
                        logger.info("EndpointSlices listed", metadata: ["count": "\(status.snapshot.endpointSlices)"])
                    },
                    count: { count in status.update { $0.endpointSlices = count } }
                )
            }
            group.addTask {
                await Self.feed(
                    self.node, convert: NodeObject.init,
                    deliver: { _, current in
                        proxier.nodeChanged(current)
                        status.nodeObserved(current, logger: logger)
                    },
                    synced: {},
                    count: { _ in }
                )
            }
            try await group.waitForAll()
        }
    }

    /// Delivers `informer`'s objects, converted, to `deliver(previous, current)`: first the whole initial list
    /// (then `synced`), then every later change, each as the difference from what was last delivered.
    static func feed<Resource: KubeResource, Object: Hashable & Sendable>(
        _ informer: Informer<Resource>,
        convert: @escaping @Sendable (Resource) -> Object,
        deliver: @escaping @Sendable (Object?, Object?) -> Void,
        synced: @escaping @Sendable () -> Void,
        count: @escaping @Sendable (Int) -> Void
    ) async {
        try? await cancelWhenGracefulShutdown {
            await informer.waitForSync()
            if Task.isCancelled { return }
            // Subscribe before reading the cache: every change after this point is in the stream.
            let events = informer.events()
            var delivered: [ObjectKey: Object] = [:]
            func reconcile(_ key: ObjectKey) {
                let current = informer.get(namespace: key.namespace, name: key.name).map(convert)
                let previous = delivered[key]
                guard current != previous else { return }
                delivered[key] = current
                deliver(previous, current)
            }
            for object in informer.list() { reconcile(object.key) }
            count(delivered.count)
            synced()
            for await event in events {
                reconcile(event.object.key)
                count(delivered.count)
            }
        }
    }
}

/// What the proxy's input source has seen, for `/status` (counts, whether the initial lists arrived).
public final class ProxySourceStatus: Sendable {
    public struct Snapshot: Sendable, Hashable, Codable {
        /// `apiserver` or `manifests` (standalone).
        public var source: String
        public var services = 0
        public var endpointSlices = 0
        public var servicesSynced = false
        public var endpointSlicesSynced = false
        /// This node's IPs as its Node object lists them (nil until the Node is seen).
        public var nodeIPs: [String]?
    }

    private let state: Mutex<Snapshot>
    /// The NodePort addresses chosen at start, to warn when the Node's IPs move.
    private let startAddresses: Mutex<[IPAddress]?> = Mutex(nil)

    public init(source: String) {
        state = Mutex(Snapshot(source: source))
    }

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// True once both initial lists were delivered.
    public var synced: Bool { state.withLock { $0.servicesSynced && $0.endpointSlicesSynced } }

    public func update(_ body: (inout Snapshot) -> Void) {
        state.withLock { body(&$0) }
    }

    /// Remembers the addresses NodePorts were opened on (from the Node at start).
    public func nodePortAddressesChosen(fromNode addresses: [IPAddress]) {
        startAddresses.withLock { $0 = addresses }
    }

    func nodeObserved(_ node: NodeObject?, logger: Logger) {
        let ips = node?.hostIPs ?? []
        let before = state.withLock { state in
            defer { state.nodeIPs = node == nil ? nil : ips.map(\.text) }
            return state.nodeIPs
        }
        // Warn once per change, not on every update of the Node.
        guard let chosen = startAddresses.withLock({ $0 }), node != nil, !ips.isEmpty, before != ips.map(\.text), Set(ips) != Set(chosen)
        else { return }
        logger.warning(
            "the Node's IPs changed; NodePorts stay on the addresses chosen at start until node-agent restarts",
            metadata: ["nodeIPs": "\(ips.map(\.text).joined(separator: ","))", "nodePortAddresses": "\(chosen.map(\.text).joined(separator: ","))"]
        )
    }
}
