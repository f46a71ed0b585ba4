import KubeAPI

/// Kubernetes strategic merge patch, for the fields the daemon and kubectl send.
///
/// Lists named in ``mergeKeys`` merge element-wise by their key (containers by `name`, conditions by `type`);
/// `$patch: delete` removes an element, `$patch: replace` replaces the whole value; `$setElementOrder/…`,
/// `$retainKeys` and `$deleteFromPrimitiveList/…` directives are honoured or ignored as the API does for
/// these types. Other lists replace, as in a JSON merge patch.
enum StrategicMergePatch {
    /// Merge keys by the name of the list field (the last path component), as in the Go types' `patchMergeKey`.
    static let mergeKeys: [String: String] = [
        "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name",
        "env": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
        "conditions": "type", "containerStatuses": "name", "initContainerStatuses": "name",
        "ephemeralContainerStatuses": "name", "addresses": "type", "podIPs": "ip", "hostIPs": "ip",
        "ownerReferences": "uid", "taints": "key", "hostAliases": "ip", "readinessGates": "conditionType",
        "resourceClaims": "name", "images": "names",
    ]
    /// Lists of scalars that merge as sets.
    static let setLists: Set<String> = ["finalizers"]

    static func apply(_ patch: JSONValue, to original: JSONValue) throws -> JSONValue {
        try merge(original, patch, field: nil)
    }

    private static func merge(_ original: JSONValue, _ patch: JSONValue, field: String?) throws -> JSONValue {
        guard case .object(var patchMembers) = patch else { return patch }
        if let directive = patchMembers["$patch"]?.stringValue {
            patchMembers.removeValue(forKey: "$patch")
            switch directive {
            case "replace": return .object(patchMembers)
            case "delete": return .null
            default: throw PatchError("unknown $patch directive \"\(directive)\"")
            }
        }
        var members = original.objectValue ?? [:]
        if let retain = patchMembers.removeValue(forKey: "$retainKeys")?.arrayValue {
            let keep = Set(retain.compactMap(\.stringValue))
            members = members.filter { keep.contains($0.key) }
        }
        for (key, value) in patchMembers {
            if key.hasPrefix("$setElementOrder/") { continue }
            if key.hasPrefix("$deleteFromPrimitiveList/") {
                let listKey = String(key.dropFirst("$deleteFromPrimitiveList/".count))
                let remove = Set(value.arrayValue ?? [])
                if let list = members[listKey]?.arrayValue { members[listKey] = .array(list.filter { !remove.contains($0) }) }
                continue
            }
            if value.isNull {
                members.removeValue(forKey: key)
                continue
            }
            let current = members[key] ?? .null
            switch value {
            case .object:
                let merged = try merge(current, value, field: key)
                if merged.isNull { members.removeValue(forKey: key) } else { members[key] = merged }
            case .array(let patchElements):
                if let mergeKey = mergeKeys[key], patchElements.allSatisfy({ $0.objectValue != nil }) {
                    members[key] = .array(try mergeList(current.arrayValue ?? [], patchElements, mergeKey: mergeKey))
                } else if setLists.contains(key) {
                    var result = current.arrayValue ?? []
                    for element in patchElements where !result.contains(element) { result.append(element) }
                    members[key] = .array(result)
                } else {
                    members[key] = value
                }
            default:
                members[key] = value
            }
        }
        return .object(members)
    }

    private static func mergeList(_ original: [JSONValue], _ patch: [JSONValue], mergeKey: String) throws -> [JSONValue] {
        if patch.contains(where: { $0["$patch"]?.stringValue == "replace" }) {
            return patch.filter { $0["$patch"] == nil }
        }
        var result = original
        for element in patch {
            guard let identity = element[mergeKey] else {
                throw PatchError("list element \(element.jsonString) has no merge key \"\(mergeKey)\"")
            }
            let position = result.firstIndex { $0[mergeKey] == identity }
            if element["$patch"]?.stringValue == "delete" {
                if let position { result.remove(at: position) }
                continue
            }
            if let position {
                result[position] = try merge(result[position], element, field: nil)
            } else {
                result.append(try merge(.object([:]), element, field: nil))
            }
        }
        return result
    }

