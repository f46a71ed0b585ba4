import CMnl
import Synchronization

/// The interface that holds a node's virtual IPs (kube-proxy's `kube-ipvs0`) and its addresses.
///
/// ``DummyInterface`` manages a real dummy interface over rtnetlink; `NodeAgentTesting.FakeDummyInterface` keeps
/// the same state in memory for tests of the proxier.
public protocol VirtualIPInterface: AnyObject, Sendable {
    /// The interface name, e.g. `kube-ipvs0`.
    var name: String { get }
    /// Creates the interface when missing (type dummy, NOARP, left down) and returns its index.
    ///
    /// Throws ``IPVSError/Kind/invalidArgument`` when a non-dummy interface has the name, ``IPVSError/Kind/unavailable``
    /// when the kernel cannot create dummy interfaces.
    @discardableResult func ensureInterface() throws(IPVSError) -> Int32
    /// The addresses on the interface. Throws ``IPVSError/Kind/notFound`` when the interface is missing.
    func addresses() throws(IPVSError) -> Set<IPAddress>
    /// Adds `address` as a /32 or /128. Throws ``IPVSError/Kind/alreadyExists`` when present.
    func addAddress(_ address: IPAddress) throws(IPVSError)
    /// Removes `address`. Throws ``IPVSError/Kind/notFound`` when absent.
    func removeAddress(_ address: IPAddress) throws(IPVSError)
    /// Makes the interface hold exactly `desired`, in one pass: one listing, then every change in one batch.
    ///
    /// - Returns: what was added and removed, and the addresses whose change failed with why.
    func syncAddresses(_ desired: Set<IPAddress>) throws(IPVSError) -> AddressSyncResult
}

/// The outcome of ``VirtualIPInterface/syncAddresses(_:)``.
public struct AddressSyncResult: Sendable, Equatable {
    public var added: Set<IPAddress> = []
    public var removed: Set<IPAddress> = []
    /// Changes the kernel refused, each with its error description.
    public var failed: [IPAddress: String] = [:]
    public init(added: Set<IPAddress> = [], removed: Set<IPAddress> = [], failed: [IPAddress: String] = [:]) {
        self.added = added
        self.removed = removed
        self.failed = failed
    }
}

/// rtnetlink messages for links and addresses (`linux/rtnetlink.h`, `if_link.h`, `if_addr.h`).
public enum RouteCodec {
    static let newLink: UInt16 = 16
    static let getLink: UInt16 = 18
    static let newAddress: UInt16 = 20
    static let deleteAddress: UInt16 = 21
    static let getAddress: UInt16 = 22
    static let linkName: UInt16 = 3  // IFLA_IFNAME
    static let linkInfo: UInt16 = 18  // IFLA_LINKINFO
    static let linkInfoKind: UInt16 = 1  // IFLA_INFO_KIND
    static let addressAddress: UInt16 = 1  // IFA_ADDRESS
    static let addressLocal: UInt16 = 2  // IFA_LOCAL
    static let noDAD: UInt8 = 0x02  // IFA_F_NODAD
    static let noARP: UInt32 = 0x80  // IFF_NOARP

    /// `struct ifinfomsg` with only the index set.
    static func ifinfomsg(index: Int32 = 0) -> [UInt8] { [0, 0, 0, 0] + hostBytes(index) + [UInt8](repeating: 0, count: 8) }

    /// `struct ifaddrmsg`.
    static func ifaddrmsg(family: UInt8, prefixLength: UInt8, flags: UInt8, index: Int32) -> [UInt8] {
        [family, prefixLength, flags, 0] + hostBytes(UInt32(bitPattern: index))
    }

    /// `RTM_GETLINK` by name.
    public static func getLink(_ name: String) -> NetlinkRequest {
        NetlinkRequest(type: getLink, header: ifinfomsg(), attributes: [.string(linkName, name)])
    }

    /// `RTM_NEWLINK` creating a dummy interface named `name` (fails with EEXIST when the name is taken).
    public static func createDummy(_ name: String) -> NetlinkRequest {
        NetlinkRequest(
            type: newLink, flags: NetlinkConstants.create | NetlinkConstants.exclusive, header: ifinfomsg(),
            attributes: [.string(linkName, name), .nested(linkInfo, [.string(linkInfoKind, "dummy")])])
    }

