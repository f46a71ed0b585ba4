public import Foundation

/// What identifies a kind of object on the API: its group/version, kind, plural path segment, scope,
/// and whether it has a `status` subresource.
public struct ResourceType: Sendable, Hashable, CustomStringConvertible {
    /// API group; empty for the core group (`v1`).
    public var group: String
    public var version: String
    public var kind: String
    /// The path segment of the collection: `pods`, `leases`, `endpointslices`.
    public var plural: String
    public var namespaced: Bool
    /// PUT/PATCH to the object ignore `status`; `/status` ignores everything else.
    public var hasStatusSubresource: Bool

    public init(group: String, version: String, kind: String, plural: String, namespaced: Bool, hasStatusSubresource: Bool) {
        self.group = group
        self.version = version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
        self.hasStatusSubresource = hasStatusSubresource
    }

    /// `v1` or `group/version`.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// The URL path of the collection (`namespace` nil: across all namespaces) or of one object.
    public func path(namespace: String?, name: String? = nil, subresource: String? = nil) -> String {
        var path = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced, let namespace, !namespace.isEmpty { path += "/namespaces/\(PathEscaping.segment(namespace))" }
        path += "/\(plural)"
        if let name {
            path += "/\(PathEscaping.segment(name))"
            if let subresource { path += "/\(subresource)" }
        }
        return path
    }
}

enum PathEscaping {
    /// Escapes one path segment (names are DNS labels in practice, but never trust input).
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
    private static let allowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~:@")
        return set
    }()
}

/// A typed API object: the verbs and informers are generic over this.
///
/// Conformers list their fields as `Codable` properties and keep an ``UnknownFields`` (excluded from their
/// `CodingKeys`): it remembers the JSON the object was decoded from so that writing it back keeps every
/// field this model does not know.
public protocol KubeResource: Codable, Sendable {
    static var resourceType: ResourceType { get }
    var metadata: ObjectMeta { get set }
    var unknownFields: UnknownFields { get set }
}

extension KubeResource {
    public var name: String { metadata.name ?? "" }
    public var namespace: String? { metadata.namespace }
    public var resourceVersion: String? { metadata.resourceVersion }
    /// `namespace/name`, or `name` for cluster-scoped objects: the informer cache key.
    public var key: ObjectKey { ObjectKey(namespace: Self.resourceType.namespaced ? metadata.namespace : nil, name: metadata.name ?? "") }
}

/// The identity of an object within its resource: namespace (nil when cluster-scoped) and name.
public struct ObjectKey: Sendable, Hashable, CustomStringConvertible, Comparable {
    public var namespace: String?
    public var name: String

    public init(namespace: String?, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { namespace.map { "\($0)/\(name)" } ?? name }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool { lhs.description < rhs.description }
}

/// The JSON an object was decoded from, kept so fields the typed model does not know survive a
/// read-modify-write. Two values always compare equal: it is bookkeeping, not content.
public struct UnknownFields: Sendable, Hashable {
    var original: Data?

    public init() {}

    init(original: Data?) { self.original = original }

    /// True when this object came from the server and carries its original JSON.
    public var isRecorded: Bool { original != nil }

    public static func == (lhs: UnknownFields, rhs: UnknownFields) -> Bool { true }
    public func hash(into hasher: inout Hasher) {}
}

/// Encoding and decoding of typed objects: apiVersion/kind, unknown-field preservation, LIST splitting.
public enum ResourceCodec {
    /// Decodes one object of type `T`.
    ///
    /// - Parameter keepUnknownFields: remember the JSON so a later write keeps unknown fields (costs one copy).
    /// - Throws: ``KubeAPIError`` naming the kind and the field at fault.
    public static func decode<T: KubeResource>(_ type: T.Type, from data: Data, keepUnknownFields: Bool = true) throws -> T {
        do {
            var object = try TapeJSON.decode(T.self, from: data)
            if keepUnknownFields { object.unknownFields = UnknownFields(original: data) }
            return object
        } catch {
            throw KubeAPIError.decoding(what: "\(T.resourceType.kind) object", underlying: error)
        }
    }

