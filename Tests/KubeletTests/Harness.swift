import CRI
import Foundation
import KubeAPI
import Logging
import NodeAgentTesting
import ServiceLifecycle
import Testing

@testable import Kubelet

/// A kubelet in-process over the in-memory runtime and the API server double (real HTTP), with a manual clock:
/// what the pod workers, status manager, mirror pods and probes do, without root or containerd.
final class KubeletHarness: @unchecked Sendable {
    let double: APIServerDouble
    let client: KubeClient
    let runtime: FakeContainerRuntime
    let clock: ManualKubeletClock
    let kubelet: Kubelet
    let root: String
    let recorder = LogRecorder()
    private var task: Task<Void, any Error>?
    private var group: ServiceGroup?
    static let node = "nakubelet-node"
    static let image = "local/busybox:latest"

    init(api: Bool = true, manifests: String? = nil, configure: (inout KubeletConfiguration) -> Void = { _ in }) async throws {
        double = try await APIServerDouble.start()
        try double.create(Namespace(metadata: ObjectMeta(name: "nakubelet")))
        client = try KubeClient(configuration: try double.clientConfiguration(), logger: Logger(label: "client", factory: { _ in SwiftLogNoOpLogHandler() }))
        clock = ManualKubeletClock(start: Date())
        let clock = self.clock
        runtime = FakeContainerRuntime(now: { clock.now() })
        try await runtime.addImage(Self.image)
        root = NSTemporaryDirectory() + "nakubelet-unit-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var configuration = KubeletConfiguration(nodeName: Self.node, nodeIPs: ["192.0.2.10"], rootDirectory: root, podManifestPath: manifests)
        configuration.manifestRescanInterval = .seconds(20)
        configure(&configuration)
        kubelet = Kubelet(
            configuration: configuration, runtime: runtime, client: api ? client : nil, clock: clock,
            logger: recorder.logger(label: "kubelet", level: .trace))
    }

    func start() {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: kubelet.services, logger: Logger(label: "group", factory: { _ in SwiftLogNoOpLogHandler() })))
        self.group = group
        task = Task { try await group.run() }
    }

    func stop() async {
        await group?.triggerGracefulShutdown()
        _ = try? await task?.value
        try? await client.shutdown()
        await double.stop()
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Creates a pod bound to this node in the API server.
    @discardableResult
    func createPod(_ pod: Pod) throws -> JSONValue {
        var pod = pod
        pod.spec?.nodeName = Self.node
        if pod.metadata.namespace == nil { pod.metadata.namespace = "nakubelet" }
        return try double.create(pod)
    }

    func apiPod(_ name: String, namespace: String = "nakubelet") -> Pod? {
        guard let value = double.object(Pod.resourceType, namespace: namespace, name: name) else { return nil }
        return try? ResourceCodec.decode(Pod.self, from: Data(value.serialized()))
    }

    func containerStatus(_ pod: String, _ container: String = "app") -> KubeAPI.ContainerStatus? {
        apiPod(pod)?.status?.containerStatuses?.first { $0.name == container }
    }

    /// The fake runtime's containers of a pod, by name.
    func containers(_ podName: String) async throws -> [CRI.ContainerStatus] {
        try await runtime.listContainers().filter { $0.pod.name == podName }
    }

    func running(_ podName: String, _ container: String = "app") async throws -> CRI.ContainerStatus? {
        try await containers(podName).first { $0.name == container && $0.state == .running }
    }

    static func pod(_ name: String, containers: [Container]? = nil, restartPolicy: String? = nil) -> Pod {
        var spec = PodSpec(containers: containers ?? [Container(name: "app", image: image)])
        spec.restartPolicy = restartPolicy
        return Pod(metadata: ObjectMeta(name: name, namespace: "nakubelet"), spec: spec)
    }
}

/// Runs `body` with a started harness and always stops it (API double, kubelet, temp folder), failing or not.
func withHarness(
    api: Bool = true, manifests: String? = nil, configure: (inout KubeletConfiguration) -> Void = { _ in }, _ body: (KubeletHarness) async throws -> Void
) async throws {
    let harness = try await KubeletHarness(api: api, manifests: manifests, configure: configure)
    harness.start()
    do {
        try await body(harness)
    } catch {
        await harness.stop()
        throw error
    }
    await harness.stop()
}

/// Polls `condition` every 20 ms until it holds or `timeout` (real time, generous) passes.
func eventually(timeout: Duration = .seconds(20), _ what: @autoclosure () -> String = "condition", _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    if try await condition() { return }
    Issue.record("timed out waiting for \(what())")
    throw CancellationError()
}
