import CRI
import Foundation
import KubeAPI
import Logging

/// What every pod worker shares: the runtime, the API client, the managers, the clock and the settings.
struct PodContext: Sendable {
    var configuration: KubeletConfiguration
    var runtime: any ContainerRuntime
    var client: (any KubeClientProtocol)?
    var clock: any KubeletClock
    var statusManager: StatusManager
    var events: EventRecorder
    var probes: ProbeManager
    var volumes: VolumeManager
    var images: ImageManager
    var objects: ObjectCache
    var handlers: HandlerRunner
    var logger: Logger
    /// Reports a runtime failure or success (the container-runtime health check).
    var runtimeHealth: @Sendable (ContainerRuntimeError?) -> Void
    /// Tells the kubelet which sandboxes belong to a pod (exit events are routed by sandbox).
    var sandboxesObserved: @Sendable (String, [String]) -> Void

    func downward(_ pod: DesiredPod, podIPs: [String]) -> DownwardAPI {
        DownwardAPI(
            pod: pod, nodeName: configuration.nodeName, podIPs: podIPs, hostIPs: configuration.nodeIPs,
            allocatableCPUMillis: configuration.allocatableCPUMillis, allocatableMemoryBytes: configuration.allocatableMemoryBytes,
            allocatableEphemeralBytes: configuration.allocatableEphemeralBytes)
    }
}
