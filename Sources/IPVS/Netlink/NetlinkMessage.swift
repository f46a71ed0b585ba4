/// One netlink attribute to encode: a type and a value, possibly nested.
///
/// Integers are written in host byte order as netlink expects; values the kernel reads in network byte order
/// (ports, IPv4 netmasks) are given as ``bytes(_:_:)`` already in that order.
public enum NetlinkAttribute: Sendable, Equatable {
    case u8(UInt16, UInt8)
    case u16(UInt16, UInt16)
    case u32(UInt16, UInt32)
    case u64(UInt16, UInt64)
    /// A NUL-terminated string.
    case string(UInt16, String)
    case bytes(UInt16, [UInt8])
    /// A nested attribute (`NLA_F_NESTED` set, as libmnl's `mnl_attr_nest_start` does).
    case nested(UInt16, [NetlinkAttribute])
}

/// A netlink request to encode: the header fields, a fixed family header, and attributes.
public struct NetlinkRequest: Sendable, Equatable {
    /// The message type (a generic netlink family id, or `RTM_*`).
    public var type: UInt16
    /// `NLM_F_*` flags; `NLM_F_REQUEST` is always added.
    public var flags: UInt16
    /// The fixed header after `nlmsghdr`: `genlmsghdr` for generic netlink, `ifinfomsg` / `ifaddrmsg` for rtnetlink.
    public var header: [UInt8]
    public var attributes: [NetlinkAttribute]

    public init(type: UInt16, flags: UInt16 = 0, header: [UInt8], attributes: [NetlinkAttribute] = []) {
        self.type = type
        self.flags = flags
        self.header = header
        self.attributes = attributes
    }

    /// A generic netlink request: `genlmsghdr { cmd, version, reserved }` as the fixed header.
    public static func generic(family: UInt16, command: UInt8, version: UInt8, flags: UInt16 = 0, attributes: [NetlinkAttribute])
        -> NetlinkRequest
    {
        NetlinkRequest(type: family, flags: flags, header: [command, version, 0, 0], attributes: attributes)
    }
}

/// One received netlink message: header fields and the payload after `nlmsghdr`.
public struct NetlinkMessage: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    public var portID: UInt32
    /// Everything after the 16-byte `nlmsghdr`.
    public var payload: [UInt8]

    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32, payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }
}

/// Parsed attributes of one level: the last value of each type, raw bytes, nested levels parsed on demand.
public struct NetlinkAttributes: Sendable, Equatable {
    public private(set) var values: [UInt16: [UInt8]]

    public init(_ values: [UInt16: [UInt8]] = [:]) { self.values = values }

    /// Parses the attributes in `bytes` (a stream of `nlattr`), validating every length.
    ///
    /// - Throws: ``NetlinkError`` when an attribute's length runs past the end.
    public init(parsing bytes: ArraySlice<UInt8>) throws(NetlinkError) {
        values = try Mnl.parseAttributes(bytes)
    }

    public subscript(type: UInt16) -> [UInt8]? { values[type] }

    public func u8(_ type: UInt16) -> UInt8? { values[type].flatMap { $0.count >= 1 ? $0[0] : nil } }
    public func u16(_ type: UInt16) -> UInt16? { values[type].flatMap { Mnl.load(UInt16.self, $0) } }
    public func u32(_ type: UInt16) -> UInt32? { values[type].flatMap { Mnl.load(UInt32.self, $0) } }
    public func u64(_ type: UInt16) -> UInt64? { values[type].flatMap { Mnl.load(UInt64.self, $0) } }
    /// A big-endian 16-bit value (ports).
    public func be16(_ type: UInt16) -> UInt16? { values[type].flatMap { $0.count >= 2 ? UInt16($0[0]) << 8 | UInt16($0[1]) : nil } }
    /// A NUL-terminated string, without the NUL.
    public func string(_ type: UInt16) -> String? {
        values[type].map { bytes in String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self) }
    }
    public func nested(_ type: UInt16) throws(NetlinkError) -> NetlinkAttributes? {
        guard let bytes = values[type] else { return nil }
        return try NetlinkAttributes(parsing: bytes[...])
    }
}

/// Netlink protocol numbers this library uses (from `linux/netlink.h`), spelled once.
public enum NetlinkConstants {
    public static let request: UInt16 = 0x1
    public static let multi: UInt16 = 0x2
    public static let ack: UInt16 = 0x4
    public static let root: UInt16 = 0x100
    public static let match: UInt16 = 0x200
    public static let dump: UInt16 = 0x300
    public static let replace: UInt16 = 0x100
    public static let exclusive: UInt16 = 0x200
    public static let create: UInt16 = 0x400
    /// `NLM_F_ACK_TLVS` on an error message: extended-ack attributes follow.
    public static let ackTLVs: UInt16 = 0x200
    public static let noop: UInt16 = 0x1
    public static let error: UInt16 = 0x2
    public static let done: UInt16 = 0x3
    public static let overrun: UInt16 = 0x4
    /// `NLMSGERR_ATTR_MSG`: the extended ack's message string.
    public static let errorAttributeMessage: UInt16 = 1
}