    /// Decodes a LIST response into its metadata and items, each item keeping its own JSON.
    ///
    /// The items are tokenised and decoded one at a time straight from the response (no separate pass to split
    /// them), so the work is one walk over the bytes and the temporary tape is one item's.
    /// - Throws: ``KubeAPIError`` naming the item index and the field at fault.
    public static func decodeList<T: KubeResource>(_ type: T.Type, from data: Data, keepUnknownFields: Bool = true) throws -> ResourceList<T> {
        try data.withUnsafeBytes { raw -> ResourceList<T> in
            let bytes = raw.bindMemory(to: UInt8.self)
            var list = ResourceList<T>(metadata: ListMeta(), items: [])
            do {
                _ = try JSONScanner.forEachMember(bytes, from: 0) { key, value in
                    if key.elementsEqual("items".utf8) {
                        return try decodeItems(into: &list.items, raw: raw, data: data, at: value, keepUnknownFields: keepUnknownFields)
                    }
                    let valueEnd = try JSONScanner.skipValue(bytes, value, bytes.count)
                    if key.elementsEqual("metadata".utf8) {
                        do {
                            list.metadata = try TapeJSON.decode(ListMeta.self, from: UnsafeRawBufferPointer(rebasing: raw[value..<valueEnd]))
                        } catch {
                            throw KubeAPIError.decoding(what: "\(T.resourceType.kind) list metadata", underlying: error)
                        }
                    }
                    return valueEnd
                }
            } catch let failure as JSONScanner.Failure {
                throw KubeAPIError.malformedJSON(what: "\(T.resourceType.kind) list", underlying: failure)
            }
            return list
        }
    }

    /// Decodes the array of items (or null) at `start` into `items`; returns the index just past it.
    private static func decodeItems<T: KubeResource>(
        into items: inout [T], raw: UnsafeRawBufferPointer, data: Data, at start: Int, keepUnknownFields: Bool
    ) throws -> Int {
        let bytes = raw.bindMemory(to: UInt8.self)
        if start + 4 <= bytes.count, bytes[start..<(start + 4)].elementsEqual("null".utf8) { return start + 4 }
        let interner = StringInterner()
        do {
            return try JSONScanner.forEachEntry(bytes, from: start, opening: UInt8(ascii: "[")) { index in
                let position = items.count
                do {
                    var (object, range) = try TapeJSON.decodeValue(T.self, in: raw, at: index, interner: interner)
                    // A slice shares the response's storage: no copy. The buffer lives while any of its items does,
                    // which costs about what per-item copies would.
                    if keepUnknownFields { object.unknownFields = UnknownFields(original: data[range.shifted(by: data.startIndex)]) }
                    if items.isEmpty, items.capacity < 2 {
                        // Items of one list are much alike: size the array from the first one (plus a tenth) rather
                        // than regrow it, which would hold up to twice the memory.
                        let remaining = Double(bytes.count - range.upperBound) / Double(max(range.count, 64))
                        items.reserveCapacity(min(Int(remaining * 1.1) + 1, 1_000_000))
                    }
                    items.append(object)
                    return range.upperBound
                } catch {
                    throw KubeAPIError.decoding(what: "\(T.resourceType.kind) list item \(position)", underlying: error)
                }
            }
        } catch let failure as JSONScanner.Failure {
            throw KubeAPIError.malformedJSON(what: "\(T.resourceType.kind) list items", underlying: failure)
        }
    }

    /// The JSON of `object` with `apiVersion` and `kind` set, and every field of its original JSON that the
    /// typed model does not know put back in place.
    public static func encode<T: KubeResource>(_ object: T) throws -> Data {
        Data(try encodeValue(object).serialized())
    }

    /// ``encode(_:)`` as a ``JSONValue``.
    public static func encodeValue<T: KubeResource>(_ object: T) throws -> JSONValue {
        var typed = try typedValue(object)
        if let original = object.unknownFields.original {
            let originalValue = try JSONValue.parse(original, what: "original \(T.resourceType.kind)")
            var bare = try TapeJSON.decode(T.self, from: original)
            bare.unknownFields = UnknownFields()
            let known = try typedValue(bare)
            if let residue = UnknownResidue.compute(original: originalValue, known: known) {
                residue.apply(to: &typed)
            }
        }
        return typed
    }

