import IPVS

/// The union of every Service port's ``IPVSFragment``, maintained incrementally: replacing one port's fragment
/// costs the size of that fragment, not the number of Services.
///
/// Objects two Service ports both ask for are counted: a shared virtual IP or set element stays while any port
/// wants it. A virtual server key claimed by two ports (two Services with the same external IP and port) goes to
/// the port that sorts first; the other is reported as a conflict and gets nothing for that key.
struct IPVSDesiredTable: Sendable {
    /// What a replacement touched: the keys whose desired state may differ from before.
    struct Touched: Sendable {
        var serviceKeys: Set<ServiceKey> = []
        var addresses: Set<IPVS.IPAddress> = []
        var elements: [String: Set<String>] = [:]

        var isEmpty: Bool { serviceKeys.isEmpty && addresses.isEmpty && elements.isEmpty }
    }

    private(set) var fragments: [ServicePortName: IPVSFragment] = [:]
    /// The ports that want each virtual server, sorted; the first one's definition is used.
    private var claims: [ServiceKey: [ServicePortName]] = [:]
    private var addressUses: [IPVS.IPAddress: Int] = [:]
    private var elementUses: [String: [String: Int]] = [:]

    /// The virtual server wanted under `key`, nil when none.
    func virtualServer(_ key: ServiceKey) -> DesiredVirtualServer? {
        guard let owner = claims[key]?.first else { return nil }
        return fragments[owner]?.virtualServers[key]
    }

    /// The Service port whose definition `key` follows.
    func owner(of key: ServiceKey) -> ServicePortName? { claims[key]?.first }

    /// Keys claimed by more than one Service port, with the claimants (the first wins).
    var conflicts: [ServiceKey: [ServicePortName]] { claims.filter { $0.value.count > 1 } }

    var serviceKeys: Dictionary<ServiceKey, [ServicePortName]>.Keys { claims.keys }
    var virtualServerCount: Int { claims.count }
    var addresses: Set<IPVS.IPAddress> { Set(addressUses.keys) }
    func wantsAddress(_ address: IPVS.IPAddress) -> Bool { addressUses[address] != nil }
    func wantsElement(_ key: String, in set: String) -> Bool { elementUses[set]?[key] != nil }
    /// Every wanted element, by set.
    var elements: [String: Set<String>] { elementUses.mapValues { Set($0.keys) } }

    /// Makes `name` contribute `fragment` (nil: nothing) instead of what it contributed before, and records in
    /// `touched` what may have changed.
    mutating func replace(_ name: ServicePortName, with fragment: IPVSFragment?, touched: inout Touched) {
        let old = fragments[name]
        guard old != fragment else { return }
        if let old {
            for key in old.virtualServers.keys {
                claims[key]?.removeAll { $0 == name }
                if claims[key]?.isEmpty == true { claims[key] = nil }
                touched.serviceKeys.insert(key)
            }
            for address in old.addresses {
                addressUses[address, default: 0] -= 1
                if addressUses[address] == 0 { addressUses[address] = nil }
                touched.addresses.insert(address)
            }
            for (set, keys) in old.elements {
                for key in keys {
                    elementUses[set, default: [:]][key, default: 0] -= 1
                    if elementUses[set]?[key] == 0 { elementUses[set]?[key] = nil }
                }
                touched.elements[set, default: []].formUnion(keys)
            }
        }
        fragments[name] = fragment
        guard let fragment else { return }
        for key in fragment.virtualServers.keys {
            var list = claims[key] ?? []
            let index = list.firstIndex { name < $0 } ?? list.endIndex
            list.insert(name, at: index)
            claims[key] = list
            touched.serviceKeys.insert(key)
        }
        for address in fragment.addresses {
            addressUses[address, default: 0] += 1
            touched.addresses.insert(address)
        }
        for (set, keys) in fragment.elements {
            for key in keys { elementUses[set, default: [:]][key, default: 0] += 1 }
            touched.elements[set, default: []].formUnion(keys)
        }
    }
}

/// A virtual server as the proxier believes the kernel holds it: configuration and real servers, draining ones
/// (weight 0) included.
struct ProgrammedVirtualServer: Sendable, Hashable {
    var service: VirtualService
    var realServers: [RealServerKey: RealServer]
}

