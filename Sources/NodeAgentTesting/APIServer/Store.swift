import Foundation
import KubeAPI
import NIOCore
import Synchronization

/// A refusal with the API's `Status`: code, reason, message, details.
struct APIFailure: Error {
    var status: Status

    init(_ code: Int, _ reason: String, _ message: String, details: StatusDetails? = nil) {
        status = Status(status: "Failure", message: message, reason: reason, details: details, code: code)
    }

    static func notFound(_ resource: ServedResource, _ name: String) -> APIFailure {
        APIFailure(
            404, "NotFound", "\(resource.id) \"\(name)\" not found",
            details: StatusDetails(name: name, group: resource.type.group, kind: resource.type.plural))
    }

    static func badRequest(_ message: String) -> APIFailure { APIFailure(400, "BadRequest", message) }

    static func invalid(_ resource: ServedResource, _ name: String, field: String, _ message: String) -> APIFailure {
        APIFailure(
            422, "Invalid", "\(resource.type.kind) \"\(name)\" is invalid: \(field): \(message)",
            details: StatusDetails(
                name: name, group: resource.type.group, kind: resource.type.kind,
                causes: [StatusCause(reason: "FieldValueInvalid", message: message, field: field)]))
    }

    static func conflict(_ resource: ServedResource, _ name: String, _ why: String) -> APIFailure {
        APIFailure(
            409, "Conflict", "Operation cannot be fulfilled on \(resource.id) \"\(name)\": \(why)",
            details: StatusDetails(name: name, group: resource.type.group, kind: resource.type.plural))
    }
}

/// One mutation in the event history.
struct HistoryEntry: Sendable {
    var resourceVersion: Int64
    var resourceID: String
    var type: String
    var object: JSONValue
    /// The object before a MODIFIED, to turn selector transitions into ADDED/DELETED.
    var previous: JSONValue?
}

/// What a watcher wants and where its bytes go.
struct Watcher: Sendable {
    var resource: ServedResource
    var namespace: String?
    var labels: LabelSelector?
    var fields: FieldSelector?
    var bookmarks: Bool
    var continuation: AsyncStream<ByteBuffer>.Continuation

    func matches(_ object: JSONValue) -> Bool {
        if let namespace, object["metadata"]?["namespace"]?.stringValue != namespace { return false }
        return Store.matches(object, labels: labels, fields: fields)
    }
}

/// The double's state: objects, the global resourceVersion, bounded event history and open watches.
final class Store: Sendable {
    struct State {
        var resourceVersion: Int64 = 1
        var objects: [String: [ObjectKey: JSONValue]] = [:]
        var history: [HistoryEntry] = []
        /// Watches from a version below this answer 410 Expired: the events after it are gone.
        var compactedThrough: Int64 = 0
        var watchers: [Int: Watcher] = [:]
        var nextWatcher = 0
        var nextClusterIP: UInt32 = 0x0A60_000A  // 10.96.0.10
        var nextNodePort = 30000
    }

    let state = Mutex(State())
    let historyLimit: Int
    let now: @Sendable () -> Date

