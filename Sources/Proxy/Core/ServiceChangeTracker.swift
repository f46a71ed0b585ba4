/// The Service ports of one IP family the proxier currently serves, by port name.
public typealias ServicePortMap = [ServicePortName: ServicePort]

/// Accumulates Service changes between syncs, as kube-proxy's `ServiceChangeTracker`: for each Service the
/// ports before the first unsynced change and after the latest one; a Service whose changes cancel out is dropped.
///
/// A pure value: feeding and checking out changes does no I/O.
public struct ServiceChangeTracker: Sendable {
    /// One Service's pending change.
    public struct Change: Sendable, Hashable {
        public var previous: ServicePortMap
        public var current: ServicePortMap
    }

    public let family: IPFamily
    private(set) var items: [NamespacedName: Change] = [:]
    /// The ports last accepted per Service (applied or pending): an invalid update leaves them in place.
    private var accepted: [NamespacedName: ServicePortMap] = [:]

    public init(family: IPFamily) {
        self.family = family
    }

    /// Number of Services with unsynced changes.
    public var pendingCount: Int { items.count }

    /// Records that `previous` became `current` (nil for an add's previous or a delete's current).
    /// - Returns: whether a change is now pending, and the error when `current` cannot be served. An invalid
    ///   Service is skipped: what was served for it before stays served, everything else is unaffected.
    @discardableResult
    public mutating func update(previous: ServiceObject?, current: ServiceObject?) -> (pending: Bool, error: ProxyInputError?) {
        guard let name = (current ?? previous)?.namespacedName else { return (false, nil) }
        var currentPorts: ServicePortMap = [:]
        if let current {
            switch ServiceConversion.servicePorts(of: current, family: family) {
            case .success(let ports): currentPorts = ports
            case .failure(let failure): return (items[name] != nil, failure)
            }
        }
        var change = items[name] ?? Change(previous: accepted[name] ?? [:], current: [:])
        accepted[name] = currentPorts.isEmpty ? nil : currentPorts
        change.current = currentPorts
        if change.previous == change.current {
            items.removeValue(forKey: name)
        } else {
            items[name] = change
        }
        return (items[name] != nil, nil)
    }

    /// Hands out the pending changes and forgets them.
    public mutating func checkout() -> [NamespacedName: Change] {
        defer { items.removeAll() }
        return items
    }

}

/// What applying Service changes means for conntrack and health checks.
public struct ServiceMapUpdate: Sendable, Hashable {
    /// UDP cluster IPs (and external IPs) that no longer serve some port: their conntrack entries are stale.
    public var deletedUDPClusterIPs: Set<IPAddress> = []
    /// Services whose last port went away.
    public var deletedServices: Set<NamespacedName> = []
}

extension Dictionary where Key == ServicePortName, Value == ServicePort {
    /// Applies `changes` (from ``ServiceChangeTracker/checkout()``) and reports what went away.
    public mutating func apply(_ changes: [NamespacedName: ServiceChangeTracker.Change]) -> ServiceMapUpdate {
        var update = ServiceMapUpdate()
        for (name, change) in changes {
            for (portName, port) in change.previous where change.current[portName] == nil || change.current[portName]?.clusterIP != port.clusterIP {
                removeValue(forKey: portName)
                if port.protocol == .udp {
                    update.deletedUDPClusterIPs.insert(port.clusterIP)
                    update.deletedUDPClusterIPs.formUnion(port.externalIPs)
                    update.deletedUDPClusterIPs.formUnion(port.loadBalancerVIPs)
                }
            }
            for (portName, port) in change.current { self[portName] = port }
            if change.current.isEmpty { update.deletedServices.insert(name) }
        }
        return update
    }
}