extension RealServerKey {
    /// A stable order: address, then port.
    static func ordered(_ lhs: RealServerKey, _ rhs: RealServerKey) -> Bool {
        lhs.address != rhs.address ? lhs.address < rhs.address : lhs.port < rhs.port
    }
}

extension ServiceKey {
    /// A stable order for operations and logs: address, port, protocol (firewall marks last). Cheaper than
    /// comparing descriptions, which matters when a full sync sorts ten thousand keys.
    static func ordered(_ lhs: ServiceKey, _ rhs: ServiceKey) -> Bool {
        switch (lhs, rhs) {
        case (.address(let p1, let a1, let port1), .address(let p2, let a2, let port2)):
            if a1 != a2 { return a1 < a2 }
            if port1 != port2 { return port1 < port2 }
            return p1.rawValue < p2.rawValue
        case (.address, .firewallMark): return true
        case (.firewallMark, .address): return false
        case (.firewallMark(let m1, let f1), .firewallMark(let m2, let f2)):
            return m1 != m2 ? m1 < m2 : f1.rawValue < f2.rawValue
        }
    }

    /// The transport protocol of an address-keyed service (nil for firewall marks).
    var transport: IPProtocol? {
        if case .address(let proto, _, _) = self { return proto }
        return nil
    }

    var address: IPVS.IPAddress? {
        if case .address(_, let address, _) = self { return address }
        return nil
    }

    var portNumber: Int? {
        if case .address(_, _, let port) = self { return Int(port) }
        return nil
    }
}

/// The changes that take one virtual server from what the kernel holds to what is wanted.
enum VirtualServerDiff {
    struct Result: Sendable, Equatable {
        var operations: [IPVSOperation] = []
        /// What the kernel holds once the operations succeed.
        var programmed: ProgrammedVirtualServer?
        /// TCP real servers no longer wanted, now (or already) at weight 0: graceful termination starts or goes on.
        var draining: [RealServerKey] = []
        /// Wanted real servers that were draining and take traffic again.
        var restored: [RealServerKey] = []
        /// UDP and SCTP real servers deleted at once (their conntrack entries are flushed after the sync).
        var deletedAtOnce: [RealServerKey] = []
        /// The whole virtual server was deleted.
        var serviceDeleted = false
    }

    /// Computes the operations for `key`: add, update or delete the service, add or update wanted real servers,
    /// and for unwanted ones weight 0 (TCP, graceful termination) or deletion (UDP, SCTP).
    static func diff(_ key: ServiceKey, desired: DesiredVirtualServer?, programmed: ProgrammedVirtualServer?) -> Result {
        var result = Result()
        guard let desired else {
            if programmed != nil {
                result.operations.append(.deleteService(key))
                result.serviceDeleted = true
            }
            return result
        }
        guard var current = programmed else {
            result.operations.append(.addService(desired.service))
            for server in desired.realServers.values.sorted(by: { RealServerKey.ordered($0.key, $1.key) }) {
                result.operations.append(.addRealServer(server, service: key))
            }
            result.programmed = ProgrammedVirtualServer(service: desired.service, realServers: desired.realServers)
            return result
        }
        if current.service != desired.service {
            result.operations.append(.updateService(desired.service))
            current.service = desired.service
        }
        for server in desired.realServers.values.sorted(by: { RealServerKey.ordered($0.key, $1.key) }) {
            if let existing = current.realServers[server.key] {
                guard existing != server else { continue }
                result.operations.append(.updateRealServer(server, service: key))
                if existing.weight == 0 { result.restored.append(server.key) }
            } else {
                result.operations.append(.addRealServer(server, service: key))
            }
            current.realServers[server.key] = server
        }
        let graceful = key.transport == .tcp
        for serverKey in current.realServers.keys.sorted(by: RealServerKey.ordered) where desired.realServers[serverKey] == nil {
            if graceful {
                var server = current.realServers[serverKey]!
                if server.weight != 0 {
                    server.weight = 0
                    result.operations.append(.updateRealServer(server, service: key))
                    current.realServers[serverKey] = server
                }
                result.draining.append(serverKey)
            } else {
                result.operations.append(.deleteRealServer(serverKey, service: key))
                current.realServers[serverKey] = nil
                result.deletedAtOnce.append(serverKey)
            }
        }
        result.programmed = current
        return result
    }
}
