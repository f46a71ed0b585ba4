import CRI
import Foundation
import KubeAPI
import Testing

@testable import Kubelet

@Suite("Pod status from runtime state (pure)")
struct PodStatusBuilderTests {
    let t0 = Fixtures.t0

    private func build(
        _ pod: DesiredPod, sandboxes: [PodSandboxStatus] = [], containers: [CRI.ContainerStatus] = [], probes: [String: ContainerProbeStatus] = [:],
        machine: PodWorker.StateMachine = PodWorker.StateMachine(startTime: Fixtures.t0), previous: PodStatus? = nil, now: Date? = nil
    ) -> PodStatus {
        PodStatusBuilder(
            pod: pod, observed: ObservedPod(sandboxes: sandboxes, containers: containers), probes: probes, machine: machine, nodeIPs: ["192.0.2.10"],
            previous: previous, now: now ?? t0
        ).build()
    }

    @Test("a running pod: phase Running, IPs, QoS, conditions True, container running and ready")
    func running() throws {
        let pod = Fixtures.pod()
        let running = Fixtures.container(pod, "app", state: .running)
        let status = build(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], probes: [running.id: ContainerProbeStatus()])
        #expect(status.phase == "Running")
        #expect(status.qosClass == "BestEffort")
        #expect(status.podIP == "10.244.0.2")
        #expect(status.hostIPs == [IPAddressEntry(ip: "192.0.2.10")])
        #expect(status.conditions?.allSatisfy { $0.status == "True" } == true)
        let container = try #require(status.containerStatuses?.first)
        #expect(container.ready && container.started == true)
        #expect(container.containerID == "containerd://app-0")
        #expect(container.imageID == "local/busybox@sha256:" + String(repeating: "ab", count: 32))
        let encoded = try JSONValue(encoding: status)
        #expect(encoded["qosClass"]?.stringValue == "BestEffort")
    }

    @Test("QoS classes: BestEffort, Burstable, Guaranteed")
    func qos() {
        var guaranteed = Container(name: "a", image: "x")
        guaranteed.resources = ResourceRequirements(limits: ["cpu": "100m", "memory": "64Mi"])
        var burstable = Container(name: "b", image: "x")
        burstable.resources = ResourceRequirements(requests: ["cpu": "100m"])
        #expect(PodStatusBuilder.qosClass(PodSpec(containers: [Container(name: "c", image: "x")])) == "BestEffort")
        #expect(PodStatusBuilder.qosClass(PodSpec(containers: [guaranteed])) == "Guaranteed")
        #expect(PodStatusBuilder.qosClass(PodSpec(containers: [guaranteed, burstable])) == "Burstable")
    }

    @Test("a container waiting in CrashLoopBackOff shows the reason and its last termination; the pod stays Running")
    func crashLoop() throws {
        let pod = Fixtures.pod()
        var machine = PodWorker.StateMachine(startTime: t0)
        let first = Fixtures.container(pod, "app", attempt: 0, state: .exited, finished: t0, exitCode: 1)
        let second = Fixtures.container(pod, "app", attempt: 1, state: .exited, finished: t0.addingTimeInterval(1), exitCode: 1)
        _ = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [first], now: t0))
        _ = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [first, second], now: t0.addingTimeInterval(2)))
        let status = build(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [first, second], machine: machine)
        let container = try #require(status.containerStatuses?.first)
        #expect(container.state?.waiting?.reason == "CrashLoopBackOff")
        #expect(container.lastState?.terminated?.exitCode == 1)
        #expect(container.restartCount == 1)
        #expect(status.phase == "Running")
        #expect(status.conditions?.first { $0.type == "Ready" }?.status == "False")
    }

    @Test("a container killed by a signal reports the signal; terminated containers under Never make the pod Failed")
    func signal() throws {
        let pod = Fixtures.pod(restartPolicy: "Never")
        var machine = PodWorker.StateMachine(startTime: t0)
        let killed = Fixtures.container(pod, "app", state: .exited, finished: t0, exitCode: 137)
        _ = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [killed], now: t0))
        let status = build(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [killed], machine: machine)
        #expect(status.phase == "Failed")
        #expect(status.containerStatuses?.first?.state?.terminated?.signal == 9)
        #expect(status.containerStatuses?.first?.state?.terminated?.reason == "Error")
    }

    @Test("a condition keeps its transition time while its status stays the same")
    func transitionTimes() throws {
        let pod = Fixtures.pod()
        let running = Fixtures.container(pod, "app", state: .running)
        let first = build(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], probes: [running.id: ContainerProbeStatus()], now: t0)
        let later = build(
            pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], probes: [running.id: ContainerProbeStatus()], previous: first,
            now: t0.addingTimeInterval(60))
        #expect(first == later)
        let unready = build(
            pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], probes: [running.id: ContainerProbeStatus(ready: false)], previous: first,
            now: t0.addingTimeInterval(90))
        #expect(unready.conditions?.first { $0.type == "Ready" }?.lastTransitionTime == KubeTime(t0.addingTimeInterval(90)))
        #expect(unready.conditions?.first { $0.type == "Initialized" }?.lastTransitionTime == KubeTime(t0))
    }

    @Test("init containers pending: Pending, Initialized False naming them, app containers PodInitializing")
    func initializing() throws {
        let pod = Fixtures.pod(initContainers: [Container(name: "setup", image: "x")])
        let setup = Fixtures.container(pod, "setup", state: .running)
        let status = build(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [setup])
        #expect(status.phase == "Pending")
        let initialized = try #require(status.conditions?.first { $0.type == "Initialized" })
        #expect(initialized.status == "False")
        #expect(initialized.message == "containers with incomplete status: [setup]")
        #expect(status.containerStatuses?.first?.state?.waiting?.reason == "PodInitializing")
    }

    @Test("a scheduler's PodScheduled and other controllers' conditions are kept")
    func keptConditions() {
        let pod = Fixtures.pod()
        var previous = PodStatus()
        previous.conditions = [
            PodCondition(type: "PodScheduled", status: "True", lastTransitionTime: KubeTime(t0.addingTimeInterval(-5))),
            PodCondition(type: "example.com/gate", status: "False"),
        ]
        let status = build(pod, previous: previous)
        #expect(status.conditions?.contains(PodCondition(type: "PodScheduled", status: "True", lastTransitionTime: KubeTime(t0.addingTimeInterval(-5)))) == true)
        #expect(status.conditions?.contains { $0.type == "example.com/gate" } == true)
    }

    @Test("a status patch holds only what changed: equal fields are left out, not nulled")
    func minimalPatch() throws {
        let old: JSONValue = ["phase": "Pending", "qosClass": "BestEffort", "podIP": "10.0.0.1"]
        let new: JSONValue = ["phase": "Running", "qosClass": "BestEffort"]
        #expect(JSONValue.mergePatch(from: old, to: new) == ["phase": "Running", "podIP": .null])
        #expect(JSONValue.mergePatch(from: old, to: old) == nil)
    }
}
