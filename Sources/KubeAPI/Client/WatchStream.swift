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

    /// Decodes one `{"type": ..., "object": ...}` frame.
    static func decodeEvent(_ bytes: [UInt8], keepUnknownFields: Bool) throws -> WatchEvent<T> {
        let (type, objectBytes) = try bytes.withUnsafeBufferPointer { buffer -> (String, Data) in
            let members = try JSONScanner.objectMembers(buffer, in: 0..<buffer.count)
            guard let typeRange = members.first(where: { $0.key == "type" })?.value,
                let type = JSONScanner.decodeString(buffer, typeRange)
            else { throw KubeAPIError.invalidRequest("watch event has no \"type\"") }
            guard let objectRange = members.first(where: { $0.key == "object" })?.value else {
                throw KubeAPIError.invalidRequest("watch event \(type) has no \"object\"")
            }
            return (type, Data(UnsafeBufferPointer(rebasing: buffer[objectRange])))
        }
        switch type {
        case "ADDED": return .added(try ResourceCodec.decode(T.self, from: objectBytes, keepUnknownFields: keepUnknownFields))
        case "MODIFIED": return .modified(try ResourceCodec.decode(T.self, from: objectBytes, keepUnknownFields: keepUnknownFields))
        case "DELETED": return .deleted(try ResourceCodec.decode(T.self, from: objectBytes, keepUnknownFields: keepUnknownFields))
        case "BOOKMARK":
            let object = try TapeJSON.decode(BookmarkObject.self, from: objectBytes)
            guard let version = object.metadata?.resourceVersion, !version.isEmpty else {
                throw KubeAPIError.invalidRequest("BOOKMARK event without metadata.resourceVersion")
            }
            return .bookmark(resourceVersion: version)
        case "ERROR":
            do {
                return .error(try TapeJSON.decode(Status.self, from: objectBytes))
            } catch {
                throw KubeAPIError.decoding(what: "ERROR watch event", underlying: error)
            }
        default:
            throw KubeAPIError.invalidRequest("unknown watch event type \"\(type)\"")
        }
    }
}
