/// The IPVS operations a proxier needs, as kube-proxy's `ipvs/util` `Interface` names them.
///
/// ``IPVSKernel`` talks to the kernel over generic netlink; `NodeAgentTesting.FakeIPVS` keeps the same table in
/// memory, with the kernel's errors (EEXIST on duplicates, ESRCH / ENOENT on missing objects).
public protocol IPVSInterface: AnyObject, Sendable {
    /// Deletes every virtual service (and so every real server).
    func flush() throws(IPVSError)
    /// Adds a virtual service. Throws ``IPVSError/Kind/alreadyExists`` when its key is taken,
    /// ``IPVSError/Kind/schedulerNotFound`` for an unknown scheduler.
    func addService(_ service: VirtualService) throws(IPVSError)
    /// Changes scheduler, flags, timeout or netmask of an existing service. Throws ``IPVSError/Kind/notFound``.
    func updateService(_ service: VirtualService) throws(IPVSError)
    /// Deletes a service and its real servers. Throws ``IPVSError/Kind/notFound``.
    func deleteService(_ key: ServiceKey) throws(IPVSError)
    /// One service with its stats (no real servers). Throws ``IPVSError/Kind/notFound``.
    func service(_ key: ServiceKey) throws(IPVSError) -> ServiceStatus
    /// Every service with its stats, without real servers (one dump).
    func services() throws(IPVSError) -> [ServiceStatus]
    /// Every service with its real servers and their counters.
    func snapshot() throws(IPVSError) -> [ServiceStatus]
    /// Adds a real server. Throws ``IPVSError/Kind/alreadyExists``, or ``IPVSError/Kind/notFound`` without the service.
    func addRealServer(_ server: RealServer, to service: ServiceKey) throws(IPVSError)
    /// Changes weight, forwarding or thresholds of a real server. Throws ``IPVSError/Kind/notFound``.
    func updateRealServer(_ server: RealServer, in service: ServiceKey) throws(IPVSError)
    /// Deletes a real server. Throws ``IPVSError/Kind/notFound``.
    func deleteRealServer(_ server: RealServerKey, from service: ServiceKey) throws(IPVSError)
    /// The real servers of one service with their live counters. Throws ``IPVSError/Kind/notFound``.
    func realServers(of service: ServiceKey) throws(IPVSError) -> [RealServerStatus]
    /// The connection timeouts.
    func timeouts() throws(IPVSError) -> IPVSTimeouts
    /// Sets the connection timeouts; a 0 leaves that one unchanged.
    func setTimeouts(_ timeouts: IPVSTimeouts) throws(IPVSError)
    /// Applies many changes at once, every one attempted, and returns each one's failure (nil for success) in order.
    ///
    /// - Throws: only when the batch as a whole could not be carried out (socket failure, timeout).
    func apply(_ operations: [IPVSOperation]) throws(IPVSError) -> [IPVSError?]
}

/// One change to the IPVS table, for ``IPVSInterface/apply(_:)``.
public enum IPVSOperation: Hashable, Sendable, CustomStringConvertible {
    case addService(VirtualService)
    case updateService(VirtualService)
    case deleteService(ServiceKey)
    case addRealServer(RealServer, service: ServiceKey)
    case updateRealServer(RealServer, service: ServiceKey)
    case deleteRealServer(RealServerKey, service: ServiceKey)

    /// The verb for error messages, e.g. `add real server`.
    public var verb: String {
        switch self {
        case .addService: "add service"
        case .updateService: "update service"
        case .deleteService: "delete service"
        case .addRealServer: "add real server"
        case .updateRealServer: "update real server"
        case .deleteRealServer: "delete real server"
        }
    }

    /// The object for error messages, e.g. `TCP 10.0.0.1:80 -> 10.1.0.5:8080`.
    public var object: String {
        switch self {
        case .addService(let s), .updateService(let s): "\(s.key)"
        case .deleteService(let key): "\(key)"
        case .addRealServer(let r, let key), .updateRealServer(let r, let key): "\(key) -> \(r)"
        case .deleteRealServer(let r, let key):
            "\(key) -> " + (r.address.family == .inet ? "\(r.address):\(r.port)" : "[\(r.address)]:\(r.port)")
        }
    }

    /// True for the service writes, where ENOENT means an unknown scheduler.
    var isServiceWrite: Bool {
        switch self {
        case .addService, .updateService: true
        default: false
        }
    }

    public var description: String { "\(verb) \(object)" }
}
