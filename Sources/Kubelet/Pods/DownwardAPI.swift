import Foundation
import KubeAPI

/// Values of a pod's own fields, for `fieldRef` and `resourceFieldRef` in env vars and downwardAPI volumes.
struct DownwardAPI: Sendable {
    var pod: DesiredPod
    var nodeName: String
    var podIPs: [String]
    var hostIPs: [String]
    /// Node allocatable, the value of a limit a container does not set.
    var allocatableCPUMillis: Int64
    var allocatableMemoryBytes: Int64
    var allocatableEphemeralBytes: Int64

    /// The value at `fieldPath` (`metadata.name`, `metadata.labels['app']`, `status.podIP`, ...).
    /// - Parameter volume: downwardAPI volumes may also name `metadata.labels` / `metadata.annotations` whole.
    /// - Throws: ``KubeletError`` naming the field path when it is not one Kubernetes supports.
    func field(_ fieldPath: String, object: String, field: String, volume: Bool = false) throws(KubeletError) -> String {
        let metadata = pod.pod.metadata
        switch fieldPath {
        case "metadata.name": return metadata.name ?? ""
        case "metadata.namespace": return metadata.namespace ?? "default"
        case "metadata.uid": return metadata.uid ?? ""
        case "spec.nodeName": return pod.spec.nodeName ?? nodeName
        case "spec.serviceAccountName": return pod.spec.serviceAccountName ?? ""
        case "status.podIP": return podIPs.first ?? ""
        case "status.podIPs": return podIPs.joined(separator: ",")
        case "status.hostIP": return hostIPs.first ?? ""
        case "status.hostIPs": return hostIPs.joined(separator: ",")
        case "metadata.labels" where volume: return Self.formatMap(metadata.labels ?? [:])
        case "metadata.annotations" where volume: return Self.formatMap(metadata.annotations ?? [:])
        default:
            for (prefix, map) in [("metadata.labels", metadata.labels), ("metadata.annotations", metadata.annotations)] {
                if fieldPath.hasPrefix(prefix + "['"), fieldPath.hasSuffix("']") {
                    let key = String(fieldPath.dropFirst(prefix.count + 2).dropLast(2))
                    return map?[key] ?? ""
                }
            }
            throw KubeletError(
                .createContainerConfigError, object: "pod \(pod.fullName)", field: field,
                "unsupported fieldPath \"\(fieldPath)\"; supported: metadata.name, metadata.namespace, metadata.uid, metadata.labels['<key>'], "
                    + "metadata.annotations['<key>'], spec.nodeName, spec.serviceAccountName, status.podIP(s), status.hostIP(s)")
        }
    }

    /// `key="value"` lines sorted by key, as downwardAPI volumes write labels and annotations.
    static func formatMap(_ map: [String: String]) -> String {
        map.keys.sorted().map { key in
            let value = map[key]!.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
            return "\(key)=\"\(value)\""
        }.joined(separator: "\n")
    }

    /// The value of `resource` (`limits.cpu`, `requests.memory`, ...) of `containerName` divided by `divisor`,
    /// rounded up; an unset limit is the node's allocatable, an unset request is the limit or 0.
    func resource(_ selector: ResourceFieldSelector, defaultContainer: String?, object: String, field: String) throws(KubeletError) -> String {
        let name = selector.containerName ?? defaultContainer
        guard let name, let container = (pod.spec.containers + pod.spec.initContainerList).first(where: { $0.name == name }) else {
            throw KubeletError(
                .createContainerConfigError, object: object, field: field + ".containerName",
                "container \"\(selector.containerName ?? "")\" is not in the pod")
        }
        let parts = selector.resource.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, ["limits", "requests"].contains(parts[0]), ["cpu", "memory", "ephemeral-storage"].contains(parts[1]) else {
            throw KubeletError(
                .createContainerConfigError, object: object, field: field + ".resource",
                "unsupported resource \"\(selector.resource)\"; supported: limits|requests .cpu, .memory, .ephemeral-storage")
        }
        let limits = container.resources?.limits ?? [:]
        let requests = container.resources?.requests ?? [:]
        let isCPU = parts[1] == "cpu"
        let allocatable: Decimal =
            switch parts[1] {
            case "cpu": Decimal(allocatableCPUMillis) / 1000
            case "memory": Decimal(allocatableMemoryBytes)
            default: Decimal(allocatableEphemeralBytes)
            }
        let value: Decimal
        if parts[0] == "limits" {
            value = limits[parts[1]]?.decimal ?? allocatable
        } else {
            value = requests[parts[1]]?.decimal ?? limits[parts[1]]?.decimal ?? 0
        }
        let divisor = selector.divisor?.decimal ?? 1
        guard divisor > 0 else {
            throw KubeletError(.createContainerConfigError, object: object, field: field + ".divisor", "must be greater than 0")
        }
        var quotient = value / divisor
        var rounded = Decimal()
        NSDecimalRound(&rounded, &quotient, 0, .up)
        if isCPU && rounded == 0 && value > 0 { rounded = 1 }
        return "\(rounded)"
    }
}
