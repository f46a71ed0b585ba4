public import Foundation

/// A fast JSON decoder for the typed model, hand-written because Foundation's JSONDecoder on Linux builds a
/// dictionary with String keys for every JSON object and made a 10,000-pod LIST take seconds.
///
/// It parses a document into a flat tape of tokens (one pass, no per-value allocation), then serves `Decodable`
/// from the tape: keyed lookups scan an object's members comparing key bytes, strings and numbers are
/// materialised only when asked for. Errors are `DecodingError`s with the coding path, as JSONDecoder's.
enum TapeJSON {
    /// Decodes `T` from the JSON in `bytes`.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        let tape = try Tape(bytes)
        return try tape.decodeValue(T.self, at: 0, path: .root)
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try data.withUnsafeBytes { try decode(T.self, from: $0) }
    }
}

/// Entry points for tests of the decoder itself.
public enum ResourceCodecTesting {
    /// Decodes any `Decodable` with the decoder the typed model uses.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try TapeJSON.decode(T.self, from: data)
    }
}

/// The dotted path of the field a `DecodingError` is about (`spec.containers[0].image`).
public struct DecodingErrorPath: CustomStringConvertible {
    let error: any Error
    public init(_ error: any Error) { self.error = error }
    public var description: String { "\(DecodingErrorDescription(error))" }
}

/// The path to a value, built only when an error needs it.
indirect enum CodingPathNode {
    case root
    case key(any CodingKey, CodingPathNode)
    case index(Int, CodingPathNode)

    var keys: [any CodingKey] {
        var result: [any CodingKey] = []
        var node = self
        while true {
            switch node {
            case .root: return result.reversed()
            case .key(let key, let parent):
                result.append(key)
                node = parent
            case .index(let index, let parent):
                result.append(IndexKey(intValue: index))
                node = parent
            }
        }
    }
}

struct IndexKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(intValue: Int) {
        self.intValue = intValue
        self.stringValue = "Index \(intValue)"
    }
    init?(stringValue: String) { nil }
}

/// The tokens of one JSON document and a copy of its bytes.
final class Tape {
    enum Kind: UInt8 {
        case objectStart, objectEnd, arrayStart, arrayEnd, string, number, trueValue, falseValue, null
    }

    struct Token {
        var kind: Kind
        /// A string with backslash escapes (needs unescaping).
        var escaped: Bool
        /// Byte range of the token (strings: between the quotes).
        var start: Int32
        var end: Int32
        /// The index of the token after this value (after the matching end for containers).
        var next: Int32
    }

    /// The document's bytes, borrowed: a tape lives only inside ``TapeJSON/decode(_:from:)``, which does not
    /// return before decoding is done, and decoded values copy what they keep.
    let bytes: UnsafeBufferPointer<UInt8>
    /// Immutable after parsing, so reads need no exclusivity checks.
    let tokens: [Token]

    init(_ source: UnsafeRawBufferPointer) throws {
        bytes = source.bindMemory(to: UInt8.self)
        guard source.count < Int(Int32.max) else { throw Tape.corrupted("document larger than 2 GiB") }
        var tokens: [Token] = []
        tokens.reserveCapacity(source.count / 6 + 4)
        try Tape.parse(bytes, count: source.count, into: &tokens)
        self.tokens = tokens
    }

    static func corrupted(_ message: String, path: @autoclosure () -> CodingPathNode = .root) -> DecodingError {
        DecodingError.dataCorrupted(DecodingError.Context(codingPath: path().keys, debugDescription: message))
    }

    // MARK: Parsing

