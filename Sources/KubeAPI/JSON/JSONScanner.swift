/// A structural JSON scanner: finds where values begin and end without building them.
///
/// Used to walk a LIST response's members and items (each item keeps its own bytes for unknown-field
/// preservation) and to skip the members it does not decode. It checks brackets, commas and strings only; the
/// typed decoder that runs on each item does the full validation.
enum JSONScanner {
    struct Failure: Error, CustomStringConvertible {
        var offset: Int
        var reason: String
        var description: String { "malformed JSON at byte \(offset): \(reason)" }
    }

    /// Walks the comma-separated entries of the array or object whose opening bracket (`opening`) is at `start`,
    /// after optional whitespace: `entry` gets the index where each entry begins and returns the index just past
    /// it. A missing or extra comma is refused. Returns the index just past the closing bracket.
    static func forEachEntry(
        _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, opening: UInt8, _ entry: (Int) throws -> Int
    ) throws -> Int {
        let end = bytes.count
        let closing = opening == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
        let what = opening == UInt8(ascii: "{") ? "an object" : "an array"
        var index = skipWhitespace(bytes, start, end)
        guard index < end, bytes[index] == opening else { throw Failure(offset: index, reason: "expected \(what)") }
        index += 1
        var first = true
        while true {
            index = skipWhitespace(bytes, index, end)
            guard index < end else { throw Failure(offset: index, reason: "unterminated \(what)") }
            if bytes[index] == closing { return index + 1 }
            if !first {
                guard bytes[index] == UInt8(ascii: ",") else { throw Failure(offset: index, reason: "expected ',' or '\(Character(Unicode.Scalar(closing)))'") }
                index = skipWhitespace(bytes, index + 1, end)
            }
            first = false
            index = try entry(index)
        }
    }

    /// Walks the members of the object at `start`: `member` gets each raw key (between its quotes) and the index
    /// where its value begins, and returns the index just past the value. Returns the index past the object.
    static func forEachMember(
        _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, _ member: (_ key: UnsafeBufferPointer<UInt8>, _ value: Int) throws -> Int
    ) throws -> Int {
        try forEachEntry(bytes, from: start, opening: UInt8(ascii: "{")) { index in
            let end = bytes.count
            guard bytes[index] == UInt8(ascii: "\"") else { throw Failure(offset: index, reason: "expected a key") }
            let keyEnd = try skipString(bytes, index, end)
            let colon = skipWhitespace(bytes, keyEnd, end)
            guard colon < end, bytes[colon] == UInt8(ascii: ":") else { throw Failure(offset: colon, reason: "expected ':' after a key") }
            return try member(UnsafeBufferPointer(rebasing: bytes[(index + 1)..<(keyEnd - 1)]), skipWhitespace(bytes, colon + 1, end))
        }
    }

    static func skipWhitespace(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        var index = start
        while index < end {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
            default: return index
            }
        }
        return index
    }

    /// The index just past the string that starts at `start` (which holds the opening quote).
    static func skipString(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) throws -> Int {
        var index = start + 1
        while index < end {
            if let base = bytes.baseAddress {
                index = Tape.skipPlainStringBytes(base, from: index, count: end)
                guard index < end else { break }
            }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if byte == UInt8(ascii: "\"") { return index + 1 }
            index += 1
        }
        throw Failure(offset: start, reason: "unterminated string")
    }

    /// The index just past the value that starts at `start`.
    static func skipValue(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) throws -> Int {
        guard start < end else { throw Failure(offset: start, reason: "expected a value") }
        switch bytes[start] {
        case UInt8(ascii: "\""):
            return try skipString(bytes, start, end)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while index < end {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index = try skipString(bytes, index, end)
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                default:
                    break
                }
                index += 1
            }
            throw Failure(offset: start, reason: "unterminated object or array")
        default:
            var index = start
            while index < end {
                switch bytes[index] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: " "), UInt8(ascii: "\n"),
                    UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                    return index
                default:
                    index += 1
                }
            }
            return index
        }
    }
}

