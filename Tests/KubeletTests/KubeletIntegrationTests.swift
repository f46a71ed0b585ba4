import CRI
import Foundation
import KubeAPI
import NodeAgentTesting
import Testing

@testable import Kubelet

@Suite("Kubelet over the in-memory runtime and the API server double", .serialized)
struct KubeletIntegrationTests {
    @Test("a pod bound to the node runs and its status reaches the API: Running, ready, IPs, container state")
    func podRuns() async throws {
        try await withHarness { harness in
        try harness.createPod(KubeletHarness.pod("web"))
        try await eventually("web Running") { harness.apiPod("web")?.status?.phase == "Running" && harness.containerStatus("web")?.ready == true }
        let status = try #require(harness.apiPod("web")?.status)
        #expect(status.podIP == "10.244.0.2")
        #expect(status.hostIP == "192.0.2.10")
        #expect(status.qosClass == "BestEffort")
        #expect(status.startTime != nil)
        let container = try #require(status.containerStatuses?.first)
        #expect(container.state?.running?.startedAt != nil)
        #expect(container.containerID?.hasPrefix("containerd://fake-") == true)
        #expect(container.restartCount == 0)
        #expect(container.started == true)
        #expect(container.imageID.contains("@sha256:"))
        let conditions = Dictionary((status.conditions ?? []).map { ($0.type, $0.status) }, uniquingKeysWith: { a, _ in a })
        #expect(conditions == ["PodScheduled": "True", "PodReadyToStartContainers": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"])
        }
    }

