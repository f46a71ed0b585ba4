import CNftables
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A transaction made only of element additions and deletions, sent to nf_tables as one netlink batch
/// without libnftables.
///
/// Why: libnftables 1.0.6 re-reads every chain of the ruleset before any transaction (its cache is invalidated by
/// the previous commit), which costs tens of milliseconds with ten thousand Service chains. Endpoint changes
/// are map and set element changes, and their encoding is fixed by the set's declared type, so they go straight
/// to the kernel: one batch, all or nothing, exactly like libnftables' own.
///
/// Supported key and value types: `ipv4_addr`, `ipv6_addr`, `inet_proto`, `inet_service`, `integer`, `mark`
/// and their concatenations, and verdicts (`goto`/`jump` chain, `accept`, `drop`, `return`, `continue`).
/// Anything else returns nil from ``init(_:types:)`` and the transaction goes through libnftables.
struct ElementBatch {
    /// A set's declared key type and, for maps, value type, as `type` components.
    struct SetType: Sendable, Hashable {
        var key: [String]
        var value: [String]?
    }

    private var messages: [[UInt8]] = []
    let count: Int

    // nfnetlink / nf_tables constants (linux/netfilter/nfnetlink.h, nf_tables.h).
    fileprivate static let batchBegin: UInt16 = 0x10
    fileprivate static let batchEnd: UInt16 = 0x11
    fileprivate static let subsysNftables: UInt16 = 10
    private static let newSetElement: UInt16 = 12
    private static let deleteSetElement: UInt16 = 14
    fileprivate static let requestFlag: UInt16 = 0x1
    private static let ackFlag: UInt16 = 0x4
    private static let createFlag: UInt16 = 0x400
    private static let nested: UInt16 = 0x8000

    /// Encodes `transaction`, or nil when it holds anything but element commands of sets in `types`.
    init?(_ transaction: Transaction, types: [String: SetType]) {
        let family: UInt8 =
            switch transaction.family {
            case .ip: 2
            case .ip6: 10
            case .inet: 1
            }
        for command in transaction.commands {
            guard case .elements(let elements) = command.object, command.verb == .add || command.verb == .delete,
                let type = types[elements.setName]
            else { return nil }
            var list: [UInt8] = []
            for element in elements.elements {
                guard let key = Self.encode(element.key, as: type.key) else { return nil }
                var attributes = Self.attribute(1, Self.attribute(1, key), nested: true)  // KEY { DATA_VALUE }
                if command.verb == .add, let valueType = type.value {
                    guard let text = element.value, let data = Self.encodeData(text, as: valueType) else { return nil }
                    attributes += Self.attribute(2, data, nested: true)  // DATA { VALUE | VERDICT }
                }
                list += Self.attribute(1, attributes, nested: true)  // LIST_ELEM
            }
            var payload = Self.attribute(1, Self.string(transaction.table))  // LIST_TABLE
            payload += Self.attribute(2, Self.string(elements.setName))  // LIST_SET
            payload += Self.attribute(3, list, nested: true)  // LIST_ELEMENTS
            let messageType = (Self.subsysNftables << 8) | (command.verb == .add ? Self.newSetElement : Self.deleteSetElement)
            var flags = Self.requestFlag | Self.ackFlag
            if command.verb == .add { flags |= Self.createFlag }
            // Sequence numbers are set when the batch is sent (``BatchSocket/exchange(_:)``).
            messages.append(Self.message(type: messageType, flags: flags, sequence: 0, family: family, payload: payload))
        }
        count = messages.count
        guard count > 0 else { return nil }
    }

    /// Sends the batch on `socket` (opened in the calling thread's namespace when it is not open yet).
    /// - Returns: nil on success, else the 1-based command index the kernel refused (0: the batch as a whole)
    ///   and its errno. After a failure the socket is closed, so no reply of this batch can be mistaken for one
    ///   of the next.
    func send(on socket: inout BatchSocket) -> (index: Int, errno: Int32)? {
        let failure = socket.exchange(messages)
        if failure != nil { socket.close() }
        return failure
    }

    // MARK: - Encoding

