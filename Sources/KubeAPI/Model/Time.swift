public import Foundation

/// A point in time as the API writes it: RFC 3339 (`2024-05-01T10:00:00Z`), seconds precision when
/// encoded (`metav1.Time`); any fraction and offset are accepted when decoded.
public struct KubeTime: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var date: Date

    public init(_ date: Date) { self.date = date }

    public static func now() -> KubeTime { KubeTime(Date()) }

    public static func < (lhs: KubeTime, rhs: KubeTime) -> Bool { lhs.date < rhs.date }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 time: \(text)")
        }
        self.date = date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(RFC3339.format(date, fractionDigits: 0))
    }

    public var description: String { RFC3339.format(date, fractionDigits: 0) }
}

/// A point in time with microseconds (`metav1.MicroTime`): Lease `renewTime`/`acquireTime`, Event `eventTime`.
public struct MicroTime: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var date: Date

    public init(_ date: Date) { self.date = date }

    public static func now() -> MicroTime { MicroTime(Date()) }

    public static func < (lhs: MicroTime, rhs: MicroTime) -> Bool { lhs.date < rhs.date }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 time: \(text)")
        }
        self.date = date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(RFC3339.format(date, fractionDigits: 6))
    }

    public var description: String { RFC3339.format(date, fractionDigits: 6) }
}
