import CRI
import Foundation
import Logging
import NodeAgentTesting
import Testing

/// A real-containerd test bed: an isolated node namespace where the CNI bridge plugin makes `nacri0`
/// (10.251.0.0/24, no route off the machine), a temp folder for state, logs, CNI config and host-local's IP store,
/// and runtimes with the `nacri-` ID prefix.
final class SystemFixture: @unchecked Sendable {
    /// A prerequisite that is missing while NODE_AGENT_SYSTEM_TESTS=1: the test fails with this message.
    struct Unmet: Error, CustomStringConvertible {
        var what: String
        var description: String { what }
    }

    static let image = "local/busybox:latest"
    let node: NetworkNamespace
    let root: String
    let recorder = LogRecorder()

    var confDirectory: String { root + "/cni/net.d" }
    var ipamDirectory: String { root + "/cni/ipam" }
    var logDirectory: String { root + "/logs" }

    init(tag: String) throws {
        try SystemTests.requireRoot()
        let version = try Command.output(["ctr", "--address", RuntimeEndpoint.containerdDefault.socketPath, "version"])
        guard version.status == 0 else {
            throw Unmet(what: "containerd is not answering (\(version.stderr)); start it with scripts/containerd-up")
        }
        let images = try Command.run(["ctr", "-n", "k8s.io", "images", "ls", "-q"])
        guard images.split(separator: "\n").contains(Substring(Self.image)) else {
            throw Unmet(what: "\(Self.image) is not imported; run scripts/busybox-image")
        }
        root = "/tmp/nacri-\(tag)-\(UUID().uuidString.prefix(8))"
        node = try NetworkNamespace.create("nacri-node-\(tag)".prefix(15).description)
        try FileManager.default.createDirectory(atPath: confDirectory, withIntermediateDirectories: true)
        try writeNetwork()
    }

    /// Writes the bridge + host-local + portmap-free conflist (the bridge lives in the node namespace).
    func writeNetwork(subnet: String = "10.251.0.0/24") throws {
        let conflist = """
            {"cniVersion":"1.0.0","name":"nacri-net","plugins":[
              {"type":"bridge","bridge":"nacri0","isGateway":true,"ipMasq":false,"hairpinMode":true,
               "ipam":{"type":"host-local","ranges":[[{"subnet":"\(subnet)"}]],"dataDir":"\(ipamDirectory)"}}
            ]}
            """
        try conflist.write(toFile: confDirectory + "/10-nacri.conflist", atomically: true, encoding: .utf8)
    }

    func configuration(events: Bool = true, relist: Duration? = .seconds(1)) -> CLIRuntimeConfiguration {
        var configuration = CLIRuntimeConfiguration()
        configuration.cli = .ctr
        configuration.idPrefix = "nacri-"
        configuration.stateDirectory = root + "/state"
        configuration.podLogDirectory = logDirectory
        configuration.logRetention = .zero
        configuration.cniConfDirectory = confDirectory
        configuration.cniPluginNamespace = node.name
        configuration.loggerPath = SystemTests.productsDirectory.appendingPathComponent("node-agent-logger").path
        configuration.watchEvents = events
        configuration.relistInterval = relist
        configuration.requestTimeout = .seconds(60)
        configuration.clusterDNS = PodFiles.ClusterDNS(servers: ["10.96.0.10"], domain: "cluster.local", hostResolvConf: "nameserver 192.0.2.53\n")
        return configuration
    }

    func runtime(_ configuration: CLIRuntimeConfiguration? = nil, runner: any CommandRunning = SubprocessCommandRunner()) -> CLIContainerRuntime {
        CLIContainerRuntime(configuration: configuration ?? self.configuration(), runner: runner, logger: recorder.logger(label: "cri", level: .debug))
    }

    static func pod(_ name: String) -> PodSandboxConfig {
        PodSandboxConfig(pod: PodIdentity(uid: "uid-\(name)", name: name, namespace: "nacri"))
    }

    /// Our containers in containerd (prefix `nacri-`), for leak checks.
    static func containerdObjects() throws -> (containers: [String], tasks: [String], snapshots: [String]) {
        let containers = try Command.run(["ctr", "-n", "k8s.io", "containers", "ls", "-q"]).split(separator: "\n").map(String.init)
        let tasks = try Command.run(["ctr", "-n", "k8s.io", "tasks", "ls", "-q"]).split(separator: "\n").map(String.init)
        let snapshots = try Command.run(["ctr", "-n", "k8s.io", "snapshots", "ls"]).split(separator: "\n").compactMap {
            $0.split(separator: " ").first.map(String.init)
        }
        let mine = { (id: String) in id.hasPrefix("nacri-") }
        return (containers.filter(mine), tasks.filter(mine), snapshots.filter(mine))
    }

    static func podNetworkNamespaces() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? []).filter { $0.hasPrefix("nacri-") && !$0.hasPrefix("nacri-node") }
    }

    /// Addresses host-local still holds.
    func allocatedIPs() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: ipamDirectory + "/nacri-net")) ?? []).filter {
            !$0.hasPrefix("last_reserved") && $0 != "lock"
        }
    }

    func vethsInNode() throws -> [String] {
        try node.run(["ip", "-o", "link", "show", "type", "veth"]).split(separator: "\n").map(String.init)
    }

    /// Waits until `condition` holds, checking every 100 ms, for at most `seconds`.
    static func eventually(_ seconds: Double = 15, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    /// Removes every object of ours the test left: containers, netns, the node namespace, the folder.
    func tearDown() {
        if let objects = try? Self.containerdObjects() {
            for id in objects.tasks { _ = try? Command.output(["ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id]) }
            if !objects.tasks.isEmpty { Thread.sleep(forTimeInterval: 0.5) }
            for id in objects.containers {
                _ = try? Command.output(["ctr", "-n", "k8s.io", "tasks", "delete", id])
                _ = try? Command.output(["ctr", "-n", "k8s.io", "containers", "delete", id])
            }
        }
        for name in Self.podNetworkNamespaces() { _ = try? Command.output(["ip", "netns", "delete", name]) }
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
    }
}
