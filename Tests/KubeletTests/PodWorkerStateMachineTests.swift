import CRI
import Foundation
import KubeAPI
import Testing

@testable import Kubelet

@Suite("Pod worker decisions (pure state machine)")
struct PodWorkerStateMachineTests {
    typealias Machine = PodWorker.StateMachine
    let t0 = Fixtures.t0

    @Test("a new pod gets a sandbox first, then all its app containers")
    func newPod() {
        let pod = Fixtures.pod(containers: [Container(name: "a", image: "local/busybox:latest"), Container(name: "b", image: "local/busybox:latest")])
        var machine = Machine()
        #expect(machine.sync(Fixtures.input(pod, now: t0)) == [.createSandbox(attempt: 0)])
        let actions = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], now: t0))
        #expect(actions.compactMap(\.startedName) == ["a", "b"])
        #expect(actions.compactMap(\.startRequest).allSatisfy { $0.attempt == 0 && $0.sandboxID == "sb-1" })
    }

    @Test("running containers in a ready sandbox need nothing")
    func steady() {
        let pod = Fixtures.pod()
        var machine = Machine()
        let running = Fixtures.container(pod, "app", state: .running, hash: pod.spec.containers[0].specHash)
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], now: t0)).isEmpty)
    }

    @Test("init containers run one at a time, in order, each to success, before app containers")
    func initOrder() {
        let pod = Fixtures.pod(initContainers: [Container(name: "i1", image: "local/busybox:latest"), Container(name: "i2", image: "local/busybox:latest")])
        let sandbox = Fixtures.sandbox(pod)
        var machine = Machine()
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [sandbox], now: t0)).compactMap(\.startedName) == ["i1"])
        let i1Running = Fixtures.container(pod, "i1", state: .running)
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [i1Running], now: t0)).isEmpty)
        let i1Done = Fixtures.container(pod, "i1", state: .exited, finished: t0, exitCode: 0)
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [i1Done], now: t0)).compactMap(\.startedName) == ["i2"])
        let i2Done = Fixtures.container(pod, "i2", state: .exited, finished: t0, exitCode: 0)
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [i1Done, i2Done], now: t0)).compactMap(\.startedName) == ["app"])
    }

    @Test("a failing init container fails the pod under restartPolicy Never")
    func initFailsUnderNever() {
        let pod = Fixtures.pod(initContainers: [Container(name: "i1", image: "local/busybox:latest")], restartPolicy: "Never")
        let sandbox = Fixtures.sandbox(pod)
        var machine = Machine()
        let failed = Fixtures.container(pod, "i1", state: .exited, finished: t0, exitCode: 2)
        let actions = machine.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [failed], now: t0))
        #expect(machine.terminal?.phase == "Failed")
        #expect(actions.contains { if case .killPod(_, let sandboxes, _) = $0 { sandboxes == ["sb-1"] } else { false } })
        #expect(actions.compactMap(\.startedName).isEmpty)
    }

    @Test("a failing init container is retried with backoff under restartPolicy Always")
    func initRetriedUnderAlways() {
        let pod = Fixtures.pod(initContainers: [Container(name: "i1", image: "local/busybox:latest")])
        let sandbox = Fixtures.sandbox(pod)
        var machine = Machine()
        let first = Fixtures.container(pod, "i1", state: .exited, finished: t0, exitCode: 1)
        let retry = machine.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [first], now: t0))
        #expect(retry.compactMap(\.startRequest).map(\.attempt) == [1])
        let second = Fixtures.container(pod, "i1", attempt: 1, state: .exited, finished: t0.addingTimeInterval(1), exitCode: 1)
        let held = machine.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [first, second], now: t0.addingTimeInterval(2)))
        #expect(held.compactMap(\.startedName).isEmpty)
        #expect(machine.waiting["i1"]?.reason == "CrashLoopBackOff")
        #expect(machine.nextWakeup == t0.addingTimeInterval(11))
        #expect(machine.terminal == nil)
    }

    /// Runs a container that crashes right after each start and returns the delay between each crash and the
    /// restart the machine allowed.
    private func crashLoopDelays(restarts: Int, runFor: TimeInterval = 0) -> [TimeInterval] {
        let pod = Fixtures.pod()
        let sandbox = Fixtures.sandbox(pod)
        var machine = Machine()
        var now = t0
        var containers: [CRI.ContainerStatus] = []
        var delays: [TimeInterval] = []
        var attempt = 0
        var finished = now.addingTimeInterval(runFor)
        containers.append(Fixtures.container(pod, "app", attempt: 0, state: .exited, started: now, finished: finished, exitCode: 1))
        now = finished
        while delays.count < restarts {
            let actions = machine.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: Array(containers.suffix(2)), now: now))
            if let start = actions.compactMap(\.startRequest).first {
                delays.append(now.timeIntervalSince(finished))
                attempt = start.attempt
                finished = now.addingTimeInterval(runFor)
                containers.append(Fixtures.container(pod, "app", attempt: attempt, state: .exited, started: now, finished: finished, exitCode: 1))
                now = finished
            } else {
                #expect(machine.waiting["app"]?.reason == "CrashLoopBackOff")
                now = machine.nextWakeup ?? now.addingTimeInterval(1)
            }
        }
        return delays
    }

    @Test("CrashLoopBackOff: immediate first restart, then 10, 20, 40 s ... capped at 300 s")
    func crashLoop() {
        #expect(crashLoopDelays(restarts: 8) == [0, 10, 20, 40, 80, 160, 300, 300])
    }

    @Test("the backoff starts over after a container ran for more than 10 minutes")
    func backoffReset() {
        #expect(crashLoopDelays(restarts: 4, runFor: 601) == [0, 0, 0, 0])
    }

    @Test("restartPolicy Never: exited containers stay exited and the pod ends Succeeded or Failed")
    func never() {
        let pod = Fixtures.pod(restartPolicy: "Never")
        let sandbox = Fixtures.sandbox(pod)
        var machine = Machine()
        let done = Fixtures.container(pod, "app", state: .exited, finished: t0, exitCode: 0)
        let actions = machine.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [done], now: t0))
        #expect(actions.compactMap(\.startedName).isEmpty)
        #expect(machine.terminal?.phase == "Succeeded")
        #expect(actions.contains { if case .killPod(_, let sandboxes, _) = $0 { sandboxes == ["sb-1"] } else { false } })

        var failing = Machine()
        let failed = Fixtures.container(pod, "app", state: .exited, finished: t0, exitCode: 3)
        _ = failing.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [failed], now: t0))
        #expect(failing.terminal?.phase == "Failed")
    }

    @Test("restartPolicy OnFailure restarts only failed containers")
    func onFailure() {
        let pod = Fixtures.pod(restartPolicy: "OnFailure")
        let sandbox = Fixtures.sandbox(pod)
        var machine = Machine()
        let failed = Fixtures.container(pod, "app", state: .exited, finished: t0, exitCode: 1)
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [failed], now: t0)).compactMap(\.startedName) == ["app"])
        var other = Machine()
        let succeeded = Fixtures.container(pod, "app", state: .exited, finished: t0, exitCode: 0)
        #expect(other.sync(Fixtures.input(pod, sandboxes: [sandbox], containers: [succeeded], now: t0)).compactMap(\.startedName).isEmpty)
        #expect(other.terminal?.phase == "Succeeded")
    }

    @Test("a failed liveness probe kills the container with the probe's grace override")
    func liveness() {
        var container = Container(name: "app", image: "local/busybox:latest")
        var probe = Probe()
        probe.exec = ExecAction(command: ["true"])
        probe.terminationGracePeriodSeconds = 5
        container.livenessProbe = probe
        let pod = Fixtures.pod(containers: [container])
        var machine = Machine()
        let running = Fixtures.container(pod, "app", state: .running, hash: container.specHash)
        let actions = machine.sync(
            Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], probes: [running.id: ContainerProbeStatus(livenessFailed: true)], now: t0))
        #expect(actions == [.killContainer(Machine.KillTarget(id: running.id, name: "app", reason: .livenessFailed, grace: .seconds(5)))])
    }

    @Test("a failed startup probe kills the container; a changed spec restarts it")
    func startupAndSpecChange() {
        let pod = Fixtures.pod()
        var machine = Machine()
        let running = Fixtures.container(pod, "app", state: .running, hash: pod.spec.containers[0].specHash)
        let killed = machine.sync(
            Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], probes: [running.id: ContainerProbeStatus(startupFailed: true)], now: t0))
        #expect(killed.count == 1)
        #expect(killed.first.map { if case .killContainer(let target) = $0 { target.reason == .startupFailed } else { false } } == true)
        let stale = Fixtures.container(pod, "app", state: .running, hash: "00000000")
        let restarted = Machine().syncing(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [stale], now: t0))
        #expect(restarted.first.map { if case .killContainer(let target) = $0 { target.reason == .specChanged } else { false } } == true)
    }

    @Test("deletion stops everything within the pod's grace, then the pod is removed once it leaves the source")
    func deletion() {
        var pod = Fixtures.pod(grace: 7)
        pod.pod.metadata.deletionTimestamp = KubeTime(t0)
        pod.pod.metadata.deletionGracePeriodSeconds = 7
        var machine = Machine()
        let running = Fixtures.container(pod, "app", state: .running)
        let actions = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], now: t0))
        #expect(actions == [.killPod(containers: [Machine.KillTarget(id: running.id, name: "app", reason: .deleted, grace: .seconds(7))], sandboxes: ["sb-1"], grace: .seconds(7))])
        machine.record(.podKilled(stoppedEverything: true), now: t0)
        #expect(machine.lifecycle == .terminated)
        let stopped = Fixtures.container(pod, "app", state: .exited, finished: t0, exitCode: 143)
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod, ready: false)], containers: [stopped], now: t0)).isEmpty)
        let removal = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod, ready: false)], containers: [stopped], removed: true, now: t0))
        #expect(removal == [.removePod(sandboxes: ["sb-1"], containers: [stopped.id])])
        machine.record(.podRemoved, now: t0)
        #expect(machine.lifecycle == .finished)
    }

    @Test("a zero grace period still gives containers the 2 s minimum")
    func minimumGrace() {
        var pod = Fixtures.pod(grace: 0)
        pod.pod.metadata.deletionTimestamp = KubeTime(t0)
        var machine = Machine()
        let running = Fixtures.container(pod, "app", state: .running)
        let actions = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], now: t0))
        #expect(actions.first.map { if case .killPod(let targets, _, _) = $0 { targets.first?.grace == .seconds(2) } else { false } } == true)
    }

    @Test("an image pull failure waits ErrImagePull, then ImagePullBackOff until the backoff ends")
    func imagePullBackoff() {
        let pod = Fixtures.pod(containers: [Container(name: "app", image: "registry.invalid/nope:1")])
        let sandbox = Fixtures.sandbox(pod)
        var machine = Machine()
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [sandbox], now: t0)).compactMap(\.startedName) == ["app"])
        machine.record(.containerFailed(name: "app", reason: "ErrImagePull", message: "pull failed", image: "registry.invalid/nope:1"), now: t0)
        #expect(machine.waiting["app"]?.reason == "ErrImagePull")
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [sandbox], now: t0.addingTimeInterval(5))).isEmpty)
        #expect(machine.waiting["app"]?.reason == "ImagePullBackOff")
        #expect(machine.nextWakeup == t0.addingTimeInterval(10))
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [sandbox], now: t0.addingTimeInterval(10))).compactMap(\.startedName) == ["app"])
        machine.record(.containerFailed(name: "app", reason: "ErrImagePull", message: "pull failed", image: "registry.invalid/nope:1"), now: t0.addingTimeInterval(10))
        _ = machine.sync(Fixtures.input(pod, sandboxes: [sandbox], now: t0.addingTimeInterval(11)))
        #expect(machine.nextWakeup == t0.addingTimeInterval(30))
    }

    @Test("a dead sandbox is recreated (attempt + 1) and its leftovers stopped; under Never the pod ends instead")
    func sandboxDied() {
        let pod = Fixtures.pod()
        var machine = Machine()
        let exited = Fixtures.container(pod, "app", state: .exited, finished: t0, exitCode: 137)
        let actions = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod, ready: false)], containers: [exited], now: t0))
        #expect(actions == [.createSandbox(attempt: 1)])
        let never = Fixtures.pod(restartPolicy: "Never")
        var ending = Machine()
        let neverExited = Fixtures.container(never, "app", state: .exited, finished: t0, exitCode: 137)
        #expect(ending.sync(Fixtures.input(never, sandboxes: [Fixtures.sandbox(never, ready: false)], containers: [neverExited], now: t0)).isEmpty)
        #expect(ending.terminal?.phase == "Failed")
    }

    @Test("a pod rejected by admission never starts anything")
    func rejected() {
        let pod = Fixtures.pod()
        var machine = Machine()
        machine.reject(reason: "NodePorts", message: "taken")
        #expect(machine.sync(Fixtures.input(pod, now: t0)).isEmpty)
        #expect(machine.terminal == Machine.Terminal(phase: "Failed", reason: "NodePorts", message: "taken"))
    }

    @Test("activeDeadlineSeconds fails the pod with DeadlineExceeded once it has run that long")
    func activeDeadline() {
        var pod = Fixtures.pod()
        pod.pod.spec?.activeDeadlineSeconds = 30
        var machine = Machine(startTime: t0)
        let running = Fixtures.container(pod, "app", state: .running, hash: pod.spec.containers[0].specHash)
        #expect(machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], now: t0.addingTimeInterval(10))).isEmpty)
        #expect(machine.nextWakeup == t0.addingTimeInterval(30))
        let actions = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: [running], now: t0.addingTimeInterval(30)))
        #expect(machine.terminal?.reason == "DeadlineExceeded")
        #expect(actions.contains { if case .killPod(let targets, _, _) = $0 { targets.map(\.id) == [running.id] } else { false } })
    }

    @Test("only the newest two attempts of a container are kept")
    func garbage() {
        let pod = Fixtures.pod()
        var machine = Machine()
        let old = (0..<3).map { Fixtures.container(pod, "app", attempt: $0, state: .exited, finished: t0, exitCode: 1) }
        let running = Fixtures.container(pod, "app", attempt: 3, state: .running, hash: pod.spec.containers[0].specHash)
        let actions = machine.sync(Fixtures.input(pod, sandboxes: [Fixtures.sandbox(pod)], containers: old + [running], now: t0))
        #expect(Set(actions) == [.removeContainer(id: "app-0"), .removeContainer(id: "app-1")])
    }
}

extension PodWorker.StateMachine {
    /// `sync` on a copy, for one-shot checks.
    func syncing(_ input: Input) -> [Action] {
        var copy = self
        return copy.sync(input)
    }
}
