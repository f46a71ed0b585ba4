// All unsafe-pointer code of the IPVS target lives in this file: libmnl message building and parsing, the
// netlink socket, network-namespace switching, and the few libc calls that take pointers.
import CMnl
import Glibc

/// libmnl, wrapped: encode requests, split datagrams into messages, parse attributes.
enum Mnl {
    static let headerLength = Int(cmnl_nlmsg_hdrlen())
    static let attributeHeaderLength = 4
    static let typeMask = cmnl_attr_type_mask()

    static func align(_ length: Int) -> Int { (length + 3) & ~3 }

    /// The encoded size of one attribute, padding included.
    static func encodedSize(_ attribute: NetlinkAttribute) -> Int {
        switch attribute {
        case .u8: align(attributeHeaderLength + 1)
        case .u16: align(attributeHeaderLength + 2)
        case .u32: align(attributeHeaderLength + 4)
        case .u64: align(attributeHeaderLength + 8)
        case .string(_, let s): align(attributeHeaderLength + s.utf8.count + 1)
        case .bytes(_, let b): align(attributeHeaderLength + b.count)
        case .nested(_, let children): attributeHeaderLength + children.reduce(0) { $0 + encodedSize($1) }
        }
    }

    /// Encodes one request with libmnl: `nlmsghdr`, the fixed header, then the attributes.
    static func encode(_ request: NetlinkRequest, sequence: UInt32, portID: UInt32) -> [UInt8] {
        let size = headerLength + align(request.header.count) + request.attributes.reduce(0) { $0 + encodedSize($1) }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            let nlh = mnl_nlmsg_put_header(base)!
            nlh.pointee.nlmsg_type = request.type
            nlh.pointee.nlmsg_flags = request.flags | NetlinkConstants.request
            nlh.pointee.nlmsg_seq = sequence
            nlh.pointee.nlmsg_pid = portID
            if !request.header.isEmpty {
                let extra = mnl_nlmsg_put_extra_header(nlh, request.header.count)!
                request.header.withUnsafeBytes { extra.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
            for attribute in request.attributes { put(attribute, into: nlh) }
            count = Int(nlh.pointee.nlmsg_len)
            precondition(count == size, "netlink size mismatch: computed \(size), libmnl wrote \(count)")
        }
    }

    /// ORs `flags` into the `nlmsg_flags` of the message that starts at `offset` in `datagram`.
    static func addFlags(_ flags: UInt16, toMessageAt offset: Int, in datagram: inout [UInt8]) {
        datagram.withUnsafeMutableBytes { raw in
            let nlh = (raw.baseAddress! + offset).assumingMemoryBound(to: nlmsghdr.self)
            nlh.pointee.nlmsg_flags |= flags
        }
    }

    private static func put(_ attribute: NetlinkAttribute, into nlh: UnsafeMutablePointer<nlmsghdr>) {
        switch attribute {
        case .u8(let type, let value): mnl_attr_put_u8(nlh, type, value)
        case .u16(let type, let value): mnl_attr_put_u16(nlh, type, value)
        case .u32(let type, let value): mnl_attr_put_u32(nlh, type, value)
        case .u64(let type, let value): mnl_attr_put_u64(nlh, type, value)
        case .string(let type, let value): mnl_attr_put_strz(nlh, type, value)
        case .bytes(let type, let value): value.withUnsafeBytes { mnl_attr_put(nlh, type, $0.count, $0.baseAddress) }
        case .nested(let type, let children):
            let start = mnl_attr_nest_start(nlh, type)
            for child in children { put(child, into: nlh) }
            mnl_attr_nest_end(nlh, start)
        }
    }

    /// Splits one received datagram into its messages.
    ///
    /// - Throws: ``NetlinkError`` when a message's length is inconsistent with the datagram.
    static func parseMessages(_ datagram: [UInt8]) throws(NetlinkError) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        let consumed: Int = datagram.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return 0 }
            var remaining = Int32(raw.count)
            var nlh = base.assumingMemoryBound(to: nlmsghdr.self)
            while mnl_nlmsg_ok(nlh, remaining) {
                let length = Int(nlh.pointee.nlmsg_len)
                let start = UnsafeRawPointer(nlh) - base
                messages.append(
                    NetlinkMessage(
                        type: nlh.pointee.nlmsg_type, flags: nlh.pointee.nlmsg_flags, sequence: nlh.pointee.nlmsg_seq,
                        portID: nlh.pointee.nlmsg_pid, payload: Array(raw[(start + headerLength)..<(start + length)])))
                nlh = UnsafePointer(mnl_nlmsg_next(nlh, &remaining)!)
            }
            return raw.count - Int(remaining)
        }
        if datagram.count - consumed >= headerLength {
            throw .malformed("a netlink message at offset \(consumed) runs past the end of its \(datagram.count)-byte datagram")
        }
        return messages
    }

    private final class AttributeCollector {
        var values: [UInt16: [UInt8]] = [:]
        var consumed = 0
    }

    /// Parses a stream of attributes with `mnl_attr_parse_payload`, checking that every byte was accounted for.
    static func parseAttributes(_ bytes: ArraySlice<UInt8>) throws(NetlinkError) -> [UInt16: [UInt8]] {
        let collector = AttributeCollector()
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, raw.count >= attributeHeaderLength else { return }
            let context = Unmanaged.passUnretained(collector).toOpaque()
            _ = mnl_attr_parse_payload(base, raw.count, { attr, data in
                guard let attr, let data else { return MNL_CB_ERROR }
                let collector = Unmanaged<AttributeCollector>.fromOpaque(data).takeUnretainedValue()
                let type = mnl_attr_get_type(attr) & Mnl.typeMask
                let length = Int(mnl_attr_get_payload_len(attr))
                let payload = UnsafeRawBufferPointer(start: mnl_attr_get_payload(attr), count: length)
                collector.values[type] = Array(payload)
                collector.consumed += Mnl.align(Int(attr.pointee.nla_len))
                return MNL_CB_OK
            }, context)
        }
        if bytes.count - collector.consumed >= attributeHeaderLength {
            throw .malformed("an attribute at offset \(collector.consumed) runs past the end of its \(bytes.count) bytes")
        }
        return collector.values
    }

    /// Loads a host-byte-order integer from the first bytes of `bytes`, or nil when too short.
    static func load<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], offset: Int = 0) -> T? {
        guard bytes.count >= offset + MemoryLayout<T>.size else { return nil }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }

    static func strerror(_ code: Int32) -> String { String(cString: Glibc.strerror(code)) }

    /// `inet_pton` for IPv4 (4 bytes) or IPv6 (16 bytes).
    static func parseAddress(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// `inet_ntop` for 4 or 16 bytes.
    static func formatAddress(_ bytes: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Runs a syscall-like call until it stops failing with EINTR; a -1 result throws the errno as ``NetlinkError``.
@discardableResult
func syscall<T: FixedWidthInteger>(_ operation: @autoclosure () -> String, _ body: () -> T) throws(NetlinkError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code == EINTR { continue }
        throw NetlinkError.system(operation(), errno: code)
    }
}

/// A netlink socket through libmnl, optionally opened inside another network namespace.
final class MnlSocket: NetlinkTransport {
    private let socket: OpaquePointer
    private var buffer: [UInt8]
    let portID: UInt32

    /// Opens and binds a netlink socket of `bus` (`NETLINK_GENERIC`, `NETLINK_ROUTE`).
    ///
    /// - Parameters:
    ///   - namespacePath: a network namespace file (e.g. `/var/run/netns/x`); the socket is created there and stays
    ///     bound to it. Nil means the caller's namespace.
    ///   - receiveTimeout: how long a receive waits for the kernel before failing with a timeout.
    /// - Throws: ``NetlinkError`` carrying errno when the namespace cannot be entered or the socket not opened.
    init(bus: Int32, namespacePath: String?, receiveTimeout: Duration) throws(NetlinkError) {
        let opened: OpaquePointer
        if let namespacePath {
            opened = try MnlSocket.inNamespace(namespacePath) { () throws(NetlinkError) in try MnlSocket.open(bus) }
        } else {
            opened = try MnlSocket.open(bus)
        }
        socket = opened
        buffer = [UInt8](repeating: 0, count: 64 * 1024)
        do {
            try syscall("mnl_socket_bind") { mnl_socket_bind(opened, 0, pid_t(MNL_SOCKET_AUTOPID)) }
            let fd = mnl_socket_get_fd(opened)
            let seconds = receiveTimeout.components.seconds
            var timeout = timeval(
                tv_sec: Int(seconds), tv_usec: Int(receiveTimeout.components.attoseconds / 1_000_000_000_000))
            try syscall("setsockopt SO_RCVTIMEO") {
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            }
            // Room for the replies of a whole batch: SO_RCVBUFFORCE as root, else as much as SO_RCVBUF grants.
            var size: Int32 = 8 << 20
            if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, 4) != 0 {
                _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
            }
            var on: Int32 = 1
            // Error replies echo only the header of the failed request, and carry the kernel's message if any.
            _ = mnl_socket_setsockopt(opened, NETLINK_CAP_ACK, &on, 4)
            _ = mnl_socket_setsockopt(opened, NETLINK_EXT_ACK, &on, 4)
        } catch {
            mnl_socket_close(opened)
            throw error
        }
        portID = mnl_socket_get_portid(opened)
    }

    deinit { mnl_socket_close(socket) }

    private static func open(_ bus: Int32) throws(NetlinkError) -> OpaquePointer {
        guard let socket = mnl_socket_open2(bus, Int32(SOCK_CLOEXEC.rawValue)) else {
            throw NetlinkError.system("socket(AF_NETLINK)", errno: errno)
        }
        return socket
    }

    /// Runs `body` with this thread inside the network namespace at `path`, then returns to the original one.
    private static func inNamespace<T>(_ path: String, _ body: () throws(NetlinkError) -> T) throws(NetlinkError) -> T {
        let original = try syscall("open /proc/thread-self/ns/net") { Glibc.open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC) }
        defer { close(original) }
        let target = try syscall("open \(path)") { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(target) }
        try syscall("setns \(path)") { cmnl_setns_net(target) }
        defer {
            // Failing to return would leave this thread in the wrong namespace for everything after it.
            if cmnl_setns_net(original) != 0 { fatalError("cannot return to the original network namespace: errno \(errno)") }
        }
        return try body()
    }

    func send(_ datagram: [UInt8]) throws(NetlinkError) {
        let sent = try syscall("sendto netlink") {
            datagram.withUnsafeBytes { mnl_socket_sendto(socket, $0.baseAddress, $0.count) }
        }
        if sent != datagram.count { throw .malformed("short netlink send: \(sent) of \(datagram.count) bytes") }
    }

    func receive() throws(NetlinkError) -> [UInt8] {
        let count = try syscall("recvfrom netlink") {
            buffer.withUnsafeMutableBytes { mnl_socket_recvfrom(socket, $0.baseAddress, $0.count) }
        }
        return Array(buffer[0..<count])
    }
}

/// The host-byte-order bytes of an integer (netlink's native attribute encoding).
func hostBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
}
