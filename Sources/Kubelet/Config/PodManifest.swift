import CRI
public import Foundation
public import KubeAPI
import Yams

/// Static pod manifests: decoding (YAML or JSON, one Pod or a List of Pods per file), strict checking of unknown
/// fields, validation, and the kubelet's defaults for file pods (name `<name>-<node>`, UID from a hash of the
/// manifest, the `kubernetes.io/config.*` annotations).
public enum PodManifest {
    public static let hashAnnotation = "kubernetes.io/config.hash"
    public static let sourceAnnotation = "kubernetes.io/config.source"
    public static let seenAnnotation = "kubernetes.io/config.seen"
    public static let mirrorAnnotation = "kubernetes.io/config.mirror"

    /// Decodes the pods of one manifest file.
    /// - Throws: ``KubeletError`` `.invalidPod` naming the file and the field (a YAML error, an unknown field, a
    ///   wrong type, a missing image, a port over 65535, ...).
    public static func decode(_ data: Data, path: String) throws(KubeletError) -> [Pod] {
        let object = "manifest \(path)"
        let text = String(decoding: data, as: UTF8.self)
        var documents: [JSONValue] = []
        do {
            if text.drop(while: \.isWhitespace).first == "{" {
                documents = [try JSONValue.parse(Array(data), what: "manifest")]
            } else {
                // `---` separated documents are allowed: the folder also holds standalone Services (the proxy's).
                let parser = try Parser(yaml: text, resolver: Resolver.default.removing(.timestamp))
                while let node = try parser.nextRoot() {
                    documents.append(try jsonValue(Constructor.default.any(from: node), path: ""))
                }
                guard !documents.isEmpty else { throw KubeletError(.invalidPod, object: object, "the file is empty") }
            }
        } catch let error as KubeletError {
            throw error
        } catch let error as YamlError {
            throw KubeletError(.invalidPod, object: object, "invalid YAML: \(error)")
        } catch {
            throw KubeletError(.invalidPod, object: object, "invalid YAML or JSON: \(error)")
        }
        var pods: [Pod] = []
        for (index, value) in documents.enumerated() {
            // An empty document (a trailing `---`) holds nothing; a file of nothing else is still refused above.
            if documents.count > 1, case .null = value { continue }
            let prefix = documents.count > 1 ? "documents[\(index)]." : ""
            pods += try decodeDocument(value, object: object, prefix: prefix)
        }
        return pods
    }

    /// Kinds the same folder may hold for the proxy's standalone Services: not the kubelet's, and not an error.
    static let proxyKinds: Set<[String]> = [["v1", "Service"], ["discovery.k8s.io/v1", "EndpointSlice"]]

    private static func decodeDocument(_ value: JSONValue, object: String, prefix: String) throws(KubeletError) -> [Pod] {
        guard case .object = value else { throw KubeletError(.invalidPod, object: object, "the document is not an object") }
        let kind = value["kind"]?.stringValue ?? ""
        let apiVersion = value["apiVersion"]?.stringValue ?? ""
        switch (apiVersion, kind) {
        case ("v1", "Pod"):
            return [try decodePod(value, object: object, prefix: prefix)]
        case ("v1", "List"), ("v1", "PodList"):
            var pods: [Pod] = []
            for (index, item) in (value["items"]?.arrayValue ?? []).enumerated() {
                guard item["kind"]?.stringValue == "Pod", item["apiVersion"]?.stringValue == "v1" else {
                    throw KubeletError(.invalidPod, object: object, field: "\(prefix)items[\(index)]", "only v1 Pods can be static pods")
                }
                pods.append(try decodePod(item, object: object, prefix: "\(prefix)items[\(index)]."))
            }
            return pods
        case _ where proxyKinds.contains([apiVersion, kind]):
            return []
        default:
            throw KubeletError(
                .invalidPod, object: object, field: prefix + "kind",
                "expected apiVersion v1 and kind Pod (or List), got \"\(apiVersion)\" \"\(kind)\"")
        }
    }

    private static func decodePod(_ value: JSONValue, object: String, prefix: String) throws(KubeletError) -> Pod {
        let pod: Pod
        do {
            pod = try ResourceCodec.decode(Pod.self, from: Data(value.serialized()), keepUnknownFields: false)
        } catch {
            throw KubeletError(.invalidPod, object: object, "not a valid Pod: \(error)")
        }
        do {
            var typed = try JSONValue(encoding: pod)
            typed["apiVersion"] = "v1"
            typed["kind"] = "Pod"
            if let unknown = unknownFields(value, typed, path: "").first {
                throw KubeletError(.invalidPod, object: object, field: prefix + unknown, "unknown field \"\(prefix + unknown)\"")
            }
        } catch let error as KubeletError {
            throw error
        } catch {
            throw KubeletError(.invalidPod, object: object, "cannot check the Pod's fields: \(error)")
        }
        if let problem = PodValidation.validate(pod).first {
            throw KubeletError(.invalidPod, object: object, field: prefix + problem.field, problem.message)
        }
        return pod
    }

