public import Foundation

/// The endpoints of every Service port of one IP family, sorted by address.
public typealias EndpointsMap = [ServicePortName: [Endpoint]]

/// Accumulates EndpointSlice changes between syncs, as kube-proxy's `EndpointsChangeTracker` over its
/// `EndpointSliceCache`: slices are kept per Service; a checkout merges each changed Service's slices into
/// endpoints per port and reports the previous and current lists (dropped when equal).
///
/// A pure value apart from the clock reading handed in with each update.
public struct EndpointsChangeTracker: Sendable {
    /// One Service's endpoints before and after its pending slice changes.
    public struct Change: Sendable, Hashable {
        public var previous: EndpointsMap
        public var current: EndpointsMap
    }

    public let family: IPFamily
    public let nodeName: String
    /// Slices already checked out, per Service, by slice name.
    private var applied: [NamespacedName: [String: EndpointSliceObject]] = [:]
    /// Slices changed since the last checkout (nil: deleted).
    private var pending: [NamespacedName: [String: EndpointSliceObject?]] = [:]
    /// Per Service, the trigger times of the pending changes (for network programming latency).
    private var triggerTimes: [NamespacedName: [Date]] = [:]

    public init(family: IPFamily, nodeName: String) {
        self.family = family
        self.nodeName = nodeName
    }

    /// Number of Services with unsynced slice changes.
    public var pendingCount: Int { pending.count }

    /// Records a slice added or updated (`removed` false) or deleted.
    /// - Returns: whether the slice matters to this tracker (right address family, names a Service), and an
    ///   error when the slice cannot be read (it is then ignored; the Service's other slices still count).
    @discardableResult
    public mutating func update(_ slice: EndpointSliceObject, removed: Bool, now: Date = Date()) -> (pending: Bool, error: ProxyInputError?) {
        let namespace = slice.metadata.namespace ?? "default"
        let sliceName = NamespacedName(namespace, slice.metadata.name)
        guard let serviceName = slice.metadata.labels?[EndpointSliceObject.serviceNameLabel], !serviceName.isEmpty else {
            return (false, .missing("EndpointSlice", sliceName, field: "metadata.labels[\"\(EndpointSliceObject.serviceNameLabel)\"]", reason: "a slice must name its Service"))
        }
        switch slice.addressType {
        case "IPv4" where family == .ipv4, "IPv6" where family == .ipv6: break
        case "IPv4", "IPv6", "FQDN": return (false, nil)
        default:
            return (false, .invalid("EndpointSlice", sliceName, field: "addressType", value: slice.addressType, reason: "must be IPv4, IPv6 or FQDN"))
        }
        let service = NamespacedName(namespace, serviceName)
        pending[service, default: [:]][slice.metadata.name] = removed ? .some(nil) : .some(slice)
        let trigger = slice.metadata.annotations?[EndpointSliceObject.lastChangeTriggerTimeAnnotation].flatMap(Self.parseTime) ?? now
        triggerTimes[service, default: []].append(trigger)
        return (true, Self.validate(slice, name: sliceName))
    }

    /// Hands out the changed Services' endpoints before and after, and the trigger times of the changes.
    public mutating func checkout() -> (changes: [NamespacedName: Change], triggerTimes: [NamespacedName: [Date]]) {
        var changes: [NamespacedName: Change] = [:]
        for (service, slices) in pending {
            let previous = Self.endpoints(service: service, slices: applied[service] ?? [:], nodeName: nodeName, family: family)
            var merged = applied[service] ?? [:]
            for (sliceName, slice) in slices {
                if let slice { merged[sliceName] = slice } else { merged.removeValue(forKey: sliceName) }
            }
            applied[service] = merged.isEmpty ? nil : merged
            let current = Self.endpoints(service: service, slices: merged, nodeName: nodeName, family: family)
            if previous != current { changes[service] = Change(previous: previous, current: current) }
        }
        let times = triggerTimes.filter { changes[$0.key] != nil }
        pending.removeAll()
        triggerTimes.removeAll()
        return (changes, times)
    }

