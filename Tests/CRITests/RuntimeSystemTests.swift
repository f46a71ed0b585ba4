import CRI
import Foundation
import Logging
import NodeAgentTesting
import ServiceLifecycle
import Synchronization
import Testing

/// The ctr backend against the real containerd, real runc, real CNI plugins, inside an isolated node namespace.
/// Gated on NODE_AGENT_SYSTEM_TESTS=1; with it set, a missing containerd or image fails the tests.
@Suite("CRI against a live containerd", .serialized, .enabled(if: SystemTests.enabled))
struct RuntimeSystemTests {
    static let image = SystemFixture.image

    func container(_ name: String, _ script: String, attempt: Int = 0) -> ContainerConfig {
        ContainerConfig(name: name, attempt: attempt, image: Self.image, command: ["/bin/sh", "-c", script])
    }

    /// Runs `body` with a fixture and a monitor service for `runtime`, tearing everything down afterwards.
    func withRuntime(
        _ tag: String, events: Bool = true, relist: Duration? = .seconds(1), runner: any CommandRunning = SubprocessCommandRunner(),
        _ body: (SystemFixture, CLIContainerRuntime) async throws -> Void
    ) async throws {
        let fixture = try SystemFixture(tag: tag)
        defer { fixture.tearDown() }
        let runtime = fixture.runtime(fixture.configuration(events: events, relist: relist), runner: runner)
        try await runtime.recover()
        let monitor = Task { try await RuntimeMonitor(runtime: runtime).run() }
        defer { monitor.cancel() }
        // Let the events stream subscribe before anything exits.
        try await Task.sleep(for: .milliseconds(300))
        try await body(fixture, runtime)
    }

