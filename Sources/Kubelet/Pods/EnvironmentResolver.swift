import CRI
import Foundation
import KubeAPI

/// Resolves a container's environment the way the kubelet does: `envFrom` sources in order (later ones win),
/// then `env` (which wins over `envFrom`), each value with `$(VAR)` references to variables defined before it
/// expanded; `fieldRef`, `resourceFieldRef`, `configMapKeyRef` and `secretKeyRef` honour `optional`.
struct EnvironmentResolver: Sendable {
    var downward: DownwardAPI
    var objects: ObjectCache

    struct Resolved: Sendable {
        var env: [ContainerConfig.EnvVar]
        /// envFrom keys skipped because they are not valid variable names (reported as an event).
        var skippedKeys: [String]
    }

    /// - Throws: ``KubeletError`` `.createContainerConfigError` naming the container, the field and the missing
    ///   object or key.
    func resolve(_ container: Container, field base: String) async throws(KubeletError) -> Resolved {
        let pod = downward.pod
        let namespace = pod.namespace
        let object = "container \"\(container.name)\" of pod \(pod.fullName)"
        var order: [String] = []
        var values: [String: String] = [:]
        var skipped: [String] = []
        func set(_ name: String, _ value: String) {
            if values[name] == nil { order.append(name) }
            values[name] = value
        }
        for (index, source) in (container.envFrom ?? []).enumerated() {
            let field = "\(base).envFrom[\(index)]"
            let prefix = source.prefix ?? ""
            var data: [String: Data] = [:]
            if let reference = source.configMapRef {
                let name = reference.name ?? ""
                switch try await objects.configMap(namespace: namespace, name: name) {
                case .found(let map): data = map.bytesData
                case .notFound:
                    if reference.optional == true { continue }
                    throw KubeletError(.createContainerConfigError, object: object, field: field + ".configMapRef", "configmap \"\(name)\" not found")
                }
            } else if let reference = source.secretRef {
                let name = reference.name ?? ""
                switch try await objects.secret(namespace: namespace, name: name) {
                case .found(let secret): data = secret.textData
                case .notFound:
                    if reference.optional == true { continue }
                    throw KubeletError(.createContainerConfigError, object: object, field: field + ".secretRef", "secret \"\(name)\" not found")
                }
            }
            for key in data.keys.sorted() {
                let name = prefix + key
                guard Self.isValidName(name) else {
                    skipped.append(name)
                    continue
                }
                set(name, String(decoding: data[key]!, as: UTF8.self))
            }
        }
        for (index, variable) in (container.env ?? []).enumerated() {
            let field = "\(base).env[\(index)]"
            guard !variable.name.isEmpty else {
                throw KubeletError(.createContainerConfigError, object: object, field: field + ".name", "must not be empty")
            }
            if let value = variable.value, variable.valueFrom == nil {
                set(variable.name, Self.expand(value) { values[$0] })
                continue
            }
            guard let source = variable.valueFrom else {
                set(variable.name, "")
                continue
            }
            if let reference = source.fieldRef {
                set(variable.name, try downward.field(reference.fieldPath, object: object, field: field + ".valueFrom.fieldRef.fieldPath"))
            } else if let reference = source.resourceFieldRef {
                set(variable.name, try downward.resource(reference, defaultContainer: container.name, object: object, field: field + ".valueFrom.resourceFieldRef"))
            } else if let reference = source.configMapKeyRef {
                let name = reference.name ?? ""
                switch try await objects.configMap(namespace: namespace, name: name) {
                case .found(let map):
                    guard let bytes = map.bytesData[reference.key] else {
                        if reference.optional == true { continue }
                        throw KubeletError(
                            .createContainerConfigError, object: object, field: field + ".valueFrom.configMapKeyRef",
                            "couldn't find key \(reference.key) in ConfigMap \(namespace)/\(name)")
                    }
                    set(variable.name, String(decoding: bytes, as: UTF8.self))
                case .notFound:
                    if reference.optional == true { continue }
                    throw KubeletError(
                        .createContainerConfigError, object: object, field: field + ".valueFrom.configMapKeyRef", "configmap \"\(name)\" not found")
                }
            } else if let reference = source.secretKeyRef {
                let name = reference.name ?? ""
                switch try await objects.secret(namespace: namespace, name: name) {
                case .found(let secret):
                    guard let bytes = secret.textData[reference.key] else {
                        if reference.optional == true { continue }
                        throw KubeletError(
                            .createContainerConfigError, object: object, field: field + ".valueFrom.secretKeyRef",
                            "couldn't find key \(reference.key) in Secret \(namespace)/\(name)")
                    }
                    set(variable.name, String(decoding: bytes, as: UTF8.self))
                case .notFound:
                    if reference.optional == true { continue }
                    throw KubeletError(
                        .createContainerConfigError, object: object, field: field + ".valueFrom.secretKeyRef", "secret \"\(name)\" not found")
                }
            } else {
                throw KubeletError(.createContainerConfigError, object: object, field: field + ".valueFrom", "names no source")
            }
        }
        return Resolved(env: order.map { ContainerConfig.EnvVar(name: $0, value: values[$0]!) }, skippedKeys: skipped)
    }

    /// C identifier rules loosened as Kubernetes allows: letters, digits, `_`, `-`, `.`, not starting with a digit.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, !first.isNumber else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
    }

    /// Kubernetes' `$(VAR)` expansion: a defined variable is replaced, an undefined reference stays as written,
    /// `$$` is an escaped `$`.
    static func expand(_ text: String, _ lookup: (String) -> String?) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            guard character == "$", next < text.endIndex else {
                result.append(character)
                index = next
                continue
            }
            if text[next] == "$" {
                result.append("$")
                index = text.index(after: next)
            } else if text[next] == "(", let close = text[next...].firstIndex(of: ")") {
                let name = String(text[text.index(after: next)..<close])
                if let value = lookup(name) { result += value } else { result += "$(\(name))" }
                index = text.index(after: close)
            } else {
                result.append(character)
                index = next
            }
        }
        return result
    }
}
