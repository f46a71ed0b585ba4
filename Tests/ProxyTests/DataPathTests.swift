import Foundation
import Iptables
import NodeAgentTesting
import Proxy
import Testing

/// kube-proxy's job proven with real traffic through the kernel's nf_tables, inside an isolated node namespace.
@Suite("nftables data path with real traffic", .enabled(if: SystemTests.enabled), .serialized)
struct DataPathTests {
    static let web = Fixtures.service(
        "web", type: "NodePort", clusterIP: "10.96.0.10",
        ports: [.init(name: "http", protocol: "TCP", port: 80, targetPort: .int(8080), nodePort: 30080)]
    )

    static func webSlice(_ endpoints: [Fixtures.EP], name: String = "web-1") -> EndpointSliceObject {
        Fixtures.slice(name, service: "web", ports: [.init(name: "http", protocol: "TCP", port: 8080)], endpoints: endpoints)
    }

    @Test("ClusterIP and NodePort reach every ready backend, from a client and from the node; no endpoints means refused at once")
    func clusterIPAndNodePort() throws {
        let bed = try DataPathTestBed()
        defer { bed.tearDown() }
        for (index, name) in ["b1", "b2", "b3"].enumerated() { try bed.addHTTPBackend(name, ip: "10.250.0.1\(index + 1)") }
        try bed.apply(Self.web)
        try bed.apply(Self.webSlice([.init(ip: "10.250.0.11"), .init(ip: "10.250.0.12"), .init(ip: "10.250.0.13")]))
        // Bad input beside it: skipped with a log naming the field, the good Service unaffected.
        try bed.apply(Fixtures.service("broken", clusterIP: "10.96.0.66", ports: [.init(name: "http", port: 99999)]))
        try bed.apply(Fixtures.slice("web-bad", service: "web", endpoints: [.init(ip: "10.250.0.999")]))
        try bed.startProxy()

        let all: Set<String> = ["b1", "b2", "b3"]
        try bed.eventually("ClusterIP answers from the client") { try bed.curl(from: bed.client, "http://10.96.0.10/").status == 0 }
        for (from, url) in [
            (bed.client!, "http://10.96.0.10/"), (bed.topology.node, "http://10.96.0.10/"),
            (bed.client!, "http://10.250.0.1:30080/"), (bed.topology.node, "http://10.250.0.1:30080/"),
        ] {
            let seen = try bed.answers(from: from, url, count: 30)
            #expect(Set(seen.keys) == all, "\(url) from \(from.name): \(seen)")
        }
        #expect(bed.proxyLogText.contains("spec.ports[0].port"))
        #expect(bed.proxyLogText.contains("endpoints[0].addresses[0]"))

        // Health: 200 with kube-proxy's JSON fields.
        let health = try bed.topology.node.output(["curl", "-s", "-w", "\n%{http_code}", "http://127.0.0.1:10256/healthz"])
        #expect(health.stdout.hasSuffix("200"))
        #expect(health.stdout.contains("\"healthy\":true") && health.stdout.contains("lastUpdated") && health.stdout.contains("currentTime"))

        // No endpoints: refused (curl exit 7), not a timeout (28), from the client, the node, and on the NodePort.
        try bed.apply(Self.webSlice([]))
        try bed.eventually("ClusterIP refused from the client") { try bed.curl(from: bed.client, "http://10.96.0.10/").status == 7 }
        #expect(try bed.curl(from: bed.topology.node, "http://10.96.0.10/").status == 7)
        #expect(try bed.curl(from: bed.client, "http://10.250.0.1:30080/").status == 7)
    }

