public import Foundation
// The JSON value type is shared with the Iptables target, which must not depend on Kubernetes; every client of
// KubeAPI sees it as before.
@_exported public import AgentJSON

extension JSONValue {
    /// Parses one JSON document.
    ///
    /// - Throws: ``KubeAPIError`` (`.malformedJSON`) naming `what` when the bytes are not JSON.
    public static func parse(_ bytes: some Collection<UInt8>, what: String = "JSON document") throws -> JSONValue {
        do {
            // The typed model's tape decoder, which builds the value from its tokens: Foundation's JSONDecoder
            // went through `init(from:)`, and parsing was most of what encoding an object for a request cost.
            if let value = try bytes.withContiguousStorageIfAvailable({ try TapeJSON.decode(JSONValue.self, from: UnsafeRawBufferPointer($0)) }) {
                return value
            }
            return try TapeJSON.decode(JSONValue.self, from: Data(bytes))
        } catch {
            throw KubeAPIError.malformedJSON(what: what, underlying: error)
        }
    }

    /// Decodes any Codable value into a JSON value (through its JSON encoding).
    public init(encoding value: some Encodable) throws {
        self = try JSONValue.parse(try JSONEncoder().encode(value), what: "\(type(of: value))")
    }

    /// Decodes this value as `T`.
    public func decode<T: Decodable>(as type: T.Type) throws -> T {
        try TapeJSON.decode(T.self, from: Data(serialized()))
    }
}
