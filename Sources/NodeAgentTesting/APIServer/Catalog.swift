import KubeAPI

/// A resource the double serves, with what discovery says about it.
struct ServedResource: Sendable {
    var type: ResourceType
    var singular: String
    var shortNames: [String]
    /// Fields a fieldSelector may name besides metadata.name and metadata.namespace (as the real API's field label sets).
    var selectableFields: Set<String>
    /// A typed model used to reject malformed objects with the field at fault.
    var validateTyped: @Sendable (JSONValue) throws -> Void

    var id: String { type.group.isEmpty ? type.plural : "\(type.plural).\(type.group)" }

    static func typed<T: KubeResource>(_ type: T.Type) -> @Sendable (JSONValue) throws -> Void {
        { value in _ = try ResourceCodec.decode(T.self, from: Data(value.serialized()), keepUnknownFields: false) }
    }
}

import Foundation

/// The resources, groups and versions the double serves.
enum Catalog {
    static let resources: [ServedResource] = [
        ServedResource(
            type: Pod.resourceType, singular: "pod", shortNames: ["po"],
            selectableFields: [
                "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork",
                "status.phase", "status.podIP", "status.nominatedNodeName",
            ],
            validateTyped: ServedResource.typed(Pod.self)),
        ServedResource(
            type: Node.resourceType, singular: "node", shortNames: ["no"], selectableFields: ["spec.unschedulable"],
            validateTyped: ServedResource.typed(Node.self)),
        ServedResource(
            type: Namespace.resourceType, singular: "namespace", shortNames: ["ns"], selectableFields: ["status.phase"],
            validateTyped: ServedResource.typed(Namespace.self)),
        ServedResource(
            type: KubeService.resourceType, singular: "service", shortNames: ["svc"], selectableFields: ["spec.clusterIP", "spec.type"],
            validateTyped: ServedResource.typed(KubeService.self)),
        ServedResource(
            type: ConfigMap.resourceType, singular: "configmap", shortNames: ["cm"], selectableFields: [],
            validateTyped: ServedResource.typed(ConfigMap.self)),
        ServedResource(
            type: Secret.resourceType, singular: "secret", shortNames: [], selectableFields: ["type"],
            validateTyped: ServedResource.typed(Secret.self)),
        ServedResource(
            type: Event.resourceType, singular: "event", shortNames: ["ev"],
            selectableFields: [
                "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                "reportingComponent", "source", "type",
            ],
            validateTyped: ServedResource.typed(Event.self)),
        ServedResource(
            type: Lease.resourceType, singular: "lease", shortNames: [], selectableFields: [],
            validateTyped: ServedResource.typed(Lease.self)),
        ServedResource(
            type: EndpointSlice.resourceType, singular: "endpointslice", shortNames: [], selectableFields: [],
            validateTyped: ServedResource.typed(EndpointSlice.self)),
    ]

    static func resource(group: String, version: String, plural: String) -> ServedResource? {
        resources.first { $0.type.group == group && $0.type.version == version && $0.type.plural == plural }
    }

    /// Groups other than core, each with its one version.
    static var groups: [(group: String, version: String)] {
        var seen: [(String, String)] = []
        for resource in resources where !resource.type.group.isEmpty {
            if !seen.contains(where: { $0.0 == resource.type.group }) { seen.append((resource.type.group, resource.type.version)) }
        }
        return seen
    }

    static func apiVersions(serverAddress: String) -> JSONValue {
        [
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]],
        ]
    }

    static func groupDocument(_ group: String, _ version: String) -> JSONValue {
        let groupVersion = JSONValue.string("\(group)/\(version)")
        return [
            "name": .string(group),
            "versions": [["groupVersion": groupVersion, "version": .string(version)]],
            "preferredVersion": ["groupVersion": groupVersion, "version": .string(version)],
        ]
    }

    static func apiGroupList() -> JSONValue {
        ["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groups.map { groupDocument($0.group, $0.version) })]
    }

    static func apiGroup(_ group: String) -> JSONValue? {
        guard let entry = groups.first(where: { $0.group == group }) else { return nil }
        var document = groupDocument(entry.group, entry.version)
        document["kind"] = "APIGroup"
        document["apiVersion"] = "v1"
        return document
    }

    static func resourceList(group: String, version: String) -> JSONValue? {
        let served = resources.filter { $0.type.group == group && $0.type.version == version }
        guard !served.isEmpty else { return nil }
        var entries: [JSONValue] = []
        for resource in served {
            var entry: JSONValue = [
                "name": .string(resource.type.plural), "singularName": .string(resource.singular),
                "namespaced": .bool(resource.type.namespaced), "kind": .string(resource.type.kind),
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            ]
            if !resource.shortNames.isEmpty { entry["shortNames"] = .array(resource.shortNames.map { .string($0) }) }
            entries.append(entry)
            if resource.type.hasStatusSubresource {
                entries.append([
                    "name": .string("\(resource.type.plural)/status"), "singularName": "",
                    "namespaced": .bool(resource.type.namespaced), "kind": .string(resource.type.kind),
                    "verbs": ["get", "patch", "update"],
                ])
            }
        }
        return [
            "kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": .string(group.isEmpty ? version : "\(group)/\(version)"), "resources": .array(entries),
        ]
    }

    static let version: JSONValue = [
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-node-agent-double", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64",
    ]
}
