import CRI
import Foundation
import NodeAgentTesting
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// The runtime contract, run through the nerdctl backend against a double that replays nerdctl's documented
/// output formats (nerdctl is not packaged here; only the ctr backend is verified against a live containerd).
/// Pods use hostNetwork so no CNI or root is needed.
@Suite("nerdctl backend contract (documented-format double)")
struct NerdctlContractTests {
    static let image = "local/busybox:latest"

    struct Bed {
        let double = NerdctlDouble()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("nacri-nerd-\(UUID().uuidString.prefix(8))").path
        let logger = LogRecorder()

        init() throws {
            double.addImage(NerdctlContractTests.image)
            try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
            // A logger path that exists (the double never runs it).
            _ = FileManager.default.createFile(atPath: root + "/bin/node-agent-logger", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        }

        func runtime(events: Bool = true, retention: Duration = .seconds(60), runner: (any CommandRunning)? = nil) -> CLIContainerRuntime {
            var configuration = CLIRuntimeConfiguration()
            configuration.cli = .nerdctl
            configuration.idPrefix = "nacri-"
            configuration.stateDirectory = root + "/state"
            configuration.podLogDirectory = root + "/logs"
            configuration.loggerPath = root + "/bin/node-agent-logger"
            configuration.cniConfDirectory = root + "/no-cni"
            configuration.watchEvents = events
            configuration.relistInterval = .milliseconds(100)
            configuration.logRetention = retention
            return CLIContainerRuntime(configuration: configuration, runner: runner ?? double, logger: logger.logger(label: "cri"))
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: root) }
    }

    static func hostPod(_ name: String) -> PodSandboxConfig {
        PodSandboxConfig(pod: PodIdentity(uid: "uid-\(name)", name: name, namespace: "nacri"), hostNetwork: true)
    }

    func shell(_ name: String, _ script: String) -> ContainerConfig {
        ContainerConfig(name: name, image: Self.image, command: ["/bin/sh", "-c", script])
    }

