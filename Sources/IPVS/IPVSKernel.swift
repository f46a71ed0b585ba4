import CMnl
import Synchronization

/// The kernel's IPVS table over generic netlink, in the caller's network namespace or a given one.
///
/// One socket per instance, used under a mutex; every request waits at most the receive timeout.
/// ``apply(_:)`` packs many changes per datagram, so a full sync costs a few round trips, not one per change.
public final class IPVSKernel: IPVSInterface, Sendable {
    private let connection: Mutex<NetlinkConnection>
    /// The generic netlink family id the kernel gave `IPVS`.
    public let familyID: UInt16

    /// Opens a generic netlink socket (inside the network namespace at `namespacePath`, when given) and resolves the
    /// `IPVS` family.
    ///
    /// - Throws: ``IPVSError/Kind/unavailable`` when the kernel has no IPVS family (ip_vs not loaded),
    ///   ``IPVSError/Kind/permissionDenied`` or ``IPVSError/Kind/system`` when the socket or namespace fails.
    public convenience init(namespacePath: String? = nil, receiveTimeout: Duration = .seconds(10)) throws(IPVSError) {
        let socket: MnlSocket
        do {
            socket = try MnlSocket(bus: NETLINK_GENERIC, namespacePath: namespacePath, receiveTimeout: receiveTimeout)
        } catch {
            throw IPVSError(error, operation: "open", object: "a generic netlink socket" + (namespacePath.map { " in \($0)" } ?? ""))
        }
        try self.init(connection: NetlinkConnection(transport: socket))
    }

    /// Uses an existing connection (tests pass one over a recording transport) and resolves the `IPVS` family on it.
    public init(connection: sending NetlinkConnection) throws(IPVSError) {
        do {
            familyID = try GenericNetlink.resolve(IPVSCodec.familyName, over: connection)
        } catch {
            if error.isKernelError && error.errno == 2 {
                throw IPVSError(
                    kind: .unavailable, operation: "resolve", object: "the IPVS generic netlink family", errno: 2,
                    detail: "the kernel has no IPVS (is the ip_vs module loaded?)")
            }
            throw IPVSError(error, operation: "resolve", object: "the IPVS generic netlink family")
        }
        self.connection = Mutex(connection)
    }

    /// Sets a hook that sees every datagram received (the capture tool records kernel replies with it).
    public func onReceive(_ hook: (@Sendable ([UInt8]) -> Void)?) {
        connection.withLock { $0.onReceive = hook }
    }

    @discardableResult
    private func perform(_ request: NetlinkRequest, _ operation: String, _ object: String, serviceWrite: Bool = false)
        throws(IPVSError) -> [NetlinkMessage]
    {
        try connection.withLock { (connection) throws(IPVSError) -> [NetlinkMessage] in
            do throws(NetlinkError) { return try connection.perform(request, operation: operation) } catch {
                throw IPVSError(error, operation: operation, object: object, serviceWrite: serviceWrite)
            }
        }
    }

    private func dump(_ request: NetlinkRequest, _ operation: String, _ object: String) throws(IPVSError) -> [NetlinkMessage] {
        try connection.withLock { (connection) throws(IPVSError) -> [NetlinkMessage] in
            do throws(NetlinkError) { return try connection.dump(request, operation: operation) } catch {
                throw IPVSError(error, operation: operation, object: object)
            }
        }
    }

    private func run(_ operation: IPVSOperation) throws(IPVSError) {
        try perform(IPVSCodec.request(family: familyID, for: operation), operation.verb, operation.object, serviceWrite: operation.isServiceWrite)
    }

    public func flush() throws(IPVSError) {
        try perform(IPVSCodec.request(family: familyID, .flush), "flush", "the IPVS table")
    }

    public func addService(_ service: VirtualService) throws(IPVSError) { try run(.addService(service)) }
    public func updateService(_ service: VirtualService) throws(IPVSError) { try run(.updateService(service)) }
    public func deleteService(_ key: ServiceKey) throws(IPVSError) { try run(.deleteService(key)) }

