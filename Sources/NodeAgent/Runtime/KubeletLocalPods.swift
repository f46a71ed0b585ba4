import KubeAPI
import Kubelet
import Proxy

/// This node's pods as standalone Services see them (``LocalPodSource``), read from the kubelet's status manager:
/// every pod a worker runs, with the IPs its sandbox got, its `Ready` condition and its container ports.
///
/// ``changes()`` follows the status manager's own change feed and ticks only when this view of the pods differs
/// from the last one (a status change that moves no IP, readiness or port is not a tick): endpoints follow a pod
/// as soon as its status is set.
struct KubeletLocalPods: LocalPodSource {
    let statusManager: StatusManager

    func pods() async -> [LocalPod] {
        statusManager.snapshots().map { Self.localPod($0.pod, status: $0.status) }.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    func changes() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let updates = statusManager.changes()
        let task = Task {
            // The pods already there are the first tick; then one per change that shows.
            var last = await pods()
            continuation.yield()
            for await _ in updates {
                let current = await pods()
                if current != last {
                    last = current
                    continuation.yield()
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    static func localPod(_ desired: DesiredPod, status: PodStatus) -> LocalPod {
        let pod = desired.pod
        var ips = (status.podIPs ?? []).map(\.ip)
        if ips.isEmpty, let ip = status.podIP { ips = [ip] }
        let ready = status.conditions?.contains { $0.type == "Ready" && $0.status == "True" } ?? false
        let ports = (pod.spec?.containers ?? []).flatMap { container in
            (container.ports ?? []).map { LocalPod.Port(name: $0.name, containerPort: Int($0.containerPort), protocol: $0.protocol) }
        }
        return LocalPod(
            namespace: desired.namespace, name: desired.name, labels: pod.metadata.labels ?? [:], ips: ips, ready: ready,
            terminating: desired.deletionRequested || status.phase == "Succeeded" || status.phase == "Failed", ports: ports)
    }
}