    @Test("two containers share the pod network: one serves HTTP, the other fetches it over localhost, the pod IP answers from the node")
    func podNetworkShared() async throws {
        try await withRuntime("net") { fixture, runtime in
            let image = try await runtime.ensureImage(Self.image, policy: .ifNotPresent)
            #expect(image.digest.hasPrefix("sha256:"))
            let sandbox = try await runtime.runPodSandbox(SystemFixture.pod("web"))
            let podIP = try #require(sandbox.podIP)
            #expect(podIP.hasPrefix("10.251.0."))
            let web = try await runtime.createContainer(
                in: sandbox.id, config: container("web", "echo hello-nacri > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"))
            try await runtime.startContainer(web)
            let client = try await runtime.createContainer(
                in: sandbox.id,
                config: container(
                    "client",
                    "for i in $(seq 1 50); do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 8080 && exit 0; sleep 0.2; done; exit 1"))
            try await runtime.startContainer(client)
            #expect(try await SystemFixture.eventually { try await runtime.containerStatus(client).state == .exited })
            let clientStatus = try await runtime.containerStatus(client)
            #expect(clientStatus.exitCode == 0)
            // The client's output went through the binary log driver into the CRI log format.
            let logPath = try #require(clientStatus.logPath)
            #expect(logPath == "\(fixture.logDirectory)/nacri_web_uid-web/client/0.log")
            #expect(try await SystemFixture.eventually(5) { ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains("hello-nacri") })
            let lines = try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n")
            let record = try #require(lines.first { $0.hasSuffix("hello-nacri") })
            #expect(record.contains(" stdout F "))
            #expect(try #require(RFC3339Nano.parse(String(record.split(separator: " ")[0]))).timeIntervalSinceNow > -60)
            // From the node namespace, over the CNI bridge.
            let answer = try fixture.node.run(["curl", "-s", "-m", "5", "http://\(podIP):8080/index.html"])
            #expect(answer.contains("hello-nacri"))
            // Hostname, hosts and resolv.conf per pod.
            let hostname = try await runtime.exec(in: web, command: ["hostname"], timeout: .seconds(10))
            #expect(hostname.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "web")
            let hosts = try await runtime.exec(in: web, command: ["cat", "/etc/hosts"], timeout: .seconds(10))
            #expect(hosts.stdout.contains("\(podIP)\tweb"))
            let resolv = try await runtime.exec(in: web, command: ["cat", "/etc/resolv.conf"], timeout: .seconds(10))
            #expect(resolv.stdout.contains("nameserver 10.96.0.10"))
            #expect(resolv.stdout.contains("search nacri.svc.cluster.local svc.cluster.local cluster.local"))
            let failing = try await runtime.exec(in: web, command: ["sh", "-c", "exit 7"], timeout: .seconds(10))
            #expect(failing.exitCode == 7)
            await #expect(throws: ContainerRuntimeError.self) {
                try await runtime.exec(in: web, command: ["sleep", "30"], timeout: .seconds(1))
            }
            try await runtime.stopPodSandbox(sandbox.id, gracePeriod: .seconds(2))
            try await runtime.removePodSandbox(sandbox.id)
            #expect(fixture.allocatedIPs().isEmpty)
        }
    }

    @Test("exit code 3 and its finish time come from the events stream alone")
    func exitFromEvents() async throws {
        try await withRuntime("ev", events: true, relist: nil) { fixture, runtime in
            let exits = runtime.exitEvents()
            let sandbox = try await runtime.runPodSandbox(SystemFixture.pod("exits"))
            let id = try await runtime.createContainer(in: sandbox.id, config: container("three", "sleep 0.5; exit 3"))
            let before = Date()
            try await runtime.startContainer(id)
            var iterator = exits.makeAsyncIterator()
            let exit = try #require(await iterator.next())
            #expect(exit.containerID == id)
            #expect(exit.exitCode == 3)
            #expect(exit.source == .events)
            #expect(exit.finishedAt > before && exit.finishedAt < Date())
            let status = try await runtime.containerStatus(id)
            #expect(status.state == .exited && status.exitCode == 3 && status.reason == "Error")
            #expect(status.finishedAt == exit.finishedAt)
            #expect(try #require(status.startedAt) <= exit.finishedAt)
            // A SIGKILL from outside is reported as 137.
            let sleeper = try await runtime.createContainer(in: sandbox.id, config: container("sleeper", "exec sleep 1000"))
            try await runtime.startContainer(sleeper)
            try Command.run(["ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", sleeper])
            let killed = try #require(await iterator.next())
            #expect(killed.containerID == sleeper && killed.exitCode == 137 && killed.source == .events)
            try await runtime.removePodSandbox(sandbox.id)
        }
    }

    @Test("exit codes are caught by the periodic relist alone when no events stream runs")
    func exitFromRelist() async throws {
        try await withRuntime("rl", events: false, relist: .seconds(1)) { fixture, runtime in
            let exits = runtime.exitEvents()
            let sandbox = try await runtime.runPodSandbox(SystemFixture.pod("relist"))
            let id = try await runtime.createContainer(in: sandbox.id, config: container("three", "exit 3"))
            try await runtime.startContainer(id)
            var iterator = exits.makeAsyncIterator()
            let exit = try #require(await iterator.next())
            #expect(exit.containerID == id && exit.exitCode == 3 && exit.source == .relist)
            let sleeper = try await runtime.createContainer(in: sandbox.id, config: container("sleeper", "exec sleep 1000"))
            try await runtime.startContainer(sleeper)
            try Command.run(["ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", sleeper])
            let killed = try #require(await iterator.next())
            #expect(killed.containerID == sleeper && killed.exitCode == 137 && killed.source == .relist)
            #expect(try await runtime.containerStatus(sleeper).exitCode == 137)
            try await runtime.removePodSandbox(sandbox.id)
        }
    }

    @Test("graceful stop: a container trapping TERM exits within the grace, one ignoring it is killed at the grace; one stop-signal lookup per image for stops at once, one task delete per container")
    func gracefulStop() async throws {
        let runner = RecordingRunner()
        try await withRuntime("stop", runner: runner) { fixture, runtime in
            let exits = runtime.exitEvents()
            let sandbox = try await runtime.runPodSandbox(SystemFixture.pod("stop"))
            let polite = try await runtime.createContainer(
                in: sandbox.id, config: container("polite", "trap 'exit 0' TERM; while true; do sleep 0.1; done"))
            let stubborn = try await runtime.createContainer(
                in: sandbox.id, config: container("stubborn", "trap '' TERM; while true; do sleep 0.1; done"))
            try await runtime.startContainer(polite)
            try await runtime.startContainer(stubborn)
            try await Task.sleep(for: .milliseconds(500))
            // Both at once, as when a pod with two containers is deleted.
            let clock = ContinuousClock()
            async let politeStop = clock.measure { try await runtime.stopContainer(polite, gracePeriod: .seconds(20)) }
            async let stubbornStop = clock.measure { try await runtime.stopContainer(stubborn, gracePeriod: .seconds(2)) }
            let (politeTime, stubbornTime) = try await (politeStop, stubbornStop)
            #expect(politeTime < .seconds(10))
            #expect(try await runtime.containerStatus(polite).exitCode == 0)
            #expect(stubbornTime >= .seconds(2) && stubbornTime < .seconds(15))
            let status = try await runtime.containerStatus(stubborn)
            #expect(status.state == .exited && status.exitCode == 137)
            // Both exits delivered: their tasks are deleted, so removal deletes only the containers.
            var delivered = Set<String>()
            for await exit in exits where exit.containerID == polite || exit.containerID == stubborn {
                delivered.insert(exit.containerID)
                if delivered.count == 2 { break }
            }
            let beforeRemoval = runner.commands.count
            try await runtime.removePodSandbox(sandbox.id)
            let ours = { (command: [String]) in command.last == polite || command.last == stubborn }
            let lookups = runner.commands.filter { ours($0) && $0.contains("info") }
            #expect(lookups.count == 1, "the image's stop signal is looked up once for its two containers: \(lookups)")
            let removal = runner.commands[beforeRemoval...].filter(ours)
            #expect(removal.filter { $0.contains("containers") && $0.contains("delete") }.count == 2)
            #expect(!removal.contains { $0.contains("tasks") && $0.contains("delete") }, "tasks deleted again at removal: \(removal)")
        }
    }

    @Test("a new runtime instance over the same containerd adopts sandboxes and running containers without restarting them")
    func restartAdopts() async throws {
        let fixture = try SystemFixture(tag: "adopt")
        defer { fixture.tearDown() }
        let first = fixture.runtime()
        try await first.recover()
        let sandbox = try await first.runPodSandbox(SystemFixture.pod("adopt"))
        let running = try await first.createContainer(in: sandbox.id, config: container("server", "exec httpd -f -p 8080 -h /"))
        try await first.startContainer(running)
        let done = try await first.createContainer(in: sandbox.id, config: container("done", "exit 4", attempt: 2))
        try await first.startContainer(done)
        #expect(try await SystemFixture.eventually { try await first.containerStatus(done).state == .exited })
        let pid = try Command.run(["ctr", "-n", "k8s.io", "tasks", "ls"]).split(separator: "\n").first { $0.hasPrefix(running) }
        let second = fixture.runtime()
        let report = try await second.recover()
        #expect(report.adoptedSandboxes == [sandbox.id])
        #expect(Set(report.adoptedContainers) == [running, done])
        #expect(report.removedContainers.isEmpty && report.removedSandboxes.isEmpty && report.removedNetworkNamespaces.isEmpty)
        let adoptedSandbox = try await second.podSandboxStatus(sandbox.id)
        #expect(adoptedSandbox.podIPs == sandbox.podIPs && adoptedSandbox.state == .ready)
        let server = try await second.containerStatus(running)
        #expect(server.state == .running && server.name == "server" && server.pod.uid == "uid-adopt")
        #expect(server.startedAt != nil)
        let finished = try await second.containerStatus(done)
        #expect(finished.state == .exited && finished.exitCode == 4 && finished.attempt == 2 && finished.finishedAt != nil)
        let pidAfter = try Command.run(["ctr", "-n", "k8s.io", "tasks", "ls"]).split(separator: "\n").first { $0.hasPrefix(running) }
        #expect(pid == pidAfter)
        #expect(try fixture.node.run(["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "http://\(sandbox.podIP!):8080/"]) != "000")
        try await second.removePodSandbox(sandbox.id)
        #expect(try SystemFixture.containerdObjects().containers.isEmpty)
    }

    @Test("50 create/delete cycles leave no task, container, snapshot, netns, veth or CNI IP behind")
    func noLeaks() async throws {
        let fixture = try SystemFixture(tag: "leak")
        defer { fixture.tearDown() }
        let runtime = fixture.runtime()
        try await runtime.recover()
        for cycle in 0..<50 {
            let sandbox = try await runtime.runPodSandbox(SystemFixture.pod("leak\(cycle)"))
            let id = try await runtime.createContainer(in: sandbox.id, config: container("c", "exec sleep 1000"))
            try await runtime.startContainer(id)
            try await runtime.stopPodSandbox(sandbox.id, gracePeriod: .zero)
            try await runtime.removePodSandbox(sandbox.id)
        }
        let objects = try SystemFixture.containerdObjects()
        #expect(objects.containers.isEmpty)
        #expect(objects.tasks.isEmpty)
        #expect(objects.snapshots.isEmpty)
        #expect(SystemFixture.podNetworkNamespaces().isEmpty)
        #expect(try fixture.vethsInNode().isEmpty)
        #expect(fixture.allocatedIPs().isEmpty)
        #expect(try await runtime.listPodSandboxes().isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: fixture.root + "/state/sandboxes")) ?? []).isEmpty)
    }

    @Test("a sweep at start removes what a crash left half-made: orphan containers, netns, CNI allocations")
    func sweepAtStart() async throws {
        let fixture = try SystemFixture(tag: "sweep")
        defer { fixture.tearDown() }
        let first = fixture.runtime()
        try await first.recover()
        let sandbox = try await first.runPodSandbox(SystemFixture.pod("crash"))
        let id = try await first.createContainer(in: sandbox.id, config: container("c", "exec sleep 1000"))
        try await first.startContainer(id)
        // A crash that lost the sandbox record: the container, netns and IP are now orphans.
        try FileManager.default.removeItem(atPath: fixture.root + "/state/sandboxes/\(sandbox.id)/sandbox.json")
        #expect(!fixture.allocatedIPs().isEmpty)
        let second = fixture.runtime()
        let report = try await second.recover()
        #expect(report.removedContainers == [id])
        #expect(report.removedSandboxes == [sandbox.id])
        #expect(try SystemFixture.containerdObjects().containers.isEmpty)
        #expect(SystemFixture.podNetworkNamespaces().isEmpty)
        #expect(fixture.allocatedIPs().isEmpty)
        #expect(try fixture.vethsInNode().isEmpty)
    }

    @Test("logs are written in the CRI format and rotated by size")
    func logRotation() async throws {
        let fixture = try SystemFixture(tag: "logs")
        defer { fixture.tearDown() }
        var configuration = fixture.configuration()
        configuration.logMaxSize = 4096
        configuration.logMaxFiles = 3
        let runtime = fixture.runtime(configuration)
        let sandbox = try await runtime.runPodSandbox(SystemFixture.pod("logs"))
        let id = try await runtime.createContainer(
            in: sandbox.id, config: container("chatty", "for i in $(seq 1 800); do echo line-$i; done; sleep 0.3; echo err-last >&2"))
        try await runtime.startContainer(id)
        #expect(try await SystemFixture.eventually { try await runtime.containerStatus(id).state == .exited })
        let directory = fixture.logDirectory + "/nacri_logs_uid-logs/chatty"
        let everything = {
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted().map {
                (try? String(contentsOfFile: directory + "/" + $0, encoding: .utf8)) ?? ""
            }.joined()
        }
        #expect(try await SystemFixture.eventually(5) { everything().contains(" stderr F err-last\n") })
        #expect(everything().contains(" stdout F line-800\n"))
        #expect(!everything().contains(" stdout F line-1\n"))
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(files.count == 3)
        #expect(files.contains("0.log"))
        for file in files {
            let size = try #require(FileManager.default.attributesOfItem(atPath: directory + "/" + file)[.size] as? Int)
            #expect(size <= 4096)
            for line in try String(contentsOfFile: directory + "/" + file, encoding: .utf8).split(separator: "\n") {
                let fields = line.split(separator: " ", maxSplits: 3)
                #expect(fields.count == 4 && RFC3339Nano.parse(String(fields[0])) != nil)
                #expect(fields[1] == "stdout" || fields[1] == "stderr")
                #expect(fields[2] == "F")
            }
        }
        try await runtime.removePodSandbox(sandbox.id)
        #expect(!FileManager.default.fileExists(atPath: fixture.logDirectory + "/nacri_logs_uid-logs"))
    }

    @Test("bad input gets typed, actionable errors and leaves nothing half-created")
    func badInput() async throws {
        let fixture = try SystemFixture(tag: "bad")
        defer { fixture.tearDown() }
        let runtime = fixture.runtime()
        try await runtime.recover()
        // A missing image under Never, a pull that fails (a registry on loopback that is not there), a bad reference.
        await #expect { try await runtime.ensureImage("local/nacri-missing:v1", policy: .never) } throws: {
            ($0 as? ContainerRuntimeError)?.kind == .imageNeverPull
        }
        await #expect { try await runtime.ensureImage("127.0.0.1:1/nacri/missing:v1", policy: .ifNotPresent) } throws: {
            guard let error = $0 as? ContainerRuntimeError else { return false }
            return error.kind == .imagePullFailed && error.underlying?.command.contains("images pull") == true
        }
        await #expect { try await runtime.ensureImage("Bad//Reference::", policy: nil) } throws: {
            ($0 as? ContainerRuntimeError)?.kind == .invalidImageName
        }
        // A container for an image that is not there.
        let sandbox = try await runtime.runPodSandbox(SystemFixture.pod("bad"))
        await #expect { try await runtime.createContainer(in: sandbox.id, config: ContainerConfig(name: "x", image: "local/nacri-missing:v1")) } throws: {
            ($0 as? ContainerRuntimeError)?.kind == .imageNotFound
        }
        await #expect { try await runtime.createContainer(in: sandbox.id, config: ContainerConfig(name: "Bad_Name", image: Self.image)) } throws: {
            ($0 as? ContainerRuntimeError)?.field == "name"
        }
        #expect(try SystemFixture.containerdObjects().containers.isEmpty)
        try await runtime.removePodSandbox(sandbox.id)

        // A missing CNI config.
        try FileManager.default.removeItem(atPath: fixture.confDirectory + "/10-nacri.conflist")
        await #expect { try await runtime.runPodSandbox(SystemFixture.pod("nocni")) } throws: {
            guard let error = $0 as? ContainerRuntimeError else { return false }
            return error.kind == .cniConfigMissing && error.description.contains("--cni-conf-dir")
        }
        // A CNI plugin failure (an invalid subnet): the error names the plugin, and nothing is left.
        try fixture.writeNetwork(subnet: "not-a-subnet")
        await #expect { try await runtime.runPodSandbox(SystemFixture.pod("badcni")) } throws: {
            guard let error = $0 as? ContainerRuntimeError else { return false }
            return error.kind == .cniFailed && error.object.contains("bridge")
        }
        #expect(SystemFixture.podNetworkNamespaces().isEmpty)
        #expect(try fixture.vethsInNode().isEmpty)
        #expect(fixture.allocatedIPs().isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: fixture.root + "/state/sandboxes")) ?? []).isEmpty)
        #expect(try await runtime.listPodSandboxes().isEmpty)

        // containerd not running (a socket nobody listens on).
        var configuration = fixture.configuration()
        configuration.endpoint = RuntimeEndpoint(socketPath: fixture.root + "/no-containerd.sock")
        let orphan = fixture.runtime(configuration)
        await #expect { try await orphan.runPodSandbox(SystemFixture.pod("nocd")) } throws: {
            guard let error = $0 as? ContainerRuntimeError else { return false }
            return error.kind == .runtimeUnavailable && error.description.contains("scripts/containerd-up")
        }
    }

    @Test("runtime status: containerd's version, and each of runtime down and network not ready reported")
    func runtimeStatus() async throws {
        try await withRuntime("status") { fixture, runtime in
            let healthy = await runtime.runtimeStatus()
            #expect(healthy.version.hasPrefix("containerd://1."), "\(healthy)")
            #expect(healthy.runtimeProblem == nil && healthy.networkProblem == nil)

            var noNetwork = fixture.configuration()
            noNetwork.cniConfDirectory = fixture.root + "/empty-net.d"
            let withoutCNI = await fixture.runtime(noNetwork).runtimeStatus()
            #expect(withoutCNI.runtimeProblem == nil)
            #expect(withoutCNI.networkProblem?.contains("cni plugin not initialized") == true)

            var down = fixture.configuration()
            down.endpoint = RuntimeEndpoint(socketPath: fixture.root + "/no-containerd.sock")
            let unreachable = await fixture.runtime(down).runtimeStatus()
            #expect(unreachable.version == "containerd://unknown")
            #expect(unreachable.runtimeProblem?.contains("scripts/containerd-up") == true)
        }
    }

    @Test("a hostNetwork pod gets no netns, no CNI and no pod IP; its container sees the node's network")
    func hostNetworkPod() async throws {
        try await withRuntime("host") { fixture, runtime in
            var config = SystemFixture.pod("hostnet")
            config.hostNetwork = true
            let sandbox = try await runtime.runPodSandbox(config)
            #expect(sandbox.podIPs.isEmpty && sandbox.networkNamespacePath == nil)
            #expect(fixture.allocatedIPs().isEmpty && SystemFixture.podNetworkNamespaces().isEmpty)
            let id = try await runtime.createContainer(in: sandbox.id, config: container("c", "exec sleep 1000"))
            try await runtime.startContainer(id)
            let hostLinks = try Command.run(["ip", "-o", "link", "show"]).split(separator: "\n").count
            let seen = try await runtime.exec(in: id, command: ["ip", "-o", "link", "show"], timeout: .seconds(10))
            #expect(seen.exitCode == 0 && seen.stdout.split(separator: "\n").count == hostLinks)
            try await runtime.removePodSandbox(sandbox.id)
            #expect(try SystemFixture.containerdObjects().containers.isEmpty)
        }
    }
}

/// Runs commands for real and records each argument list (to count what the runtime asked containerd for).
final class RecordingRunner: CommandRunning {
    private let base = SubprocessCommandRunner()
    private let recorded = Mutex<[[String]]>([])

    var commands: [[String]] { recorded.withLock { $0 } }

    func run(_ invocation: CommandInvocation) async throws -> CommandResult {
        recorded.withLock { $0.append(invocation.arguments) }
        return try await base.run(invocation)
    }

    func stream(_ invocation: CommandInvocation, line: @Sendable (String) async -> Void) async throws -> CommandResult {
        recorded.withLock { $0.append(invocation.arguments) }
        return try await base.stream(invocation, line: line)
    }
}
