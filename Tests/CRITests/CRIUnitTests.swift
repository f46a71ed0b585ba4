@testable import CRI
import Foundation
import Logging
import NodeAgentTesting
import Synchronization
import Testing

@Suite("Image references and pull policy")
struct ImageReferenceTests {
    @Test("short names normalize like Docker; local names keep their first component", arguments: [
        ("busybox", "docker.io/library/busybox:latest"),
        ("library/busybox:1.36", "library/busybox:1.36"),
        ("local/busybox:latest", "local/busybox:latest"),
        ("registry.example:5000/team/app:v1", "registry.example:5000/team/app:v1"),
        ("busybox@sha256:" + String(repeating: "a", count: 64), "docker.io/library/busybox@sha256:" + String(repeating: "a", count: 64)),
    ])
    func normalizes(_ input: String, _ expected: String) throws {
        #expect(try ImageReference(parsing: input).description == expected)
    }

    @Test("bad references are InvalidImageName errors naming the reference", arguments: ["", "Busybox", "a//b", "busybox:", "busybox:-x", "busybox@sha256:12", "x:y:z/ q"])
    func rejects(_ input: String) {
        #expect { try ImageReference(parsing: input) } throws: {
            guard let error = $0 as? ContainerRuntimeError else { return false }
            return error.kind == .invalidImageName && error.field == "image" && error.object.contains("\"\(input)\"")
        }
    }

    @Test("the default pull policy is Always for :latest or no tag, IfNotPresent otherwise")
    func defaultPolicy() throws {
        #expect(ImagePullPolicy.default(for: try ImageReference(parsing: "busybox")) == .always)
        #expect(ImagePullPolicy.default(for: try ImageReference(parsing: "busybox:latest")) == .always)
        #expect(ImagePullPolicy.default(for: try ImageReference(parsing: "busybox:1.36")) == .ifNotPresent)
        #expect(ImagePullPolicy.default(for: try ImageReference(parsing: "busybox@sha256:" + String(repeating: "b", count: 64))) == .ifNotPresent)
    }

    @Test("imageID is the repository at the digest")
    func imageID() {
        let status = ImageStatus(reference: "local/busybox:latest", digest: "sha256:abc")
        #expect(status.imageID == "local/busybox@sha256:abc")
        #expect(ImageStatus(reference: "registry:5000/app:v1", digest: "sha256:d").imageID == "registry:5000/app@sha256:d")
    }
}

@Suite("Pod hosts, hostname and resolv.conf")
struct PodFilesTests {
    let pod = PodSandboxConfig(
        pod: PodIdentity(uid: "u", name: "web", namespace: "shop"), hostname: "web-0",
        hostAliases: [.init(ip: "10.1.2.3", hostnames: ["db", "db.local"])])

    @Test("hosts holds localhost, the pod IP with its hostname, then hostAliases")
    func hosts() {
        let text = PodFiles.hosts(pod, podIPs: ["10.251.0.7"])
        #expect(text.hasPrefix("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"))
        #expect(text.contains("10.251.0.7\tweb-0\n"))
        #expect(text.hasSuffix("# Entries added by HostAliases.\n10.1.2.3\tdb\tdb.local\n"))
    }

