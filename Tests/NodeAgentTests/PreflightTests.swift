import Foundation
import Synchronization
import Testing

@testable import NodeAgent

/// A prepared folder standing in for `/`, and a command runner standing in for the kernel and tools.
final class FakeHostRoot: Sendable {
    let root: URL
    let commands = Mutex<[[String]]>([])

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("na-preflight-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func write(_ path: String, _ contents: String) throws {
        let url = root.appendingPathComponent(String(path.dropFirst()))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try contents.write(to: url, atomically: false, encoding: .utf8)
    }

    func read(_ path: String) -> String? {
        try? String(contentsOf: root.appendingPathComponent(String(path.dropFirst())), encoding: .utf8)
    }

    /// A healthy node: modules loaded as modules and listed for boot, sysctls set and persisted, no swap,
    /// containerd answering, a CNI config whose plugins exist.
    func prepareHealthyNode() throws {
        let modules = Preflight.requiredModules + Preflight.ipvsModules
        try write("/proc/modules", modules.map { "\($0) 16384 0 - Live 0x0000000000000000" }.joined(separator: "\n") + "\n")
        try write("/etc/modules-load.d/k8s.conf", modules.joined(separator: "\n") + "\n")
        for key in ["net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
                    "net/ipv4/vs/conntrack", "net/ipv4/vs/expire_nodest_conn", "net/ipv4/vs/expire_quiescent_template"] {
            try write("/proc/sys/\(key)", "1\n")
        }
        try write("/etc/sysctl.d/k8s.conf", """
            net.ipv4.ip_forward = 1
            net.bridge.bridge-nf-call-iptables=1
            net.bridge.bridge-nf-call-ip6tables = 1
            net.ipv4.vs.conntrack = 1
            net.ipv4.vs.expire_nodest_conn = 1
            net.ipv4.vs.expire_quiescent_template = 1

            """)
        try write("/proc/sys/fs/nr_open", "1048576\n")
        try write("/proc/sys/kernel/pid_max", "4194304\n")
        try write("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n")
        try write("/etc/fstab", "UUID=abc / ext4 defaults 0 1\n# /swapfile none swap sw 0 0\n")
        try write("/run/containerd/containerd.sock", "")
        try write("/sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n")
        try write("/etc/cni/net.d/10-bridge.conflist", #"{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"},{"type":"portmap"}]}"#)
        try write("/opt/cni/bin/bridge", "")
        try write("/opt/cni/bin/portmap", "")
        try write("/proc/net/tcp", "  sl  local_address rem_address   st\n   0: 0100007F:1F90 00000000:0000 0A 0\n")
        try write("/proc/net/tcp6", "  sl  local_address rem_address   st\n")
    }

    /// The host: files under `root`; `modprobe X` appends X to proc/modules as the kernel would.
    func host(containerd: Bool = true, synchronised: Bool? = true) -> PreflightHost {
        let root = self.root.path
        return PreflightHost(
            root: root,
            runCommand: { [self] arguments in
                commands.withLock { $0.append(arguments) }
                switch arguments.first {
                case "modprobe":
                    let modules = (read("/proc/modules") ?? "") + "\(arguments[1]) 16384 0 - Live 0x0\n"
                    try? write("/proc/modules", modules)
                    if arguments[1] == "br_netfilter" {
                        try? write("/proc/sys/net/bridge/bridge-nf-call-iptables", "0\n")
                        try? write("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "0\n")
                    }
                    return .init(status: 0, output: "")
                case "ctr":
                    if !containerd { return .init(status: 1, output: "ctr: failed to dial \"/run/containerd/containerd.sock\": connection refused") }
                    return arguments.contains("version")
                        ? .init(status: 0, output: "Client:\n  Version:  1.6.20\n\nServer:\n  Version:  1.6.20\n  UUID: x\n")
                        : .init(status: 0, output: "")
                case "nft": return .init(status: 0, output: "nftables v1.0.6 (Lester Gooch #5)\n")
                case "swapoff":
                    try? write("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n")
                    return .init(status: 0, output: "")
                default: return .init(status: 127, output: "not found")
                }
            },
            hasProgram: { _ in true },
            clockSynchronized: { synchronised },
            openFileLimit: { 1_048_576 }
        )
    }

    deinit { try? FileManager.default.removeItem(at: root) }
}

@Suite("preflight against a prepared root")
struct PreflightTests {
    private func result(_ report: PreflightReport, _ id: String) -> PreflightResult? { report.results.first { $0.id == id } }

    @Test("a healthy node passes every check and exits 0")
    func healthy() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        let report = Preflight(host: fake.host(), options: .init()).run(fix: false)
        let notPassing = report.results.filter { $0.status != .pass }
        #expect(notPassing.isEmpty, "\(notPassing)")
        #expect(report.exitCode == 0)
        #expect(result(report, "runtime/containerd")?.found == "containerd 1.6.20")
        #expect(result(report, "runtime/cgroups")?.found.hasPrefix("v2") == true)
    }

    @Test("a missing required module FAILs; missing IPVS modules WARN naming the fallback")
    func missingModules() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        try fake.write("/proc/modules", "overlay 1 0 - Live 0x0\nnf_conntrack 1 0 - Live 0x0\n")
        try FileManager.default.removeItem(at: fake.root.appendingPathComponent("proc/sys/net/bridge"))
        let report = Preflight(host: fake.host(), options: .init()).run(fix: false)
        let bridge = try #require(result(report, "module/br_netfilter"))
        #expect(bridge.status == .fail)
        #expect(bridge.remedy.contains("modprobe br_netfilter"))
        let ipvs = try #require(result(report, "module/ip_vs_sh"))
        #expect(ipvs.status == .warn)
        #expect(ipvs.remedy.contains("falls back to the iptables mode"))
        #expect(report.exitCode == 1)
    }

