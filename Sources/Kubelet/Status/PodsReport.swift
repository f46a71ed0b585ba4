import Foundation
import KubeAPI

/// What `/pods` (and the `pods` section of `/status`) shows: every pod the kubelet runs with its phase, IPs,
/// containers and recent events, and the manifest files it refused.
public struct PodsReport: Sendable, Codable {
    public struct ContainerReport: Sendable, Codable {
        public var name: String
        /// `running`, `waiting` or `terminated`.
        public var state: String
        public var reason: String?
        public var message: String?
        public var exitCode: Int32?
        public var ready: Bool
        public var restartCount: Int32
        public var containerID: String?
        public var image: String
    }

    public struct PodReport: Sendable, Codable {
        public var namespace: String
        public var name: String
        public var uid: String
        /// `api` or `file`.
        public var source: String
        public var manifest: String?
        public var phase: String
        public var reason: String?
        public var message: String?
        public var podIP: String?
        public var ready: Bool
        public var initContainers: [ContainerReport]
        public var containers: [ContainerReport]
        /// The API server has the status shown (always true standalone).
        public var statusSynced: Bool
        public var events: [EventRecorder.Record]
    }

    public var node: String
    /// No API server: static pods only.
    public var standalone: Bool
    public var sourcesReady: Bool
    public var runtimeError: String?
    public var pods: [PodReport]
    public var manifestErrors: [ManifestError]
}

extension Kubelet {
    /// The report `/pods` serves.
    public nonisolated func podsReport() -> PodsReport {
        let health = currentHealth
        let pods = statusManager.snapshots().sorted { ($0.pod.namespace, $0.pod.name) < ($1.pod.namespace, $1.pod.name) }.map { snapshot in
            let status = snapshot.status
            let pod = snapshot.pod
            return PodsReport.PodReport(
                namespace: pod.namespace, name: pod.name, uid: pod.uid, source: pod.source.rawValue, manifest: pod.manifestPath,
                phase: status.phase ?? "Pending", reason: status.reason, message: status.message, podIP: status.podIP,
                ready: status.conditions?.first { $0.type == "Ready" }?.status == "True",
                initContainers: (status.initContainerStatuses ?? []).map(Self.report), containers: (status.containerStatuses ?? []).map(Self.report),
                statusSynced: snapshot.synced, events: events.recent(namespace: pod.namespace, name: pod.name, uid: pod.uid))
        }
        return PodsReport(
            node: configuration.nodeName, standalone: client == nil, sourcesReady: health.sourcesReady, runtimeError: health.runtimeError, pods: pods,
            manifestErrors: manifestErrors)
    }

    private static func report(_ status: KubeAPI.ContainerStatus) -> PodsReport.ContainerReport {
        var state = "waiting"
        var reason = status.state?.waiting?.reason
        var message = status.state?.waiting?.message
        var exitCode: Int32?
        if status.state?.running != nil {
            state = "running"
            reason = nil
            message = nil
        } else if let terminated = status.state?.terminated {
            state = "terminated"
            reason = terminated.reason
            message = terminated.message
            exitCode = terminated.exitCode
        }
        return PodsReport.ContainerReport(
            name: status.name, state: state, reason: reason, message: message, exitCode: exitCode, ready: status.ready, restartCount: status.restartCount,
            containerID: status.containerID, image: status.image)
    }
}
