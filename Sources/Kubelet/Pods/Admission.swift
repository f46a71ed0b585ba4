import Foundation
import KubeAPI

/// Decides whether a new pod may run on this node (the kubelet's admit handlers): a valid spec node-agent can run,
/// `nodeSelector` matching the node's labels, room for one more pod and its CPU and memory requests, and host ports
/// not taken by a running pod. A refused pod is not started; it shows `Failed` with the reason.
struct Admission: Sendable {
    var maxPods: Int
    var allocatableCPUMillis: Int64
    var allocatableMemoryBytes: Int64

    struct Rejection: Sendable, Hashable, Error {
        var reason: String
        var message: String
    }

    /// - Parameters:
    ///   - active: the pods already admitted and not terminal.
    ///   - nodeLabels: the Node's labels.
    func admit(_ pod: DesiredPod, active: [DesiredPod], nodeLabels: [String: String]) -> Rejection? {
        if let problem = PodValidation.validate(pod.pod).first {
            return Rejection(reason: "InvalidPod", message: "Pod was rejected: \(problem.field): \(problem.message)")
        }
        let spec = pod.spec
        for (key, value) in spec.nodeSelector ?? [:] where nodeLabels[key] != value {
            return Rejection(
                reason: "NodeAffinity",
                message: "Pod was rejected: Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector (\(key)=\(value))")
        }
        if active.count + 1 > maxPods {
            return Rejection(
                reason: "OutOfpods",
                message: "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: \(active.count), capacity: \(maxPods)")
        }
        let requested = Self.requests(spec)
        let used = active.reduce((cpu: Int64(0), memory: Int64(0))) { sum, other in
            let request = Self.requests(other.spec)
            return (sum.cpu + request.cpu, sum.memory + request.memory)
        }
        if requested.cpu > 0, used.cpu + requested.cpu > allocatableCPUMillis {
            return Rejection(
                reason: "OutOfcpu",
                message: "Pod was rejected: Node didn't have enough resource: cpu, requested: \(requested.cpu), used: \(used.cpu), capacity: \(allocatableCPUMillis)")
        }
        if requested.memory > 0, used.memory + requested.memory > allocatableMemoryBytes {
            return Rejection(
                reason: "OutOfmemory",
                message: "Pod was rejected: Node didn't have enough resource: memory, requested: \(requested.memory), used: \(used.memory), capacity: \(allocatableMemoryBytes)")
        }
        let taken = Set(active.flatMap { Self.hostPorts($0.spec) })
        for port in Self.hostPorts(spec) where taken.contains(where: { $0.conflicts(with: port) }) {
            return Rejection(
                reason: "NodePorts",
                message: "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports (\(port.protocolName)/\(port.port))")
        }
        return nil
    }

    /// The pod's effective requests: the larger of the app containers' sum and the largest init container.
    static func requests(_ spec: PodSpec) -> (cpu: Int64, memory: Int64) {
        func request(_ container: Container, _ resource: String) -> Quantity? {
            container.resources?.requests?[resource] ?? container.resources?.limits?[resource]
        }
        var cpu = spec.containers.reduce(Int64(0)) { $0 + (request($1, "cpu")?.milliValue ?? 0) }
        var memory = spec.containers.reduce(Int64(0)) { $0 + (request($1, "memory")?.value ?? 0) }
        for container in spec.initContainerList {
            cpu = max(cpu, request(container, "cpu")?.milliValue ?? 0)
            memory = max(memory, request(container, "memory")?.value ?? 0)
        }
        return (cpu, memory)
    }

    struct HostPort: Hashable {
        var ip: String
        var protocolName: String
        var port: Int32

        func conflicts(with other: HostPort) -> Bool {
            guard port == other.port, protocolName == other.protocolName else { return false }
            let wildcard = ["", "0.0.0.0", "::"]
            return ip == other.ip || wildcard.contains(ip) || wildcard.contains(other.ip)
        }
    }

    static func hostPorts(_ spec: PodSpec) -> [HostPort] {
        (spec.initContainerList + spec.containers).flatMap { container in
            (container.ports ?? []).compactMap { port -> HostPort? in
                var hostPort = port.hostPort ?? 0
                if hostPort == 0, spec.isHostNetwork { hostPort = port.containerPort }
                guard hostPort > 0 else { return nil }
                return HostPort(ip: port.hostIP ?? "", protocolName: port.protocol ?? "TCP", port: hostPort)
            }
        }
    }
}
