import Foundation
import KubeAPI
import Logging
import NodeAgentTesting
import Testing

/// The real thing for end-to-end tests: the API server double (in-process, real HTTP), the built `node-agent`
/// binary run as a subprocess with a generated kubeconfig, real containerd with the busybox image, CNI (bridge +
/// host-local) inside an isolated node namespace with no route off the machine, and the real `kubectl`.
///
/// Everything it makes carries `nakubelet-<tag>`: the node namespace, the runtime's ID prefix (so sweeps and
/// clean-up touch only this test's containers), the temp folder; ``tearDown()`` removes all of it.
final class DaemonFixture: @unchecked Sendable {
    struct Unmet: Error, CustomStringConvertible {
        var what: String
        var description: String { what }
    }

    static let image = "local/busybox:latest"
    static let nodeIP = "10.253.0.1"
    let tag: String
    let root: String
    let node: NetworkNamespace
    let nodeName: String
    let prefix: String
    let double: APIServerDouble?
    let kubeconfig: String
    private(set) var daemon: Process?
    private(set) var healthPort = 0
    private var logIndex = 0
    private var daemonInNodeNamespace = false

    var logFile: String { "\(root)/agent-\(logIndex).log" }
    var manifests: String { root + "/manifests" }
    static var binary: String { SystemTests.productsDirectory.appendingPathComponent("node-agent").path }

    /// - Parameter api: start an API server double and give the daemon a kubeconfig for it (else standalone).
    init(tag: String, api: Bool = true) async throws {
        try SystemTests.requireRoot()
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw Unmet(what: "\(Self.binary) is not built; run `swift build --build-tests` (it builds node-agent and node-agent-logger)")
        }
        let version = try Command.output(["ctr", "version"])
        guard version.status == 0 else { throw Unmet(what: "containerd is not answering (\(version.stderr)); start it with scripts/containerd-up") }
        let images = try Command.run(["ctr", "-n", "k8s.io", "images", "ls", "-q"])
        guard images.split(separator: "\n").contains(Substring(Self.image)) else {
            throw Unmet(what: "\(Self.image) is not imported; run scripts/busybox-image")
        }
        guard (try? Command.output(["kubectl", "version", "--client"]))?.status == 0 else { throw Unmet(what: "kubectl is not installed") }
        self.tag = tag
        prefix = "nakubelet-\(tag)-"
        nodeName = "nakubelet-\(tag)-node"
        root = "/tmp/nakubelet-\(tag)-\(UUID().uuidString.prefix(8).lowercased())"
        node = try NetworkNamespace.create("nakubelet-\(tag)".prefix(15).description)
        try FileManager.default.createDirectory(atPath: root + "/cni", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/manifests", withIntermediateDirectories: true)
        let bridge = "nakb\(tag)".prefix(15)
        let conflist = """
            {"cniVersion":"1.0.0","name":"nakubelet-\(tag)","plugins":[
              {"type":"bridge","bridge":"\(bridge)","isGateway":true,"ipMasq":false,"hairpinMode":true,
               "ipam":{"type":"host-local","ranges":[[{"subnet":"10.253.0.0/24","gateway":"\(Self.nodeIP)"}]],"dataDir":"\(root)/ipam"}}
            ]}
            """
        try conflist.write(toFile: root + "/cni/10-nakubelet.conflist", atomically: true, encoding: .utf8)
        kubeconfig = root + "/kubeconfig"
        if api {
            var logger = Logger(label: "double")
            logger.logLevel = .critical
            let double = try await APIServerDouble.start(logger: logger)
            try double.create(Namespace(metadata: ObjectMeta(name: "nakubelet")))
            try double.writeKubeconfig(to: kubeconfig)
            self.double = double
        } else {
            double = nil
        }
    }

