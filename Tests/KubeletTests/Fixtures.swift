import CRI
import Foundation
import KubeAPI

@testable import Kubelet

/// Builders for pods and runtime states used across the kubelet's unit tests.
enum Fixtures {
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    static func pod(
        _ name: String = "web", uid: String? = nil, containers: [Container] = [Container(name: "app", image: "local/busybox:latest")],
        initContainers: [Container]? = nil, restartPolicy: String = "Always", grace: Int64 = 30, source: PodSourceKind = .api
    ) -> DesiredPod {
        var spec = PodSpec(containers: containers)
        spec.initContainers = initContainers
        spec.restartPolicy = restartPolicy
        spec.terminationGracePeriodSeconds = grace
        spec.nodeName = "node-a"
        var metadata = ObjectMeta(name: name, namespace: "nakubelet")
        metadata.uid = uid ?? "uid-\(name)"
        return DesiredPod(pod: Pod(metadata: metadata, spec: spec), source: source)
    }

    static func sandbox(_ pod: DesiredPod, id: String = "sb-1", attempt: Int = 0, ready: Bool = true, ip: String = "10.244.0.2", at: Date = t0) -> PodSandboxStatus {
        PodSandboxStatus(
            id: id, config: PodSandboxConfig(pod: pod.identity, attempt: attempt), state: ready ? .ready : .notReady, createdAt: at, podIPs: [ip],
            networkNamespacePath: "/var/run/netns/\(id)")
    }

    static func container(
        _ pod: DesiredPod, _ name: String, id: String? = nil, sandbox: String = "sb-1", attempt: Int = 0, state: CRI.ContainerState,
        started: Date = t0, finished: Date? = nil, exitCode: Int32? = nil, hash: String? = nil
    ) -> CRI.ContainerStatus {
        var labels: [String: String] = [:]
        if let hash { labels[KubeletLabels.containerHash] = hash }
        return CRI.ContainerStatus(
            id: id ?? "\(name)-\(attempt)", sandboxID: sandbox, pod: pod.identity, name: name, attempt: attempt, state: state,
            image: "local/busybox:latest", imageDigest: "sha256:" + String(repeating: "ab", count: 32), createdAt: started.addingTimeInterval(Double(attempt) * 0.001),
            startedAt: state == .created ? nil : started, finishedAt: finished, exitCode: exitCode,
            reason: exitCode.map { $0 == 0 ? "Completed" : "Error" }, labels: labels)
    }

    static func input(
        _ pod: DesiredPod, sandboxes: [PodSandboxStatus] = [], containers: [CRI.ContainerStatus] = [], probes: [String: ContainerProbeStatus] = [:],
        removed: Bool = false, now: Date
    ) -> PodWorker.StateMachine.Input {
        PodWorker.StateMachine.Input(
            pod: pod, removed: removed, observed: ObservedPod(sandboxes: sandboxes, containers: containers), probes: probes, now: now)
    }
}

extension PodWorker.StateMachine.Action {
    var startedName: String? {
        if case .startContainer(let request) = self { return request.name }
        return nil
    }
    var startRequest: PodWorker.StateMachine.StartRequest? {
        if case .startContainer(let request) = self { return request }
        return nil
    }
}