    fileprivate static func message(type: UInt16, flags: UInt16, sequence: UInt32, family: UInt8, resource: UInt16 = 0, payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20 + payload.count)
        append32(&bytes, UInt32(20 + payload.count))
        append16(&bytes, type)
        append16(&bytes, flags)
        append32(&bytes, sequence)
        append32(&bytes, 0)
        bytes += [family, 0]  // nfgenmsg: family, version
        withUnsafeBytes(of: resource) { bytes += $0 }  // res_id, already in network order
        bytes += payload
        return bytes
    }

    private static func attribute(_ type: UInt16, _ payload: [UInt8], nested: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = []
        append16(&bytes, UInt16(4 + payload.count))
        append16(&bytes, nested ? type | Self.nested : type)
        bytes += payload
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    private static func string(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }

    private static func append16(_ bytes: inout [UInt8], _ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    private static func append32(_ bytes: inout [UInt8], _ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    fileprivate static func read16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    fileprivate static func read32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }

    /// A concatenation in nft's register layout: each component padded to a multiple of 4 bytes.
    static func encode(_ text: String, as types: [String]) -> [UInt8]? {
        let parts = text.components(separatedBy: " . ")
        guard parts.count == types.count else { return nil }
        var bytes: [UInt8] = []
        for (part, type) in zip(parts, types) {
            guard var component = encodeComponent(part.trimmingCharacters(in: .whitespaces), as: type) else { return nil }
            while component.count % 4 != 0 { component.append(0) }
            bytes += component
        }
        return bytes
    }

    private static func encodeComponent(_ text: String, as type: String) -> [UInt8]? {
        switch type {
        case "ipv4_addr":
            var address = in_addr()
            guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
            return withUnsafeBytes(of: &address) { Array($0) }
        case "ipv6_addr":
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            return withUnsafeBytes(of: &address) { Array($0) }
        case "inet_proto":
            let number: UInt8? =
                switch text {
                case "tcp": 6
                case "udp": 17
                case "sctp": 132
                default: UInt8(text)
                }
            return number.map { [$0] }
        case "inet_service":
            guard let port = UInt16(text) else { return nil }
            return [UInt8(port >> 8), UInt8(port & 0xFF)]
        case "integer", "mark":
            // numgen and mark values live in host byte order.
            guard let value = UInt32(text) else { return nil }
            return withUnsafeBytes(of: value) { Array($0) }
        default:
            return nil
        }
    }

    private static func encodeData(_ text: String, as types: [String]) -> [UInt8]? {
        if types == ["verdict"] {
            let words = text.split(separator: " ").map(String.init)
            let code: Int32
            var chain: String?
            switch words.first {
            case "accept": code = 1
            case "drop": code = 0
            case "continue": code = -1
            case "return": code = -5
            case "jump": code = -3
            case "goto": code = -4
            default: return nil
            }
            if code == -3 || code == -4 {
                guard words.count == 2 else { return nil }
                chain = words[1]
            }
            var verdict = attribute(1, withUnsafeBytes(of: UInt32(bitPattern: code).bigEndian) { Array($0) })  // VERDICT_CODE
            if let chain { verdict += attribute(2, string(chain)) }  // VERDICT_CHAIN
            return attribute(2, verdict, nested: true)  // DATA_VERDICT
        }
        guard let value = encode(text, as: types) else { return nil }
        return attribute(1, value)  // DATA_VALUE
    }
}

/// The netfilter netlink socket element batches go through, kept open from one batch to the next.
///
/// Why it stays open: closing a netfilter netlink socket makes nf_tables finish releasing whatever earlier
/// transactions deleted before `close` returns (`nft_rcv_nl_event` on NETLINK_URELEASE flushes the destroy
/// work, which waits for an RCU grace period): 12–16 ms per close measured on a 250 Hz kernel, after a batch that
/// deleted one map element, against microseconds for the batch itself, which the kernel had already committed.
/// With one socket for the life of the ``LibNftables`` instance, releases happen in the background and an endpoint
/// change costs only its commit. libnftables keeps its own socket open for the same reason.
///
/// Not thread-safe: ``LibNftables`` serializes every use (its namespace thread or its lock).
struct BatchSocket: ~Copyable {
    private var fd: Int32 = -1
    /// The next batch's first sequence number; replies carrying other numbers are ignored.
    private var sequence: UInt32 = 1

    init() {}

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Closes the socket (waiting for pending releases, see above); the next batch opens a new one.
    mutating func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Opens the socket when needed, numbers and sends `messages` between batch-begin and batch-end, and reads
    /// one acknowledgement per message.
    mutating func exchange(_ messages: [[UInt8]]) -> (index: Int, errno: Int32)? {
        if fd < 0 {
            fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 12)  // NETLINK_NETFILTER
            guard fd >= 0 else { return (0, errno) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        let count = messages.count
        // Keep clear of wrap-around so that one batch's numbers are consecutive.
        if sequence > UInt32.max - UInt32(count) - 2 { sequence = 1 }
        let first = sequence
        sequence += UInt32(count) + 2
        let subsystem = ElementBatch.subsysNftables.bigEndian
        var batch = ElementBatch.message(
            type: ElementBatch.batchBegin, flags: ElementBatch.requestFlag, sequence: first, family: 0, resource: subsystem, payload: [])
        for (index, message) in messages.enumerated() {
            var message = message
            withUnsafeBytes(of: (first + 1 + UInt32(index)).littleEndian) { bytes in
                for offset in 0..<4 { message[8 + offset] = bytes[offset] }
            }
            batch += message
        }
        batch += ElementBatch.message(
            type: ElementBatch.batchEnd, flags: ElementBatch.requestFlag, sequence: first + UInt32(count) + 1, family: 0, resource: subsystem,
            payload: [])
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let fd = self.fd
        let sent = batch.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        guard sent == batch.count else { return (0, sent < 0 ? errno : EMSGSIZE) }
        // One acknowledgement (NLMSG_ERROR, error 0) or error per message.
        var acknowledged = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while acknowledged < count {
            let received = recv(fd, &buffer, buffer.count, 0)
            if received < 0 {
                if errno == EINTR { continue }
                return (0, errno)
            }
            var offset = 0
            while offset + 16 <= received {
                let length = Int(ElementBatch.read32(buffer, offset))
                let type = ElementBatch.read16(buffer, offset + 4)
                let number = ElementBatch.read32(buffer, offset + 8)
                guard length >= 16 else { break }
                if type == 2, offset + 20 <= received, number >= first, number <= first + UInt32(count) + 1 {  // NLMSG_ERROR
                    let code = Int32(bitPattern: ElementBatch.read32(buffer, offset + 16))
                    let index = Int(number - first)
                    if code != 0 { return (index <= count ? index : 0, -code) }
                    if index >= 1 && index <= count { acknowledged += 1 }
                }
                offset += (length + 3) & ~3
            }
        }
        return nil
    }
}