    @Test("ClusterFirst uses --cluster-dns with the namespace search path and ndots:5, then the node's searches")
    func clusterFirst() {
        let cluster = PodFiles.ClusterDNS(servers: ["10.96.0.10"], domain: "cluster.local", hostResolvConf: "nameserver 1.1.1.1\nsearch corp.example\n")
        #expect(
            PodFiles.resolvConf(pod, cluster: cluster)
                == "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n")
    }

    @Test("Default copies the node's resolv.conf; ClusterFirst falls back to it without --cluster-dns or on hostNetwork")
    func defaultPolicy() {
        let cluster = PodFiles.ClusterDNS(servers: [], hostResolvConf: "nameserver 192.0.2.1\nsearch a.example\noptions timeout:2\n")
        let expected = "nameserver 192.0.2.1\nsearch a.example\noptions timeout:2\n"
        #expect(PodFiles.resolvConf(pod, cluster: cluster) == expected)
        var host = pod
        host.hostNetwork = true
        #expect(PodFiles.resolvConf(host, cluster: PodFiles.ClusterDNS(servers: ["10.96.0.10"], hostResolvConf: cluster.hostResolvConf)) == expected)
    }

    @Test("None takes only dnsConfig; dnsConfig options override by name")
    func none() {
        var config = pod
        config.dns = PodDNS(policy: .none, nameservers: ["9.9.9.9"], searches: ["x.example"], options: ["ndots:2"])
        #expect(PodFiles.resolvConf(config, cluster: PodFiles.ClusterDNS(servers: ["10.96.0.10"])) == "nameserver 9.9.9.9\nsearch x.example\noptions ndots:2\n")
        config.dns = PodDNS(policy: .clusterFirst, options: ["ndots:1"])
        #expect(PodFiles.resolvConf(config, cluster: PodFiles.ClusterDNS(servers: ["10.96.0.10"])).hasSuffix("options ndots:1\n"))
    }
}

