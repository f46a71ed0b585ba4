import Foundation
import NodeAgentTesting
import Proxy
import Testing

/// The daemon's IPVS proxy against the real IPVS kernel in the QEMU guest (`scripts/test-ipvs-guest` runs these in
/// the same boot as the IPVS library's suites): the API server double plus `node-agent run --proxy-mode=ipvs` in the
/// node namespace (``DaemonProxyDriver``), Services and EndpointSlices written with kubectl, real traffic from a
/// client namespace to busybox httpd backends, `ipvsadm` as the independent read-back.
@Suite("IPVSGuest: the IPVS proxier with real traffic", .enabled(if: insideIPVSGuest, "runs inside scripts/ipvs-vm"), .serialized)
struct IPVSGuestProxierTests {
    func tally(_ answers: [String]) -> [String: Int] { answers.reduce(into: [:]) { $0[$1, default: 0] += 1 } }

    @Test("each scheduler behaves as itself; ipvsadm -Ln shows exactly the expected table; sysctls set; no endpoints and non-Service ports refused")
    func schedulers() throws {
        let bed = try IPVSGuestTopology("sched")
        defer { bed.tearDown() }
        let all = ["b1", "b2", "b3"]
        let schedulers = ["rr", "lc", "dh", "sh", "sed", "nq"]
        for (index, scheduler) in schedulers.enumerated() {
            try bed.driver.apply(GuestObjects.service(scheduler, clusterIP: "10.96.0.\(11 + index)", scheduler: scheduler))
            try bed.driver.apply(GuestObjects.slice(scheduler, all))
        }
        try bed.driver.apply(GuestObjects.service("np", clusterIP: "10.96.0.30", nodePort: 30080))
        try bed.driver.apply(GuestObjects.slice("np", ["b1", "b2"]))
        try bed.driver.apply(GuestObjects.service("empty", clusterIP: "10.96.0.40"))
        try bed.driver.start()

        var expected: Set<String> = []
        for (index, scheduler) in schedulers.enumerated() {
            let vs = "TCP 10.96.0.\(11 + index):80"
            expected.insert("\(vs) \(scheduler)")
            for backend in all { expected.insert("\(vs) -> \(IPVSGuestTopology.backendIPs[backend]!):8080 Masq 1") }
        }
        for vs in ["TCP 10.96.0.30:80", "TCP 10.250.0.1:30080"] {
            expected.insert("\(vs) rr")
            for backend in ["b1", "b2"] { expected.insert("\(vs) -> \(IPVSGuestTopology.backendIPs[backend]!):8080 Masq 1") }
        }
        expected.insert("TCP 10.96.0.40:80 rr")
        try bed.eventually("ipvsadm -Ln shows the expected table") { try bed.ipvsTable() == expected }
        #expect(try bed.ipvsTable() == expected)
        // The daemon runs the IPVS proxier it was asked for: no fallback to the nftables proxier.
        let proxy = try #require(bed.driver as? DaemonProxyDriver).status()
        #expect(proxy["requestedMode"] as? String == "ipvs")
        #expect(proxy["proxyMode"] as? String == "ipvs", "the daemon fell back: \(proxy["fallbackReason"] ?? "no reason")")
        #expect(proxy["fallbackReason"] == nil)
        #expect(proxy["healthy"] as? Bool == true)
        let addresses = try bed.node.run(["ip", "-o", "-4", "addr", "show", "dev", "kube-ipvs0"])
        for index in 0..<6 { #expect(addresses.contains("10.96.0.\(11 + index)/32")) }
        for (name, value) in [("net/ipv4/vs/conntrack", "1"), ("net/ipv4/vs/expire_nodest_conn", "1"), ("net/ipv4/vs/expire_quiescent_template", "1"), ("net/ipv4/ip_forward", "1")] {
            #expect(try bed.node.run(["cat", "/proc/sys/\(name)"]).trimmingCharacters(in: .whitespacesAndNewlines) == value, "\(name)")
        }

        // rr: an even spread.
        #expect(tally(try bed.requests("http://10.96.0.11/", count: 30)) == ["b1": 10, "b2": 10, "b3": 10])
        // sh: each source stays on one backend; dh: every source on the one backend the destination hashes to.
        for source in IPVSGuestTopology.clientIPs {
            let answers = try bed.requests("http://10.96.0.14/", count: 6, from: source)
            #expect(answers.count == 6 && Set(answers).count == 1, "sh from \(source): \(answers)")
        }
        var dh: Set<String> = []
        for source in IPVSGuestTopology.clientIPs {
            let answers = try bed.requests("http://10.96.0.13/", count: 4, from: source)
            #expect(answers.count == 4, "dh from \(source): \(answers)")
            dh.formUnion(answers)
        }
        #expect(dh.count == 1, "dh spread one destination over \(dh)")
        // lc, sed, nq: a long-lived connection makes its backend busy; new connections go to the idle ones.
        for (scheduler, vip) in [("lc", "10.96.0.12"), ("sed", "10.96.0.15"), ("nq", "10.96.0.16")] {
            let hold = try bed.spawn(["ip", "netns", "exec", bed.client.name, "sh", "-c", "sleep 30 | timeout 30 busybox nc \(vip) 80"])
            defer {
                Foundation.kill(hold.processIdentifier, SIGKILL)
                _ = try? Command.output(["sh", "-c", "ip netns pids \(bed.client.name) | xargs -r kill -9"])
            }
            var busy: String?
            try bed.eventually("\(scheduler): the held connection is active") {
                busy = try bed.connections("TCP \(vip):80").first { $0.value.active >= 1 }?.key
                return busy != nil
            }
            let busyName = IPVSGuestTopology.backendIPs.first { "\($0.value):8080" == busy }?.key ?? "?"
            let answers = try bed.requests("http://\(vip)/", count: 6)
            #expect(answers.count == 6, "\(scheduler): \(answers)")
            #expect(!answers.contains(busyName), "\(scheduler) sent a new connection to the busy backend \(busyName): \(answers)")
        }
        // NodePort from the client, the cluster IP from the node itself (masqueraded, so the answer comes back).
        #expect(Set(try bed.requests("http://10.250.0.1:30080/", count: 10)) == ["b1", "b2"])
        #expect(Set(try bed.requests("http://10.96.0.30/", count: 10, in: bed.node)) == ["b1", "b2"])
        // No endpoints: refused at once (7), not a timeout (28). A Service IP on a port no Service has: refused,
        // although the node listens on that port (kube-ipvs0 must not expose the node's own listeners).
        #expect(try bed.status("http://10.96.0.40/") == 7)
        #expect(try bed.status("http://10.96.0.40/", from: bed.node) == 7)
        let root = bed.scratch.appendingPathComponent("www-node")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Data("node".utf8).write(to: root.appendingPathComponent("index.html"))
        try bed.spawn(["ip", "netns", "exec", bed.node.name, "busybox", "httpd", "-f", "-p", "8081", "-h", root.path])
        try bed.eventually("the node's own listener answers on its own address") { try bed.requests("http://10.250.0.1:8081/", count: 1) == ["node"] }
        #expect(try bed.status("http://10.96.0.11:8081/") == 7)
    }

    @Test("endpoint churn is followed; a removed backend drains; ClientIP affinity sticks; the SIGKILLed daemon re-adopts the table without cutting a connection; iptables mode removes only its own leftovers")
    func lifecycle() throws {
        let bed = try IPVSGuestTopology("life")
        defer { bed.tearDown() }
        let b = IPVSGuestTopology.backendIPs
        try bed.driver.apply(GuestObjects.service("web", clusterIP: "10.96.0.10"))
        try bed.driver.apply(GuestObjects.slice("web", ["b1", "b2"]))
        try bed.driver.apply(GuestObjects.service("sticky", clusterIP: "10.96.0.20", affinity: 300))
        try bed.driver.apply(GuestObjects.slice("sticky", ["b1", "b2", "b3"]))
        try bed.driver.apply(GuestObjects.service("stream", clusterIP: "10.96.0.50", port: 9000, targetPort: 9090))
        try bed.driver.apply(GuestObjects.slice("stream", ["b1", "b2", "b3"], port: 9090))
        try bed.driver.start()
        // A refused or timed-out request is an answer too (`curl exit N`): wait for a backend's name.
        try bed.eventually("the daemon synced") { try bed.driver.hasSynced() }
        try bed.eventually("web answers") { ["b1", "b2"].contains(try bed.requests("http://10.96.0.10/", count: 1).first ?? "") }
        let first = try bed.requests("http://10.96.0.10/", count: 10)
        #expect(Set(first) == ["b1", "b2"], "\(first)")

        // Churn: b3 joins, then leaves (weight 0 while its TIME_WAIT entries last); traffic follows both ways.
        try bed.driver.apply(GuestObjects.slice("web", ["b1", "b2", "b3"]))
        try bed.eventually("b3 receives traffic") { try bed.requests("http://10.96.0.10/", count: 6).contains("b3") }
        try bed.driver.apply(GuestObjects.slice("web", ["b1", "b2"]))
        try bed.eventually("b3 leaves") { !(try bed.ipvsTable().contains("TCP 10.96.0.10:80 -> \(b["b3"]!):8080 Masq 1")) }
        #expect(!(try bed.requests("http://10.96.0.10/", count: 6).contains("b3")))

        // ClientIP affinity: each source keeps its backend.
        for source in IPVSGuestTopology.clientIPs {
            let answers = try bed.requests("http://10.96.0.20/", count: 5, from: source)
            #expect(answers.count == 5 && Set(answers).count == 1, "affinity from \(source): \(answers)")
        }

        // Drain: one long-lived connection exchanges a line every 0.4 s for about 50 s; its backend is removed.
        let holdOutput = bed.scratch.appendingPathComponent("hold.out").path
        let hold = try bed.spawn([
            "ip", "netns", "exec", bed.client.name, "sh", "-c",
            "\(IPVSGuestTopology.harnessPath) tcp-hold --to 10.96.0.50:9000 --count 125 --interval 0.4 --reset > \(holdOutput)",
        ])
        func holdLines() -> [String] { ((try? String(contentsOfFile: holdOutput, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        try bed.eventually("the long-lived connection got its first answer") { !holdLines().isEmpty }
        let holderName = holdLines()[0]
        let holder = "\(b[holderName] ?? "?"):9090"
        #expect(try bed.connections("TCP 10.96.0.50:9000")[holder]?.active == 1)
        try bed.driver.apply(GuestObjects.slice("stream", ["b1", "b2", "b3"].filter { $0 != holderName }, port: 9090))
        var seen = ""
        try bed.eventually("\(holderName) at weight 0 with its connection (last seen: \(seen))") {
            seen = try bed.node.run(["ipvsadm", "-Ln", "-t", "10.96.0.50:9000"])
            return try bed.ipvsTable().contains("TCP 10.96.0.50:9000 -> \(holder) Masq 0")
                && (try bed.connections("TCP 10.96.0.50:9000")[holder]?.active ?? 0) >= 1
        }
        for _ in 0..<6 {
            let answer = try bed.client.output([IPVSGuestTopology.harnessPath, "tcp-hold", "--to", "10.96.0.50:9000"]).stdout
            #expect(!answer.hasPrefix(holderName) && answer.hasSuffix("ok 1\n"), "a new connection went to the draining backend: \(answer)")
        }

        // SIGKILL the daemon mid-connection and restart it: the table is re-adopted as it is, the connection goes on.
        let before = try bed.node.run(["ipvsadm", "-Sn"])
        let addressesBefore = try bed.node.run(["ip", "-o", "addr", "show", "dev", "kube-ipvs0"])
        let logOffset = bed.driver.log.count
        bed.driver.kill()
        try bed.driver.start()
        try bed.eventually("the restarted daemon synced") { try bed.driver.hasSynced() }
        // The connection (about 50 s) outlasts the restart: else the new daemon may rightly delete its drained backend.
        #expect(hold.isRunning, "the long-lived connection ended before the restarted daemon synced; the comparison is moot")
        let after = try bed.node.run(["ipvsadm", "-Sn"])
        #expect(after == before, "the restart changed the IPVS table:\nbefore:\n\(before)\nafter:\n\(after)")
        #expect(try bed.node.run(["ip", "-o", "addr", "show", "dev", "kube-ipvs0"]) == addressesBefore)
        let firstSync =
            bed.driver.log.dropFirst(logOffset).split(separator: "\n").first { $0.split(separator: " ").contains("synced") && $0.contains("ipvsWrites=") }
            .map(String.init) ?? ""
        for field in ["full=true", "ipvsWrites=0", "addressWrites=0", "nftCommands=0"] {
            #expect(firstSync.contains(field), "the first sync after the restart: \(firstSync)")
        }
        hold.waitUntilExit()
        let lines = holdLines()
        #expect(lines.last == "ok 125", "the long-lived connection was cut: \(lines.suffix(3))")
        #expect(Set(lines.dropLast()) == [holderName], "the long-lived connection moved: \(Set(lines))")
        // It ended with a reset: the kernel forgets it within seconds, and the drained backend is deleted (not the bound).
        try bed.eventually("the drained backend is deleted", seconds: 45) { !(try bed.ipvsTable().contains { $0.hasPrefix("TCP 10.96.0.50:9000 -> \(holder)") }) }
        // The kernel shows the deletion a moment before the daemon's log line is written (under TCG the daemon's
        // thread can be descheduled between the two): wait for the line, then check its reason.
        try bed.eventually("the deletion is logged", seconds: 10) { bed.driver.log.dropFirst(logOffset).contains("deleted drained real server") }
        let deletion = bed.driver.log.dropFirst(logOffset).split(separator: "\n").first { $0.contains("deleted drained real server") } ?? ""
        #expect(deletion.contains("reason=drained"), "deleted for another reason than drained connections: \(deletion)")

        // A switch to iptables mode: the daemon removes what its IPVS mode left, and only that.
        bed.driver.kill()
        try bed.node.run(["ipvsadm", "-A", "-t", "192.168.7.7:80", "-s", "wlc"])
        try bed.driver.switchToIPTablesMode()
        #expect(try bed.ipvsTable() == ["TCP 192.168.7.7:80 wlc"])
        #expect(try bed.node.run(["ip", "-o", "addr", "show", "dev", "kube-ipvs0"]).isEmpty)
        #expect(try bed.node.output(["nft", "list", "table", "ip", "node-agent-ipvs"]).status != 0)
    }
}