    /// Paths of members of `original` that the typed model dropped (unknown or misspelled fields).
    static func unknownFields(_ original: JSONValue, _ typed: JSONValue, path: String) -> [String] {
        switch (original, typed) {
        case (.object(let members), .object(let known)):
            var result: [String] = []
            for key in members.keys.sorted() {
                let child = path.isEmpty ? key : "\(path).\(key)"
                guard let value = members[key], !value.isNull else { continue }
                guard let knownValue = known[key] else {
                    // Empty objects and lists may be dropped by the encoder without being unknown.
                    if value.objectValue?.isEmpty == true || value.arrayValue?.isEmpty == true { continue }
                    result.append(child)
                    continue
                }
                result += unknownFields(value, knownValue, path: child)
            }
            return result
        case (.array(let items), .array(let knownItems)):
            var result: [String] = []
            for (index, item) in items.enumerated() where index < knownItems.count {
                result += unknownFields(item, knownItems[index], path: "\(path)[\(index)]")
            }
            return result
        default:
            return []
        }
    }

    /// A YAML value (as Yams constructs it) as JSON.
    static func jsonValue(_ value: Any, path: String) throws -> JSONValue {
        switch value {
        case let value as Bool: return .bool(value)
        case let value as Int: return .integer(Int64(value))
        case let value as Double: return value == value.rounded() && abs(value) < 1e15 ? .integer(Int64(value)) : .number(value)
        case let value as String: return .string(value)
        case is NSNull: return .null
        case let value as [Any]:
            return .array(try value.enumerated().map { try jsonValue($0.element, path: "\(path)[\($0.offset)]") })
        case let value as [AnyHashable: Any]:
            var members: [String: JSONValue] = [:]
            for (key, member) in value {
                let name = "\(key.base)"
                members[name] = try jsonValue(member, path: path.isEmpty ? name : "\(path).\(name)")
            }
            return .object(members)
        case let value as Data: return .string(value.base64EncodedString())
        default:
            throw KubeletError(.invalidPod, object: "manifest", field: path, "unsupported YAML value \(value)")
        }
    }

    /// The kubelet's defaults for a pod from a file: UID from a hash of the manifest, node and path; name
    /// `<name>-<node>`; namespace `default`; `spec.nodeName`; the config annotations; the API's spec defaults.
    public static func staticPod(_ decoded: Pod, path: String, nodeName: String, seen: Date) -> Pod {
        var pod = decoded
        var hashed = (try? JSONEncoder.sorted.encode(decoded)).map(Array.init) ?? []
        hashed += Array("host:\(nodeName)".utf8) + Array("file:\(path)".utf8)
        let uid = StableHash.hex128(hashed)
        pod.metadata.uid = uid
        pod.metadata.name = "\(decoded.metadata.name ?? "")-\(nodeName.lowercased())"
        if pod.metadata.namespace?.isEmpty ?? true { pod.metadata.namespace = "default" }
        var annotations = pod.metadata.annotations ?? [:]
        annotations[hashAnnotation] = uid
        annotations[sourceAnnotation] = "file"
        annotations[seenAnnotation] = RFC3339.format(seen, fractionDigits: 9)
        pod.metadata.annotations = annotations
        pod.metadata.creationTimestamp = pod.metadata.creationTimestamp ?? KubeTime(seen)
        var spec = pod.spec ?? PodSpec()
        spec.nodeName = nodeName
        applySpecDefaults(&spec)
        pod.spec = spec
        pod.status = nil
        return pod
    }

    /// The defaults the API server gives a pod spec (restartPolicy, dnsPolicy, grace, pull policy, ...).
    static func applySpecDefaults(_ spec: inout PodSpec) {
        if spec.restartPolicy?.isEmpty ?? true { spec.restartPolicy = "Always" }
        if spec.dnsPolicy?.isEmpty ?? true { spec.dnsPolicy = "ClusterFirst" }
        if spec.terminationGracePeriodSeconds == nil { spec.terminationGracePeriodSeconds = 30 }
        if spec.schedulerName == nil { spec.schedulerName = "default-scheduler" }
        if spec.enableServiceLinks == nil { spec.enableServiceLinks = true }
        func defaults(_ container: inout Container) {
            if container.terminationMessagePath == nil { container.terminationMessagePath = "/dev/termination-log" }
            if container.terminationMessagePolicy == nil { container.terminationMessagePolicy = "File" }
            if container.imagePullPolicy == nil, let image = container.image, let reference = try? CRIImageDefaults.policy(image) {
                container.imagePullPolicy = reference
            }
            if var ports = container.ports {
                for index in ports.indices where ports[index].protocol == nil { ports[index].protocol = "TCP" }
                container.ports = ports
            }
        }
        for index in spec.containers.indices { defaults(&spec.containers[index]) }
        if var inits = spec.initContainers {
            for index in inits.indices { defaults(&inits[index]) }
            spec.initContainers = inits
        }
    }
}

enum CRIImageDefaults {
    static func policy(_ image: String) throws -> String {
        ImagePullPolicy.default(for: try ImageReference(parsing: image)).rawValue
    }
}