    public func service(_ key: ServiceKey) throws(IPVSError) -> ServiceStatus {
        let replies = try perform(IPVSCodec.request(family: familyID, .getService, [IPVSCodec.serviceKey(key)]), "get service", "\(key)")
        guard let first = replies.first else { throw IPVSError(kind: .malformedReply, operation: "get service", object: "\(key)", detail: "no reply") }
        do { return try IPVSCodec.decodeService(first) } catch { throw IPVSError(error, operation: "get service", object: "\(key)") }
    }

    public func services() throws(IPVSError) -> [ServiceStatus] {
        let replies = try dump(IPVSCodec.request(family: familyID, .getService), "list services", "the IPVS table")
        var result: [ServiceStatus] = []
        result.reserveCapacity(replies.count)
        for reply in replies {
            do { result.append(try IPVSCodec.decodeService(reply)) } catch { throw IPVSError(error, operation: "list services", object: "the IPVS table") }
        }
        return result
    }

    public func snapshot() throws(IPVSError) -> [ServiceStatus] {
        var result = try services()
        for index in result.indices {
            result[index].realServers = try realServers(of: result[index].service.key)
        }
        return result
    }

    public func addRealServer(_ server: RealServer, to service: ServiceKey) throws(IPVSError) { try run(.addRealServer(server, service: service)) }
    public func updateRealServer(_ server: RealServer, in service: ServiceKey) throws(IPVSError) { try run(.updateRealServer(server, service: service)) }
    public func deleteRealServer(_ server: RealServerKey, from service: ServiceKey) throws(IPVSError) {
        try run(.deleteRealServer(server, service: service))
    }

    public func realServers(of service: ServiceKey) throws(IPVSError) -> [RealServerStatus] {
        let replies = try dump(IPVSCodec.request(family: familyID, .getDestination, [IPVSCodec.serviceKey(service)]), "list real servers of", "\(service)")
        var result: [RealServerStatus] = []
        result.reserveCapacity(replies.count)
        for reply in replies {
            do { result.append(try IPVSCodec.decodeDestination(reply, serviceFamily: service.family)) } catch {
                throw IPVSError(error, operation: "list real servers of", object: "\(service)")
            }
        }
        return result
    }

    public func timeouts() throws(IPVSError) -> IPVSTimeouts {
        let replies = try perform(IPVSCodec.request(family: familyID, .getConfig), "get timeouts", "IPVS")
        guard let first = replies.first else { throw IPVSError(kind: .malformedReply, operation: "get timeouts", object: "IPVS", detail: "no reply") }
        do { return try IPVSCodec.decodeTimeouts(first) } catch { throw IPVSError(error, operation: "get timeouts", object: "IPVS") }
    }

    public func setTimeouts(_ timeouts: IPVSTimeouts) throws(IPVSError) {
        try perform(IPVSCodec.setTimeouts(family: familyID, timeouts), "set timeouts", "tcp \(timeouts.tcp)s tcpfin \(timeouts.tcpFin)s udp \(timeouts.udp)s")
    }

    public func apply(_ operations: [IPVSOperation]) throws(IPVSError) -> [IPVSError?] {
        let family = familyID
        let requests = operations.map { IPVSCodec.request(family: family, for: $0) }
        let results = try connection.withLock { (connection) throws(IPVSError) -> [NetlinkError?] in
            do throws(NetlinkError) { return try connection.batch(requests) { operations[$0].verb } } catch {
                throw IPVSError(error, operation: "apply", object: "\(operations.count) IPVS changes")
            }
        }
        return zip(operations, results).map { operation, failure in
            failure.map { IPVSError($0, operation: operation.verb, object: operation.object, serviceWrite: operation.isServiceWrite) }
        }
    }
}
