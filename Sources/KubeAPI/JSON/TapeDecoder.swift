public import Foundation

/// A fast JSON decoder for the typed model, hand-written because Foundation's JSONDecoder on Linux builds a
/// dictionary with String keys for every JSON object and made a 10,000-pod LIST take seconds.
///
/// It parses a document into a flat tape of tokens (one pass, no per-value allocation), then serves `Decodable`
/// from the tape: keyed lookups scan an object's members comparing a 16-bit key hash first and resume where the
/// previous lookup in the same object ended (Go and Swift both keep declaration order), strings and numbers are
/// materialised only when asked for. The decoders and containers hold only the tape and a token index: the coding
/// path of an error is rebuilt from the tape when one is thrown. Errors are `DecodingError`s with the coding path,
/// as JSONDecoder's.
enum TapeJSON {
    /// Decodes `T` from the JSON in `bytes`.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        let tape = try Tape(bytes)
        return try withExtendedLifetime(tape) { try tape.decodeValue(T.self, at: 0) }
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try data.withUnsafeBytes { try decode(T.self, from: $0) }
    }

    /// Decodes `T` from the one JSON value that starts at byte `start` of `bytes` (whitespace before it allowed)
    /// and returns it with the index just past the value, so a caller can walk a large array item by item without
    /// a separate pass to find where each item ends.
    ///
    /// - Parameter interner: shares the storage of equal long strings across the values decoded with it.
    static func decodeValue<T: Decodable>(
        _ type: T.Type, in bytes: UnsafeRawBufferPointer, at start: Int, interner: StringInterner? = nil
    ) throws -> (value: T, range: Range<Int>) {
        let tape = try Tape(bytes, valueAt: start, interner: interner)
        let value = try withExtendedLifetime(tape) { try tape.decodeValue(T.self, at: 0) }
        let first = tape.tokens[0]
        return (value, (first.kind == .string ? Int(first.start) - 1 : Int(first.start))..<tape.end)
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

/// A member name in a coding path rebuilt from the tape.
struct TapeKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// An array position in a coding path.
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
        /// For an object's member names: ``Tape/keyHash(_:_:)`` of the raw name, 0 when it has escapes.
        var keyHash: UInt16 = 0
        /// Byte range of the token (strings: between the quotes).
        var start: Int32
        var end: Int32
        /// The index of the token after this value (after the matching end for containers).
        var next: Int32
    }

    /// The document's bytes, borrowed: a tape lives only inside ``TapeJSON``'s decode calls, which do not
    /// return before decoding is done, and decoded values copy what they keep.
    let bytes: UnsafeBufferPointer<UInt8>
    /// Immutable after parsing, so reads need no exclusivity checks.
    let tokens: [Token]
    /// The index just past the parsed value.
    let end: Int
    /// Per object (indexed by its start token): the member-name token where the next lookup starts scanning.
    /// 0 means the first member. Decoding asks for members mostly in the order the document has them.
    private let hints: UnsafeMutablePointer<Int32>
    /// Where long unescaped strings are looked up before a new one is made.
    private let interner: StringInterner?
    /// The token that coding paths start from: 0, or the value inside an envelope (a watch event's object) so
    /// that errors name the field as the object's own.
    var pathRoot = 0

    /// Parses the whole of `source` as one JSON document.
    convenience init(_ source: UnsafeRawBufferPointer) throws {
        try self.init(source, start: 0, wholeDocument: true)
    }

    /// Parses the one value that starts at `start` (after optional whitespace); bytes after it are not read.
    convenience init(_ source: UnsafeRawBufferPointer, valueAt start: Int, interner: StringInterner? = nil) throws {
        try self.init(source, start: start, wholeDocument: false, interner: interner)
    }

    private init(_ source: UnsafeRawBufferPointer, start: Int, wholeDocument: Bool, interner: StringInterner? = nil) throws {
        bytes = source.bindMemory(to: UInt8.self)
        self.interner = interner
        guard source.count < Int(Int32.max) else { throw Tape.corrupted("document larger than 2 GiB") }
        var tokens: [Token] = []
        tokens.reserveCapacity(wholeDocument ? source.count / 6 + 4 : 1024)
        end = try Tape.parse(bytes, from: start, count: source.count, wholeDocument: wholeDocument, into: &tokens)
        self.tokens = tokens
        hints = .allocate(capacity: tokens.count)
        hints.initialize(repeating: 0, count: tokens.count)
    }

    deinit { hints.deallocate() }

    static func corrupted(_ message: String, codingPath: [any CodingKey] = []) -> DecodingError {
        DecodingError.dataCorrupted(DecodingError.Context(codingPath: codingPath, debugDescription: message))
    }

    /// A cheap fingerprint of a member name compared before its bytes: length, and its middle and last bytes.
    @inline(__always)
    static func keyHash(_ base: UnsafePointer<UInt8>, _ count: Int) -> UInt16 {
        guard count > 0 else { return 0x8000 }
        return 0x8000 | UInt16(count & 0x7F) << 8 | UInt16(base[count >> 1] &+ base[count - 1] &* 3)
    }

    /// A bit set in the high bit of each byte of `word` that is a quote, a backslash or a control character.
    /// The lowest set bit is exact (the borrow of the zero-byte test only spills into higher bytes).
    @inline(__always)
    static func specialBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let quoteZero = (quote &- ones) & ~quote
        let backslashZero = (backslash &- ones) & ~backslash
        let control = (word &- ones &* 0x20) & ~word
        return (quoteZero | backslashZero | control) & highs
    }

    /// The index of the first quote, backslash or control byte at or after `index`, scanning eight bytes at a
    /// time; stops short (at most seven bytes before `count`) where fewer than eight remain, for the caller's
    /// byte-by-byte loop to finish.
    @inline(__always)
    static func skipPlainStringBytes(_ base: UnsafePointer<UInt8>, from index: Int, count: Int) -> Int {
        var index = index
        while index &+ 8 <= count {
            let special = specialBytes(UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self).littleEndian)
            if special != 0 { return index &+ special.trailingZeroBitCount >> 3 }
            index &+= 8
        }
        return index
    }

    // MARK: Parsing

    private enum Expect { case value, keyOrEnd, key, colon, commaOrObjectEnd, valueOrArrayEnd, commaOrArrayEnd, done }

    /// Tokenises the value at `start`; with `wholeDocument`, anything but whitespace after it is an error.
    /// Returns the index just past the value.
    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, count: Int, wholeDocument: Bool, into tokens: inout [Token]) throws -> Int {
        let base = bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!
        var index = start
        var stack: [Int] = []  // token indices of open containers
        stack.reserveCapacity(16)
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
            if !wholeDocument, expect == .done { return index }
            let byte = base[index]
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
                scan: while true {
                    cursor = skipPlainStringBytes(base, from: cursor, count: count)
                    guard cursor < count else { throw fail("unterminated string") }
                    switch base[cursor] {
                    case UInt8(ascii: "\\"):
                        escaped = true
                        cursor += 2
                    case UInt8(ascii: "\""):
                        break scan
                    case 0..<0x20:
                        throw fail("control character in a string")
                    default:
                        cursor += 1
                    }
                }
                let isKey = expect == .key || expect == .keyOrEnd
                let hash = isKey && !escaped ? keyHash(base + start, cursor - start) : 0
                tokens.append(Token(kind: .string, escaped: escaped, keyHash: hash, start: Int32(start), end: Int32(cursor), next: Int32(tokenIndex + 1)))
                index = cursor + 1
                if isKey {
                    expect = .colon
                } else {
                    afterValue()
                }
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                let literal: (StaticString, Kind) = byte == UInt8(ascii: "t") ? ("true", .trueValue) : byte == UInt8(ascii: "f") ? ("false", .falseValue) : ("null", .null)
                let length = literal.0.utf8CodeUnitCount
                guard index + length <= count, memcmp(base + index, literal.0.utf8Start, length) == 0 else {
                    throw fail("invalid literal")
                }
                tokens.append(Token(kind: literal.1, escaped: false, start: Int32(index), end: Int32(index + length), next: Int32(tokenIndex + 1)))
                index += length
                afterValue()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = index
                index += 1
                while index < count {
                    let current = base[index]
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
        return index
    }

    // MARK: Coding paths

    /// The coding path from the root to the value at token `target`, rebuilt from the document's member names
    /// and array positions (only errors need it, so decoding does not carry one).
    func codingPath(to target: Int) -> [any CodingKey] {
        var path: [any CodingKey] = []
        var current = target >= pathRoot && target < Int(tokens[pathRoot].next) ? pathRoot : 0
        while current != target {
            let kind = tokens[current].kind
            guard kind == .objectStart || kind == .arrayStart else { break }
            var index = current + 1
            var position = 0
            var found = false
            while tokens[index].kind != .objectEnd, tokens[index].kind != .arrayEnd {
                let value = kind == .objectStart ? index + 1 : index
                let next = Int(tokens[value].next)
                if target >= value, target < next {
                    if kind == .objectStart {
                        path.append(TapeKey(stringValue: (try? string(at: index)) ?? ""))
                    } else {
                        path.append(IndexKey(intValue: position))
                    }
                    current = value
                    found = true
                    break
                }
                index = next
                position += 1
            }
            guard found else { break }
        }
        return path
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

    func mismatch(_ type: Any.Type, _ index: Int) -> DecodingError {
        DecodingError.typeMismatch(
            type, DecodingError.Context(codingPath: codingPath(to: index), debugDescription: "Expected to decode \(type) but found \(kindName(index)) instead."))
    }

    func string(at index: Int) throws -> String {
        let token = tokens[index]
        guard token.kind == .string else { throw mismatch(String.self, index) }
        let range = Int(token.start)..<Int(token.end)
        if !token.escaped {
            if let interner, range.count > StringInterner.smallStringLength {
                return interner.string(bytes.baseAddress! + range.lowerBound, count: range.count)
            }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }
        return try unescape(range, at: index)
    }

    private func unescape(_ range: Range<Int>, at token: Int) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var index = range.lowerBound
        func hex4(_ at: Int) throws -> UInt32 {
            guard at + 4 <= range.upperBound else { throw Tape.corrupted("truncated \\u escape", codingPath: codingPath(to: token)) }
            var value: UInt32 = 0
            for byte in bytes[at..<(at + 4)] {
                value <<= 4
                switch byte {
                case 48...57: value |= UInt32(byte - 48)
                case 65...70: value |= UInt32(byte - 55)
                case 97...102: value |= UInt32(byte - 87)
                default: throw Tape.corrupted("invalid \\u escape", codingPath: codingPath(to: token))
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
            guard index + 1 < range.upperBound else { throw Tape.corrupted("truncated escape", codingPath: codingPath(to: token)) }
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
                throw Tape.corrupted("invalid escape \\\(Character(Unicode.Scalar(escape)))", codingPath: codingPath(to: token))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    func bool(at index: Int) throws -> Bool {
        switch tokens[index].kind {
        case .trueValue: return true
        case .falseValue: return false
        default: throw mismatch(Bool.self, index)
        }
    }

    func integer<I: FixedWidthInteger>(_ type: I.Type, at index: Int) throws -> I {
        let token = tokens[index]
        guard token.kind == .number else { throw mismatch(I.self, index) }
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
                    DecodingError.Context(codingPath: codingPath(to: index), debugDescription: "Number \(text(token)) does not fit in \(I.self)."))
            }
            value = next
            cursor += 1
        }
        if exact { return value }
        // 1.0 or 1e3: accept when exactly integral, as JSONDecoder does.
        let double = try self.double(at: index)
        guard let converted = I(exactly: double) else {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(codingPath: codingPath(to: index), debugDescription: "Number \(text(token)) is not representable as \(I.self)."))
        }
        return converted
    }

    private func text(_ token: Token) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[Int(token.start)..<Int(token.end)]), as: UTF8.self)
    }

    func double(at index: Int) throws -> Double {
        let token = tokens[index]
        guard token.kind == .number else { throw mismatch(Double.self, index) }
        guard let value = Double(text(token)) else {
            throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: codingPath(to: index), debugDescription: "Invalid number \(text(token))."))
        }
        return value
    }

    /// Decodes any `Decodable` at a token, with fast paths for the common leaf types.
    func decodeValue<T: Decodable>(_ type: T.Type, at index: Int) throws -> T {
        if T.self == String.self { return try string(at: index) as! T }
        if T.self == JSONValue.self { return try jsonValue(at: index) as! T }
        if T.self == Int.self { return try integer(Int.self, at: index) as! T }
        if T.self == Int32.self { return try integer(Int32.self, at: index) as! T }
        if T.self == Int64.self { return try integer(Int64.self, at: index) as! T }
        if T.self == Bool.self { return try bool(at: index) as! T }
        if T.self == Double.self { return try double(at: index) as! T }
        if T.self == Data.self {
            let text = try string(at: index)
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorrupted(
                    DecodingError.Context(codingPath: codingPath(to: index), debugDescription: "Encountered Data is not valid Base64."))
            }
            return data as! T
        }
        // Arrays and string-keyed dictionaries are built at their final size: the standard library's
        // `init(from:)` appends one element at a time, and the regrowth left a 10,000-pod list holding about a
        // tenth more memory than it needed. Checked only where the JSON has an array or an object, so other
        // types pay nothing.
        switch tokens[index].kind {
        case .arrayStart:
            if let arrayType = T.self as? any TapeSizedArray.Type { return try arrayType.init(tape: self, array: index) as! T }
        case .objectStart:
            if let dictionaryType = T.self as? any TapeSizedDictionary.Type { return try dictionaryType.init(tape: self, object: index) as! T }
        default:
            break
        }
        return try T(from: TapeDecoder(tape: self, index: index))
    }

    /// The value at `index` as a ``JSONValue``, built from the tokens. (`JSONValue.init(from:)` probes Bool, Int64,
    /// Double, String and array in turn and pays a thrown `DecodingError` for each miss: five for every object.)
    /// Numbers are integers when they are exactly integral and fit in Int64, as through `init(from:)`.
    func jsonValue(at index: Int) throws -> JSONValue {
        switch tokens[index].kind {
        case .null:
            return .null
        case .trueValue:
            return .bool(true)
        case .falseValue:
            return .bool(false)
        case .string:
            return .string(try string(at: index))
        case .number:
            if let value = try? integer(Int64.self, at: index) { return .integer(value) }
            return .number(try double(at: index))
        case .arrayStart:
            var elements: [JSONValue] = []
            elements.reserveCapacity(elementCount(index))
            var element = index + 1
            while tokens[element].kind != .arrayEnd {
                elements.append(try jsonValue(at: element))
                element = Int(tokens[element].next)
            }
            return .array(elements)
        case .objectStart:
            var members: [String: JSONValue] = [:]
            members.reserveCapacity(memberCount(index))
            var name = index + 1
            while tokens[name].kind != .objectEnd {
                members[try string(at: name)] = try jsonValue(at: name + 1)
                name = Int(tokens[name + 1].next)
            }
            return .object(members)
        case .objectEnd, .arrayEnd:
            throw Tape.corrupted("a container's end where a value belongs", codingPath: codingPath(to: index))
        }
    }

    /// The number of elements of the array at `array`.
    func elementCount(_ array: Int) -> Int {
        var count = 0
        var index = array + 1
        while tokens[index].kind != .arrayEnd {
            count += 1
            index = Int(tokens[index].next)
        }
        return count
    }

    /// The number of members of the object at `object`.
    func memberCount(_ object: Int) -> Int {
        var count = 0
        var index = object + 1
        while tokens[index].kind != .objectEnd {
            count += 1
            index = Int(tokens[index + 1].next)
        }
        return count
    }

    /// The token index of member `key`'s value in the object at `object`, or nil.
    ///
    /// Scans from where the previous lookup in this object stopped, wrapping around once, and compares the
    /// names' 16-bit hashes before their bytes.
    func member(_ key: String, in object: Int) -> Int? {
        var key = key
        return key.withUTF8 { wanted -> Int? in
            let wantedHash = wanted.count > 0 ? Tape.keyHash(wanted.baseAddress!, wanted.count) : 0x8000
            let first = object + 1
            let hint = Int(hints[object])
            let start = hint == 0 ? first : hint
            var index = start
            var wrapped = false
            return tokens.withUnsafeBufferPointer { tokens -> Int? in
                while true {
                    if tokens[index].kind == .objectEnd {
                        if wrapped || start == first { return nil }
                        wrapped = true
                        index = first
                    }
                    if wrapped, index == start { return nil }
                    let token = tokens[index]
                    if token.keyHash == wantedHash {
                        let length = Int(token.end &- token.start)
                        if length == wanted.count, length == 0 || memcmp(bytes.baseAddress! + Int(token.start), wanted.baseAddress!, length) == 0 {
                            hints[object] = tokens[index + 1].next
                            return index + 1
                        }
                    } else if token.keyHash == 0, (try? string(at: index))?.utf8.elementsEqual(wanted) == true {
                        hints[object] = tokens[index + 1].next
                        return index + 1
                    }
                    index = Int(tokens[index + 1].next)
                }
            }
        }
    }
}

