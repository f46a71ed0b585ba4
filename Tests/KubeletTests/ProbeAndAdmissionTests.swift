import Foundation
import KubeAPI
import Testing

@testable import Kubelet

@Suite("Probe thresholds and admission (pure)")
struct ProbeAndAdmissionTests {
    private func machine(_ kind: ProbeKind, success: Int32? = nil, failure: Int32? = nil) -> ProbeWorker.StateMachine {
        var probe = Probe()
        probe.successThreshold = success
        probe.failureThreshold = failure
        return ProbeWorker.StateMachine(kind: kind, timing: ProbeTiming(probe, kind: kind))
    }

    @Test("initial results: readiness failure, liveness success, startup unknown; Kubernetes' defaults")
    func initial() {
        #expect(machine(.readiness).result == .failure)
        #expect(machine(.liveness).result == .success)
        #expect(machine(.startup).result == .unknown)
        let timing = ProbeTiming(Probe(), kind: .readiness)
        #expect(timing.period == .seconds(10) && timing.timeout == .seconds(1) && timing.initialDelay == .zero)
        #expect(timing.successThreshold == 1 && timing.failureThreshold == 3)
    }

    @Test("results change only when a threshold is reached")
    func thresholds() {
        var readiness = machine(.readiness, success: 2, failure: 3)
        #expect(readiness.observe(success: true) == .none)
        #expect(readiness.observe(success: true) == .publish(.success))
        #expect(readiness.observe(success: false) == .none)
        #expect(readiness.observe(success: true) == .none)
        #expect(readiness.observe(success: false) == .none)
        #expect(readiness.observe(success: false) == .none)
        #expect(readiness.observe(success: false) == .publish(.failure))
        #expect(!readiness.onHold)
    }

    @Test("a liveness failure is published once at the threshold, then the worker holds")
    func livenessHold() {
        var liveness = machine(.liveness, failure: 2)
        #expect(liveness.observe(success: false) == .none)
        #expect(liveness.observe(success: false) == .publish(.failure))
        #expect(liveness.onHold)
        #expect(liveness.observe(success: true) == .none)
    }

    @Test("liveness and startup ignore a successThreshold above 1")
    func livenessSuccessThreshold() {
        var startup = machine(.startup, success: 5)
        #expect(startup.observe(success: true) == .publish(.success))
    }

    private func pod(_ name: String, hostPort: Int32? = nil, cpu: Quantity? = nil, selector: [String: String]? = nil) -> DesiredPod {
        var container = Container(name: "app", image: "local/busybox:latest")
        if let hostPort {
            var port = ContainerPort(containerPort: 80)
            port.hostPort = hostPort
            container.ports = [port]
        }
        if let cpu { container.resources = ResourceRequirements(requests: ["cpu": cpu]) }
        var pod = Fixtures.pod(name, containers: [container])
        pod.pod.spec?.nodeSelector = selector
        return pod
    }

    @Test("admission refuses a node selector mismatch, a taken host port, too many pods and too much CPU, naming why")
    func admission() {
        let admission = Admission(maxPods: 2, allocatableCPUMillis: 1000, allocatableMemoryBytes: 1 << 30)
        let labels = ["kubernetes.io/hostname": "node-a", "disk": "ssd"]
        #expect(admission.admit(pod("a", selector: ["disk": "ssd"]), active: [], nodeLabels: labels) == nil)
        #expect(admission.admit(pod("b", selector: ["disk": "hdd"]), active: [], nodeLabels: labels)?.reason == "NodeAffinity")
        let web = pod("web", hostPort: 8080)
        #expect(admission.admit(pod("other", hostPort: 8080), active: [web], nodeLabels: labels)?.reason == "NodePorts")
        #expect(admission.admit(pod("other", hostPort: 8081), active: [web], nodeLabels: labels) == nil)
        #expect(admission.admit(pod("third"), active: [web, pod("x")], nodeLabels: labels)?.reason == "OutOfpods")
        let rejection = admission.admit(pod("big", cpu: "1500m"), active: [], nodeLabels: labels)
        #expect(rejection?.reason == "OutOfcpu")
        #expect(rejection?.message.contains("cpu, requested: 1500, used: 0, capacity: 1000") == true)
    }

    @Test("admission refuses what node-agent cannot run, naming the field")
    func unsupported() {
        var container = Container(name: "app", image: "local/busybox:latest")
        var probe = Probe()
        probe.grpc = GRPCAction(port: 9000)
        container.livenessProbe = probe
        let refused = Admission(maxPods: 10, allocatableCPUMillis: 1000, allocatableMemoryBytes: 1 << 30)
            .admit(Fixtures.pod("grpc", containers: [container]), active: [], nodeLabels: [:])
        #expect(refused?.reason == "InvalidPod")
        #expect(refused?.message.contains("spec.containers[0].livenessProbe.grpc") == true)
    }
}