@Suite("CNI configuration and results")
struct CNITests {
    @Test("a conflist's plugins are read in order with their types")
    func parsesList() throws {
        let list = try CNINetworkList(
            data: Data(#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","bridge":"b0"},{"type":"portmap"}]}"#.utf8), source: "x.conflist")
        #expect(list.name == "n" && list.cniVersion == "1.0.0" && list.pluginTypes == ["bridge", "portmap"])
    }

    @Test("a bad config names the file and the field", arguments: [
        (#"{"plugins":[{"type":"bridge"}]}"#, "name"),
        (#"{"name":"n","plugins":[]}"#, "plugins"),
        (#"{"name":"n","plugins":[{"bridge":"b"}]}"#, "plugins[0].type"),
        ("not json", "(file)"),
    ])
    func rejects(_ text: String, _ field: String) {
        #expect { try CNINetworkList(data: Data(text.utf8), source: "/etc/cni/net.d/10-x.conflist") } throws: {
            guard let error = $0 as? ContainerRuntimeError else { return false }
            return error.kind == .cniConfigMissing && error.field == field && error.object.contains("10-x.conflist")
        }
    }

    @Test("an empty config folder is CNIConfigMissing pointing at --cni-conf-dir")
    func missing() {
        #expect { try CNINetworkList.load(directory: "/nonexistent/nacri") } throws: {
            ($0 as? ContainerRuntimeError)?.field == "--cni-conf-dir"
        }
    }

    @Test("the pod IP comes from the address on eth0, without prefix length, loopback ignored")
    func result() throws {
        let json = """
            {"cniVersion":"1.0.0","interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/var/run/netns/p"}],
             "ips":[{"interface":0,"address":"10.0.0.1/24"},{"interface":2,"address":"10.251.0.9/24","gateway":"10.251.0.1"},{"address":"127.0.0.1/8"}]}
            """
        #expect(try CNIResult(json: json).ips == ["10.251.0.9", "10.0.0.1"])
    }

    @Test("--cni-bin-dir defaults to /opt/cni/bin with Debian's /usr/lib/cni as fallback")
    func binDirectories() {
        #expect(CNIPluginRunner.defaultBinDirectories(nil) == ["/opt/cni/bin", "/usr/lib/cni"])
        #expect(CNIPluginRunner.defaultBinDirectories("/opt/cni/bin") == ["/opt/cni/bin", "/usr/lib/cni"])
        #expect(CNIPluginRunner.defaultBinDirectories("/a:/b") == ["/a", "/b"])
    }
}

@Suite("ctr output parsing and arguments")
struct CtrParsingTests {
    @Test("tasks ls rows become tasks by token, not column offset")
    func tasks() {
        let tasks = CtrCLI.parseTasks("TASK        PID     STATUS    \nnacri-a    1711    RUNNING\nnacri-b    0    STOPPED\n")
        #expect(tasks["nacri-a"] == CLITask(id: "nacri-a", pid: 1711, status: .running))
        #expect(tasks["nacri-b"]?.status == .stopped)
    }

    @Test("a /tasks/exit event gives container, code and time; exec exits are ignored")
    func events() throws {
        let line = #"2026-11-27 07:09:37.57 +0000 UTC k8s.io /tasks/exit {"container_id":"c1","id":"c1","pid":1711,"exit_status":3,"exited_at":"2026-11-27T07:09:37.577839466Z"}"#
        let event = try #require(CtrCLI.parseExitEvent(line))
        #expect(event.containerID == "c1" && event.exitCode == 3)
        #expect(RFC3339Nano.format(event.exitedAt).hasPrefix("2026-11-27T07:09:37.5778"))
        #expect(CtrCLI.parseExitEvent(line.replacingOccurrences(of: #""id":"c1""#, with: #""id":"exec-1""#)) == nil)
        #expect(CtrCLI.parseExitEvent(#"... k8s.io /tasks/exit {"container_id":"c2","id":"c2","pid":1}"#)?.exitCode == 0)
    }

    @Test("containers info JSON gives labels, image and creation time")
    func info() throws {
        let info = try #require(
            try CtrCLI.parseContainerInfo(#"{"ID":"c","Labels":{"a":"b"},"Image":"local/busybox:latest","CreatedAt":"2026-11-27T07:09:36.981541822Z"}"#))
        #expect(info.labels == ["a": "b"] && info.image == "local/busybox:latest" && info.createdAt.timeIntervalSince1970 > 1_700_000_000)
    }

    @Test("the exit code of a deleted task is read from ctr's warning")
    func deleteWarning() {
        #expect(CtrCLI.exitCode(fromDeleteWarning: #"time="x" level=warning msg="task c exit with non-zero exit code 137""#) == 137)
        #expect(CtrCLI.exitCode(fromDeleteWarning: "") == nil)
    }

    @Test("run arguments join the pod's namespaces, mount its files, label it, and pass the argv literally")
    func runArguments() {
        let spec = CLIContainerSpec(
            id: "nacri-1", image: "local/busybox:latest", processArgs: ["sh", "-c", "exit 3"], env: [.init(name: "A", value: "1")],
            workingDirectory: "/w", mounts: [ContainerMount(hostPath: "/h", containerPath: "/c", readOnly: true)], labels: ["k": "v"],
            namespaces: ["network": "/var/run/netns/p", "uts": "/s/uts"], resources: .kubernetes(cpuRequestMillis: 250, cpuLimitMillis: 500, memoryLimitBytes: 1 << 20),
            readOnlyRootFilesystem: true, logURI: "binary:///l?path=/p")
        let arguments = CtrCLI.runArguments(spec)
        #expect(Array(arguments.prefix(4)) == ["run", "--detach", "--log-uri", "binary:///l?path=/p"])
        #expect(Array(arguments.suffix(5)) == ["local/busybox:latest", "nacri-1", "sh", "-c", "exit 3"])
        for expected in [
            ["--label", "k=v"], ["--env", "A=1"], ["--cwd", "/w"], ["--mount", "type=bind,src=/h,dst=/c,options=rbind:ro"],
            ["--with-ns", "network:/var/run/netns/p"], ["--with-ns", "uts:/s/uts"], ["--memory-limit", "1048576"], ["--cpu-quota", "50000"],
            ["--cpu-period", "100000"], ["--cpu-shares", "256"],
        ] {
            #expect(arguments.indices.contains { Array(arguments[$0...].prefix(2)) == expected }, "missing \(expected)")
        }
        #expect(arguments.contains("--read-only"))
        #expect(Array(CtrCLI.createArguments(spec).suffix(6)) == ["local/busybox:latest", "nacri-1", "--", "sh", "-c", "exit 3"])
    }

    @Test("RFC 3339 nanosecond timestamps round-trip")
    func timestamps() throws {
        let date = try #require(RFC3339Nano.parse("2026-11-27T07:09:37.577839466Z"))
        #expect(RFC3339Nano.format(date).hasPrefix("2026-11-27T07:09:37.57783"))
        #expect(RFC3339Nano.parse("2026-11-27T07:09:37Z") != nil)
        #expect(RFC3339Nano.parse("yesterday") == nil)
    }
}

@Suite("Exit tracking state machine")
struct ExitTrackerTests {
    let date = Date(timeIntervalSince1970: 1_000)

    @Test("an event delivers once; a later relist of the same exit does nothing")
    func eventThenRelist() {
        var tracker = ExitTracker()
        tracker.watch("c")
        guard case .deliver(let exit) = tracker.exitEvent("c", sandboxID: "s", exitCode: 3, at: date) else {
            Issue.record("expected delivery")
            return
        }
        #expect(exit.exitCode == 3 && exit.source == .events && exit.sandboxID == "s")
        #expect(tracker.observedStopped("c") == .none)
        #expect(tracker.exitEvent("c", sandboxID: "s", exitCode: 3, at: date) == .none)
    }

    @Test("a relist asks for a reap once; the reaped code is delivered once, an event after it is ignored")
    func relistThenEvent() {
        var tracker = ExitTracker()
        tracker.watch("c")
        #expect(tracker.observedStopped("c") == .reap(containerID: "c"))
        #expect(tracker.observedStopped("c") == .none)
        guard case .deliver(let exit) = tracker.reaped("c", sandboxID: nil, exitCode: 137, at: date, source: .relist) else {
            Issue.record("expected delivery")
            return
        }
        #expect(exit.exitCode == 137 && exit.source == .relist)
        #expect(tracker.exitEvent("c", sandboxID: nil, exitCode: 137, at: date) == .none)
    }

    @Test("an event while a reap is in flight wins; the reap then delivers nothing")
    func eventDuringReap() {
        var tracker = ExitTracker()
        tracker.watch("c")
        #expect(tracker.observedStopped("c") == .reap(containerID: "c"))
        #expect(tracker.exitEvent("c", sandboxID: nil, exitCode: 1, at: date) != .none)
        #expect(tracker.reaped("c", sandboxID: nil, exitCode: 1, at: date, source: .relist) == .none)
    }

    @Test("containers not watched, already exited at adoption, or forgotten produce nothing")
    func unwatched() {
        var tracker = ExitTracker()
        #expect(tracker.exitEvent("other", sandboxID: nil, exitCode: 0, at: date) == .none)
        tracker.watch("old", alreadyExited: true)
        #expect(tracker.observedStopped("old") == .none)
        tracker.watch("gone")
        tracker.forget("gone")
        #expect(tracker.observedStopped("gone") == .none)
    }
}

@Suite("The subprocess command runner")
struct CommandRunnerTests {
    let runner = SubprocessCommandRunner()

    @Test("exit status, stdout and stderr are all returned")
    func captures() async throws {
        let result = try await runner.run(CommandInvocation("sh", ["-c", "echo out; echo err >&2; exit 3"], timeout: .seconds(10)))
        #expect(result == CommandResult(status: 3, stdout: "out\n", stderr: "err\n"))
    }

    @Test("both streams are drained: megabytes on each do not block the command")
    func drains() async throws {
        let script = "head -c 3000000 /dev/zero | tr '\\\\0' a; head -c 3000000 /dev/zero | tr '\\\\0' b >&2"
        let result = try await runner.run(CommandInvocation("sh", ["-c", script], timeout: .seconds(30)))
        #expect(result.status == 0 && result.stdout.count == 3_000_000 && result.stderr.count == 3_000_000)
    }

    @Test("output over the runner's limit is refused, naming the command, also a stream's stderr; output at the limit is returned")
    func outputLimit() async throws {
        let small = SubprocessCommandRunner(outputLimit: 1000)
        let atLimit = try await small.run(CommandInvocation("sh", ["-c", "head -c 1000 /dev/zero | tr '\\\\0' a"], timeout: .seconds(10)))
        #expect(atLimit.stdout.count == 1000)
        await #expect { try await small.run(CommandInvocation("sh", ["-c", "head -c 1001 /dev/zero | tr '\\\\0' a >&2"], timeout: .seconds(10))) } throws: {
            "\($0)".contains("more than 1000 bytes") && "\($0)".contains("sh -c")
        }
        await #expect { try await small.stream(CommandInvocation("sh", ["-c", "head -c 1001 /dev/zero | tr '\\\\0' a >&2"], timeout: .seconds(10))) { _ in } } throws: {
            "\($0)".contains("more than 1000 bytes")
        }
    }

    @Test("a command past its timeout is killed and reported as a timeout naming the command")
    func timeout() async throws {
        let clock = ContinuousClock()
        var caught: CommandError?
        let elapsed = await clock.measure {
            do { _ = try await runner.run(CommandInvocation("sleep", ["30"], timeout: .milliseconds(300))) } catch { caught = error as? CommandError }
        }
        #expect(caught?.isTimeout == true && caught?.command == "sleep 30")
        #expect(elapsed < .seconds(10))
    }

    @Test("a missing executable is a not-found error; a failing command's error carries status and stderr")
    func errors() async throws {
        await #expect { try await runner.run(CommandInvocation("nacri-no-such-binary", [], timeout: .seconds(5))) } throws: {
            ($0 as? CommandError)?.isNotFound == true
        }
        await #expect { try await runner.checked(CommandInvocation("sh", ["-c", "echo boom >&2; exit 2"], timeout: .seconds(5))) } throws: {
            guard let error = $0 as? CommandError else { return false }
            return error.status == 2 && error.stderr == "boom" && error.description.contains("sh -c")
        }
    }

