/// Heap storage for a large, usually absent field, so that the structs holding it stay small.
///
/// A `Container` with three inline `Probe`s is over a kilobyte even when it has none; boxing them keeps a
/// 10,000-pod cache near its JSON size. Encodes and decodes exactly as the wrapped value.
public final class Indirect<Value: Codable & Hashable & Sendable>: Codable, Hashable, Sendable {
    public let value: Value

    public init(_ value: Value) { self.value = value }

    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    public static func == (lhs: Indirect, rhs: Indirect) -> Bool { lhs.value == rhs.value }
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
}