    struct PatchError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

/// RFC 6902 JSON patch: add, remove, replace, test, move, copy.
enum JSONPatch {
    static func apply(_ operations: [JSONValue], to document: JSONValue) throws -> JSONValue {
        var document = document
        for operation in operations {
            guard let op = operation["op"]?.stringValue, let path = operation["path"]?.stringValue else {
                throw StrategicMergePatch.PatchError("JSON patch operation \(operation.jsonString) needs \"op\" and \"path\"")
            }
            let pointer = try parsePointer(path)
            switch op {
            case "add": document = try set(document, pointer, operation["value"] ?? .null, insert: true)
            case "replace":
                _ = try get(document, pointer)
                document = try set(document, pointer, operation["value"] ?? .null, insert: false)
            case "remove": document = try remove(document, pointer)
            case "test":
                guard try get(document, pointer) == (operation["value"] ?? .null) else {
                    throw StrategicMergePatch.PatchError("test failed at \(path)")
                }
            case "move", "copy":
                guard let from = operation["from"]?.stringValue else { throw StrategicMergePatch.PatchError("\(op) needs \"from\"") }
                let fromPointer = try parsePointer(from)
                let value = try get(document, fromPointer)
                if op == "move" { document = try remove(document, fromPointer) }
                document = try set(document, pointer, value, insert: true)
            default:
                throw StrategicMergePatch.PatchError("unknown JSON patch op \"\(op)\"")
            }
        }
        return document
    }

    private static func parsePointer(_ path: String) throws -> [String] {
        if path.isEmpty { return [] }
        guard path.hasPrefix("/") else { throw StrategicMergePatch.PatchError("JSON pointer \"\(path)\" must start with /") }
        return path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    private static func get(_ document: JSONValue, _ pointer: [String]) throws -> JSONValue {
        var current = document
        for token in pointer {
            switch current {
            case .object(let members):
                guard let next = members[token] else { throw StrategicMergePatch.PatchError("path /\(pointer.joined(separator: "/")) does not exist") }
                current = next
            case .array(let elements):
                guard let index = Int(token), elements.indices.contains(index) else {
                    throw StrategicMergePatch.PatchError("path /\(pointer.joined(separator: "/")) does not exist")
                }
                current = elements[index]
            default:
                throw StrategicMergePatch.PatchError("path /\(pointer.joined(separator: "/")) does not exist")
            }
        }
        return current
    }

    private static func set(_ document: JSONValue, _ pointer: [String], _ value: JSONValue, insert: Bool) throws -> JSONValue {
        guard let token = pointer.first else { return value }
        let rest = Array(pointer.dropFirst())
        switch document {
        case .object(var members):
            if rest.isEmpty {
                members[token] = value
            } else {
                guard let child = members[token] else { throw StrategicMergePatch.PatchError("path segment \(token) does not exist") }
                members[token] = try set(child, rest, value, insert: insert)
            }
            return .object(members)
        case .array(var elements):
            if rest.isEmpty {
                if token == "-" {
                    elements.append(value)
                } else if let index = Int(token), index >= 0, index <= elements.count {
                    if insert { elements.insert(value, at: index) } else if index < elements.count { elements[index] = value }
                } else {
                    throw StrategicMergePatch.PatchError("array index \(token) is out of range")
                }
            } else {
                guard let index = Int(token), elements.indices.contains(index) else {
                    throw StrategicMergePatch.PatchError("array index \(token) is out of range")
                }
                elements[index] = try set(elements[index], rest, value, insert: insert)
            }
            return .array(elements)
        default:
            throw StrategicMergePatch.PatchError("cannot add below a scalar at \(token)")
        }
    }

    private static func remove(_ document: JSONValue, _ pointer: [String]) throws -> JSONValue {
        guard let token = pointer.first else { return .null }
        let rest = Array(pointer.dropFirst())
        switch document {
        case .object(var members):
            guard let child = members[token] else { throw StrategicMergePatch.PatchError("path segment \(token) does not exist") }
            if rest.isEmpty { members.removeValue(forKey: token) } else { members[token] = try remove(child, rest) }
            return .object(members)
        case .array(var elements):
            guard let index = Int(token), elements.indices.contains(index) else {
                throw StrategicMergePatch.PatchError("array index \(token) is out of range")
            }
            if rest.isEmpty { elements.remove(at: index) } else { elements[index] = try remove(elements[index], rest) }
            return .array(elements)
        default:
            throw StrategicMergePatch.PatchError("path segment \(token) does not exist")
        }
    }
}