    @Test("scaling endpoints up and down and flipping readiness: traffic follows within a sync")
    func scaleAndReadiness() throws {
        let bed = try DataPathTestBed()
        defer { bed.tearDown() }
        for (index, name) in ["b1", "b2", "b3"].enumerated() { try bed.addHTTPBackend(name, ip: "10.250.0.1\(index + 1)") }
        try bed.apply(Self.web)
        try bed.apply(Self.webSlice([.init(ip: "10.250.0.11")]))
        try bed.startProxy()
        try bed.eventually("one backend") { try bed.curl(from: bed.client, "http://10.96.0.10/").body == "b1" }
        #expect(try bed.answers(from: bed.client, "http://10.96.0.10/", count: 10) == ["b1": 10])

        // Scale up.
        try bed.apply(Self.webSlice([.init(ip: "10.250.0.11"), .init(ip: "10.250.0.12"), .init(ip: "10.250.0.13")]))
        try bed.eventually("all three backends used") {
            Set(try bed.answers(from: bed.client, "http://10.96.0.10/", count: 15).keys) == ["b1", "b2", "b3"]
        }
        // Readiness flip: b1 not ready any more.
        try bed.apply(Self.webSlice([.init(ip: "10.250.0.11", ready: false), .init(ip: "10.250.0.12"), .init(ip: "10.250.0.13")]))
        try bed.eventually("b1 gone") { try bed.answers(from: bed.client, "http://10.96.0.10/", count: 5)["b1"] == nil }
        #expect(Set(try bed.answers(from: bed.client, "http://10.96.0.10/", count: 20).keys) == ["b2", "b3"])
        // Scale down to b3 only; then b1 ready again.
        try bed.apply(Self.webSlice([.init(ip: "10.250.0.13")]))
        try bed.eventually("only b3") { try bed.answers(from: bed.client, "http://10.96.0.10/", count: 5) == ["b3": 5] }
        #expect(try bed.answers(from: bed.topology.node, "http://10.96.0.10/", count: 10) == ["b3": 10])
        try bed.apply(Self.webSlice([.init(ip: "10.250.0.11"), .init(ip: "10.250.0.13")]))
        try bed.eventually("b1 back") { Set(try bed.answers(from: bed.client, "http://10.96.0.10/", count: 15).keys) == ["b1", "b3"] }
    }

    @Test("ClientIP affinity sticks each client to one backend")
    func affinity() throws {
        let bed = try DataPathTestBed()
        defer { bed.tearDown() }
        for (index, name) in ["b1", "b2", "b3"].enumerated() { try bed.addHTTPBackend(name, ip: "10.250.0.1\(index + 1)") }
        var sticky = Self.web
        sticky.spec.sessionAffinity = "ClientIP"
        sticky.spec.sessionAffinityConfig = .init(clientIP: .init(timeoutSeconds: 600))
        try bed.apply(sticky)
        try bed.apply(Self.webSlice([.init(ip: "10.250.0.11"), .init(ip: "10.250.0.12"), .init(ip: "10.250.0.13")]))
        try bed.startProxy()
        try bed.eventually("service answers") { try bed.curl(from: bed.client, "http://10.96.0.10/").status == 0 }
        let fromClient = try bed.answers(from: bed.client, "http://10.96.0.10/", count: 20)
        #expect(fromClient.count == 1, "client saw \(fromClient)")
        let fromNode = try bed.answers(from: bed.topology.node, "http://10.96.0.10/", count: 20)
        #expect(fromNode.count == 1, "node saw \(fromNode)")
        // The same client through the NodePort also sticks.
        let viaNodePort = try bed.answers(from: bed.client, "http://10.250.0.1:30080/", count: 10)
        #expect(viaNodePort.count == 1, "NodePort saw \(viaNodePort)")
    }

    /// Runs the UDP replacement scenario; returns what the client's probes answered after the replacement.
    static func udpScenario(conntrack: String, expectSwitch: Bool) throws -> String {
        let bed = try DataPathTestBed()
        defer { bed.tearDown() }
        try bed.addUDPBackend("u1", ip: "10.250.0.21", port: 5353)
        try bed.addUDPBackend("u2", ip: "10.250.0.22", port: 5353)
        let dns = Fixtures.service("dns", clusterIP: "10.96.0.53", ports: [.init(name: "dns", protocol: "UDP", port: 53, targetPort: .int(5353))])
        let ports = [EndpointPortObject(name: "dns", protocol: "UDP", port: 5353)]
        try bed.apply(dns)
        try bed.apply(Fixtures.slice("dns-1", service: "dns", ports: ports, endpoints: [.init(ip: "10.250.0.21")]))
        try bed.startProxy(conntrack: conntrack)
        // One socket, one source port: every probe belongs to the same conntrack entry, as a resolver's would.
        func probe() throws -> String {
            try bed.client.run([bed.harnessPath, "udp-probe", "--to", "10.96.0.53:53", "--from-port", "40053", "--count", "3", "--timeout", "1"])
                .split(separator: "\n").joined(separator: ",")
        }
        try bed.eventually("u1 answers") { try probe() == "u1,u1,u1" }
        // u1 keeps running but is no longer an endpoint; u2 replaces it. Without the conntrack flush the entry
        // keeps this client's datagrams on u1.
        try bed.apply(Fixtures.slice("dns-1", service: "dns", ports: ports, endpoints: [.init(ip: "10.250.0.22")]))
        if expectSwitch {
            try bed.eventually("u2 answers on the same 5-tuple") { try probe() == "u2,u2,u2" }
            #expect(bed.proxyLogText.contains("conntrack entries cleared"))
        } else {
            try bed.eventually("the proxier applied the change") { bed.proxyLogText.components(separatedBy: "synced").count >= 3 }
            Thread.sleep(forTimeInterval: 1)
        }
        return try probe()
    }