    private static func typedValue<T: KubeResource>(_ object: T) throws -> JSONValue {
        var value = try JSONValue(encoding: object)
        value["apiVersion"] = .string(T.resourceType.apiVersion)
        value["kind"] = .string(T.resourceType.kind)
        return value
    }
}

extension Range where Bound == Int {
    func shifted(by offset: Int) -> Range<Int> { (lowerBound + offset)..<(upperBound + offset) }
}

/// The parts of an original JSON document that the typed model dropped.
indirect enum UnknownResidue {
    /// Members unknown at this level, and residues of known members.
    case object(unknown: [String: JSONValue], nested: [String: UnknownResidue])
    /// Residues of array elements, with how to find each element again.
    case array(originalCount: Int, elements: [(match: ElementMatch, residue: UnknownResidue)])

    enum ElementMatch {
        case index(Int)
        case key(String, JSONValue)
    }

    private static let matchKeys = ["name", "type", "uid", "ip", "key", "containerPort", "port", "address"]

    static func compute(original: JSONValue, known: JSONValue) -> UnknownResidue? {
        switch (original, known) {
        case (.object(let originalMembers), .object(let knownMembers)):
            var unknown: [String: JSONValue] = [:]
            var nested: [String: UnknownResidue] = [:]
            for (key, value) in originalMembers {
                if let knownValue = knownMembers[key] {
                    if let residue = compute(original: value, known: knownValue) { nested[key] = residue }
                } else if !value.isNull {
                    unknown[key] = value
                }
            }
            return unknown.isEmpty && nested.isEmpty ? nil : .object(unknown: unknown, nested: nested)
        case (.array(let originalElements), .array(let knownElements)) where originalElements.count == knownElements.count:
            let matchKey = matchKeys.first { key in
                let values = originalElements.compactMap { $0[key] }
                return values.count == originalElements.count && Set(values).count == values.count
            }
            var elements: [(match: ElementMatch, residue: UnknownResidue)] = []
            for (index, (originalElement, knownElement)) in zip(originalElements, knownElements).enumerated() {
                guard let residue = compute(original: originalElement, known: knownElement) else { continue }
                if let matchKey, let identity = originalElement[matchKey] {
                    elements.append((.key(matchKey, identity), residue))
                } else {
                    elements.append((.index(index), residue))
                }
            }
            return elements.isEmpty ? nil : .array(originalCount: originalElements.count, elements: elements)
        default:
            return nil
        }
    }

    func apply(to value: inout JSONValue) {
        switch self {
        case .object(let unknown, let nested):
            guard case .object(var members) = value else { return }
            for (key, extra) in unknown where members[key] == nil { members[key] = extra }
            for (key, residue) in nested {
                guard var member = members[key] else { continue }
                residue.apply(to: &member)
                members[key] = member
            }
            value = .object(members)
        case .array(let originalCount, let elements):
            guard case .array(var items) = value else { return }
            for (match, residue) in elements {
                switch match {
                case .key(let key, let identity):
                    if let position = items.firstIndex(where: { $0[key] == identity }) { residue.apply(to: &items[position]) }
                case .index(let index):
                    if items.count == originalCount, index < items.count { residue.apply(to: &items[index]) }
                }
            }
            value = .array(items)
        }
    }
}

/// A page of a LIST: the items and the list's resourceVersion / continue token.
public struct ResourceList<T: KubeResource>: Sendable {
    public var metadata: ListMeta
    public var items: [T]

    public init(metadata: ListMeta, items: [T]) {
        self.metadata = metadata
        self.items = items
    }
}

/// One change seen on a watch.
public enum WatchEvent<T: KubeResource>: Sendable {
    case added(T)
    case modified(T)
    case deleted(T)
    /// A progress marker: only `metadata.resourceVersion` is meaningful.
    case bookmark(resourceVersion: String)
    /// The server ended the watch with an error `Status` (410 `Expired` means: relist).
    case error(Status)
}