    /// `RTM_NEWADDR` / `RTM_DELADDR` of a host address (/32, /128) on interface `index`; IPv6 without duplicate detection.
    public static func address(_ address: IPAddress, index: Int32, add: Bool) -> NetlinkRequest {
        NetlinkRequest(
            type: add ? newAddress : deleteAddress,
            flags: add ? NetlinkConstants.create | NetlinkConstants.exclusive : 0,
            header: ifaddrmsg(
                family: UInt8(address.family.rawValue), prefixLength: address.hostPrefixLength,
                flags: address.family == .inet6 ? noDAD : 0, index: index),
            attributes: [.bytes(addressLocal, address.bytes), .bytes(addressAddress, address.bytes)])
    }

    /// `RTM_GETADDR` dump of every address (filtered by index on our side: older kernels ignore the index).
    public static func listAddresses(index: Int32) -> NetlinkRequest {
        NetlinkRequest(type: getAddress, header: ifaddrmsg(family: 0, prefixLength: 0, flags: 0, index: index))
    }

    /// A link reply: index, flags and kind.
    public struct Link: Equatable, Sendable {
        public var index: Int32
        public var flags: UInt32
        public var name: String?
        public var kind: String?
    }

    public static func decodeLink(_ message: NetlinkMessage) throws(NetlinkError) -> Link {
        guard message.type == newLink, message.payload.count >= 16, let index = Mnl.load(Int32.self, message.payload, offset: 4),
            let flags = Mnl.load(UInt32.self, message.payload, offset: 8)
        else { throw .malformed("an RTM_NEWLINK reply shorter than ifinfomsg") }
        let attrs = try NetlinkAttributes(parsing: message.payload[16...])
        return Link(index: index, flags: flags, name: attrs.string(linkName), kind: try attrs.nested(linkInfo)?.string(linkInfoKind))
    }

    /// The address of an `RTM_NEWADDR` dump entry, when it belongs to interface `index`.
    public static func decodeAddress(_ message: NetlinkMessage, index: Int32) throws(NetlinkError) -> IPAddress? {
        guard message.type == newAddress, message.payload.count >= 8, let owner = Mnl.load(UInt32.self, message.payload, offset: 4)
        else { throw .malformed("an RTM_NEWADDR reply shorter than ifaddrmsg") }
        guard Int32(bitPattern: owner) == index else { return nil }
        let attrs = try NetlinkAttributes(parsing: message.payload[8...])
        return (attrs[addressLocal] ?? attrs[addressAddress]).flatMap { IPAddress(bytes: $0) }
    }
}

/// A dummy interface and its addresses over rtnetlink, in the caller's network namespace or a given one.
public final class DummyInterface: VirtualIPInterface, Sendable {
    public let name: String
    private let connection: Mutex<NetlinkConnection>

    /// Opens an rtnetlink socket (inside the network namespace at `namespacePath`, when given).
    ///
    /// - Throws: ``IPVSError`` when the socket or namespace cannot be opened.
    public convenience init(name: String = "kube-ipvs0", namespacePath: String? = nil, receiveTimeout: Duration = .seconds(10)) throws(IPVSError) {
        let socket: MnlSocket
        do {
            socket = try MnlSocket(bus: NETLINK_ROUTE, namespacePath: namespacePath, receiveTimeout: receiveTimeout)
        } catch {
            throw IPVSError(error, operation: "open", object: "an rtnetlink socket" + (namespacePath.map { " in \($0)" } ?? ""))
        }
        self.init(name: name, connection: NetlinkConnection(transport: socket))
    }

    /// Uses an existing connection (tests pass one over a recording transport).
    public init(name: String, connection: sending NetlinkConnection) {
        self.name = name
        self.connection = Mutex(connection)
    }

    private func link() throws(IPVSError) -> RouteCodec.Link? {
        try connection.withLock { (connection) throws(IPVSError) -> RouteCodec.Link? in
            do throws(NetlinkError) {
                let replies = try connection.perform(RouteCodec.getLink(name), operation: "RTM_GETLINK")
                guard let first = replies.first else { return nil }
                return try RouteCodec.decodeLink(first)
            } catch {
                if error.isKernelError && error.errno == 19 { return nil }  // ENODEV
                throw IPVSError(error, operation: "look up", object: "interface \(name)")
            }
        }
    }