    @Test("UDP: when the echo backend is replaced, the client's next datagrams reach the new one (conntrack cleared)")
    func udpReplacement() throws {
        #expect(try Self.udpScenario(conntrack: "/usr/sbin/conntrack", expectSwitch: true) == "u2,u2,u2")
    }

    @Test("UDP control: with conntrack cleanup disabled, the same client stays stuck on the old backend")
    func udpReplacementControl() throws {
        #expect(try Self.udpScenario(conntrack: "/bin/true", expectSwitch: false) == "u1,u1,u1")
    }

    @Test("killed with SIGKILL and restarted: connections keep flowing and the rules converge with nothing stale or doubled")
    func restartConvergence() throws {
        let bed = try DataPathTestBed()
        defer { bed.tearDown() }
        for (index, name) in ["b1", "b2"].enumerated() { try bed.addHTTPBackend(name, ip: "10.250.0.1\(index + 1)") }
        let gone = Fixtures.service("gone", clusterIP: "10.96.0.20", affinity: 60)
        try bed.apply(Self.web)
        try bed.apply(Self.webSlice([.init(ip: "10.250.0.11"), .init(ip: "10.250.0.12")]))
        try bed.apply(gone)
        try bed.apply(Fixtures.slice("gone-1", service: "gone", endpoints: [.init(ip: "10.250.0.11")]))
        try bed.startProxy()
        try bed.eventually("web answers") { try bed.curl(from: bed.client, "http://10.96.0.10/").status == 0 }
        try bed.eventually("gone answers") { try bed.curl(from: bed.client, "http://10.96.0.20/").status == 0 }

        // A long transfer through the Service (4 MiB at 512 KiB/s, about 8 s) spans the crash and the restart.
        let transfer = Process()
        transfer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        transfer.arguments = ["ip", "netns", "exec", bed.client.name, "curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", "--limit-rate", "512k", "-m", "60", "http://10.96.0.10/big"]
        let transferOutput = Pipe()
        transfer.standardOutput = transferOutput
        try transfer.run()
        Thread.sleep(forTimeInterval: 1)

        bed.killProxy()
        // While the proxier is down the kernel keeps serving: new connections still work.
        #expect(try bed.answers(from: bed.client, "http://10.96.0.10/", count: 5).keys.allSatisfy { $0 == "b1" || $0 == "b2" })
        // The world changes while it is down: one Service deleted, one endpoint added.
        try bed.remove(kind: "Service", name: "gone")
        try bed.remove(kind: "EndpointSlice", name: "gone-1")
        try bed.addHTTPBackend("b3", ip: "10.250.0.13")
        try bed.apply(Self.webSlice([.init(ip: "10.250.0.11"), .init(ip: "10.250.0.12"), .init(ip: "10.250.0.13")]))
        try bed.startProxy()
        try bed.eventually("restarted proxier converged") { try bed.curl(from: bed.client, "http://10.96.0.20/", maxTime: 2).status == 28 }
        try bed.eventually("b3 in use") { try bed.answers(from: bed.client, "http://10.96.0.10/", count: 10)["b3"] != nil }

        transfer.waitUntilExit()
        let downloaded = String(decoding: transferOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(transfer.terminationStatus == 0, "the transfer across the restart failed")
        #expect(downloaded == "\(4 << 20)")

        // The kernel's table is exactly the desired state: the same inputs through a proxier over the fake.
        let expected = ProxierHarness(clusterCIDR: DataPathTestBed.clusterCIDR)
        expected.proxier.serviceChanged(previous: nil, current: Self.web)
        expected.proxier.endpointSliceChanged(previous: nil, current: Self.webSlice([.init(ip: "10.250.0.11"), .init(ip: "10.250.0.12"), .init(ip: "10.250.0.13")]))
        expected.synced()
        await_(expected)
        let desired = try #require(expected.proxier.lastApplied)
        let listing = try #require(try bed.kernelTable())
        KernelRulesetTests.compare(listing, desired)
        #expect(!listing.chains.keys.contains { $0.contains("gone") })
        #expect(!listing.sets.keys.contains { $0.contains("gone") })
    }
}

/// Runs one sync of a fake-backed proxier from synchronous test code.
func await_(_ harness: ProxierHarness) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await harness.proxier.syncNow()
        done.signal()
    }
    done.wait()
}