    private enum Expect { case value, keyOrEnd, key, colon, commaOrObjectEnd, valueOrArrayEnd, commaOrArrayEnd, done }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>, count: Int, into tokens: inout [Token]) throws {
        var index = 0
        var stack: [Int] = []  // token indices of open containers
        var expect = Expect.value
        func afterValue() {
            guard let open = stack.last else {
                expect = .done
                return
            }
            expect = tokens[open].kind == .objectStart ? .commaOrObjectEnd : .commaOrArrayEnd
        }
        func fail(_ what: String) -> DecodingError { Tape.corrupted("invalid JSON at byte \(index): \(what)") }
        while index < count {
            let byte = bytes[index]
            switch byte {
            case 0x20, 0x0A, 0x0D, 0x09:
                index += 1
                continue
            default:
                break
            }
            switch expect {
            case .done:
                throw fail("unexpected data after the document")
            case .colon:
                guard byte == UInt8(ascii: ":") else { throw fail("expected ':'") }
                index += 1
                expect = .value
                continue
            case .commaOrObjectEnd:
                if byte == UInt8(ascii: ",") {
                    index += 1
                    expect = .key
                    continue
                }
                guard byte == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            case .commaOrArrayEnd:
                if byte == UInt8(ascii: ",") {
                    index += 1
                    expect = .value
                    continue
                }
                guard byte == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
            case .key, .keyOrEnd:
                if byte == UInt8(ascii: "}"), expect == .keyOrEnd { break }
                guard byte == UInt8(ascii: "\"") else { throw fail("expected a key") }
            case .valueOrArrayEnd:
                if byte == UInt8(ascii: "]") { break }
            case .value:
                if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") { throw fail("expected a value") }
            }
            let tokenIndex = tokens.count
            switch byte {
            case UInt8(ascii: "{"):
                tokens.append(Token(kind: .objectStart, escaped: false, start: Int32(index), end: Int32(index + 1), next: 0))
                stack.append(tokenIndex)
                expect = .keyOrEnd
                index += 1
            case UInt8(ascii: "["):
                tokens.append(Token(kind: .arrayStart, escaped: false, start: Int32(index), end: Int32(index + 1), next: 0))
                stack.append(tokenIndex)
                expect = .valueOrArrayEnd
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard let open = stack.popLast() else { throw fail("unbalanced bracket") }
                let isObject = byte == UInt8(ascii: "}")
                guard tokens[open].kind == (isObject ? .objectStart : .arrayStart) else { throw fail("mismatched bracket") }
                tokens.append(Token(kind: isObject ? .objectEnd : .arrayEnd, escaped: false, start: Int32(index), end: Int32(index + 1), next: Int32(tokenIndex + 1)))
                tokens[open].next = Int32(tokenIndex + 1)
                index += 1
                afterValue()
            case UInt8(ascii: "\""):
                let start = index + 1
                var cursor = start
                var escaped = false
                while cursor < count {
                    let current = bytes[cursor]
                    if current == UInt8(ascii: "\\") {
                        escaped = true
                        cursor += 2
                        continue
                    }
                    if current == UInt8(ascii: "\"") { break }
                    if current < 0x20 { throw fail("control character in a string") }
                    cursor += 1
                }
                guard cursor < count else { throw fail("unterminated string") }
                tokens.append(Token(kind: .string, escaped: escaped, start: Int32(start), end: Int32(cursor), next: Int32(tokenIndex + 1)))
                index = cursor + 1
                if expect == .key || expect == .keyOrEnd {
                    expect = .colon
                } else {
                    afterValue()
                }
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                let literal: (String, Kind) = byte == UInt8(ascii: "t") ? ("true", .trueValue) : byte == UInt8(ascii: "f") ? ("false", .falseValue) : ("null", .null)
                let length = literal.0.utf8.count
                guard index + length <= count, zip(literal.0.utf8, bytes[index..<(index + length)]).allSatisfy({ $0 == $1 }) else {
                    throw fail("invalid literal")
                }
                tokens.append(Token(kind: literal.1, escaped: false, start: Int32(index), end: Int32(index + length), next: Int32(tokenIndex + 1)))
                index += length
                afterValue()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = index
                index += 1
                while index < count {
                    let current = bytes[index]
                    if (current >= 48 && current <= 57) || current == UInt8(ascii: ".") || current == UInt8(ascii: "e") || current == UInt8(ascii: "E")
                        || current == UInt8(ascii: "+") || current == UInt8(ascii: "-")
                    {
                        index += 1
                    } else {
                        break
                    }
                }
                tokens.append(Token(kind: .number, escaped: false, start: Int32(start), end: Int32(index), next: Int32(tokenIndex + 1)))
                afterValue()
            default:
                throw fail("unexpected character")
            }
        }
        guard stack.isEmpty, expect == .done else { throw Tape.corrupted("invalid JSON: the document ends early") }
    }

    // MARK: Reading values

    func kindName(_ index: Int) -> String {
        switch tokens[index].kind {
        case .objectStart: "an object"
        case .arrayStart: "an array"
        case .string: "a string"
        case .number: "a number"
        case .trueValue, .falseValue: "a boolean"
        case .null: "null"
        case .objectEnd, .arrayEnd: "the end of a container"
        }
    }

    func mismatch(_ type: Any.Type, _ index: Int, _ path: @autoclosure () -> CodingPathNode) -> DecodingError {
        DecodingError.typeMismatch(
            type, DecodingError.Context(codingPath: path().keys, debugDescription: "Expected to decode \(type) but found \(kindName(index)) instead."))
    }

    func string(at index: Int, path: @autoclosure () -> CodingPathNode) throws -> String {
        let token = tokens[index]
        guard token.kind == .string else { throw mismatch(String.self, index, path()) }
        let range = Int(token.start)..<Int(token.end)
        if !token.escaped {
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }
        return try unescape(range, path: path())
    }

    private func unescape(_ range: Range<Int>, path: @autoclosure () -> CodingPathNode) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var index = range.lowerBound
        func hex4(_ at: Int) throws -> UInt32 {
            guard at + 4 <= range.upperBound else { throw Tape.corrupted("truncated \\u escape", path: path()) }
            var value: UInt32 = 0
            for byte in bytes[at..<(at + 4)] {
                value <<= 4
                switch byte {
                case 48...57: value |= UInt32(byte - 48)
                case 65...70: value |= UInt32(byte - 55)
                case 97...102: value |= UInt32(byte - 87)
                default: throw Tape.corrupted("invalid \\u escape", path: path())
                }
            }
            return value
        }
        while index < range.upperBound {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            guard index + 1 < range.upperBound else { throw Tape.corrupted("truncated escape", path: path()) }
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(index)
                index += 4
                if (0xD800..<0xDC00).contains(scalar), index + 6 <= range.upperBound, bytes[index] == UInt8(ascii: "\\"),
                    bytes[index + 1] == UInt8(ascii: "u")
                {
                    let low = try hex4(index + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    }
                }
                let character = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(character).utf8))
            default:
                throw Tape.corrupted("invalid escape \\\(Character(Unicode.Scalar(escape)))", path: path())
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    func bool(at index: Int, path: @autoclosure () -> CodingPathNode) throws -> Bool {
        switch tokens[index].kind {
        case .trueValue: return true
        case .falseValue: return false
        default: throw mismatch(Bool.self, index, path())
        }
    }

    func integer<I: FixedWidthInteger>(_ type: I.Type, at index: Int, path: @autoclosure () -> CodingPathNode) throws -> I {
        let token = tokens[index]
        guard token.kind == .number else { throw mismatch(I.self, index, path()) }
        var cursor = Int(token.start)
        let end = Int(token.end)
        var negative = false
        if bytes[cursor] == UInt8(ascii: "-") {
            negative = true
            cursor += 1
        }
        var value: I = 0
        var exact = true
        while cursor < end {
            let byte = bytes[cursor]
            guard byte >= 48, byte <= 57 else {
                exact = false
                break
            }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let digit = I(byte - 48)
            let (next, overflow2) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            if overflow1 || overflow2 {
                throw DecodingError.dataCorrupted(
                    DecodingError.Context(codingPath: path().keys, debugDescription: "Number \(text(token)) does not fit in \(I.self)."))
            }
            value = next
            cursor += 1
        }
        if exact { return value }
        // 1.0 or 1e3: accept when exactly integral, as JSONDecoder does.
        let double = try self.double(at: index, path: path())
        guard let converted = I(exactly: double) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: path().keys, debugDescription: "Number \(text(token)) is not representable as \(I.self)."))
        }
        return converted
    }

    private func text(_ token: Token) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[Int(token.start)..<Int(token.end)]), as: UTF8.self)
    }

    func double(at index: Int, path: @autoclosure () -> CodingPathNode) throws -> Double {
        let token = tokens[index]
        guard token.kind == .number else { throw mismatch(Double.self, index, path()) }
        guard let value = Double(text(token)) else {
            throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: path().keys, debugDescription: "Invalid number \(text(token))."))
        }
        return value
    }

    /// Decodes any `Decodable` at a token, with fast paths for the common leaf types.
    func decodeValue<T: Decodable>(_ type: T.Type, at index: Int, path: @autoclosure () -> CodingPathNode) throws -> T {
        if T.self == String.self { return try string(at: index, path: path()) as! T }
        if T.self == Int.self { return try integer(Int.self, at: index, path: path()) as! T }
        if T.self == Int32.self { return try integer(Int32.self, at: index, path: path()) as! T }
        if T.self == Int64.self { return try integer(Int64.self, at: index, path: path()) as! T }
        if T.self == Bool.self { return try bool(at: index, path: path()) as! T }
        if T.self == Double.self { return try double(at: index, path: path()) as! T }
        if T.self == Data.self {
            let text = try string(at: index, path: path())
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: path().keys, debugDescription: "Encountered Data is not valid Base64."))
            }
            return data as! T
        }
        return try T(from: TapeDecoder(tape: self, index: index, path: path()))
    }

    /// The token index of member `key`'s value in the object at `object`, or nil.
    func member(_ key: String, in object: Int) -> Int? {
        var key = key
        return key.withUTF8 { wanted -> Int? in
            var index = object + 1
            while tokens[index].kind != .objectEnd {
                let token = tokens[index]
                let length = Int(token.end - token.start)
                if token.escaped {
                    if (try? string(at: index, path: .root))?.utf8.elementsEqual(wanted) == true { return index + 1 }
                } else if length == wanted.count,
                    memcmp(bytes.baseAddress! + Int(token.start), wanted.baseAddress!, length) == 0
                {
                    return index + 1
                }
                index = Int(tokens[index + 1].next)
            }
            return nil
        }
    }
}

