public import Foundation
public import KubeAPI

/// Keeps node conditions as Kubernetes keeps them: `lastHeartbeatTime` moves with every report,
/// `lastTransitionTime` only when a condition's status changes.
public struct NodeConditionTracker: Sendable {
    private var current: [String: NodeCondition] = [:]

    public init() {}

    /// Starts from the conditions already on the Node (so a restart keeps transition times).
    public init(existing: [NodeCondition]) {
        for condition in existing { current[condition.type] = condition }
    }

    /// The conditions to post now, from what was observed.
    public mutating func report(_ observed: [NodeCondition], now: Date) -> [NodeCondition] {
        observed.map { observation in
            var condition = observation
            condition.lastHeartbeatTime = KubeTime(now)
            if let previous = current[observation.type], previous.status == observation.status, let since = previous.lastTransitionTime {
                condition.lastTransitionTime = since
            } else {
                condition.lastTransitionTime = KubeTime(now)
            }
            current[observation.type] = condition
            return condition
        }
    }

    /// The four conditions the kubelet owns, from the runtime's readiness and the pressure readings.
    public static func observe(readiness: RuntimeReadiness, pressures: (memory: Bool, disk: Bool, pid: Bool)) -> [NodeCondition] {
        func pressure(_ type: String, _ on: Bool) -> NodeCondition {
            let (reason, message) = (pressureWording[type]!)[on]!
            return NodeCondition(type: type, status: on ? "True" : "False", reason: reason, message: message)
        }
        let ready: NodeCondition
        if let problem = readiness.runtimeProblem {
            ready = NodeCondition(type: "Ready", status: "False", reason: "KubeletNotReady", message: "container runtime is down: \(problem)")
        } else if let problem = readiness.networkProblem {
            ready = NodeCondition(
                type: "Ready", status: "False", reason: "KubeletNotReady",
                message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:\(problem)")
        } else {
            ready = NodeCondition(type: "Ready", status: "True", reason: "KubeletReady", message: "kubelet is posting ready status")
        }
        return [
            pressure("MemoryPressure", pressures.memory),
            pressure("DiskPressure", pressures.disk),
            pressure("PIDPressure", pressures.pid),
            ready,
        ]
    }

    /// The kubelet's reasons and messages, by condition type and by whether the pressure is on.
    private static let pressureWording: [String: [Bool: (String, String)]] = [
        "MemoryPressure": [
            true: ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
            false: ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ],
        "DiskPressure": [
            true: ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            false: ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ],
        "PIDPressure": [
            true: ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
            false: ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ],
    ]
}
