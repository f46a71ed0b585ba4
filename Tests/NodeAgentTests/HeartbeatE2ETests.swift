import Foundation
import KubeAPI
import NodeAgentTesting
import Testing

/// The daemon (the built binary) registering and heartbeating against the API server double, observed with the
/// real kubectl and `node-agent status`, through an apiserver outage. Needs containerd for a Ready node.
@Suite("Heartbeat end to end: node-agent + API server double + kubectl", .serialized, .enabled(if: SystemTests.enabled))
struct HeartbeatE2ETests {
    @Test("kubectl sees the node Ready and its lease fresh; an outage makes /healthz 503 and status exit 1; it recovers")
    func heartbeatThroughOutage() async throws {
        try SystemTests.requireRoot()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("na-hb-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("net.d"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try #"{"cniVersion":"1.0.0","name":"na-hb","plugins":[{"type":"bridge","bridge":"na-hb0","ipam":{"type":"host-local","subnet":"10.252.0.0/24"}}]}"#
            .write(to: folder.appendingPathComponent("net.d/10-na-hb.conflist"), atomically: true, encoding: .utf8)
        var double = try await APIServerDouble.start()
        let port = double.url.port!
        let kubeconfig = folder.appendingPathComponent("kubeconfig").path
        try double.writeKubeconfig(to: kubeconfig)
        let node = "na-hb-e2e"

        let socket = try NotifySocket()
        let process = Process.boundToTestProcess(NodeAgentTestingPaths.binary, [
            "run", "--components", "kubelet", "--kubeconfig", kubeconfig, "--hostname-override", node,
            "--node-lease-duration-seconds", "4", "--node-status-update-frequency", "1s", "--root-dir", folder.path,
            "--cni-conf-dir", folder.appendingPathComponent("net.d").path,
            "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "",
        ])
        process.environment = ["NOTIFY_SOCKET": socket.path, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        let log = folder.appendingPathComponent("agent.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.runBound()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        var ready = ""
        while let message = socket.receive() {
            if message.hasPrefix("READY=1") { ready = message; break }
        }
        let agentLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let statusPort = try #require(ready.split(separator: ":").last.flatMap { Int($0) }, "no READY=1; log: \(agentLog)")
        let address = "127.0.0.1:\(statusPort)"

        func kubectl(_ arguments: [String]) throws -> String { try Command.run(["kubectl", "--kubeconfig", kubeconfig] + arguments) }
        func status() throws -> Command.Output { try Command.output([NodeAgentTestingPaths.binary, "status", "--address", address, "--max-age", "4s"]) }
        func healthz() throws -> String { try Command.output(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", "http://\(address)/healthz"]).stdout }
        func eventually(_ what: String, seconds: Int = 20, _ condition: () throws -> Bool) async throws {
            let deadline = Date().addingTimeInterval(TimeInterval(seconds))
            while !((try? condition()) ?? false) {
                guard Date() < deadline else {
                    Issue.record("timed out waiting for \(what); log: \(try String(contentsOf: log, encoding: .utf8).suffix(3000))")
                    throw SystemTests.Unmet(what: what)
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }

        try await eventually("the node Ready in kubectl") { try kubectl(["get", "node", node, "-o", "wide"]).contains(" Ready ") }
        let wide = try kubectl(["get", "node", node, "-o", "wide"])
        #expect(wide.contains("v1.32.0-node-agent"))
        #expect(wide.contains("containerd://"))
        try await eventually("the lease in kubectl") { try kubectl(["get", "lease", "-n", "kube-node-lease"]).contains(node) }
        let lease = try JSONSerialization.jsonObject(with: Data(try kubectl(["get", "lease", node, "-n", "kube-node-lease", "-o", "json"]).utf8)) as? [String: Any]
        let spec = try #require(lease?["spec"] as? [String: Any])
        #expect(spec["holderIdentity"] as? String == node)
        #expect(spec["leaseDurationSeconds"] as? Int == 4)
        try await eventually("status exit 0") { try status().status == 0 }
        #expect(try healthz() == "200")

        // The apiserver goes away: after the lease duration /healthz fails and `node-agent status` exits 1.
        var nodeObject = try #require(double.object(Node.resourceType, namespace: nil, name: node)).decode(as: Node.self)
        var leaseObject = try #require(double.object(Lease.resourceType, namespace: "kube-node-lease", name: node)).decode(as: Lease.self)
        await double.stop()
        try await eventually("/healthz 503") { try healthz() == "503" }
        let stale = try status()
        #expect(stale.status == 1, "\(stale)")
        #expect(stale.stdout.contains("last renewed"))

        // It comes back with its data: the agent recovers within a renewal interval or two.
        nodeObject.metadata.resourceVersion = nil
        leaseObject.metadata.resourceVersion = nil
        double = try await APIServerDouble.start(.init(tls: .none, port: port))
        try double.create(nodeObject)
        try double.create(leaseObject)
        try await eventually("recovery", seconds: 10) { try status().status == 0 }
        #expect(try healthz() == "200")

        kill(process.processIdentifier, SIGTERM)
        let signalled = Date()
        while process.isRunning && Date().timeIntervalSince(signalled) < 10 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
        await double.stop()
    }
}
