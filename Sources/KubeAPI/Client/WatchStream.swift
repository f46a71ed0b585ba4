public import Foundation
public import Logging

/// The events of one WATCH, in order. Ends when the server closes the watch; throws on a broken connection.
public struct WatchStream<T: KubeResource>: AsyncSequence, Sendable {
    public typealias Element = WatchEvent<T>
    private let stream: AsyncThrowingStream<WatchEvent<T>, any Error>

    /// A stream over any source of events (in-memory implementations of ``KubeClientProtocol`` use this).
    public init(_ stream: AsyncThrowingStream<WatchEvent<T>, any Error>) {
        self.stream = stream
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<WatchEvent<T>, any Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }
}

/// Turns the chunks of a watch response body into typed events.
///
/// Objects may span chunks and several may share one; a frame that is not a valid event is logged and skipped.
public struct WatchEventDecoder<T: KubeResource>: Sendable {
    private var framer = JSONStreamFramer()
    private let keepUnknownFields: Bool
    private let logger: Logger
    /// How many frames were skipped as malformed.
    public private(set) var skipped = 0

    public init(keepUnknownFields: Bool = true, logger: Logger) {
        self.keepUnknownFields = keepUnknownFields
        self.logger = logger
    }

    /// Feeds a chunk; returns the events it completes.
    public mutating func feed(_ chunk: some Collection<UInt8>) -> [WatchEvent<T>] {
        var events: [WatchEvent<T>] = []
        for frame in framer.append(chunk) {
            switch frame {
            case .garbage(let bytes):
                skipped += 1
                logger.warning(
                    "skipped malformed watch data",
                    metadata: ["resource": "\(T.resourceType)", "bytes": "\(String(decoding: bytes.prefix(200), as: UTF8.self))"])
            case .object(let bytes):
                do {
                    events.append(try Self.decodeEvent(bytes, keepUnknownFields: keepUnknownFields))
                } catch {
                    skipped += 1
                    logger.warning(
                        "skipped malformed watch event",
                        metadata: [
                            "resource": "\(T.resourceType)", "error": "\(error)",
                            "event": "\(String(decoding: bytes.prefix(200), as: UTF8.self))",
                        ])
                }
            }
        }
        return events
    }

    private struct BookmarkObject: Decodable {
        struct Meta: Decodable { var resourceVersion: String? }
        var metadata: Meta?
    }

    /// Decodes one `{"type": ..., "object": ...}` frame: tokenised once, the object decoded from that tape.
    static func decodeEvent(_ bytes: [UInt8], keepUnknownFields: Bool) throws -> WatchEvent<T> {
        try bytes.withUnsafeBytes { raw -> WatchEvent<T> in
            let tape: Tape
            do { tape = try Tape(raw) } catch { throw KubeAPIError.malformedJSON(what: "watch event", underlying: error) }
            return try withExtendedLifetime(tape) { try decodeEvent(tape, raw: raw, keepUnknownFields: keepUnknownFields) }
        }
    }

    private static func decodeEvent(_ tape: Tape, raw: UnsafeRawBufferPointer, keepUnknownFields: Bool) throws -> WatchEvent<T> {
        guard tape.tokens[0].kind == .objectStart else { throw KubeAPIError.invalidRequest("watch event is not an object") }
        guard let typeIndex = tape.member("type", in: 0), let type = try? tape.string(at: typeIndex) else {
            throw KubeAPIError.invalidRequest("watch event has no \"type\"")
        }
        guard let object = tape.member("object", in: 0) else { throw KubeAPIError.invalidRequest("watch event \(type) has no \"object\"") }
        tape.pathRoot = object
        // The object's own JSON, for unknown-field preservation.
        func objectBytes() -> Data {
            let last = tape.tokens[Int(tape.tokens[object].next) - 1]
            let start = tape.tokens[object].kind == .string ? Int(tape.tokens[object].start) - 1 : Int(tape.tokens[object].start)
            let end = tape.tokens[object].kind == .string ? Int(last.end) + 1 : Int(last.end)
            return Data(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
        }
        func resource() throws -> T {
            do {
                var value = try tape.decodeValue(T.self, at: object)
                if keepUnknownFields { value.unknownFields = UnknownFields(original: objectBytes()) }
                return value
            } catch {
                throw KubeAPIError.decoding(what: "\(T.resourceType.kind) object", underlying: error)
            }
        }
        switch type {
        case "ADDED": return .added(try resource())
        case "MODIFIED": return .modified(try resource())
        case "DELETED": return .deleted(try resource())
        case "BOOKMARK":
            let bookmark = try tape.decodeValue(BookmarkObject.self, at: object)
            guard let version = bookmark.metadata?.resourceVersion, !version.isEmpty else {
                throw KubeAPIError.invalidRequest("BOOKMARK event without metadata.resourceVersion")
            }
            return .bookmark(resourceVersion: version)
        case "ERROR":
            do {
                return .error(try tape.decodeValue(Status.self, at: object))
            } catch {
                throw KubeAPIError.decoding(what: "ERROR watch event", underlying: error)
            }
        default:
            throw KubeAPIError.invalidRequest("unknown watch event type \"\(type)\"")
        }
    }
}
