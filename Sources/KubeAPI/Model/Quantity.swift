public import Foundation

/// A resource amount as Kubernetes writes it (`100m`, `1.5Gi`, `2e3`, `128974848`), parsed exactly.
///
/// The original text is kept and written back unchanged, so a read-modify-write never reformats a quantity;
/// comparisons use the exact decimal value (`1Gi == 1073741824`).
public struct Quantity: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The text as given.
    public let text: String
    /// The exact value (computed on use: Decimal arithmetic is slow and most quantities are only carried).
    public var decimal: Decimal { Quantity.parse(text) ?? 0 }

    /// Parses a quantity.
    ///
    /// - Throws: ``KubeAPIError`` (`.invalidQuantity`) when the text is not `<number><suffix>`.
    public init(_ text: String) throws {
        guard Quantity.isWellFormed(text) else { throw KubeAPIError.invalidQuantity(text) }
        self.text = text
    }

    public init(stringLiteral value: String) {
        // A literal in code that is not a quantity is a programming error.
        try! self.init(value)
    }

    /// A whole number of units (bytes, cores).
    public init(_ value: Int64) {
        self.text = String(value)
    }

    /// A number of thousandths (millicores): `Quantity(milli: 250)` is `250m`.
    public init(milli value: Int64) {
        self.text = value % 1000 == 0 ? String(value / 1000) : "\(value)m"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Strings first: they are what the API sends, and a failed attempt costs an error value.
        let text: String
        if let string = try? container.decode(String.self) {
            text = string
        } else if let number = try? container.decode(Int64.self) {
            text = String(number)
        } else {
            text = String(try container.decode(Double.self))
        }
        guard Quantity.isWellFormed(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "quantity \"\(text)\" is not <number><suffix> (e.g. 100m, 1Gi, 2e3)")
        }
        self.text = text
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }

    public var description: String { text }

    public static func == (lhs: Quantity, rhs: Quantity) -> Bool { lhs.decimal == rhs.decimal }
    public func hash(into hasher: inout Hasher) { hasher.combine(decimal) }

    /// The value in whole units, rounded up (away from zero) as Kubernetes' `Value()` does.
    public var value: Int64 { Quantity.roundUp(decimal) }

    /// The value in thousandths, rounded up as Kubernetes' `MilliValue()` does.
    public var milliValue: Int64 { Quantity.roundUp(decimal * 1000) }

    private static func roundUp(_ value: Decimal) -> Int64 {
        var input = value
        var rounded = Decimal()
        NSDecimalRound(&rounded, &input, 0, .up)
        return (rounded as NSDecimalNumber).int64Value
    }

    private static let binarySuffixes: [String: Int] = ["Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60]
    private static let decimalSuffixes: [String: Int] = ["n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18]

    /// The grammar check alone, without Decimal arithmetic: `[+-]digits[.digits]` then a known suffix.
    static func isWellFormed(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes -> Bool in
            var index = 0
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            var digits = 0
            var sawPoint = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte >= 48, byte <= 57 {
                    digits += 1
                } else if byte == UInt8(ascii: "."), !sawPoint {
                    sawPoint = true
                } else {
                    break
                }
                index += 1
            }
            guard digits > 0 else { return false }
            let suffix = String(decoding: UnsafeBufferPointer(rebasing: bytes[index...]), as: UTF8.self)
            if binarySuffixes[suffix] != nil || decimalSuffixes[suffix] != nil { return true }
            if suffix.first == "e" || suffix.first == "E", let exponent = Int(suffix.dropFirst()), abs(exponent) <= 30 { return true }
            return false
        }
    }

    /// The exact value of `text`, or nil when it is not a quantity.
    static func parse(_ text: String) -> Decimal? {
        let bytes = Array(text.utf8)
        var index = 0
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        var mantissa = Decimal(0)
        var fractionDigits = 0
        var sawDigit = false
        var sawPoint = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte >= 48, byte <= 57 {
                mantissa = mantissa * 10 + Decimal(Int(byte - 48))
                if sawPoint { fractionDigits += 1 }
                sawDigit = true
            } else if byte == UInt8(ascii: "."), !sawPoint {
                sawPoint = true
            } else {
                break
            }
            index += 1
        }
        guard sawDigit else { return nil }
        var value = mantissa
        if fractionDigits > 0 { value = value / pow(Decimal(10), fractionDigits) }
        let suffix = String(decoding: bytes[index...], as: UTF8.self)
        if let power = binarySuffixes[suffix] {
            value *= pow(Decimal(2), power)
        } else if let exponent = decimalSuffixes[suffix] {
            value = exponent >= 0 ? value * pow(Decimal(10), exponent) : value / pow(Decimal(10), -exponent)
        } else if suffix.first == "e" || suffix.first == "E", let exponent = Int(suffix.dropFirst()), abs(exponent) <= 30 {
            value = exponent >= 0 ? value * pow(Decimal(10), exponent) : value / pow(Decimal(10), -exponent)
        } else {
            return nil
        }
        return negative ? -value : value
    }
}
