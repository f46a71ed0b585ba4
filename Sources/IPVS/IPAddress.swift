/// An IPv4 or IPv6 address, as the kernel carries it (4 or 16 bytes, network order).
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible, LosslessStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    /// Parses dotted-quad IPv4 or any textual IPv6 form; nil when `text` is neither.
    public init?(_ text: String) {
        guard let bytes = Mnl.parseAddress(text) else { return nil }
        self.bytes = bytes
    }

    /// An address from its 4 or 16 raw bytes; nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public var family: AddressFamily { bytes.count == 4 ? .inet : .inet6 }

    /// The address as the kernel's `union nf_inet_addr`: 16 bytes, IPv4 in the first four, zeros after.
    public var unionBytes: [UInt8] { bytes.count == 16 ? bytes : bytes + [UInt8](repeating: 0, count: 12) }

    /// Reads `union nf_inet_addr` for `family`.
    init?(unionBytes: [UInt8], family: AddressFamily) {
        switch family {
        case .inet where unionBytes.count >= 4: bytes = Array(unionBytes[0..<4])
        case .inet6 where unionBytes.count >= 16: bytes = Array(unionBytes[0..<16])
        default: return nil
        }
    }

    /// The full-length prefix for this family: 32 or 128.
    public var hostPrefixLength: UInt8 { bytes.count == 4 ? 32 : 128 }

    public var description: String { Mnl.formatAddress(bytes) }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        lhs.bytes.count != rhs.bytes.count ? lhs.bytes.count < rhs.bytes.count : lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}

/// An address family as the kernel numbers it.
public enum AddressFamily: UInt16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case inet = 2
    case inet6 = 10

    public var description: String { self == .inet ? "IPv4" : "IPv6" }
}
