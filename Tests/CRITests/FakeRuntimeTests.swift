import CRI
import Foundation
import NodeAgentTesting
import Testing

/// The fake follows the real runtime's rules, so kubelet tests written against it hold against containerd.
@Suite("FakeContainerRuntime behaves like the real runtime")
struct FakeRuntimeTests {
    let pod = PodSandboxConfig(pod: PodIdentity(uid: "u1", name: "web", namespace: "default"))
    static let fixed = Date(timeIntervalSince1970: 1_700_000_000)

    @Test("created → running → exited, with an exit event delivered once and times from the injected clock")
    func lifecycle() async throws {
        let runtime = FakeContainerRuntime(now: { Self.fixed })
        try await runtime.addImage("local/busybox:latest")
        let exits = runtime.exitEvents()
        let sandbox = try await runtime.runPodSandbox(pod)
        #expect(sandbox.podIP == "10.244.0.2" && sandbox.state == .ready)
        let id = try await runtime.createContainer(in: sandbox.id, config: ContainerConfig(name: "c", attempt: 1, image: "local/busybox:latest"))
        #expect(try await runtime.containerStatus(id).state == .created)
        try await runtime.startContainer(id)
        let running = try await runtime.containerStatus(id)
        #expect(running.state == .running && running.startedAt == Self.fixed && running.labels[RuntimeLabels.containerAttempt] == "1")
        try await runtime.exit(id, code: 3)
        try await runtime.exit(id, code: 3)
        var iterator = exits.makeAsyncIterator()
        let exit = try #require(await iterator.next())
        #expect(exit.containerID == id && exit.exitCode == 3 && exit.finishedAt == Self.fixed)
        let status = try await runtime.containerStatus(id)
        #expect(status.state == .exited && status.reason == "Error" && status.runtimeID == "containerd://\(id)")
        #expect(status.logPath == "/var/log/pods/default_web_u1/c/1.log")
    }

    @Test("the same typed errors as the real runtime: Never pull, missing image, bad reference, unknown IDs, wrong state")
    func errors() async throws {
        let runtime = FakeContainerRuntime()
        await #expect { try await runtime.ensureImage("local/x:1", policy: .never) } throws: { ($0 as? ContainerRuntimeError)?.kind == .imageNeverPull }
        await #expect { try await runtime.ensureImage("local/x:1", policy: .ifNotPresent) } throws: { ($0 as? ContainerRuntimeError)?.kind == .imagePullFailed }
        await #expect { try await runtime.ensureImage("Not::Valid", policy: nil) } throws: { ($0 as? ContainerRuntimeError)?.kind == .invalidImageName }
        try await runtime.allowPull("local/x:1")
        #expect(try await runtime.ensureImage("local/x:1", policy: .ifNotPresent).reference == "local/x:1")
        let sandbox = try await runtime.runPodSandbox(pod)
        await #expect { try await runtime.createContainer(in: sandbox.id, config: ContainerConfig(name: "c", image: "local/other:1")) } throws: {
            ($0 as? ContainerRuntimeError)?.kind == .imageNotFound
        }
        await #expect { try await runtime.startContainer("nope") } throws: { ($0 as? ContainerRuntimeError)?.kind == .containerNotFound }
        let id = try await runtime.createContainer(in: sandbox.id, config: ContainerConfig(name: "c", image: "local/x:1"))
        try await runtime.startContainer(id)
        await #expect { try await runtime.startContainer(id) } throws: { ($0 as? ContainerRuntimeError)?.kind == .invalidState }
        try await runtime.stopPodSandbox(sandbox.id, gracePeriod: .seconds(1))
        await #expect { try await runtime.createContainer(in: sandbox.id, config: ContainerConfig(name: "d", image: "local/x:1")) } throws: {
            ($0 as? ContainerRuntimeError)?.kind == .sandboxNotReady
        }
    }

    @Test("stop gives 0 to a container that honours TERM and 137 to one that ignores it; injected failures fire once")
    func stopsAndFailures() async throws {
        let runtime = FakeContainerRuntime()
        try await runtime.addImage("local/busybox:latest")
        let sandbox = try await runtime.runPodSandbox(pod)
        let polite = try await runtime.createContainer(in: sandbox.id, config: ContainerConfig(name: "a", image: "local/busybox:latest"))
        let stubborn = try await runtime.createContainer(in: sandbox.id, config: ContainerConfig(name: "b", image: "local/busybox:latest"))
        try await runtime.startContainer(polite)
        try await runtime.startContainer(stubborn)
        await runtime.ignoreTerm(stubborn)
        try await runtime.stopContainer(polite, gracePeriod: .seconds(30))
        try await runtime.stopContainer(stubborn, gracePeriod: .seconds(1))
        #expect(try await runtime.containerStatus(polite).exitCode == 0)
        #expect(try await runtime.containerStatus(stubborn).exitCode == 137)
        await runtime.failNext(.runPodSandbox, with: ContainerRuntimeError.fake(.cniFailed, "CNI plugin \"bridge\""))
        await #expect { try await runtime.runPodSandbox(pod) } throws: { ($0 as? ContainerRuntimeError)?.kind == .cniFailed }
        #expect(try await runtime.runPodSandbox(pod).state == .ready)
        try await runtime.removePodSandbox(sandbox.id)
        #expect(try await runtime.listContainers().isEmpty)
        #expect(await runtime.calls.map(\.0).contains(.removeContainer))
    }
}