    init(historyLimit: Int, now: @escaping @Sendable () -> Date) {
        self.historyLimit = historyLimit
        self.now = now
        for namespace in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            _ = try? create(Catalog.resource(group: "", version: "v1", plural: "namespaces")!, namespace: nil, body: ["metadata": ["name": .string(namespace)]])
        }
    }

    // MARK: Reads

    func get(_ resource: ServedResource, namespace: String?, name: String) throws(APIFailure) -> JSONValue {
        let key = ObjectKey(namespace: resource.type.namespaced ? namespace : nil, name: name)
        guard let object = state.withLock({ $0.objects[resource.id]?[key] }) else { throw .notFound(resource, name) }
        return object
    }

    static func parseSelectors(_ resource: ServedResource, label: String?, field: String?) throws(APIFailure) -> (LabelSelector?, FieldSelector?) {
        var labels: LabelSelector?
        var fields: FieldSelector?
        do {
            if let label, !label.isEmpty { labels = try LabelSelector(label) }
            if let field, !field.isEmpty { fields = try FieldSelector(field) }
        } catch {
            throw .badRequest("\(error)")
        }
        for requirement in fields?.requirements ?? [] {
            let allowed = requirement.field == "metadata.name" || requirement.field == "metadata.namespace"
                || resource.selectableFields.contains(requirement.field)
            if !allowed {
                throw .badRequest("field label not supported: \(requirement.field)")
            }
        }
        return (labels, fields)
    }

    static func fieldValue(_ object: JSONValue, _ path: String) -> String {
        switch object[path: path.split(separator: ".").map(String.init)] {
        case .string(let value): value
        case .bool(let value): value ? "true" : "false"
        case .integer(let value): String(value)
        default: ""
        }
    }

    static func matches(_ object: JSONValue, labels: LabelSelector?, fields: FieldSelector?) -> Bool {
        if let labels {
            let values = (object["metadata"]?["labels"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
            if !labels.matches(values) { return false }
        }
        if let fields, !fields.matches({ fieldValue(object, $0) }) { return false }
        return true
    }

    func list(
        _ resource: ServedResource, namespace: String?, labelSelector: String?, fieldSelector: String?, limit: Int?, continueToken: String?
    ) throws(APIFailure) -> JSONValue {
        let (labels, fields) = try Store.parseSelectors(resource, label: labelSelector, field: fieldSelector)
        var start: String?
        if let continueToken, !continueToken.isEmpty {
            guard let decoded = Data(base64Encoded: continueToken).map({ String(decoding: $0, as: UTF8.self) }),
                let separator = decoded.firstIndex(of: "/"), let version = Int64(decoded[..<separator])
            else { throw .badRequest("continue token \"\(continueToken)\" is not valid") }
            if version < state.withLock({ $0.compactedThrough }) {
                throw APIFailure(410, "Expired", "The provided continue parameter is too old to display a consistent list result.")
            }
            start = String(decoded[decoded.index(after: separator)...])
        }
        let (items, version) = state.withLock { state -> ([(ObjectKey, JSONValue)], Int64) in
            let all = state.objects[resource.id] ?? [:]
            let selected = all.filter { key, object in
                (namespace == nil || key.namespace == namespace) && Store.matches(object, labels: labels, fields: fields)
            }
            return (selected.sorted { $0.key < $1.key }, state.resourceVersion)
        }
        var page = items
        if let start { page = page.filter { $0.0.description > start } }
        var metadata: JSONValue = ["resourceVersion": .string(String(version))]
        if let limit, limit > 0, page.count > limit {
            let remaining = page.count - limit
            page = Array(page.prefix(limit))
            let token = "\(version)/\(page.last!.0.description)"
            metadata["continue"] = .string(Data(token.utf8).base64EncodedString())
            metadata["remainingItemCount"] = .integer(Int64(remaining))
        }
        return [
            "kind": .string("\(resource.type.kind)List"), "apiVersion": .string(resource.type.apiVersion),
            "metadata": metadata, "items": .array(page.map(\.1)),
        ]
    }

    // MARK: Writes

    /// An RFC 1123 label: lower-case alphanumerics and '-', starting and ending alphanumeric, at most 63.
    static func isDNSLabel(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 63 else { return false }
        func alnum(_ byte: UInt8) -> Bool { (48...57).contains(byte) || (97...122).contains(byte) }
        return alnum(bytes.first!) && alnum(bytes.last!) && bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// An RFC 1123 subdomain: labels joined by dots, at most 253.
    static func isDNSSubdomain(_ text: String) -> Bool {
        text.utf8.count <= 253 && text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel(String($0)) }
    }

    private func checkName(_ resource: ServedResource, _ name: String) throws(APIFailure) {
        let labelOnly = ["namespaces", "services"].contains(resource.type.plural)
        let valid = labelOnly
            ? Store.isDNSLabel(name)
            : Store.isDNSSubdomain(name)
        if !valid {
            throw .invalid(
                resource, name, field: "metadata.name",
                "Invalid value: \"\(name)\": a lowercase RFC 1123 \(labelOnly ? "label" : "subdomain") must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")
        }
    }

    private func timestamp() -> JSONValue { .string(RFC3339.format(now(), fractionDigits: 0)) }

    /// Checks shape (via the typed model) and the rules the API enforces for the fields the daemon uses.
    private func validate(_ resource: ServedResource, _ object: JSONValue, name: String) throws(APIFailure) {
        do {
            try resource.validateTyped(object)
        } catch {
            let text = "\(error)"
            let field = text.range(of: "field ").map { range -> String in
                let rest = text[range.upperBound...]
                return String(rest.prefix { $0 != ":" && $0 != " " })
            } ?? "<object>"
            throw .invalid(resource, name, field: field, text)
        }
        for (key, value) in object["metadata"]?["labels"]?.objectValue ?? [:] where value.stringValue == nil {
            throw .invalid(resource, name, field: "metadata.labels[\(key)]", "Invalid value: label values must be strings")
        }
        switch resource.type.plural {
        case "pods":
            guard let containers = object["spec"]?["containers"]?.arrayValue, !containers.isEmpty else {
                throw .invalid(resource, name, field: "spec.containers", "Required value")
            }
            var names = Set<String>()
            for (index, container) in containers.enumerated() {
                let containerName = container["name"]?.stringValue ?? ""
                if !Store.isDNSLabel(containerName) {
                    throw .invalid(resource, name, field: "spec.containers[\(index)].name", "Invalid value: \"\(containerName)\": must be a DNS label")
                }
                if !names.insert(containerName).inserted {
                    throw .invalid(resource, name, field: "spec.containers[\(index)].name", "Duplicate value: \"\(containerName)\"")
                }
                if (container["image"]?.stringValue ?? "").isEmpty {
                    throw .invalid(resource, name, field: "spec.containers[\(index)].image", "Required value")
                }
                for (portIndex, port) in (container["ports"]?.arrayValue ?? []).enumerated() {
                    let number = port["containerPort"]?.integerValue ?? 0
                    if !(1...65535).contains(number) {
                        throw .invalid(
                            resource, name, field: "spec.containers[\(index)].ports[\(portIndex)].containerPort",
                            "Invalid value: \(number): must be between 1 and 65535, inclusive")
                    }
                }
            }
        case "services":
            let type = object["spec"]?["type"]?.stringValue ?? "ClusterIP"
            guard ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(type) else {
                throw .invalid(resource, name, field: "spec.type", "Unsupported value: \"\(type)\"")
            }
            let ports = object["spec"]?["ports"]?.arrayValue ?? []
            if ports.isEmpty, type != "ExternalName", object["spec"]?["clusterIP"]?.stringValue != "None" {
                throw .invalid(resource, name, field: "spec.ports", "Required value")
            }
            for (index, port) in ports.enumerated() {
                let number = port["port"]?.integerValue ?? 0
                if !(1...65535).contains(number) {
                    throw .invalid(resource, name, field: "spec.ports[\(index)].port", "Invalid value: \(number): must be between 1 and 65535, inclusive")
                }
                let proto = port["protocol"]?.stringValue ?? "TCP"
                if !["TCP", "UDP", "SCTP"].contains(proto) {
                    throw .invalid(resource, name, field: "spec.ports[\(index)].protocol", "Unsupported value: \"\(proto)\"")
                }
            }
        case "leases":
            if let duration = object["spec"]?["leaseDurationSeconds"]?.integerValue, duration <= 0 {
                throw .invalid(resource, name, field: "spec.leaseDurationSeconds", "Invalid value: \(duration): must be greater than 0")
            }
        case "endpointslices":
            let addressType = object["addressType"]?.stringValue ?? ""
            guard ["IPv4", "IPv6", "FQDN"].contains(addressType) else {
                throw .invalid(resource, name, field: "addressType", "Unsupported value: \"\(addressType)\"")
            }
            for (index, endpoint) in (object["endpoints"]?.arrayValue ?? []).enumerated() where (endpoint["addresses"]?.arrayValue ?? []).isEmpty {
                throw .invalid(resource, name, field: "endpoints[\(index)].addresses", "Required value")
            }
        default:
            break
        }
    }

    /// Creates an object (`namespace` from the URL, nil for cluster-scoped resources).
    func create(_ resource: ServedResource, namespace: String?, body: JSONValue) throws(APIFailure) -> JSONValue {
        guard case .object = body else { throw .badRequest("the body of a create must be a JSON object") }
        var object = body
        try checkKind(resource, object)
        var metadata = object["metadata"]?.objectValue ?? [:]
        if resource.type.namespaced {
            let bodyNamespace = metadata["namespace"]?.stringValue
            if let bodyNamespace, let namespace, !bodyNamespace.isEmpty, bodyNamespace != namespace {
                throw .badRequest("the namespace of the provided object does not match the namespace sent on the request")
            }
            guard let effective = namespace ?? bodyNamespace, !effective.isEmpty else {
                throw .badRequest("a namespaced \(resource.type.kind) needs a namespace")
            }
            metadata["namespace"] = .string(effective)
        } else {
            metadata.removeValue(forKey: "namespace")
        }
        var name = metadata["name"]?.stringValue ?? ""
        if name.isEmpty, let prefix = metadata["generateName"]?.stringValue, !prefix.isEmpty {
            name = prefix + Store.randomSuffix()
            metadata["name"] = .string(name)
        }
        if name.isEmpty {
            throw .invalid(resource, "", field: "metadata.name", "Required value: name or generateName is required")
        }
        try checkName(resource, name)
        if metadata["resourceVersion"] != nil, metadata["resourceVersion"]?.stringValue != "" {
            throw .badRequest("resourceVersion should not be set on objects to be created")
        }
        metadata["uid"] = .string(UUID().uuidString.lowercased())
        metadata["creationTimestamp"] = timestamp()
        metadata.removeValue(forKey: "deletionTimestamp")
        metadata.removeValue(forKey: "deletionGracePeriodSeconds")
        if object["spec"] != nil || resource.type.plural == "pods" { metadata["generation"] = 1 }
        object["metadata"] = .object(metadata)
        object["apiVersion"] = .string(resource.type.apiVersion)
        object["kind"] = .string(resource.type.kind)
        try applyDefaults(resource, &object, creating: true)
        try validate(resource, object, name: name)
        let key = ObjectKey(namespace: metadata["namespace"]?.stringValue, name: name)
        return try state.withLock { state throws(APIFailure) -> JSONValue in
            if let namespace = key.namespace, state.objects["namespaces"]?[ObjectKey(namespace: nil, name: namespace)] == nil {
                throw APIFailure(
                    404, "NotFound", "namespaces \"\(namespace)\" not found", details: StatusDetails(name: namespace, kind: "namespaces"))
            }
            if state.objects[resource.id]?[key] != nil {
                throw APIFailure(
                    409, "AlreadyExists", "\(resource.id) \"\(name)\" already exists",
                    details: StatusDetails(name: name, group: resource.type.group, kind: resource.type.plural))
            }
            if resource.type.plural == "services" { allocateServiceAddresses(&object, state: &state) }
            return record(resource, key: key, type: "ADDED", object: object, previous: nil, state: &state)
        }
    }

    private static func randomSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet.randomElement()! })
    }

    private func checkKind(_ resource: ServedResource, _ object: JSONValue) throws(APIFailure) {
        if let kind = object["kind"]?.stringValue, !kind.isEmpty, kind != resource.type.kind {
            throw .badRequest("the API version in the data (\(object["apiVersion"]?.stringValue ?? "")) does not match the expected API version (\(resource.type.apiVersion)); kind \(kind) is not \(resource.type.kind)")
        }
        if let apiVersion = object["apiVersion"]?.stringValue, !apiVersion.isEmpty, apiVersion != resource.type.apiVersion {
            throw .badRequest("the API version in the data (\(apiVersion)) does not match the expected API version (\(resource.type.apiVersion))")
        }
    }

    /// Bumps the resourceVersion, stores (or removes) the object, appends history and feeds watchers.
    private func record(
        _ resource: ServedResource, key: ObjectKey, type: String, object: JSONValue, previous: JSONValue?, state: inout State
    ) -> JSONValue {
        state.resourceVersion += 1
        var stored = object
        stored["metadata"]?["resourceVersion"] = .string(String(state.resourceVersion))
        if type == "DELETED" {
            state.objects[resource.id]?.removeValue(forKey: key)
        } else {
            state.objects[resource.id, default: [:]][key] = stored
        }
        let entry = HistoryEntry(resourceVersion: state.resourceVersion, resourceID: resource.id, type: type, object: stored, previous: previous)
        state.history.append(entry)
        if state.history.count > historyLimit {
            let dropped = state.history.count - historyLimit
            state.compactedThrough = state.history[dropped - 1].resourceVersion
            state.history.removeFirst(dropped)
        }
        for watcher in state.watchers.values where watcher.resource.id == resource.id {
            if let frame = Store.frame(for: entry, watcher: watcher) { watcher.continuation.yield(frame) }
        }
        return stored
    }

    /// The bytes a watcher gets for an entry, turning selector transitions into ADDED / DELETED.
    static func frame(for entry: HistoryEntry, watcher: Watcher) -> ByteBuffer? {
        let now = watcher.matches(entry.object)
        var type = entry.type
        if entry.type == "MODIFIED" {
            let before = entry.previous.map(watcher.matches) ?? now
            switch (before, now) {
            case (true, true): type = "MODIFIED"
            case (false, true): type = "ADDED"
            case (true, false): type = "DELETED"
            case (false, false): return nil
            }
        } else if !now {
            return nil
        }
        return eventFrame(type: type, object: entry.object)
    }

    static func eventFrame(type: String, object: JSONValue) -> ByteBuffer {
        var bytes = JSONValue.object(["type": .string(type), "object": object]).serialized()
        bytes.append(UInt8(ascii: "\n"))
        return ByteBuffer(bytes: bytes)
    }

    enum WriteTarget { case main, status }

    /// PUT: replaces the object (or only its status for `/status`), enforcing resourceVersion and immutable fields.
    func update(_ resource: ServedResource, namespace: String?, name: String, body: JSONValue, target: WriteTarget) throws(APIFailure) -> JSONValue {
        guard case .object = body else { throw .badRequest("the body of an update must be a JSON object") }
        try checkKind(resource, body)
        if let bodyName = body["metadata"]?["name"]?.stringValue, bodyName != name {
            throw .badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        return try modify(resource, namespace: namespace, name: name, target: target, precondition: body["metadata"]) { _ in body }
    }

    /// PATCH with a merge, strategic-merge or JSON patch.
    func patch(_ resource: ServedResource, namespace: String?, name: String, contentType: String, body: [UInt8], target: WriteTarget) throws(APIFailure) -> JSONValue {
        let patch: JSONValue
        do {
            patch = try JSONValue.parse(body, what: "patch")
        } catch {
            throw .badRequest("\(error)")
        }
        let kind = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        let precondition: JSONValue? = kind == "application/json-patch+json" ? nil : patch["metadata"]
        return try modify(resource, namespace: namespace, name: name, target: target, precondition: precondition) { current throws(APIFailure) -> JSONValue in
            do {
                switch kind {
                case "application/merge-patch+json":
                    return current.applyingMergePatch(patch)
                case "application/strategic-merge-patch+json":
                    return try StrategicMergePatch.apply(patch, to: current)
                case "application/json-patch+json":
                    guard let operations = patch.arrayValue else { throw StrategicMergePatch.PatchError("a JSON patch must be an array") }
                    return try JSONPatch.apply(operations, to: current)
                default:
                    throw APIFailure(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json")
                }
            } catch let failure as APIFailure {
                throw failure
            } catch {
                throw APIFailure(422, "Invalid", "the patch could not be applied: \(error)")
            }
        }
    }

    private func modify(
        _ resource: ServedResource, namespace: String?, name: String, target: WriteTarget, precondition: JSONValue?,
        change: (JSONValue) throws(APIFailure) -> JSONValue
    ) throws(APIFailure) -> JSONValue {
        if target == .status, !resource.type.hasStatusSubresource { throw .notFound(resource, name) }
        let key = ObjectKey(namespace: resource.type.namespaced ? namespace : nil, name: name)
        // Optimistic concurrency: compute outside the lock, commit only if nothing changed meanwhile.
        while true {
            guard let current = state.withLock({ $0.objects[resource.id]?[key] }) else { throw .notFound(resource, name) }
            let currentVersion = current["metadata"]?["resourceVersion"]?.stringValue ?? ""
            if let wanted = precondition?["resourceVersion"]?.stringValue, !wanted.isEmpty, wanted != currentVersion {
                throw .conflict(resource, name, "the object has been modified; please apply your changes to the latest version and try again")
            }
            if let uid = precondition?["uid"]?.stringValue, !uid.isEmpty, uid != current["metadata"]?["uid"]?.stringValue {
                throw .conflict(
                    resource, name,
                    "Precondition failed: UID in precondition: \(uid), UID in object meta: \(current["metadata"]?["uid"]?.stringValue ?? "")")
            }
            let proposed = try change(current)
            guard case .object = proposed else { throw .badRequest("the result must be a JSON object") }
            var next: JSONValue
            switch target {
            case .status:
                next = current
                next["status"] = proposed["status"]
            case .main:
                next = proposed
                if resource.type.hasStatusSubresource { next["status"] = current["status"] }
                // Immutable metadata.
                for field in ["uid", "creationTimestamp", "namespace", "name", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
                    next["metadata"]?[field] = current["metadata"]?[field]
                }
                if next["metadata"] == nil { next["metadata"] = current["metadata"] }
                if next["spec"] != current["spec"], let generation = current["metadata"]?["generation"]?.integerValue {
                    next["metadata"]?["generation"] = .integer(generation + 1)
                }
                if resource.type.plural == "services" {
                    let oldIP = current["spec"]?["clusterIP"]?.stringValue
                    let newIP = next["spec"]?["clusterIP"]?.stringValue
                    if newIP == nil || newIP == "" {
                        next["spec"]?["clusterIP"] = current["spec"]?["clusterIP"]
                        next["spec"]?["clusterIPs"] = current["spec"]?["clusterIPs"]
                    } else if newIP != oldIP {
                        throw .invalid(resource, name, field: "spec.clusterIPs[0]", "Invalid value: \"\(newIP ?? "")\": may not change once set")
                    }
                }
            }
            next["metadata"]?["resourceVersion"] = .string(currentVersion)
            next["apiVersion"] = .string(resource.type.apiVersion)
            next["kind"] = .string(resource.type.kind)
            try applyDefaults(resource, &next, creating: false)
            try validate(resource, next, name: name)
            let result = try state.withLock { state throws(APIFailure) -> JSONValue? in
                guard let latest = state.objects[resource.id]?[key] else { throw .notFound(resource, name) }
                guard latest["metadata"]?["resourceVersion"] == current["metadata"]?["resourceVersion"] else { return nil }
                if next == current { return current }  // no-op writes do not bump the version
                let finishing = next["metadata"]?["deletionTimestamp"] != nil && (next["metadata"]?["finalizers"]?.arrayValue ?? []).isEmpty
                    && resource.type.plural != "pods"
                return record(resource, key: key, type: finishing ? "DELETED" : "MODIFIED", object: next, previous: current, state: &state)
            }
            if let result { return result }
        }
    }

    /// DELETE: pods bound to a node get a deletionTimestamp and grace period (the kubelet finishes them with
    /// grace 0); objects with finalizers wait for them; everything else goes at once.
    func delete(_ resource: ServedResource, namespace: String?, name: String, options: JSONValue) throws(APIFailure) -> JSONValue {
        let key = ObjectKey(namespace: resource.type.namespaced ? namespace : nil, name: name)
        return try state.withLock { state throws(APIFailure) -> JSONValue in
            guard let current = state.objects[resource.id]?[key] else { throw .notFound(resource, name) }
            if let uid = options["preconditions"]?["uid"]?.stringValue, uid != current["metadata"]?["uid"]?.stringValue {
                throw .conflict(
                    resource, name,
                    "Precondition failed: UID in precondition: \(uid), UID in object meta: \(current["metadata"]?["uid"]?.stringValue ?? "")")
            }
            if let version = options["preconditions"]?["resourceVersion"]?.stringValue,
                version != current["metadata"]?["resourceVersion"]?.stringValue
            {
                throw .conflict(
                    resource, name,
                    "Precondition failed: ResourceVersion in precondition: \(version), ResourceVersion in object meta: \(current["metadata"]?["resourceVersion"]?.stringValue ?? "")")
            }
            var grace: Int64 = 0
            if resource.type.plural == "pods" {
                let bound = !(current["spec"]?["nodeName"]?.stringValue ?? "").isEmpty
                let phase = current["status"]?["phase"]?.stringValue ?? ""
                grace = options["gracePeriodSeconds"]?.integerValue ?? current["spec"]?["terminationGracePeriodSeconds"]?.integerValue ?? 30
                if !bound || phase == "Succeeded" || phase == "Failed" { grace = 0 }
            }
            let finalizers = current["metadata"]?["finalizers"]?.arrayValue ?? []
            if grace > 0 || !finalizers.isEmpty {
                var next = current
                let alreadyDeleting = current["metadata"]?["deletionTimestamp"] != nil
                let currentGrace = current["metadata"]?["deletionGracePeriodSeconds"]?.integerValue
                if alreadyDeleting, let currentGrace, currentGrace <= grace { return current }
                next["metadata"]?["deletionTimestamp"] = .string(RFC3339.format(now().addingTimeInterval(TimeInterval(grace)), fractionDigits: 0))
                next["metadata"]?["deletionGracePeriodSeconds"] = .integer(grace)
                return record(resource, key: key, type: "MODIFIED", object: next, previous: current, state: &state)
            }
            if resource.type.plural == "namespaces" {
                for (resourceID, objects) in state.objects {
                    guard let contained = Catalog.resources.first(where: { $0.id == resourceID }), contained.type.namespaced else { continue }
                    for (objectKey, object) in objects where objectKey.namespace == name {
                        _ = record(contained, key: objectKey, type: "DELETED", object: object, previous: nil, state: &state)
                    }
                }
            }
            return record(resource, key: key, type: "DELETED", object: current, previous: nil, state: &state)
        }
    }

    // MARK: Defaults

    private func applyDefaults(_ resource: ServedResource, _ object: inout JSONValue, creating: Bool) throws(APIFailure) {
        switch resource.type.plural {
        case "pods":
            guard var spec = object["spec"]?.objectValue else { return }
            if spec["restartPolicy"] == nil { spec["restartPolicy"] = "Always" }
            if spec["dnsPolicy"] == nil { spec["dnsPolicy"] = "ClusterFirst" }
            if spec["terminationGracePeriodSeconds"] == nil { spec["terminationGracePeriodSeconds"] = 30 }
            if spec["schedulerName"] == nil { spec["schedulerName"] = "default-scheduler" }
            if spec["enableServiceLinks"] == nil { spec["enableServiceLinks"] = true }
            if spec["securityContext"] == nil { spec["securityContext"] = .object([:]) }
            for listName in ["initContainers", "containers"] {
                guard var containers = spec[listName]?.arrayValue else { continue }
                for index in containers.indices {
                    guard case .object(var container) = containers[index] else { continue }
                    if container["terminationMessagePath"] == nil { container["terminationMessagePath"] = "/dev/termination-log" }
                    if container["terminationMessagePolicy"] == nil { container["terminationMessagePolicy"] = "File" }
                    if container["imagePullPolicy"] == nil {
                        let image = container["image"]?.stringValue ?? ""
                        let lastPart = image.split(separator: "/").last.map(String.init) ?? image
                        let latest = !lastPart.contains(":") && !image.contains("@") || image.hasSuffix(":latest")
                        container["imagePullPolicy"] = latest ? "Always" : "IfNotPresent"
                    }
                    if container["resources"] == nil { container["resources"] = .object([:]) }
                    if var ports = container["ports"]?.arrayValue {
                        for portIndex in ports.indices where ports[portIndex]["protocol"] == nil { ports[portIndex]["protocol"] = "TCP" }
                        container["ports"] = .array(ports)
                    }
                    containers[index] = .object(container)
                }
                spec[listName] = .array(containers)
            }
            object["spec"] = .object(spec)
            if creating {
                object["status"] = ["phase": "Pending", "qosClass": .string(Store.qosClass(spec))]
            }
        case "services":
            guard var spec = object["spec"]?.objectValue else { return }
            let type = spec["type"]?.stringValue ?? "ClusterIP"
            spec["type"] = .string(type)
            if spec["sessionAffinity"] == nil { spec["sessionAffinity"] = "None" }
            if type != "ExternalName" {
                if spec["ipFamilies"] == nil { spec["ipFamilies"] = ["IPv4"] }
                if spec["ipFamilyPolicy"] == nil { spec["ipFamilyPolicy"] = "SingleStack" }
                if spec["internalTrafficPolicy"] == nil { spec["internalTrafficPolicy"] = "Cluster" }
            }
            if (type == "NodePort" || type == "LoadBalancer"), spec["externalTrafficPolicy"] == nil { spec["externalTrafficPolicy"] = "Cluster" }
            if var ports = spec["ports"]?.arrayValue {
                for index in ports.indices {
                    if ports[index]["protocol"] == nil { ports[index]["protocol"] = "TCP" }
                    if ports[index]["targetPort"] == nil { ports[index]["targetPort"] = ports[index]["port"] }
                }
                spec["ports"] = .array(ports)
            }
            object["spec"] = .object(spec)
            if creating { object["status"] = ["loadBalancer": .object([:])] }
        case "namespaces":
            if creating {
                object["spec"] = ["finalizers": ["kubernetes"]]
                object["status"] = ["phase": "Active"]
            }
        case "secrets":
            if object["type"] == nil { object["type"] = "Opaque" }
            if let stringData = object["stringData"]?.objectValue {
                var data = object["data"]?.objectValue ?? [:]
                for (key, value) in stringData {
                    data[key] = .string(Data((value.stringValue ?? "").utf8).base64EncodedString())
                }
                object["data"] = .object(data)
                object["stringData"] = nil
            }
        default:
            break
        }
    }

    private static func qosClass(_ spec: [String: JSONValue]) -> String {
        let containers = spec["containers"]?.arrayValue ?? []
        var any = false
        var guaranteed = true
        for container in containers {
            let limits = container["resources"]?["limits"]?.objectValue ?? [:]
            let requests = container["resources"]?["requests"]?.objectValue ?? [:]
            if !limits.isEmpty || !requests.isEmpty { any = true }
            for resource in ["cpu", "memory"] {
                guard let limit = limits[resource] else {
                    guaranteed = false
                    continue
                }
                if let request = requests[resource], request != limit { guaranteed = false }
            }
        }
        if !any { return "BestEffort" }
        return guaranteed ? "Guaranteed" : "Burstable"
    }

    private func allocateServiceAddresses(_ object: inout JSONValue, state: inout State) {
        guard var spec = object["spec"]?.objectValue else { return }
        let type = spec["type"]?.stringValue ?? "ClusterIP"
        if type != "ExternalName", (spec["clusterIP"]?.stringValue ?? "").isEmpty {
            let ip = state.nextClusterIP
            state.nextClusterIP += 1
            let text = "\(ip >> 24).\((ip >> 16) & 0xff).\((ip >> 8) & 0xff).\(ip & 0xff)"
            spec["clusterIP"] = .string(text)
            spec["clusterIPs"] = [.string(text)]
        } else if let ip = spec["clusterIP"]?.stringValue, spec["clusterIPs"] == nil {
            spec["clusterIPs"] = [.string(ip)]
        }
        if type == "NodePort" || type == "LoadBalancer", var ports = spec["ports"]?.arrayValue {
            for index in ports.indices where ports[index]["nodePort"] == nil {
                ports[index]["nodePort"] = .integer(Int64(state.nextNodePort))
                state.nextNodePort += 1
            }
            spec["ports"] = .array(ports)
        }
        object["spec"] = .object(spec)
    }

    // MARK: Watches

    /// Registers a watch and returns the frames to send first (synthetic ADDED or replayed history).
    ///
    /// - Throws: 410 Expired when `resourceVersion` is older than the retained history.
    func watch(
        _ resource: ServedResource, namespace: String?, labelSelector: String?, fieldSelector: String?, resourceVersion: String?,
        bookmarks: Bool
    ) throws(APIFailure) -> (id: Int, initial: [ByteBuffer], stream: AsyncStream<ByteBuffer>) {
        let (labels, fields) = try Store.parseSelectors(resource, label: labelSelector, field: fieldSelector)
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
        let watcher = Watcher(
            resource: resource, namespace: namespace, labels: labels, fields: fields, bookmarks: bookmarks, continuation: continuation)
        var start: Int64?
        if let resourceVersion, !resourceVersion.isEmpty, resourceVersion != "0" {
            guard let version = Int64(resourceVersion) else { throw .badRequest("resourceVersion \"\(resourceVersion)\" is not a number") }
            start = version
        }
        return try state.withLock { state throws(APIFailure) in
            var initial: [ByteBuffer] = []
            if let start {
                if start < state.compactedThrough {
                    throw APIFailure(410, "Expired", "too old resource version: \(start) (\(state.compactedThrough))")
                }
                for entry in state.history where entry.resourceVersion > start && entry.resourceID == resource.id {
                    if let frame = Store.frame(for: entry, watcher: watcher) { initial.append(frame) }
                }
            } else {
                let objects = (state.objects[resource.id] ?? [:]).sorted { $0.key < $1.key }
                for (_, object) in objects where watcher.matches(object) {
                    initial.append(Store.eventFrame(type: "ADDED", object: object))
                }
            }
            let id = state.nextWatcher
            state.nextWatcher += 1
            state.watchers[id] = watcher
            return (id, initial, stream)
        }
    }

    func endWatch(_ id: Int) {
        let watcher = state.withLock { $0.watchers.removeValue(forKey: id) }
        watcher?.continuation.finish()
    }

    /// Sends a BOOKMARK to one watcher (under the lock, so it never overtakes an event).
    func sendBookmark(_ id: Int) {
        state.withLock { state in
            guard let watcher = state.watchers[id], watcher.bookmarks else { return }
            watcher.continuation.yield(Store.bookmark(watcher.resource, version: state.resourceVersion))
        }
    }

    /// Sends a BOOKMARK to every watcher that asked for them.
    func bookmarkAll() {
        state.withLock { state in
            for watcher in state.watchers.values where watcher.bookmarks {
                watcher.continuation.yield(Store.bookmark(watcher.resource, version: state.resourceVersion))
            }
        }
    }

    /// A BOOKMARK frame at `version` for `resource`.
    static func bookmark(_ resource: ServedResource, version: Int64) -> ByteBuffer {
        Store.eventFrame(
            type: "BOOKMARK",
            object: [
                "kind": .string(resource.type.kind), "apiVersion": .string(resource.type.apiVersion),
                "metadata": ["resourceVersion": .string(String(version))],
            ])
    }

    /// Ends every open watch (the server side of a dropped connection).
    func dropWatches() -> Int {
        let watchers = state.withLock { state -> [Watcher] in
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.continuation.finish() }
        return watchers.count
    }

    /// Writes raw bytes to every open watch.
    func injectRaw(_ text: String) {
        state.withLock { state in
            for watcher in state.watchers.values { watcher.continuation.yield(ByteBuffer(string: text)) }
        }
    }

    var openWatchCount: Int { state.withLock { $0.watchers.count } }

    /// Forgets all history: any watch from an older version answers 410 Expired.
    func compact() {
        state.withLock { state in
            state.compactedThrough = state.resourceVersion
            state.history = []
        }
    }

    /// A restart into a new resourceVersion epoch: watches drop, history is gone, versions jump.
    func restart(epochJump: Int64) {
        _ = dropWatches()
        state.withLock { state in
            state.resourceVersion += epochJump
            state.compactedThrough = state.resourceVersion
            state.history = []
        }
    }

    var currentResourceVersion: Int64 { state.withLock { $0.resourceVersion } }
}