    @Test("standard input is delivered and streamed output arrives line by line")
    func inputAndStream() async throws {
        let echoed = try await runner.run(CommandInvocation("cat", [], input: "{\"a\":1}", timeout: .seconds(5)))
        #expect(echoed.stdout == "{\"a\":1}")
        let lines = LinesBox()
        _ = try await runner.stream(CommandInvocation("sh", ["-c", "echo one; echo two; printf three"], timeout: .seconds(5))) { lines.append($0) }
        #expect(lines.all == ["one", "two", "three"])
    }

    @Test("ctr, nerdctl and the CNI plugins run with GOMAXPROCS=1, which reaches the process")
    func helperEnvironment() async throws {
        #expect(CommandInvocation.helperEnvironment == (ProcessInfo.processInfo.environment["GOMAXPROCS"] == nil ? ["GOMAXPROCS": "1"] : [:]))
        let seen = try await runner.run(
            CommandInvocation("sh", ["-c", "printf %s \"$GOMAXPROCS\""], environment: CommandInvocation.helperEnvironment, timeout: .seconds(5)))
        #expect(seen.stdout == (ProcessInfo.processInfo.environment["GOMAXPROCS"] ?? "1"))

        let cannedCNIResult = #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"interface":0,"address":"10.251.0.9/24"}]}"#
        let runner = EnvironmentRecorder { $0.executable.hasSuffix("/bridge") ? cannedCNIResult : "Server:\n  Version: 1.6.20\n" }
        _ = try await CtrCLI(runner: runner).ping()
        _ = try await NerdctlCLI(runner: runner).ping()
        // The plugin only has to exist; the recorder answers for it.
        let bin = FileManager.default.temporaryDirectory.appendingPathComponent("nacri-helper-env-\(getpid())").path
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: bin) }
        #expect(FileManager.default.createFile(atPath: bin + "/bridge", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755]))
        let cni = CNIPluginRunner(binDirectories: [bin], runner: runner)
        let network = try CNINetworkList(data: Data(#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"}]}"#.utf8), source: "x.conflist")
        let attachment = CNIPluginRunner.Attachment(containerID: "c", netnsPath: "/var/run/netns/x", pod: PodIdentity(uid: "u", name: "p", namespace: "d"))
        _ = try await cni.add(network, attachment, logger: Logger(label: "test"))
        let environments = runner.environments
        #expect(environments.count == 3)
        for environment in environments { #expect(environment["GOMAXPROCS"] == CommandInvocation.helperEnvironment["GOMAXPROCS"]) }
        #expect(environments.last?["CNI_COMMAND"] == "ADD")
    }
}

/// Answers each command with `stdout(invocation)`, without running it, and records each one's extra environment.
final class EnvironmentRecorder: CommandRunning {
    private let stdout: @Sendable (CommandInvocation) -> String
    private let recorded = Mutex<[[String: String]]>([])

    init(stdout: @escaping @Sendable (CommandInvocation) -> String) { self.stdout = stdout }

    var environments: [[String: String]] { recorded.withLock { $0 } }

    func run(_ invocation: CommandInvocation) async throws -> CommandResult {
        recorded.withLock { $0.append(invocation.environment) }
        return CommandResult(status: 0, stdout: stdout(invocation), stderr: "")
    }

    func stream(_ invocation: CommandInvocation, line: @Sendable (String) async -> Void) async throws -> CommandResult {
        recorded.withLock { $0.append(invocation.environment) }
        return CommandResult(status: 0, stdout: "", stderr: "")
    }
}

final class LinesBox: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

@Suite("The CRI logger program")
struct LoggerProgramTests {
    @Test("stdout and stderr become CRI records; long lines are split into P records; a last line without newline is F")
    func format() throws {
        let logger = SystemTests.productsDirectory.appendingPathComponent("node-agent-logger").path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nacri-logger-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/0.log"
        let long = String(repeating: "x", count: 16 * 1024 + 10)
        let script = """
            exec 3< <(printf 'one\\ntwo\\n%s\\nlast'  '\(long)') 4< <(printf 'oops\\n') 5>/dev/null
            exec "\(logger)" path "\(path)" max-size 10485760 max-files 2
            """
        let output = try Command.output(["bash", "-c", script])
        #expect(output.status == 0, "\(output)")
        let records = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ", maxSplits: 3).map(String.init) }
        let stdout = records.filter { $0[1] == "stdout" }
        #expect(stdout.map { $0[2] } == ["F", "F", "P", "F", "F"])
        #expect(stdout.map { $0[3].count } == [3, 3, 16 * 1024, 10, 4])
        #expect(stdout.first?[3] == "one" && stdout.last?[3] == "last")
        #expect(records.filter { $0[1] == "stderr" }.map { $0[3] } == ["oops"])
        #expect(records.allSatisfy { RFC3339Nano.parse($0[0]) != nil && $0[0].hasSuffix("Z") && $0[0].count == 30 })
    }

    @Test("without a path the logger exits with a message saying how to call it")
    func usage() throws {
        let logger = SystemTests.productsDirectory.appendingPathComponent("node-agent-logger").path
        let output = try Command.output([logger])
        #expect(output.status == 2 && output.stderr.contains("missing `path`"))
    }
}

@Suite("Image pull gate")
struct PullGateTests {
    @Test("serialized pulls wait for one another; the gate admits as many as its permits")
    func serializes() async throws {
        let gate = PullGate(permits: 1)
        await gate.acquire()
        let order = LinesBox()
        let waiter = Task {
            await gate.acquire()
            order.append("second")
            await gate.release()
        }
        try await Task.sleep(for: .milliseconds(100))
        order.append("first done")
        await gate.release()
        await waiter.value
        #expect(order.all == ["first done", "second"])
        let parallel = PullGate(permits: 2)
        await parallel.acquire()
        await parallel.acquire()
        await parallel.release()
        await parallel.release()
    }
}

@Suite("Runtime version parsing")
struct RuntimeVersionParsingTests {
    @Test("ctr version: the Server section's Version")
    func ctrVersion() {
        let text = "Client:\n  Version:  1.6.20~ds1\n  Revision: 1.6.20~ds1-1\n  Go version: go1.19.8\n\nServer:\n  Version:  1.6.21\n  Revision: 1.6.20~ds1-1\n  UUID: 8f7c\n"
        #expect(CtrCLI.parseServerVersion(text) == "1.6.21")
        #expect(CtrCLI.parseServerVersion("Client:\n  Version: 1\n") == nil)
    }

    @Test("nerdctl version JSON: the containerd component's Version")
    func nerdctlVersion() {
        let text = #"{"Client":{"Version":"v1.7.6"},"Server":{"Components":[{"Name":"containerd","Version":"v1.7.13"},{"Name":"runc","Version":"1.1.12"}]}}"#
        #expect(NerdctlCLI.parseServerVersion(text) == "v1.7.13")
        #expect(NerdctlCLI.parseServerVersion("not json") == nil)
    }
}