    /// Starts the daemon and waits until its status server listens.
    /// - Parameters:
    ///   - manifests: give `--pod-manifest-path` (the fixture's folder).
    ///   - api: give the kubeconfig of the double (when there is one); false runs standalone.
    ///   - components: `--components`; with the proxy the daemon must run inside the node namespace.
    ///   - inNodeNamespace: run the daemon itself in the node namespace (`nsenter --net`, no new mount namespace,
    ///     so containerd still sees the sandboxes' mounts): its nf_tables rules and status server are there.
    func startDaemon(
        manifests: Bool = false, api: Bool = true, components: String = "kubelet", inNodeNamespace: Bool = false, extra: [String] = []
    ) async throws {
        logIndex += 1
        daemonInNodeNamespace = inNodeNamespace
        var arguments = [
            "run", "--components", components, "--hostname-override", nodeName, "--node-ip", Self.nodeIP, "--root-dir", root + "/state",
            "--runtime-id-prefix", prefix, "--pod-logs-dir", root + "/logs", "--cni-conf-dir", root + "/cni", "--cni-plugin-netns", node.name,
            "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "", "--v", "4",
        ]
        if double != nil && api { arguments += ["--kubeconfig", kubeconfig] }
        if manifests { arguments += ["--pod-manifest-path", self.manifests] }
        arguments += extra
        FileManager.default.createFile(atPath: logFile, contents: nil)
        // Dies with the test process (setpriv --pdeathsig; setpriv execs, so the PID is the daemon's).
        let process =
            inNodeNamespace
            ? Process.boundToTestProcess("/usr/bin/nsenter", ["--net=\(node.path)", "--", Self.binary] + arguments)
            : Process.boundToTestProcess(Self.binary, arguments)
        process.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": root]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        try process.runBound()
        daemon = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: logFile, encoding: .utf8),
                let range = text.range(of: "status server listening address=127.0.0.1:")
            {
                healthPort = Int(text[range.upperBound...].prefix { $0.isNumber }) ?? 0
                if healthPort > 0 { return }
            }
            guard process.isRunning else { throw Unmet(what: "the daemon exited at start:\n\(log())") }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Unmet(what: "the daemon did not start its status server within 30 s:\n\(log())")
    }

    /// Stops the daemon with `signal` (SIGTERM: graceful; SIGKILL: a crash) and waits for it to exit.
    func stopDaemon(_ signal: Int32 = SIGTERM) async {
        guard let daemon, daemon.isRunning else { return }
        kill(daemon.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(15)
        while daemon.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) }
        daemon.waitUntilExit()
    }

    /// The daemon's log so far.
    func log() -> String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    // MARK: kubectl

    @discardableResult
    func kubectl(_ arguments: [String], input: String? = nil) throws -> Command.Output {
        try Command.output(["kubectl", "--kubeconfig", kubeconfig, "--request-timeout", "10s"] + arguments, input: input)
    }

    /// `kubectl create --validate=false -f -` (the double serves no OpenAPI document to validate against).
    func create(_ yaml: String) throws {
        let result = try kubectl(["create", "--validate=false", "-f", "-"], input: yaml)
        guard result.status == 0 else { throw Unmet(what: "kubectl create failed: \(result)") }
    }

    /// `kubectl get pod -o json`, decoded; nil when it does not exist.
    func pod(_ name: String, namespace: String = "nakubelet") throws -> Pod? {
        let result = try kubectl(["get", "pod", "-n", namespace, name, "-o", "json"])
        guard result.status == 0 else { return nil }
        return try ResourceCodec.decode(Pod.self, from: Data(result.stdout.utf8))
    }

    func containerStatus(_ pod: String, _ container: String) throws -> KubeAPI.ContainerStatus? {
        try self.pod(pod)?.status?.containerStatuses?.first { $0.name == container }
    }

    /// `GET /pods` of the daemon.
    func podsEndpoint() throws -> [String: Any] {
        let curl = ["curl", "-s", "-m", "5", "http://127.0.0.1:\(healthPort)/pods"]
        let text = daemonInNodeNamespace ? try node.output(curl).stdout : try Command.run(curl)
        return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    /// HTTP GET from inside the node namespace (where pod IPs live).
    func curlFromNode(_ url: String) throws -> Command.Output {
        try node.output(["curl", "-s", "-m", "5", url])
    }

    // MARK: containerd

    /// IDs of this test's containers in containerd.
    func containerIDs() throws -> [String] {
        try Command.run(["ctr", "-n", "k8s.io", "containers", "ls", "-q"]).split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix) }
    }

    func runningTaskIDs() throws -> [String] {
        try Command.run(["ctr", "-n", "k8s.io", "tasks", "ls"]).split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(whereSeparator: \.isWhitespace)
            guard fields.count >= 3, fields[0].hasPrefix(prefix), fields[2] == "RUNNING" else { return nil }
            return String(fields[0])
        }
    }

    func podNetworkNamespaces() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? []).filter { $0.hasPrefix(prefix) }
    }

    /// Removes every object of this test: the daemon, containers and tasks, pod namespaces, the node namespace,
    /// mounts under the folder, the folder, the double.
    func tearDown() async {
        await stopDaemon(SIGKILL)
        if let ids = try? containerIDs() {
            for id in ids { _ = try? Command.output(["ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id]) }
            if !ids.isEmpty { try? await Task.sleep(for: .milliseconds(500)) }
            for id in ids {
                _ = try? Command.output(["ctr", "-n", "k8s.io", "tasks", "delete", "-f", id])
                _ = try? Command.output(["ctr", "-n", "k8s.io", "containers", "delete", id])
            }
        }
        for name in podNetworkNamespaces() { _ = try? Command.output(["ip", "netns", "delete", name]) }
        // readToEnd: String(contentsOfFile:) returns only the first page of a /proc file.
        if let data = try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/mounts")).readToEnd() {
            let mounts = String(decoding: data, as: UTF8.self)
            for line in mounts.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count > 1, fields[1].hasPrefix(root) { _ = try? Command.output(["umount", "-l", String(fields[1])]) }
            }
        }
        node.delete()
        try? FileManager.default.removeItem(atPath: root)
        await double?.stop()
    }

    /// Polls `condition` every 250 ms for at most `seconds` (generous: never a timing assertion).
    func eventually(_ seconds: Double = 60, _ what: String, _ condition: () throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        if try condition() { return }
        throw Unmet(what: "timed out after \(Int(seconds)) s waiting for \(what); daemon log tail:\n\(log().split(separator: "\n").suffix(40).joined(separator: "\n"))")
    }
}