    @Test("images: present image reports its digest; Never without the image and a failed pull are typed errors")
    func images() async throws {
        let bed = try Bed()
        defer { bed.cleanUp() }
        let runtime = bed.runtime()
        let status = try await runtime.ensureImage(Self.image, policy: .never)
        #expect(status.digest.hasPrefix("sha256:") && status.digest.count == 71)
        await #expect { try await runtime.ensureImage("local/absent:v1", policy: .never) } throws: {
            ($0 as? ContainerRuntimeError)?.kind == .imageNeverPull
        }
        await #expect { try await runtime.ensureImage("local/absent:v1", policy: .ifNotPresent) } throws: {
            ($0 as? ContainerRuntimeError)?.kind == .imagePullFailed
        }
        bed.double.allowPull("local/pullable:v2")
        let pulled = try await runtime.ensureImage("local/pullable:v2", policy: nil)
        #expect(pulled.reference == "local/pullable:v2")
        #expect(bed.double.commands.contains { $0.contains("pull") })
    }

    @Test("a container runs with the pod's labels and its exit code arrives through nerdctl's events")
    func exitThroughEvents() async throws {
        let bed = try Bed()
        defer { bed.cleanUp() }
        let runtime = bed.runtime(events: true)
        let monitor = Task { try await RuntimeMonitor(runtime: runtime).run() }
        defer { monitor.cancel() }
        let exits = runtime.exitEvents()
        try await Task.sleep(for: .milliseconds(100))
        let sandbox = try await runtime.runPodSandbox(Self.hostPod("ev"))
        #expect(sandbox.podIPs.isEmpty && sandbox.networkNamespacePath == nil)
        let id = try await runtime.createContainer(in: sandbox.id, config: shell("three", "exit 3"))
        #expect(try await runtime.containerStatus(id).state == .created)
        try await runtime.startContainer(id)
        var iterator = exits.makeAsyncIterator()
        let exit = try #require(await iterator.next())
        #expect(exit.containerID == id && exit.exitCode == 3)
        let status = try await runtime.containerStatus(id)
        #expect(status.state == .exited && status.exitCode == 3 && status.reason == "Error")
        let run = try #require(bed.double.commands.first { $0.contains("run") })
        #expect(run.contains("io.kubernetes.pod.uid=uid-ev") && run.contains("io.kubernetes.container.name=three"))
        #expect(run.contains("--network") && run.contains("host"))
        #expect(run.contains { $0.hasPrefix("binary://") && $0.contains("/nacri_ev_uid-ev/three/0.log") })
    }

    @Test("without events the relist reports exits, and a SIGKILL is reported as 137")
    func exitThroughRelist() async throws {
        let bed = try Bed()
        defer { bed.cleanUp() }
        let runtime = bed.runtime(events: false)
        let monitor = Task { try await RuntimeMonitor(runtime: runtime).run() }
        defer { monitor.cancel() }
        let exits = runtime.exitEvents()
        let sandbox = try await runtime.runPodSandbox(Self.hostPod("rl"))
        let id = try await runtime.createContainer(in: sandbox.id, config: shell("sleeper", "exec sleep 1000"))
        try await runtime.startContainer(id)
        #expect(try await runtime.containerStatus(id).state == .running)
        _ = try await bed.double.run(CommandInvocation("nerdctl", ["kill", "--signal", "KILL", id], timeout: .seconds(5)))
        var iterator = exits.makeAsyncIterator()
        let exit = try #require(await iterator.next())
        #expect(exit.containerID == id && exit.exitCode == 137 && exit.source == .relist)
    }

    @Test("a task list taken before a container's start returned does not report that container as exited")
    func staleTaskListIsIgnored() async throws {
        let bed = try Bed()
        defer { bed.cleanUp() }
        let runner = HeldListRunner(bed.double)
        let runtime = bed.runtime(events: false, runner: runner)
        let exits = runtime.exitEvents()
        let sandbox = try await runtime.runPodSandbox(Self.hostPod("stale"))
        let id = try await runtime.createContainer(in: sandbox.id, config: shell("sleeper", "exec sleep 1000"))
        runner.armed.store(true, ordering: .sequentiallyConsistent)
        let relist = Task { try await runtime.relist() }
        var taken = runner.taken.makeAsyncIterator()
        _ = await taken.next()  // containerd answered the list: no task for the container yet
        try await runtime.startContainer(id)  // the start returns while the list is still on its way
        runner.release.yield()
        try await relist.value
        #expect(try await runtime.containerStatus(id).state == .running)
        #expect(bed.double.commands.allSatisfy { !($0.contains("rm") || $0.contains("kill")) })
        // A relist with a fresh list still reports a real exit.
        _ = try await bed.double.run(CommandInvocation("nerdctl", ["kill", "--signal", "KILL", id], timeout: .seconds(5)))
        try await runtime.relist()
        var iterator = exits.makeAsyncIterator()
        let exit = try #require(await iterator.next())
        #expect(exit.containerID == id && exit.exitCode == 137 && exit.source == .relist)
    }

    @Test("graceful stop: TERM-trapping container stops at once, TERM-ignoring one is killed when the grace ends")
    func gracefulStop() async throws {
        let bed = try Bed()
        defer { bed.cleanUp() }
        let runtime = bed.runtime()
        let sandbox = try await runtime.runPodSandbox(Self.hostPod("stop"))
        let polite = try await runtime.createContainer(in: sandbox.id, config: shell("polite", "trap 'exit 0' TERM; while true; do sleep 1; done"))
        let stubborn = try await runtime.createContainer(in: sandbox.id, config: shell("stubborn", "trap '' TERM; while true; do sleep 1; done"))
        try await runtime.startContainer(polite)
        try await runtime.startContainer(stubborn)
        try await runtime.stopContainer(polite, gracePeriod: .seconds(30))
        #expect(try await runtime.containerStatus(polite).exitCode == 0)
        let clock = ContinuousClock()
        let elapsed = try await clock.measure { try await runtime.stopContainer(stubborn, gracePeriod: .milliseconds(500)) }
        #expect(elapsed >= .milliseconds(500))
        #expect(try await runtime.containerStatus(stubborn).exitCode == 137)
        try await runtime.removePodSandbox(sandbox.id)
        #expect(bed.double.containerNames.isEmpty)
    }

    @Test("a new runtime instance adopts what the first created, by labels, without restarting anything")
    func recovery() async throws {
        let bed = try Bed()
        defer { bed.cleanUp() }
        let first = bed.runtime()
        let sandbox = try await first.runPodSandbox(Self.hostPod("adopt"))
        let id = try await first.createContainer(in: sandbox.id, config: ContainerConfig(name: "server", attempt: 1, image: Self.image, command: ["sleep", "1000"]))
        try await first.startContainer(id)
        let runs = bed.double.commands.filter { $0.contains("run") || $0.contains("start") }.count
        let second = bed.runtime()
        let report = try await second.recover()
        #expect(report.adoptedSandboxes == [sandbox.id] && report.adoptedContainers == [id])
        let status = try await second.containerStatus(id)
        #expect(status.state == .running && status.attempt == 1 && status.name == "server" && status.pod.uid == "uid-adopt")
        #expect(bed.double.commands.filter { $0.contains("run") || $0.contains("start") }.count == runs)
    }

    @Test("the nerdctl backend passes a non-root user, which ctr 1.6 cannot")
    func userSupport() async throws {
        let bed = try Bed()
        defer { bed.cleanUp() }
        let runtime = bed.runtime()
        let sandbox = try await runtime.runPodSandbox(Self.hostPod("user"))
        var config = shell("u", "exec sleep 1000")
        config.user = 1000
        config.group = 1000
        let id = try await runtime.createContainer(in: sandbox.id, config: config)
        try await runtime.startContainer(id)
        let run = try #require(bed.double.commands.first { $0.contains("run") })
        #expect(run.contains("1000:1000"))
    }

    @Test("a removed pod's logs stay for the retention period, then the maintenance pass deletes them")
    func logRetention() async throws {
        let bed = try Bed()
        defer { bed.cleanUp() }
        let runtime = bed.runtime(retention: .seconds(60))
        let sandbox = try await runtime.runPodSandbox(Self.hostPod("logs"))
        _ = try await runtime.createContainer(in: sandbox.id, config: shell("c", "exit 0"))
        let directory = bed.root + "/logs/nacri_logs_uid-logs"
        #expect(FileManager.default.fileExists(atPath: directory + "/c"))
        try await runtime.removePodSandbox(sandbox.id)
        await runtime.maintain(now: Date())
        #expect(FileManager.default.fileExists(atPath: directory + "/.removed"))
        await runtime.maintain(now: Date().addingTimeInterval(61))
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test("the monitor service stops on graceful shutdown")
    func monitorShutdown() async throws {
        let bed = try Bed()
        defer { bed.cleanUp() }
        let runtime = bed.runtime()
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await RuntimeMonitor(runtime: runtime).run() }
                // Shut down once the monitor follows the events stream (up to 10 s on a busy machine).
                for _ in 0..<200 where !bed.double.commands.contains(where: { $0.contains("events") }) {
                    try await Task.sleep(for: .milliseconds(50))
                }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(bed.double.commands.contains { $0.contains("events") })
    }
}

/// Answers through the double, but once armed holds the next task list (`ps`): the list is taken when asked and
/// returned only on `release`, as a busy containerd's answer arrives late.
final class HeldListRunner: CommandRunning {
    let inner: NerdctlDouble
    let armed = Atomic<Bool>(false)
    let taken: AsyncStream<Void>
    private let takenContinuation: AsyncStream<Void>.Continuation
    private let released: AsyncStream<Void>
    let release: AsyncStream<Void>.Continuation

    init(_ inner: NerdctlDouble) {
        self.inner = inner
        (taken, takenContinuation) = AsyncStream.makeStream()
        (released, release) = AsyncStream.makeStream()
    }

    func run(_ invocation: CommandInvocation) async throws -> CommandResult {
        let result = try await inner.run(invocation)
        if invocation.arguments.contains("ps"), armed.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged {
            takenContinuation.yield()
            for await _ in released { break }
        }
        return result
    }

    func stream(_ invocation: CommandInvocation, line: @Sendable (String) async -> Void) async throws -> CommandResult {
        try await inner.stream(invocation, line: line)
    }
}
