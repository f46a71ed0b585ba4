extension JSONValue {
    /// This document with an RFC 7386 JSON merge patch applied: objects merge recursively, `null` deletes a
    /// member, anything else (lists included) replaces.
    public func applyingMergePatch(_ patch: JSONValue) -> JSONValue {
        guard case .object(let patchMembers) = patch else { return patch }
        var members = objectValue ?? [:]
        for (key, value) in patchMembers {
            if value.isNull {
                members.removeValue(forKey: key)
            } else {
                members[key] = (members[key] ?? .null).applyingMergePatch(value)
            }
        }
        return .object(members)
    }

    /// The smallest merge patch that turns `old` into `new` (nil when they are equal).
    ///
    /// The kubelet writes pod status this way: only what changed goes over the wire.
    public static func mergePatch(from old: JSONValue, to new: JSONValue) -> JSONValue? {
        guard case .object(let oldMembers) = old, case .object(let newMembers) = new else {
            // Not `old == new ? nil : new`: JSONValue is ExpressibleByNilLiteral, so that `nil` would be `.null`.
            if old == new { return nil }
            return new
        }
        var patch: [String: JSONValue] = [:]
        for (key, newValue) in newMembers {
            if let oldValue = oldMembers[key] {
                if let change = mergePatch(from: oldValue, to: newValue) { patch[key] = change }
            } else {
                patch[key] = newValue
            }
        }
        for key in oldMembers.keys where newMembers[key] == nil {
            patch[key] = .null
        }
        return patch.isEmpty ? nil : .object(patch)
    }
}