    private func index() throws(IPVSError) -> Int32 {
        guard let link = try link() else {
            throw IPVSError(kind: .notFound, operation: "use", object: "interface \(name)", errno: 19, detail: "it does not exist yet (ensureInterface creates it)")
        }
        return link.index
    }

    @discardableResult
    public func ensureInterface() throws(IPVSError) -> Int32 {
        if let existing = try link() {
            guard existing.kind == "dummy" else {
                throw IPVSError(
                    kind: .invalidArgument, operation: "use", object: "interface \(name)",
                    detail: "it exists as a \(existing.kind ?? "device without a kind"), not a dummy interface; remove or rename it")
            }
            return existing.index
        }
        try connection.withLock { (connection) throws(IPVSError) in
            do throws(NetlinkError) {
                try connection.perform(RouteCodec.createDummy(name), operation: "RTM_NEWLINK")
            } catch {
                if error.isKernelError && error.errno == 17 { return }  // created meanwhile by someone else
                if error.isKernelError && error.errno == 95 {
                    throw IPVSError(
                        kind: .unavailable, operation: "create", object: "dummy interface \(name)", errno: 95,
                        detail: "the kernel has no dummy interface support (CONFIG_DUMMY); \(error.kernelMessage ?? "Unknown device type")")
                }
                throw IPVSError(error, operation: "create", object: "dummy interface \(name)")
            }
        }
        return try index()
    }

    public func addresses() throws(IPVSError) -> Set<IPAddress> {
        let index = try index()
        return try connection.withLock { (connection) throws(IPVSError) -> Set<IPAddress> in
            do throws(NetlinkError) {
                var result = Set<IPAddress>()
                for message in try connection.dump(RouteCodec.listAddresses(index: index), operation: "RTM_GETADDR") {
                    if let address = try RouteCodec.decodeAddress(message, index: index) { result.insert(address) }
                }
                return result
            } catch {
                throw IPVSError(error, operation: "list addresses of", object: "interface \(name)")
            }
        }
    }

    private func change(_ address: IPAddress, add: Bool) throws(IPVSError) {
        let index = try index()
        try connection.withLock { (connection) throws(IPVSError) in
            do throws(NetlinkError) {
                try connection.perform(RouteCodec.address(address, index: index, add: add), operation: add ? "RTM_NEWADDR" : "RTM_DELADDR")
            } catch {
                // Deleting an address that is not there answers EADDRNOTAVAIL.
                if error.isKernelError && error.errno == 99 {
                    throw IPVSError(kind: .notFound, operation: "remove address", object: "\(address) on \(name)", errno: 99)
                }
                throw IPVSError(error, operation: add ? "add address" : "remove address", object: "\(address) on \(name)")
            }
        }
    }

    public func addAddress(_ address: IPAddress) throws(IPVSError) { try change(address, add: true) }
    public func removeAddress(_ address: IPAddress) throws(IPVSError) { try change(address, add: false) }

    public func syncAddresses(_ desired: Set<IPAddress>) throws(IPVSError) -> AddressSyncResult {
        let index = try ensureInterface()
        let current = try addresses()
        let toAdd = desired.subtracting(current).sorted()
        let toRemove = current.subtracting(desired).sorted()
        let requests = toAdd.map { RouteCodec.address($0, index: index, add: true) } + toRemove.map { RouteCodec.address($0, index: index, add: false) }
        if requests.isEmpty { return AddressSyncResult() }
        let outcomes = try connection.withLock { (connection) throws(IPVSError) -> [NetlinkError?] in
            do throws(NetlinkError) { return try connection.batch(requests) { $0 < toAdd.count ? "RTM_NEWADDR" : "RTM_DELADDR" } } catch {
                throw IPVSError(error, operation: "sync addresses of", object: "interface \(name)")
            }
        }
        var result = AddressSyncResult()
        for (offset, address) in (toAdd + toRemove).enumerated() {
            let isAdd = offset < toAdd.count
            if let failure = outcomes[offset] {
                result.failed[address] = IPVSError(failure, operation: isAdd ? "add address" : "remove address", object: "\(address) on \(name)").description
            } else if isAdd {
                result.added.insert(address)
            } else {
                result.removed.insert(address)
            }
        }
        return result
    }
}
