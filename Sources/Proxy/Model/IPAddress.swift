#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP family, as Kubernetes names it.
public enum IPFamily: String, Sendable, Hashable, CaseIterable, Codable {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"
}

/// A parsed IPv4 or IPv6 address in canonical text form (`10.0.0.1`, `fd00::1`).
public struct IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let family: IPFamily
    /// Canonical text (inet_ntop), so equal addresses compare equal whatever their spelling.
    public let text: String
    /// Network-order bytes (4 or 16).
    public let bytes: [UInt8]

    /// Parses `string`; nil when it is not an IP address.
    public init?(_ string: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, string, &v4) == 1 {
            family = .ipv4
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else {
            var v6 = in6_addr()
            guard inet_pton(AF_INET6, string, &v6) == 1 else { return nil }
            family = .ipv6
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let af = family == .ipv4 ? AF_INET : AF_INET6
        let raw = bytes
        raw.withUnsafeBytes { source in
            _ = inet_ntop(af, source.baseAddress, &buffer, socklen_t(buffer.count))
        }
        text = String(cString: buffer)
    }

    public var description: String { text }

    /// True for 127.0.0.0/8 and ::1.
    public var isLoopback: Bool {
        family == .ipv4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.family != rhs.family { return lhs.family == .ipv4 }
        return lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}

/// An address prefix such as `10.244.0.0/16`.
public struct IPPrefix: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    /// Parses `10.244.0.0/16`; nil when malformed or the length exceeds the family's width.
    public init?(_ string: String) {
        let parts = string.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, let address = IPAddress(String(parts[0])), let length = Int(parts[1]),
            length >= 0, length <= address.bytes.count * 8
        else { return nil }
        self.address = address
        self.length = length
    }

    public var family: IPFamily { address.family }
    public var description: String { "\(address.text)/\(length)" }

    public func contains(_ other: IPAddress) -> Bool {
        guard other.family == address.family else { return false }
        var remaining = length
        for index in 0..<address.bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if address.bytes[index] & mask != other.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }
}