    @Test("a module loaded but not listed for boot WARNs; built-in modules PASS")
    func bootPersistence() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        try fake.write("/etc/modules-load.d/k8s.conf", "overlay\n")
        try fake.write("/proc/modules", "overlay 1 0 - Live 0x0\nnf_conntrack 1 0 - Live 0x0\nip_vs 1 0 - Live 0x0\n")
        try fake.write("/proc/sys/net/bridge/bridge-nf-call-iptables", "1\n")  // br_netfilter built in
        let report = Preflight(host: fake.host(), options: .init()).run(fix: false)
        #expect(result(report, "module/overlay")?.status == .pass)
        #expect(result(report, "module/nf_conntrack")?.status == .warn)
        #expect(result(report, "module/br_netfilter")?.found == "built into the kernel")
    }

    @Test("sysctls: wrong value FAILs, unpersisted WARNs, absent bridge sysctls say br_netfilter must load first")
    func sysctls() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        try fake.write("/proc/sys/net/ipv4/ip_forward", "0\n")
        try fake.write("/etc/sysctl.d/k8s.conf", "net.ipv4.ip_forward = 1\n")
        try FileManager.default.removeItem(at: fake.root.appendingPathComponent("proc/sys/net/bridge"))
        let report = Preflight(host: fake.host(), options: .init()).run(fix: false)
        let forward = try #require(result(report, "sysctl/net.ipv4.ip_forward"))
        #expect(forward.status == .fail && forward.found == "0" && forward.expected == "1")
        let bridge = try #require(result(report, "sysctl/net.bridge.bridge-nf-call-iptables"))
        #expect(bridge.status == .fail)
        #expect(bridge.remedy.hasPrefix("modprobe br_netfilter first"))
        #expect(result(report, "sysctl/net.ipv4.vs.conntrack")?.status == .warn)
    }

    @Test("IPVS sysctls are checked only in ipvs mode")
    func ipvsSysctlsOnlyInIPVSMode() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        var options = Preflight.Options()
        options.proxyMode = .iptables
        let report = Preflight(host: fake.host(), options: options).run(fix: false)
        #expect(result(report, "sysctl/net.ipv4.vs.conntrack") == nil)
    }

    @Test("swap on FAILs; a swap entry in fstab WARNs")
    func swap() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        try fake.write("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n")
        try fake.write("/etc/fstab", "UUID=abc / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n")
        let report = Preflight(host: fake.host(), options: .init()).run(fix: false)
        #expect(result(report, "swap/active")?.status == .fail)
        #expect(result(report, "swap/fstab")?.status == .warn)
    }

    @Test("containerd down, no CNI config, a missing plugin, a busy port and an unsynchronised clock are reported")
    func runtimeNetworkPortsClock() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        try fake.write("/proc/net/tcp", "  sl  local_address rem_address   st\n   0: 00000000:280A 00000000:0000 0A 0\n")
        let down = Preflight(host: fake.host(containerd: false, synchronised: false), options: .init()).run(fix: false)
        #expect(result(down, "runtime/containerd")?.status == .fail)
        #expect(result(down, "runtime/containerd")?.found.contains("connection refused") == true)
        #expect(result(down, "port/10250")?.status == .fail)
        #expect(result(down, "port/10248")?.status == .pass)
        #expect(result(down, "time/synchronised")?.status == .warn)

        try FileManager.default.removeItem(at: fake.root.appendingPathComponent("opt/cni/bin/portmap"))
        let missingPlugin = Preflight(host: fake.host(), options: .init()).run(fix: false)
        #expect(result(missingPlugin, "cni/plugin/portmap")?.status == .fail)
        #expect(result(missingPlugin, "cni/plugin/bridge")?.status == .pass)

        try FileManager.default.removeItem(at: fake.root.appendingPathComponent("etc/cni/net.d"))
        let noConfig = Preflight(host: fake.host(), options: .init()).run(fix: false)
        #expect(result(noConfig, "cni/config")?.status == .fail)
    }

    @Test("--fix makes it right and persistent, prints every change, and a second run changes nothing")
    func fixTwice() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        try fake.write("/proc/modules", "overlay 1 0 - Live 0x0\n")
        try fake.write("/etc/modules-load.d/k8s.conf", "overlay\n")
        try fake.write("/etc/sysctl.d/k8s.conf", "")
        try fake.write("/proc/sys/net/ipv4/ip_forward", "0\n")
        try FileManager.default.removeItem(at: fake.root.appendingPathComponent("proc/sys/net/bridge"))
        try fake.write("/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n")
        try fake.write("/etc/fstab", "UUID=abc / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n")
        let preflight = Preflight(host: fake.host(), options: .init())

        let first = preflight.run(fix: true)
        #expect(first.changes.contains("loaded module br_netfilter"))
        #expect(first.changes.contains("set net.ipv4.ip_forward = 1"))
        #expect(first.changes.contains("set net.bridge.bridge-nf-call-iptables = 1"))
        #expect(first.changes.contains("added \"br_netfilter\" to /etc/modules-load.d/node-agent.conf"))
        #expect(first.changes.contains("turned swap off (swapoff -a)"))
        #expect(fake.read("/proc/sys/net/ipv4/ip_forward") == "1\n")
        let persisted = try #require(fake.read("/etc/sysctl.d/90-node-agent.conf"))
        #expect(persisted.contains("net.ipv4.ip_forward = 1\n"))
        #expect(persisted.contains("net.bridge.bridge-nf-call-ip6tables = 1\n"))
        // fstab is left alone without --fix-swap.
        #expect(fake.read("/etc/fstab")?.contains("\n/swapfile none swap") == true)
        #expect(first.results.filter { $0.status == .fail }.isEmpty, "\(first.results.filter { $0.status != .pass })")

        let second = preflight.run(fix: true)
        let changes = second.changes.filter { !$0.hasPrefix("could not") }
        #expect(changes.isEmpty, "second --fix changed \(changes)")
        #expect(second.results.map(\.status) == first.results.map(\.status))
    }

    @Test("--fix-swap comments out fstab swap entries and nothing else")
    func fixSwap() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        try fake.write("/etc/fstab", "UUID=abc / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n")
        var options = Preflight.Options()
        options.fixSwap = true
        let report = Preflight(host: fake.host(), options: options).run(fix: true)
        #expect(report.changes == ["commented out 1 swap entry in /etc/fstab"])
        #expect(fake.read("/etc/fstab") == "UUID=abc / ext4 defaults 0 1\n# disabled by node-agent preflight: /swapfile none swap sw 0 0\n")
        #expect(result(report, "swap/fstab")?.status == .pass)
    }

    @Test("the JSON report has a stable schema")
    func json() throws {
        let fake = try FakeHostRoot()
        try fake.prepareHealthyNode()
        let report = Preflight(host: fake.host(), options: .init()).run(fix: false)
        let data = try JSONEncoder().encode(report)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["schemaVersion", "results", "changes", "summary"])
        #expect(object["schemaVersion"] as? Int == 1)
        let first = try #require((object["results"] as? [[String: Any]])?.first)
        #expect(Set(first.keys) == ["id", "status", "found", "expected", "remedy", "fixes"])
        #expect(try JSONDecoder().decode(PreflightReport.self, from: data) == report)
    }

    @Test("on this machine: IPVS absent is a WARN naming the fallback, containerd reported, JSON valid", .enabled(if: getuid() == 0))
    func realMachine() throws {
        let binary = NodeAgentTestingPaths.binary
        let output = try NodeAgentTestingPaths.run([binary, "preflight", "-o", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let results = try #require(object["results"] as? [[String: Any]])
        let ipvs = try #require(results.first { $0["id"] as? String == "module/ip_vs" })
        if !FileManager.default.fileExists(atPath: "/proc/net/ip_vs") {
            #expect(ipvs["status"] as? String == "WARN")
            #expect((ipvs["remedy"] as? String)?.contains("falls back to the iptables mode") == true)
        }
        let containerd = try #require(results.first { $0["id"] as? String == "runtime/containerd" })
        let answering = FileManager.default.fileExists(atPath: "/run/containerd/containerd.sock")
        #expect((containerd["status"] as? String == "PASS") == answering)
    }
}
