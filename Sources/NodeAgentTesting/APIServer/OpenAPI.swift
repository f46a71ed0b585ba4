import KubeAPI

/// The OpenAPI v3 documents kubectl reads before a create or apply: the root listing the group-versions, and per
/// group-version the paths with their `x-kubernetes-group-version-kind` and the `fieldValidation` query parameter.
///
/// Seeing that parameter, kubectl (1.27+) leaves field validation to the server instead of downloading schemas, so
/// `kubectl create -f` works without `--validate=false`. The double accepts the parameter; it does not reject unknown
/// fields as a real server does under `fieldValidation=Strict` (its typed models cannot tell every unmodelled field
/// from a misspelled one).
enum OpenAPIV3 {
    /// `/openapi/v3`.
    static func root() -> JSONValue {
        var paths: [String: JSONValue] = [:]
        for path in groupVersionPaths {
            paths[path] = ["serverRelativeURL": .string("/openapi/v3/\(path)?hash=\(hash(path))")]
        }
        return ["paths": .object(paths)]
    }

    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`; nil for a group-version not served.
    static func document(_ groupVersionPath: String) -> JSONValue? {
        let resources = Catalog.resources.filter { path(of: $0.type) == groupVersionPath }
        guard !resources.isEmpty else { return nil }
        var paths: [String: JSONValue] = [:]
        for resource in resources {
            let type = resource.type
            let gvk: JSONValue = ["group": .string(type.group), "version": .string(type.version), "kind": .string(type.kind)]
            let fieldValidation: JSONValue = [
                "name": "fieldValidation", "in": "query", "schema": ["type": "string", "uniqueItems": true],
                "description": "Strict, Warn or Ignore unknown and duplicate fields.",
            ]
            let operation: JSONValue = [
                "x-kubernetes-group-version-kind": gvk, "parameters": [fieldValidation],
                "responses": ["200": ["description": "OK"]],
            ]
            let base = "/\(groupVersionPath)" + (type.namespaced ? "/namespaces/{namespace}" : "") + "/\(type.plural)"
            paths[base] = ["post": operation]
            paths[base + "/{name}"] = ["put": operation, "patch": operation]
        }
        return [
            "openapi": "3.0.0", "info": ["title": "Kubernetes", "version": .string("v\(Catalog.version["gitVersion"]?.stringValue ?? "1.32.0")")],
            "paths": .object(paths), "components": ["schemas": [:]],
        ]
    }

    private static var groupVersionPaths: [String] {
        var seen: [String] = []
        for resource in Catalog.resources where !seen.contains(path(of: resource.type)) { seen.append(path(of: resource.type)) }
        return seen
    }

    private static func path(of type: ResourceType) -> String {
        type.group.isEmpty ? "api/\(type.version)" : "apis/\(type.group)/\(type.version)"
    }

    /// A stable per-document tag for the `hash` query parameter (kubectl caches by it).
    private static func hash(_ path: String) -> String {
        var value: UInt64 = 1469598103934665603
        for byte in path.utf8 { value = (value ^ UInt64(byte)) &* 1099511628211 }
        return String(value, radix: 16, uppercase: true)
    }
}