    /// The endpoints per port of one Service from all its slices; an endpoint listed by several slices counts once.
    static func endpoints(service: NamespacedName, slices: [String: EndpointSliceObject], nodeName: String, family: IPFamily) -> EndpointsMap {
        var result: [ServicePortName: Set<Endpoint>] = [:]
        for sliceName in slices.keys.sorted() {
            let slice = slices[sliceName]!
            for port in slice.ports ?? [] {
                guard let number = port.port, (1...65535).contains(number), let proto = TransportProtocol(api: port.protocol) else { continue }
                let portName = ServicePortName(service, port: port.name ?? "", protocol: proto)
                for endpoint in slice.endpoints ?? [] {
                    // kube-proxy uses the first address only: the API requires them all to be one pod's.
                    guard let text = endpoint.addresses.first, let ip = IPAddress(text), ip.family == family else { continue }
                    let ready = endpoint.conditions?.ready ?? true
                    let serving = endpoint.conditions?.serving ?? ready
                    let terminating = endpoint.conditions?.terminating ?? false
                    let zones = endpoint.hints?.forZones.map { Set($0.map(\.name)) }
                    let value = Endpoint(
                        ip: ip,
                        port: number,
                        ready: ready,
                        serving: serving,
                        terminating: terminating,
                        isLocal: endpoint.nodeName == nodeName && !nodeName.isEmpty,
                        zoneHints: zones
                    )
                    // The same address from two slices (during a slice migration): keep the more usable one.
                    if let existing = result[portName]?.first(where: { $0.ip == ip && $0.port == number }) {
                        if existing.ready || (!value.ready && existing.serving) { continue }
                        result[portName]?.remove(existing)
                    }
                    result[portName, default: []].insert(value)
                }
            }
        }
        return result.mapValues { $0.sorted() }
    }

    /// The first unreadable field of `slice`, reported (the rest of the slice is still used).
    static func validate(_ slice: EndpointSliceObject, name: NamespacedName) -> ProxyInputError? {
        for (index, port) in (slice.ports ?? []).enumerated() {
            if let number = port.port, !(1...65535).contains(number) {
                return .invalid("EndpointSlice", name, field: "ports[\(index)].port", value: "\(number)", reason: "must be between 1 and 65535")
            }
            if TransportProtocol(api: port.protocol) == nil {
                return .invalid("EndpointSlice", name, field: "ports[\(index)].protocol", value: port.protocol ?? "", reason: "must be TCP, UDP or SCTP")
            }
        }
        for (index, endpoint) in (slice.endpoints ?? []).enumerated() {
            guard let text = endpoint.addresses.first else {
                return .missing("EndpointSlice", name, field: "endpoints[\(index)].addresses", reason: "an endpoint needs an address")
            }
            if IPAddress(text) == nil {
                return .invalid("EndpointSlice", name, field: "endpoints[\(index)].addresses[0]", value: text, reason: "not an IP address; the endpoint is skipped")
            }
        }
        return nil
    }

    static func parseTime(_ text: String) -> Date? {
        try? Date(text, strategy: .iso8601)
    }
}

/// What applying endpoint changes means for conntrack.
public struct EndpointsMapUpdate: Sendable, Hashable {
    /// UDP endpoints that were in use and are gone: conntrack entries to them must be flushed.
    public var deletedUDPEndpoints: [ServiceEndpoint] = []
    /// UDP Service ports that had no usable endpoint and now have one: entries created meanwhile are stale.
    public var newlyActiveUDPServices: Set<ServicePortName> = []
}

/// An endpoint of a particular Service port.
public struct ServiceEndpoint: Sendable, Hashable, Comparable {
    public var servicePortName: ServicePortName
    public var endpoint: Endpoint

    public static func < (lhs: ServiceEndpoint, rhs: ServiceEndpoint) -> Bool {
        (lhs.servicePortName, lhs.endpoint) < (rhs.servicePortName, rhs.endpoint)
    }
}

extension Dictionary where Key == ServicePortName, Value == [Endpoint] {
    /// Applies `changes` (from ``EndpointsChangeTracker/checkout()``) and reports stale UDP flows.
    public mutating func apply(_ changes: [NamespacedName: EndpointsChangeTracker.Change]) -> EndpointsMapUpdate {
        var update = EndpointsMapUpdate()
        for (_, change) in changes {
            for (portName, endpoints) in change.previous where portName.protocol == .udp {
                let current = Set((change.current[portName] ?? []).map { "\($0)" })
                for endpoint in endpoints where endpoint.serving && !current.contains("\(endpoint)") {
                    update.deletedUDPEndpoints.append(ServiceEndpoint(servicePortName: portName, endpoint: endpoint))
                }
            }
            for (portName, endpoints) in change.current where portName.protocol == .udp {
                let hadUsable = (change.previous[portName] ?? []).contains { $0.serving }
                if !hadUsable && endpoints.contains(where: { $0.serving }) { update.newlyActiveUDPServices.insert(portName) }
            }
            for portName in change.previous.keys where change.current[portName] == nil { removeValue(forKey: portName) }
            for (portName, endpoints) in change.current { self[portName] = endpoints }
        }
        update.deletedUDPEndpoints.sort()
        return update
    }
}