    @Test("a crashing container restarts at once, then waits in CrashLoopBackOff 10 s, then 20 s (injected clock)")
    func crashLoop() async throws {
        try await withHarness { harness in
        try harness.createPod(KubeletHarness.pod("crash"))
        try await eventually { try await harness.running("crash") != nil }
        var first = try #require(try await harness.running("crash"))
        try await harness.runtime.exit(first.id, code: 1)
        try await eventually("restart 1") { try await harness.running("crash").map { $0.attempt == 1 } ?? false }
        first = try #require(try await harness.running("crash"))
        try await harness.runtime.exit(first.id, code: 1)
        try await eventually("CrashLoopBackOff in the API") { harness.containerStatus("crash")?.state?.waiting?.reason == "CrashLoopBackOff" }
        let waiting = try #require(harness.containerStatus("crash"))
        #expect(waiting.lastState?.terminated?.exitCode == 1)
        #expect(waiting.restartCount == 1)
        #expect(waiting.state?.waiting?.message?.contains("back-off 10s") == true)
        harness.clock.advance(by: .seconds(9))
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await harness.running("crash") == nil)
        harness.clock.advance(by: .seconds(1))
        try await eventually("restart 2 after 10 s") { try await harness.running("crash").map { $0.attempt == 2 } ?? false }
        let second = try #require(try await harness.running("crash"))
        try await harness.runtime.exit(second.id, code: 1)
        try await eventually("back-off 20s") { harness.containerStatus("crash")?.state?.waiting?.message?.contains("back-off 20s") == true }
        harness.clock.advance(by: .seconds(19))
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await harness.running("crash") == nil)
        harness.clock.advance(by: .seconds(1))
        try await eventually("restart 3 after 20 s") { try await harness.running("crash").map { $0.attempt == 3 } ?? false }
        try await eventually("restartCount 3 in the API") { harness.containerStatus("crash")?.restartCount == 3 }
        }
    }

    @Test("deleting a pod stops it, writes its terminal phase, and removes it from the API with grace 0")
    func deletion() async throws {
        try await withHarness { harness in
        try harness.createPod(KubeletHarness.pod("gone"))
        try await eventually { harness.apiPod("gone")?.status?.phase == "Running" }
        try await harness.client.delete(Pod.self, namespace: "nakubelet", name: "gone")
        try await eventually("pod removed from the API") { harness.apiPod("gone") == nil }
        try await eventually("sandbox removed") { try await harness.runtime.listPodSandboxes().isEmpty }
        #expect(try await harness.runtime.listContainers().isEmpty)
        }
    }

    @Test("init containers run in order before the app container; the pod is Pending until they finish")
    func initContainers() async throws {
        try await withHarness { harness in
        var pod = KubeletHarness.pod("init")
        pod.spec?.initContainers = [Container(name: "first", image: KubeletHarness.image), Container(name: "second", image: KubeletHarness.image)]
        try harness.createPod(pod)
        try await eventually { try await harness.running("init", "first") != nil }
        #expect(try await harness.running("init", "second") == nil)
        try await eventually { harness.apiPod("init")?.status?.initContainerStatuses?.first?.state?.running != nil }
        #expect(harness.apiPod("init")?.status?.phase == "Pending")
        #expect(harness.containerStatus("init")?.state?.waiting?.reason == "PodInitializing")
        try await harness.runtime.exit(try #require(try await harness.running("init", "first")).id, code: 0)
        try await eventually { try await harness.running("init", "second") != nil }
        #expect(try await harness.running("init", "app") == nil)
        try await harness.runtime.exit(try #require(try await harness.running("init", "second")).id, code: 0)
        try await eventually { harness.apiPod("init")?.status?.phase == "Running" }
        let conditions = harness.apiPod("init")?.status?.conditions ?? []
        #expect(conditions.first { $0.type == "Initialized" }?.status == "True")
        }
    }

    @Test("a failing init container fails the pod under restartPolicy Never")
    func initFailsNever() async throws {
        try await withHarness { harness in
        var pod = KubeletHarness.pod("initfail", restartPolicy: "Never")
        pod.spec?.initContainers = [Container(name: "first", image: KubeletHarness.image)]
        try harness.createPod(pod)
        try await eventually { try await harness.running("initfail", "first") != nil }
        try await harness.runtime.exit(try #require(try await harness.running("initfail", "first")).id, code: 2)
        try await eventually("Failed") { harness.apiPod("initfail")?.status?.phase == "Failed" }
        #expect(try await harness.running("initfail", "app") == nil)
        #expect(harness.apiPod("initfail")?.status?.initContainerStatuses?.first?.state?.terminated?.exitCode == 2)
        }
    }

    @Test("readiness flips Ready both ways without a restart; a startup probe holds readiness back")
    func readiness() async throws {
        try await withHarness { harness in
        var container = Container(name: "app", image: KubeletHarness.image)
        var readiness = Probe()
        readiness.exec = ExecAction(command: ["cat", "/ready"])
        readiness.periodSeconds = 1
        readiness.failureThreshold = 1
        container.readinessProbe = readiness
        var startup = Probe()
        startup.exec = ExecAction(command: ["cat", "/started"])
        startup.periodSeconds = 1
        startup.failureThreshold = 30
        container.startupProbe = startup
        try harness.createPod(KubeletHarness.pod("ready", containers: [container]))
        try await eventually { try await harness.running("ready") != nil }
        let id = try #require(try await harness.running("ready")).id
        await harness.runtime.setExecResult(ExecResult(exitCode: 1, stdout: "", stderr: "not yet"), for: id)
        // Startup keeps failing: not started, not ready, and the readiness probe never runs.
        for _ in 0..<5 {
            harness.clock.advance(by: .seconds(1))
            try await Task.sleep(for: .milliseconds(50))
        }
        try await eventually { harness.containerStatus("ready")?.started == false }
        #expect(harness.containerStatus("ready")?.ready == false)
        let readinessRuns = await harness.runtime.calls.filter { $0.0 == .exec && $0.1.contains("/ready") }.count
        #expect(readinessRuns == 0)
        // Both succeed: started and ready.
        await harness.runtime.setExecResult(ExecResult(exitCode: 0, stdout: "", stderr: ""), for: id)
        try await eventually("ready") {
            harness.clock.advance(by: .seconds(1))
            return harness.containerStatus("ready")?.ready == true
        }
        #expect(harness.containerStatus("ready")?.started == true)
        #expect(harness.apiPod("ready")?.status?.conditions?.first { $0.type == "Ready" }?.status == "True")
        // Readiness fails: not ready, same container.
        await harness.runtime.setExecResult(ExecResult(exitCode: 1, stdout: "", stderr: ""), for: id)
        try await eventually("unready") {
            harness.clock.advance(by: .seconds(1))
            return harness.containerStatus("ready")?.ready == false
        }
        #expect(harness.containerStatus("ready")?.restartCount == 0)
        #expect(try await harness.running("ready")?.id == id)
        }
    }

    @Test("a failing liveness probe restarts the container; restartCount and lastState show it")
    func liveness() async throws {
        try await withHarness { harness in
        var container = Container(name: "app", image: KubeletHarness.image)
        var liveness = Probe()
        liveness.exec = ExecAction(command: ["cat", "/alive"])
        liveness.periodSeconds = 1
        liveness.failureThreshold = 2
        container.livenessProbe = liveness
        try harness.createPod(KubeletHarness.pod("live", containers: [container]))
        try await eventually { try await harness.running("live") != nil }
        let id = try #require(try await harness.running("live")).id
        await harness.runtime.setExecResult(ExecResult(exitCode: 1, stdout: "", stderr: "dead"), for: id)
        try await eventually("restarted") {
            harness.clock.advance(by: .seconds(1))
            return try await harness.running("live").map { $0.id != id } ?? false
        }
        try await eventually { harness.containerStatus("live")?.restartCount == 1 }
        #expect(harness.containerStatus("live")?.lastState?.terminated != nil)
        let events = harness.kubelet.events.recent(namespace: "nakubelet", name: "live", uid: harness.apiPod("live")?.metadata.uid ?? "")
        #expect(events.contains { $0.reason == "Unhealthy" })
        #expect(events.contains { $0.reason == "Killing" && $0.message.contains("failed liveness probe") })
        }
    }

    static let staticManifest = """
        apiVersion: v1
        kind: Pod
        metadata: {name: static-web, namespace: nakubelet}
        spec:
          containers: [{name: app, image: "local/busybox:latest", imagePullPolicy: Never}]
        """

    @Test("standalone: a static pod from the manifest folder runs with no API server and shows in the pods report")
    func standalone() async throws {
        let folder = NSTemporaryDirectory() + "nakubelet-static-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.staticManifest.write(toFile: folder + "/web.yaml", atomically: true, encoding: .utf8)
        try "broken: [".write(toFile: folder + "/broken.yaml", atomically: true, encoding: .utf8)
        try await withHarness(api: false, manifests: folder) { harness in
            let name = "static-web-\(KubeletHarness.node)"
            try await eventually("static pod running") { try await harness.running(name) != nil }
            try await eventually("report Running") { harness.kubelet.podsReport().pods.first?.phase == "Running" }
            let report = harness.kubelet.podsReport()
            #expect(report.standalone)
            #expect(report.pods.map(\.name) == [name])
            #expect(report.pods.first?.source == "file")
            #expect(report.manifestErrors.map(\.path) == [folder + "/broken.yaml"])
            // Removing the manifest stops and removes the pod.
            try FileManager.default.removeItem(atPath: folder + "/web.yaml")
            try await eventually("static pod removed") { try await harness.runtime.listPodSandboxes().isEmpty }
        }
    }

    @Test("with an API server a static pod gets a mirror pod carrying its status; a deleted mirror is recreated; removing the manifest deletes it")
    func mirrorPods() async throws {
        let folder = NSTemporaryDirectory() + "nakubelet-static-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.staticManifest.write(toFile: folder + "/web.yaml", atomically: true, encoding: .utf8)
        try await withHarness(manifests: folder) { harness in
            let name = "static-web-\(KubeletHarness.node)"
            try await eventually("mirror pod Running") { harness.apiPod(name)?.status?.phase == "Running" }
            let mirror = try #require(harness.apiPod(name))
            let annotations = mirror.metadata.annotations ?? [:]
            let hash = try #require(annotations[PodManifest.hashAnnotation])
            #expect(annotations[PodManifest.mirrorAnnotation] == hash)
            #expect(annotations[PodManifest.sourceAnnotation] == "file")
            #expect(mirror.metadata.uid != hash)
            #expect(mirror.spec?.nodeName == KubeletHarness.node)
            #expect(mirror.status?.containerStatuses?.first?.ready == true)
            // Someone deletes the mirror: it comes back; the static pod keeps running untouched.
            let running = try #require(try await harness.running(name))
            try harness.double.delete(Pod.resourceType, namespace: "nakubelet", name: name)
            try await eventually("mirror recreated") { harness.apiPod(name).map { $0.metadata.uid != mirror.metadata.uid } ?? false }
            try await eventually("recreated mirror gets the status") { harness.apiPod(name)?.status?.phase == "Running" }
            #expect(try await harness.running(name)?.id == running.id)
            // The manifest goes: the pod stops and the mirror is deleted.
            try FileManager.default.removeItem(atPath: folder + "/web.yaml")
            try await eventually("mirror deleted") { harness.apiPod(name) == nil }
            try await eventually("pod removed") { try await harness.runtime.listPodSandboxes().isEmpty }
        }
    }
}
