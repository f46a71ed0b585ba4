public import IPVS

/// Graceful termination of real servers, as kube-proxy's `GracefulTerminationManager`, as a pure value over an
/// abstract time (a monotonic offset; the proxier passes its clock's, tests pass whatever they like).
///
/// A TCP real server that is no longer wanted is set to weight 0 (no new connections) and kept while its
/// connections live: it is deleted once the kernel counts no active or inactive connection on it, or once
/// ``timeout`` has passed since the drain began, whichever comes first. UDP and SCTP real servers have no
/// connection end to wait for: they are deleted at once (and their conntrack entries flushed by the caller).
/// A draining real server that is wanted again simply leaves the machine (the caller restores its weight).
public struct GracefulTerminationStateMachine: Sendable {
    /// One draining real server of one virtual server.
    public struct Item: Hashable, Sendable, CustomStringConvertible {
        public var service: ServiceKey
        public var server: RealServerKey
        public init(service: ServiceKey, server: RealServerKey) {
            self.service = service
            self.server = server
        }
        public var description: String {
            let address = server.address.family == .inet ? "\(server.address):\(server.port)" : "[\(server.address)]:\(server.port)"
            return "\(service) -> \(address)"
        }
    }

    /// When a drain began and when it ends at the latest.
    public struct Entry: Hashable, Sendable {
        public var since: Duration
        public var deadline: Duration
    }

    /// What to do with a real server that is no longer wanted.
    public enum StartAction: Equatable, Sendable {
        /// Weight 0 is (or already was) set; wait for its connections to end.
        case drain
        /// It was already draining; nothing changes (its deadline stays).
        case alreadyDraining
        /// UDP or SCTP: delete it now.
        case deleteNow
    }

    /// Why a draining real server is deleted.
    public enum DeletionReason: String, Sendable, Hashable {
        /// No active or inactive connection is left.
        case drained
        /// The bound passed with connections still open.
        case timedOut
    }

    /// What to do with a draining real server after reading its counters.
    public enum CheckAction: Equatable, Sendable {
        /// Connections remain and the bound has not passed.
        case keep
        /// Delete it now; confirm with ``deleted(_:)``.
        case delete(DeletionReason)
        /// It is not in the kernel any more (deleted by someone, or its service went away): forgotten.
        case forget
    }

    public let timeout: Duration
    public private(set) var entries: [Item: Entry] = [:]
    private var byService: [ServiceKey: Set<RealServerKey>] = [:]

    public init(timeout: Duration) {
        self.timeout = timeout
    }

    /// Number of draining real servers.
    public var count: Int { entries.count }

    /// Begins removing `server` of `service` at `now`.
    public mutating func start(_ server: RealServerKey, of service: ServiceKey, now: Duration) -> StartAction {
        guard service.transport == .tcp else { return .deleteNow }
        let item = Item(service: service, server: server)
        guard entries[item] == nil else { return .alreadyDraining }
        entries[item] = Entry(since: now, deadline: now + timeout)
        byService[service, default: []].insert(server)
        return .drain
    }

    /// `server` is wanted again: stop draining it. Returns whether it was draining.
    @discardableResult
    public mutating func cancel(_ server: RealServerKey, of service: ServiceKey) -> Bool {
        remove(Item(service: service, server: server))
    }

    /// `service` was deleted with all its real servers: forget its drains.
    public mutating func serviceRemoved(_ service: ServiceKey) {
        for server in byService.removeValue(forKey: service) ?? [] {
            entries[Item(service: service, server: server)] = nil
        }
    }

    /// Whether `service` has draining real servers.
    public func isDraining(_ service: ServiceKey) -> Bool { byService[service] != nil }

    /// The virtual servers with draining real servers (whose counters should be read), in a stable order.
    public var servicesToCheck: [ServiceKey] { byService.keys.sorted(by: ServiceKey.ordered) }

    /// The draining real servers of `service`.
    public func servers(of service: ServiceKey) -> [RealServerKey] { (byService[service] ?? []).sorted(by: RealServerKey.ordered) }

    /// Decides about `server` of `service` from the kernel's counters at `now`: `connections` is active plus
    /// inactive connections, nil when the kernel no longer lists the real server.
    public mutating func observe(_ server: RealServerKey, of service: ServiceKey, connections: UInt32?, now: Duration) -> CheckAction {
        let item = Item(service: service, server: server)
        guard let entry = entries[item] else { return .forget }
        guard let connections else {
            remove(item)
            return .forget
        }
        if connections == 0 { return .delete(.drained) }
        if now >= entry.deadline { return .delete(.timedOut) }
        return .keep
    }

    /// The kernel deleted `server` of `service`.
    public mutating func deleted(_ server: RealServerKey, of service: ServiceKey) {
        remove(Item(service: service, server: server))
    }

    @discardableResult
    private mutating func remove(_ item: Item) -> Bool {
        guard entries.removeValue(forKey: item) != nil else { return false }
        byService[item.service]?.remove(item.server)
        if byService[item.service]?.isEmpty == true { byService[item.service] = nil }
        return true
    }
}