struct TapeDecoder: Decoder {
    let tape: Tape
    let index: Int
    let path: CodingPathNode

    var codingPath: [any CodingKey] { path.keys }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard tape.tokens[index].kind == .objectStart else { throw tape.mismatch([String: Any].self, index, path) }
        return KeyedDecodingContainer(TapeKeyedContainer<Key>(tape: tape, object: index, path: path))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard tape.tokens[index].kind == .arrayStart else { throw tape.mismatch([Any].self, index, path) }
        return TapeUnkeyedContainer(tape: tape, array: index, path: path)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        TapeSingleValueContainer(tape: tape, index: index, path: path)
    }
}

struct TapeKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let tape: Tape
    let object: Int
    let path: CodingPathNode

    var codingPath: [any CodingKey] { path.keys }

    var allKeys: [Key] {
        var keys: [Key] = []
        var index = object + 1
        while tape.tokens[index].kind != .objectEnd {
            if let name = try? tape.string(at: index, path: path), let key = Key(stringValue: name) { keys.append(key) }
            index = Int(tape.tokens[index + 1].next)
        }
        return keys
    }

    func contains(_ key: Key) -> Bool { tape.member(key.stringValue, in: object) != nil }

    private func value(_ key: Key) throws -> Int {
        guard let index = tape.member(key.stringValue, in: object) else {
            throw DecodingError.keyNotFound(
                key, DecodingError.Context(codingPath: path.keys, debugDescription: "No value associated with key \(key.stringValue)."))
        }
        return index
    }

    /// The value's index when present and not null.
    private func present(_ key: Key) -> Int? {
        guard let index = tape.member(key.stringValue, in: object), tape.tokens[index].kind != .null else { return nil }
        return index
    }

    func decodeNil(forKey key: Key) throws -> Bool { tape.tokens[try value(key)].kind == .null }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let index = try value(key)
        if tape.tokens[index].kind == .null, !(T.self is any OptionalDecodable.Type) {
            throw DecodingError.valueNotFound(
                T.self, DecodingError.Context(codingPath: CodingPathNode.key(key, path).keys, debugDescription: "Found null for \(key.stringValue)."))
        }
        return try tape.decodeValue(T.self, at: index, path: .key(key, path))
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let index = present(key) else { return nil }
        return try tape.decodeValue(T.self, at: index, path: .key(key, path))
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String { try tape.string(at: try value(key), path: .key(key, path)) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try tape.bool(at: try value(key), path: .key(key, path)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try tape.double(at: try value(key), path: .key(key, path)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try tape.double(at: try value(key), path: .key(key, path))) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try tape.integer(Int.self, at: try value(key), path: .key(key, path)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try tape.integer(Int8.self, at: try value(key), path: .key(key, path)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try tape.integer(Int16.self, at: try value(key), path: .key(key, path)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try tape.integer(Int32.self, at: try value(key), path: .key(key, path)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try tape.integer(Int64.self, at: try value(key), path: .key(key, path)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try tape.integer(UInt.self, at: try value(key), path: .key(key, path)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try tape.integer(UInt8.self, at: try value(key), path: .key(key, path)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try tape.integer(UInt16.self, at: try value(key), path: .key(key, path)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try tape.integer(UInt32.self, at: try value(key), path: .key(key, path)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try tape.integer(UInt64.self, at: try value(key), path: .key(key, path)) }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        try present(key).map { try tape.string(at: $0, path: .key(key, path)) }
    }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        try present(key).map { try tape.bool(at: $0, path: .key(key, path)) }
    }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        try present(key).map { try tape.double(at: $0, path: .key(key, path)) }
    }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        try present(key).map { try tape.integer(Int.self, at: $0, path: .key(key, path)) }
    }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? {
        try present(key).map { try tape.integer(Int32.self, at: $0, path: .key(key, path)) }
    }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? {
        try present(key).map { try tape.integer(Int64.self, at: $0, path: .key(key, path)) }
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try TapeDecoder(tape: tape, index: try value(key), path: .key(key, path)).container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try TapeDecoder(tape: tape, index: try value(key), path: .key(key, path)).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { TapeDecoder(tape: tape, index: object, path: path) }

    func superDecoder(forKey key: Key) throws -> any Decoder { TapeDecoder(tape: tape, index: try value(key), path: .key(key, path)) }
}

/// Lets `decode(_:forKey:)` accept null for Optional types, as JSONDecoder does.
protocol OptionalDecodable {}
extension Optional: OptionalDecodable {}

struct TapeUnkeyedContainer: UnkeyedDecodingContainer {
    let tape: Tape
    let array: Int
    let path: CodingPathNode
    var cursor: Int
    var currentIndex = 0
    let count: Int?

    init(tape: Tape, array: Int, path: CodingPathNode) {
        self.tape = tape
        self.array = array
        self.path = path
        cursor = array + 1
        var count = 0
        var index = array + 1
        while tape.tokens[index].kind != .arrayEnd {
            count += 1
            index = Int(tape.tokens[index].next)
        }
        self.count = count
    }

    var codingPath: [any CodingKey] { path.keys }
    var isAtEnd: Bool { tape.tokens[cursor].kind == .arrayEnd }

    private mutating func advance() throws -> (Int, CodingPathNode) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                Any.self, DecodingError.Context(codingPath: path.keys, debugDescription: "Unkeyed container is at end."))
        }
        let index = cursor
        let elementPath = CodingPathNode.index(currentIndex, path)
        cursor = Int(tape.tokens[cursor].next)
        currentIndex += 1
        return (index, elementPath)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, tape.tokens[cursor].kind == .null else { return false }
        _ = try advance()
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (index, elementPath) = try advance()
        return try tape.decodeValue(T.self, at: index, path: elementPath)
    }

    mutating func decode(_ type: String.Type) throws -> String {
        let (index, elementPath) = try advance()
        return try tape.string(at: index, path: elementPath)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (index, elementPath) = try advance()
        return try TapeDecoder(tape: tape, index: index, path: elementPath).container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (index, elementPath) = try advance()
        return try TapeDecoder(tape: tape, index: index, path: elementPath).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (index, elementPath) = try advance()
        return TapeDecoder(tape: tape, index: index, path: elementPath)
    }
}

struct TapeSingleValueContainer: SingleValueDecodingContainer {
    let tape: Tape
    let index: Int
    let path: CodingPathNode

    var codingPath: [any CodingKey] { path.keys }

    func decodeNil() -> Bool { tape.tokens[index].kind == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try tape.bool(at: index, path: path) }
    func decode(_ type: String.Type) throws -> String { try tape.string(at: index, path: path) }
    func decode(_ type: Double.Type) throws -> Double { try tape.double(at: index, path: path) }
    func decode(_ type: Float.Type) throws -> Float { Float(try tape.double(at: index, path: path)) }
    func decode(_ type: Int.Type) throws -> Int { try tape.integer(Int.self, at: index, path: path) }
    func decode(_ type: Int8.Type) throws -> Int8 { try tape.integer(Int8.self, at: index, path: path) }
    func decode(_ type: Int16.Type) throws -> Int16 { try tape.integer(Int16.self, at: index, path: path) }
    func decode(_ type: Int32.Type) throws -> Int32 { try tape.integer(Int32.self, at: index, path: path) }
    func decode(_ type: Int64.Type) throws -> Int64 { try tape.integer(Int64.self, at: index, path: path) }
    func decode(_ type: UInt.Type) throws -> UInt { try tape.integer(UInt.self, at: index, path: path) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try tape.integer(UInt8.self, at: index, path: path) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try tape.integer(UInt16.self, at: index, path: path) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try tape.integer(UInt32.self, at: index, path: path) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try tape.integer(UInt64.self, at: index, path: path) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try tape.decodeValue(T.self, at: index, path: path) }
}
