public import IPVS
import Synchronization

/// An in-memory IPVS table that answers like the kernel: EEXIST on duplicates, ESRCH / ENOENT on missing objects,
/// ENOENT for an unknown scheduler, EINVAL for values the kernel refuses.
///
/// For unit tests of the proxier. Tests read ``operations`` to see what was asked and set live counters with
/// ``setConnections(active:inactive:of:in:)`` to drive graceful termination.
public final class FakeIPVS: IPVSInterface, Sendable {
    private struct Entry {
        var status: ServiceStatus
    }

    private struct State {
        var order: [ServiceKey] = []
        var entries: [ServiceKey: Entry] = [:]
        var timeouts = IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300)
        var operations: [IPVSOperation] = []
    }

    private let state = Mutex(State())
    /// Scheduler names this fake kernel knows (the kernel's with all modules loaded).
    public let knownSchedulers: Set<String>

    public init(knownSchedulers: Set<String> = Set(Scheduler.allCases.map(\.rawValue))) {
        self.knownSchedulers = knownSchedulers
    }

    /// Every change applied so far (single calls and batches), oldest first.
    public var operations: [IPVSOperation] { state.withLock { $0.operations } }

    /// Forgets the recorded operations.
    public func clearOperations() { state.withLock { $0.operations.removeAll() } }

    /// Sets the live connection counters of a real server, as traffic would.
    public func setConnections(active: UInt32, inactive: UInt32, of server: RealServerKey, in service: ServiceKey) {
        state.withLock { state in
            guard var entry = state.entries[service],
                let index = entry.status.realServers.firstIndex(where: { $0.server.key == server })
            else { return }
            entry.status.realServers[index].activeConnections = active
            entry.status.realServers[index].inactiveConnections = inactive
            state.entries[service] = entry
        }
    }

    private static func error(_ kind: IPVSError.Kind, _ operation: IPVSOperation, errno: Int32) -> IPVSError {
        IPVSError(kind: kind, operation: operation.verb, object: operation.object, errno: errno)
    }

    private func validate(_ service: VirtualService, _ operation: IPVSOperation) throws(IPVSError) {
        guard knownSchedulers.contains(service.schedulerName) else { throw Self.error(.schedulerNotFound, operation, errno: 2) }
        if service.key.family == .inet6 && !(1...128).contains(service.netmaskPrefixLength) {
            throw Self.error(.invalidArgument, operation, errno: 22)
        }
        if service.key.family == .inet && service.netmaskPrefixLength > 32 { throw Self.error(.invalidArgument, operation, errno: 22) }
    }

    private func perform(_ operation: IPVSOperation, on state: inout State) throws(IPVSError) {
        state.operations.append(operation)
        switch operation {
        case .addService(let service):
            try validate(service, operation)
            guard state.entries[service.key] == nil else { throw Self.error(.alreadyExists, operation, errno: 17) }
            state.entries[service.key] = Entry(status: ServiceStatus(service: service))
            state.order.append(service.key)
        case .updateService(let service):
            guard var entry = state.entries[service.key] else { throw Self.error(.notFound, operation, errno: 3) }
            try validate(service, operation)
            entry.status.service = service
            state.entries[service.key] = entry
        case .deleteService(let key):
            guard state.entries.removeValue(forKey: key) != nil else { throw Self.error(.notFound, operation, errno: 3) }
            state.order.removeAll { $0 == key }
        case .addRealServer(let server, let key):
            guard var entry = state.entries[key] else { throw Self.error(.notFound, operation, errno: 3) }
            try Self.validate(server, in: key, operation)
            guard !entry.status.realServers.contains(where: { $0.server.key == server.key }) else {
                throw Self.error(.alreadyExists, operation, errno: 17)
            }
            entry.status.realServers.append(RealServerStatus(server: server))
            state.entries[key] = entry
        case .updateRealServer(let server, let key):
            guard var entry = state.entries[key] else { throw Self.error(.notFound, operation, errno: 3) }
            try Self.validate(server, in: key, operation)
            guard let index = entry.status.realServers.firstIndex(where: { $0.server.key == server.key }) else {
                throw Self.error(.notFound, operation, errno: 2)
            }
            entry.status.realServers[index].server = server
            state.entries[key] = entry
        case .deleteRealServer(let server, let key):
            guard var entry = state.entries[key] else { throw Self.error(.notFound, operation, errno: 3) }
            guard let index = entry.status.realServers.firstIndex(where: { $0.server.key == server }) else {
                throw Self.error(.notFound, operation, errno: 2)
            }
            entry.status.realServers.remove(at: index)
            state.entries[key] = entry
        }
    }

    private static func validate(_ server: RealServer, in key: ServiceKey, _ operation: IPVSOperation) throws(IPVSError) {
        if server.weight < 0 { throw error(.invalidArgument, operation, errno: 34) }
        if case .address = key, server.address.family != key.family, server.forwarding != .tunnel {
            throw error(.invalidArgument, operation, errno: 22)
        }
        if server.lowerThreshold > server.upperThreshold && server.upperThreshold != 0 { throw error(.invalidArgument, operation, errno: 22) }
    }

    public func flush() throws(IPVSError) {
        state.withLock { state in
            state.entries.removeAll()
            state.order.removeAll()
        }
    }

    private func run(_ operation: IPVSOperation) throws(IPVSError) {
        try state.withLock { (state) throws(IPVSError) in try perform(operation, on: &state) }
    }

    public func addService(_ service: VirtualService) throws(IPVSError) { try run(.addService(service)) }
    public func updateService(_ service: VirtualService) throws(IPVSError) { try run(.updateService(service)) }
    public func deleteService(_ key: ServiceKey) throws(IPVSError) { try run(.deleteService(key)) }

    public func service(_ key: ServiceKey) throws(IPVSError) -> ServiceStatus {
        try state.withLock { (state) throws(IPVSError) -> ServiceStatus in
            guard var status = state.entries[key]?.status else {
                throw IPVSError(kind: .notFound, operation: "get service", object: "\(key)", errno: 3)
            }
            status.realServers = []
            return status
        }
    }

    public func services() throws(IPVSError) -> [ServiceStatus] {
        state.withLock { state in
            state.order.compactMap { key in
                state.entries[key].map { entry in
                    var status = entry.status
                    status.realServers = []
                    return status
                }
            }
        }
    }

    public func snapshot() throws(IPVSError) -> [ServiceStatus] {
        state.withLock { state in state.order.compactMap { state.entries[$0]?.status } }
    }

    public func addRealServer(_ server: RealServer, to service: ServiceKey) throws(IPVSError) { try run(.addRealServer(server, service: service)) }
    public func updateRealServer(_ server: RealServer, in service: ServiceKey) throws(IPVSError) { try run(.updateRealServer(server, service: service)) }
    public func deleteRealServer(_ server: RealServerKey, from service: ServiceKey) throws(IPVSError) {
        try run(.deleteRealServer(server, service: service))
    }

    public func realServers(of service: ServiceKey) throws(IPVSError) -> [RealServerStatus] {
        try state.withLock { (state) throws(IPVSError) -> [RealServerStatus] in
            guard let entry = state.entries[service] else {
                throw IPVSError(kind: .notFound, operation: "list real servers of", object: "\(service)", errno: 3)
            }
            return entry.status.realServers
        }
    }

    public func timeouts() throws(IPVSError) -> IPVSTimeouts { state.withLock { $0.timeouts } }

    public func setTimeouts(_ timeouts: IPVSTimeouts) throws(IPVSError) {
        state.withLock { state in
            if timeouts.tcp != 0 { state.timeouts.tcp = timeouts.tcp }
            if timeouts.tcpFin != 0 { state.timeouts.tcpFin = timeouts.tcpFin }
            if timeouts.udp != 0 { state.timeouts.udp = timeouts.udp }
        }
    }

    public func apply(_ operations: [IPVSOperation]) throws(IPVSError) -> [IPVSError?] {
        state.withLock { state in
            operations.map { operation -> IPVSError? in
                do throws(IPVSError) { try perform(operation, on: &state) } catch { return error }
                return nil
            }
        }
    }
}