/// Splits a byte stream of concatenated JSON objects (a watch response body) into whole objects.
///
/// Objects may span chunks and several may share one chunk. Bytes outside any object other than whitespace
/// are reported as garbage and skipped up to the next newline, so one bad line does not poison the stream.
public struct JSONStreamFramer: Sendable {
    /// One piece the framer found.
    public enum Frame: Sendable, Equatable {
        /// The complete bytes of one top-level JSON object.
        case object([UInt8])
        /// Bytes that could not start an object, skipped up to the end of their line.
        case garbage([UInt8])
    }

    private var buffer: [UInt8] = []
    /// Scan position inside `buffer`.
    private var position = 0
    /// Where the object being scanned starts, if inside one.
    private var objectStart: Int?
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var skippingGarbage: Int?
    /// The largest object accepted; a larger one is reported as garbage so memory stays bounded.
    public let maximumObjectSize: Int

    public init(maximumObjectSize: Int = 64 << 20) {
        self.maximumObjectSize = maximumObjectSize
    }

    /// Bytes held that do not yet form a complete object.
    public var pendingByteCount: Int { buffer.count - (objectStart ?? buffer.count) }

    /// Feeds a chunk and returns every frame it completes, in order.
    public mutating func append(_ chunk: some Collection<UInt8>) -> [Frame] {
        buffer.append(contentsOf: chunk)
        var frames: [Frame] = []
        // The scan state in locals over a plain buffer (the array is not resized while scanning).
        var position = self.position
        var objectStart = self.objectStart
        var depth = self.depth
        var inString = self.inString
        var escaped = self.escaped
        var skippingGarbage = self.skippingGarbage
        let maximumObjectSize = self.maximumObjectSize
        buffer.withUnsafeBufferPointer { buffer in
            let count = buffer.count
            guard let base = buffer.baseAddress else { return }
            while position < count {
                if let garbageStart = skippingGarbage {
                    if base[position] == UInt8(ascii: "\n") {
                        frames.append(.garbage(Array(buffer[garbageStart..<position])))
                        skippingGarbage = nil
                    }
                    position += 1
                    continue
                }
                if let start = objectStart, position - start >= maximumObjectSize {
                    // Too big to be an event: report it and resynchronise at the next newline.
                    frames.append(.garbage(Array(buffer[start..<min(start + 256, position)])))
                    objectStart = nil
                    depth = 0
                    inString = false
                    escaped = false
                    skippingGarbage = position
                    continue
                }
                let byte = base[position]
                if objectStart == nil {
                    switch byte {
                    case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                        position += 1
                    case UInt8(ascii: "{"):
                        objectStart = position
                        depth = 1
                        position += 1
                    default:
                        skippingGarbage = position
                        position += 1
                    }
                    continue
                }
                if inString {
                    if escaped {
                        escaped = false
                    } else if byte == UInt8(ascii: "\\") {
                        escaped = true
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    } else {
                        // Plain string bytes: skip to the next quote, backslash or control byte.
                        position = Tape.skipPlainStringBytes(base, from: position + 1, count: count)
                        continue
                    }
                    position += 1
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0, let start = objectStart {
                        frames.append(.object(Array(buffer[start...position])))
                        objectStart = nil
                    }
                default: break
                }
                position += 1
            }
        }
        // Drop consumed bytes so the buffer holds only the unfinished object.
        let keepFrom = objectStart ?? skippingGarbage ?? position
        if keepFrom > 0 {
            buffer.removeSubrange(0..<keepFrom)
            position -= keepFrom
            if objectStart != nil { objectStart = 0 }
            if skippingGarbage != nil { skippingGarbage = 0 }
        }
        self.position = position
        self.objectStart = objectStart
        self.depth = depth
        self.inString = inString
        self.escaped = escaped
        self.skippingGarbage = skippingGarbage
        return frames
    }
}