/// The `Decoder` over one value of a tape. It and its containers hold only the tape, unowned because the tape
/// outlives every decode (``TapeJSON`` keeps it alive across the call), and a token index: trivially copyable.
struct TapeDecoder: Decoder {
    unowned(unsafe) let tape: Tape
    let index: Int

    var codingPath: [any CodingKey] { tape.codingPath(to: index) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard tape.tokens[index].kind == .objectStart else { throw tape.mismatch([String: Any].self, index) }
        return KeyedDecodingContainer(TapeKeyedContainer<Key>(tape: tape, object: index))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard tape.tokens[index].kind == .arrayStart else { throw tape.mismatch([Any].self, index) }
        return TapeUnkeyedContainer(tape: tape, array: index)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        TapeSingleValueContainer(tape: tape, index: index)
    }
}

struct TapeKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    unowned(unsafe) let tape: Tape
    let object: Int

    var codingPath: [any CodingKey] { tape.codingPath(to: object) }

    var allKeys: [Key] {
        var keys: [Key] = []
        var index = object + 1
        while tape.tokens[index].kind != .objectEnd {
            if let name = try? tape.string(at: index), let key = Key(stringValue: name) { keys.append(key) }
            index = Int(tape.tokens[index + 1].next)
        }
        return keys
    }

    func contains(_ key: Key) -> Bool { tape.member(key.stringValue, in: object) != nil }

    private func value(_ key: Key) throws -> Int {
        guard let index = tape.member(key.stringValue, in: object) else {
            throw DecodingError.keyNotFound(
                key, DecodingError.Context(codingPath: codingPath, debugDescription: "No value associated with key \(key.stringValue)."))
        }
        return index
    }

    /// The value's index when present and not null.
    @inline(__always)
    private func present(_ key: Key) -> Int? {
        guard let index = tape.member(key.stringValue, in: object), tape.tokens[index].kind != .null else { return nil }
        return index
    }

    func decodeNil(forKey key: Key) throws -> Bool { tape.tokens[try value(key)].kind == .null }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let index = try value(key)
        if tape.tokens[index].kind == .null, !(T.self is any OptionalDecodable.Type) {
            throw DecodingError.valueNotFound(
                T.self, DecodingError.Context(codingPath: tape.codingPath(to: index), debugDescription: "Found null for \(key.stringValue)."))
        }
        return try tape.decodeValue(T.self, at: index)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let index = present(key) else { return nil }
        return try tape.decodeValue(T.self, at: index)
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String { try tape.string(at: try value(key)) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try tape.bool(at: try value(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try tape.double(at: try value(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try tape.double(at: try value(key))) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try tape.integer(Int.self, at: try value(key)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try tape.integer(Int8.self, at: try value(key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try tape.integer(Int16.self, at: try value(key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try tape.integer(Int32.self, at: try value(key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try tape.integer(Int64.self, at: try value(key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try tape.integer(UInt.self, at: try value(key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try tape.integer(UInt8.self, at: try value(key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try tape.integer(UInt16.self, at: try value(key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try tape.integer(UInt32.self, at: try value(key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try tape.integer(UInt64.self, at: try value(key)) }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(key).map { try tape.string(at: $0) } }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(key).map { try tape.bool(at: $0) } }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(key).map { try tape.double(at: $0) } }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(key).map { try tape.integer(Int.self, at: $0) } }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try present(key).map { try tape.integer(Int32.self, at: $0) } }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present(key).map { try tape.integer(Int64.self, at: $0) } }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try TapeDecoder(tape: tape, index: try value(key)).container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try TapeDecoder(tape: tape, index: try value(key)).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { TapeDecoder(tape: tape, index: object) }

    func superDecoder(forKey key: Key) throws -> any Decoder { TapeDecoder(tape: tape, index: try value(key)) }
}

/// A small cache of long strings that lets equal strings decoded from one response share one storage.
///
/// A LIST of pods repeats most of its long strings (images, mount paths, toleration keys, label keys) in every
/// item; without sharing each copy is a separate allocation. Direct-mapped: a slot keeps the last string that
/// hashed to it, so a unique string costs one hash and never grows the table. Not thread-safe: one decode at a
/// time.
final class StringInterner {
    /// Strings up to this length are stored inline in `String` and need no sharing.
    static let smallStringLength = 15
    private static let slotCount = 4096
    private static let longestShared = 256
    private let slots: UnsafeMutablePointer<String?>

    init() {
        slots = .allocate(capacity: Self.slotCount)
        slots.initialize(repeating: nil, count: Self.slotCount)
    }

    deinit {
        slots.deinitialize(count: Self.slotCount)
        slots.deallocate()
    }

    /// The string of the `count` bytes at `base` (invalid UTF-8 repaired as `String(decoding:as:)` does), shared
    /// with an equal string made before when one is still in its slot.
    func string(_ base: UnsafePointer<UInt8>, count: Int) -> String {
        guard count <= Self.longestShared else { return String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self) }
        let slot = Int(Self.hash(base, count) & UInt64(Self.slotCount - 1))
        if var existing = slots[slot], existing.utf8.count == count,
            existing.withUTF8({ memcmp($0.baseAddress!, base, count) == 0 })
        {
            return existing
        }
        let created = String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self)
        slots[slot] = created
        return created
    }

    private static func hash(_ base: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        var hash = UInt64(count) &* 0x9E37_79B9_7F4A_7C15
        var offset = 0
        while offset &+ 8 <= count {
            hash = (hash ^ UnsafeRawPointer(base + offset).loadUnaligned(as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            hash ^= hash >> 29
            offset &+= 8
        }
        var tail: UInt64 = 0
        while offset < count {
            tail = tail << 8 | UInt64(base[offset])
            offset &+= 1
        }
        hash = (hash ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        return hash ^ (hash >> 32)
    }
}

/// An array decoded from a tape at its exact size; the elements decode as `Array.init(from:)` would decode them.
protocol TapeSizedArray {
    init(tape: Tape, array: Int) throws
}

extension Array: TapeSizedArray where Element: Decodable {
    init(tape: Tape, array: Int) throws {
        self.init()
        reserveCapacity(tape.elementCount(array))
        var index = array + 1
        while tape.tokens[index].kind != .arrayEnd {
            append(try tape.decodeValue(Element.self, at: index))
            index = Int(tape.tokens[index].next)
        }
    }
}

/// A string-keyed dictionary decoded from a tape at its exact size; a repeated key keeps its last value, as
/// `Dictionary.init(from:)` does.
protocol TapeSizedDictionary {
    init(tape: Tape, object: Int) throws
}

extension Dictionary: TapeSizedDictionary where Key == String, Value: Decodable {
    init(tape: Tape, object: Int) throws {
        self.init(minimumCapacity: tape.memberCount(object))
        var index = object + 1
        while tape.tokens[index].kind != .objectEnd {
            self[try tape.string(at: index)] = try tape.decodeValue(Value.self, at: index + 1)
            index = Int(tape.tokens[index + 1].next)
        }
    }
}

/// Lets `decode(_:forKey:)` accept null for Optional types, as JSONDecoder does.
protocol OptionalDecodable {}
extension Optional: OptionalDecodable {}

struct TapeUnkeyedContainer: UnkeyedDecodingContainer {
    unowned(unsafe) let tape: Tape
    let array: Int
    var cursor: Int
    var currentIndex = 0
    let count: Int?

    init(tape: Tape, array: Int) {
        self.tape = tape
        self.array = array
        cursor = array + 1
        var count = 0
        var index = array + 1
        while tape.tokens[index].kind != .arrayEnd {
            count += 1
            index = Int(tape.tokens[index].next)
        }
        self.count = count
    }

    var codingPath: [any CodingKey] { tape.codingPath(to: array) }
    var isAtEnd: Bool { tape.tokens[cursor].kind == .arrayEnd }

    private mutating func advance() throws -> Int {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                Any.self, DecodingError.Context(codingPath: codingPath, debugDescription: "Unkeyed container is at end."))
        }
        let index = cursor
        cursor = Int(tape.tokens[cursor].next)
        currentIndex += 1
        return index
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, tape.tokens[cursor].kind == .null else { return false }
        _ = try advance()
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try tape.decodeValue(T.self, at: try advance()) }

    mutating func decode(_ type: String.Type) throws -> String { try tape.string(at: try advance()) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try TapeDecoder(tape: tape, index: try advance()).container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try TapeDecoder(tape: tape, index: try advance()).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { TapeDecoder(tape: tape, index: try advance()) }
}

struct TapeSingleValueContainer: SingleValueDecodingContainer {
    unowned(unsafe) let tape: Tape
    let index: Int

    var codingPath: [any CodingKey] { tape.codingPath(to: index) }

    func decodeNil() -> Bool { tape.tokens[index].kind == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try tape.bool(at: index) }
    func decode(_ type: String.Type) throws -> String { try tape.string(at: index) }
    func decode(_ type: Double.Type) throws -> Double { try tape.double(at: index) }
    func decode(_ type: Float.Type) throws -> Float { Float(try tape.double(at: index)) }
    func decode(_ type: Int.Type) throws -> Int { try tape.integer(Int.self, at: index) }
    func decode(_ type: Int8.Type) throws -> Int8 { try tape.integer(Int8.self, at: index) }
    func decode(_ type: Int16.Type) throws -> Int16 { try tape.integer(Int16.self, at: index) }
    func decode(_ type: Int32.Type) throws -> Int32 { try tape.integer(Int32.self, at: index) }
    func decode(_ type: Int64.Type) throws -> Int64 { try tape.integer(Int64.self, at: index) }
    func decode(_ type: UInt.Type) throws -> UInt { try tape.integer(UInt.self, at: index) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try tape.integer(UInt8.self, at: index) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try tape.integer(UInt16.self, at: index) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try tape.integer(UInt32.self, at: index) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try tape.integer(UInt64.self, at: index) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try tape.decodeValue(T.self, at: index) }
}
