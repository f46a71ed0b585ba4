import Foundation
import IPVS
import Iptables
import NodeAgentTesting
import Proxy
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Proxy mode selection and the other mode's cleanup")
struct ModeSelectionTests {
    @Test("iptables is taken as asked, without probing IPVS")
    func iptables() {
        let probed = Mutex(false)
        let decision = ProxyModeSelection.select(
            requested: .iptables, ipvs: { probed.withLock { $0 = true }; return .available }, ipvsProxierAvailable: true)
        #expect(decision == .init(requested: .iptables, chosen: .iptables))
        #expect(!probed.withLock { $0 })
    }

    @Test("ipvs without ip_vs falls back to iptables with the kernel's reason")
    func ipvsUnavailable() {
        let decision = ProxyModeSelection.select(
            requested: .ipvs, ipvs: { .unavailable(reason: "modprobe: FATAL: Module ip_vs not found") }, ipvsProxierAvailable: true)
        #expect(decision.chosen == .iptables)
        #expect(decision.requested == .ipvs)
        #expect(decision.fallbackReason == "modprobe: FATAL: Module ip_vs not found")
    }

    @Test("ipvs with ip_vs but no IPVS proxier in the build falls back, saying so; with one it runs IPVS")
    func ipvsFactory() {
        let without = ProxyModeSelection.select(requested: .ipvs, ipvs: { .available }, ipvsProxierAvailable: false)
        #expect(without.chosen == .iptables)
        #expect(without.fallbackReason == "this build of node-agent has no IPVS proxier")
        #expect(ProxyModeSelection.select(requested: .ipvs, ipvs: { .available }, ipvsProxierAvailable: true) == .init(requested: .ipvs, chosen: .ipvs))
    }

    @Test("on this kernel (no ip_vs) the real availability check gives a reason and ipvs falls back", .enabled(if: SystemTests.enabled))
    func realKernel() throws {
        try SystemTests.requireRoot()
        let decision = ProxyModeSelection.select(requested: .ipvs, ipvs: { IPVSKernel.isAvailable() }, ipvsProxierAvailable: false)
        #expect(decision.chosen == .iptables)
        #expect(decision.fallbackReason?.isEmpty == false)
    }

    @Test("running in IPVS mode removes the nftables proxier's tables, and only those")
    func nftablesCleanup() throws {
        let fake = FakeNftables()
        var own = Transaction(family: .ip, table: "node-agent")
        own.add(.table)
        own.add(.chain(Chain("services")))
        try fake.run(own)
        var own6 = Transaction(family: .ip6, table: "node-agent")
        own6.add(.table)
        try fake.run(own6)
        var other = Transaction(family: .ip, table: "someone-else")
        other.add(.table)
        try fake.run(other)
        let removed = try NftablesCleanup.removeTables(fake, logger: quietLogger())
        #expect(removed == ["ip node-agent", "ip6 node-agent"])
        #expect(fake.table(.ip, "node-agent") == nil)
        #expect(fake.table(.ip6, "node-agent") == nil)
        #expect(fake.table(.ip, "someone-else") != nil)
        #expect(try NftablesCleanup.removeTables(fake, logger: quietLogger()).isEmpty)
    }

    @Test("against the kernel: the nftables proxier's tables are removed, another table in the namespace stays", .enabled(if: SystemTests.enabled))
    func nftablesCleanupInTheKernel() async throws {
        try SystemTests.requireRoot()
        let namespace = try NetworkNamespace.create("naproxyw-clean-\(UInt16.random(in: 1000...9999))")
        defer { namespace.delete() }
        let nft = try LibNftables(networkNamespace: namespace.path)
        let harness = ProxierHarness()
        let proxier = NftablesProxier(
            configuration: harness.proxier.configuration, nftables: nft, conntrack: RecordingConntrack(), sysctl: MemorySysctl(),
            health: ProxyHealth(timeout: .seconds(60)), logger: quietLogger())
        proxier.serviceChanged(previous: nil, current: Fixtures.service("web"))
        proxier.servicesSynced()
        proxier.endpointSlicesSynced()
        guard case .applied = await proxier.syncNow() else {
            Issue.record("the proxier did not write its table")
            return
        }
        try namespace.run(["nft", "add", "table", "ip", "someone-else"])
        #expect(try NftablesCleanup.removeTables(nft, logger: quietLogger()) == ["ip node-agent"])
        #expect(try nft.list(family: .ip, table: "node-agent") == nil)
        #expect(try namespace.run(["nft", "list", "tables"]).contains("table ip someone-else"))
    }

    @Test("--masquerade-all marks every cluster-IP connection, not only those from outside the cluster CIDR")
    func masqueradeAll() async {
        let harness = ProxierHarness(masqueradeAll: true)
        harness.synced()
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("web"))
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("web-1", service: "web", endpoints: [.init(ip: "10.1.0.1")]))
        await harness.proxier.syncNow()
        #expect(harness.rules("svc-default/web/tcp/http").first == "ip daddr 10.96.0.10 tcp dport 80 jump mark-for-masquerade")
    }

    @Test("dual-stack follows the node's IPs, primary family first")
    func families() {
        #expect(ProxierSettings.families(nodeIPs: []) == [.ipv4])
        #expect(ProxierSettings.families(nodeIPs: [Fixtures.ip("10.0.0.1")]) == [.ipv4])
        #expect(ProxierSettings.families(nodeIPs: [Fixtures.ip("fd00::1"), Fixtures.ip("10.0.0.1")]) == [.ipv6, .ipv4])
    }
}

/// A pod source the test drives: the kubelet's side of ``LocalPodSource``.
final class FakeLocalPodSource: LocalPodSource {
    private let state = Mutex<(pods: [LocalPod], subscribers: [AsyncStream<Void>.Continuation], reads: Int)>(([], [], 0))

    func pods() async -> [LocalPod] {
        state.withLock { state in
            state.reads += 1
            return state.pods
        }
    }

    /// How many times the pods were read: once per round of a standalone source.
    var reads: Int { state.withLock { $0.reads } }

    func changes() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.subscribers.append(continuation) }
        return stream
    }

    func set(_ pods: [LocalPod]) {
        let subscribers = state.withLock { state in
            state.pods = pods
            return state.subscribers
        }
        for subscriber in subscribers { subscriber.yield() }
    }
}

@Suite("Standalone Services: manifest folder and local pods")
struct StandaloneTests {
    static let serviceYAML = """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          clusterIP: 10.96.0.10
          selector: {app: web}
          ports:
          - {name: http, port: 80, targetPort: http}
        """

    static func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("naproxyw-manifests-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func pod(_ name: String, ip: String, ready: Bool = true, labels: [String: String] = ["app": "web"]) -> LocalPod {
        LocalPod(namespace: "default", name: name, labels: labels, ips: [ip], ready: ready, ports: [.init(name: "http", containerPort: 8080)])
    }

    @Test("the folder gives Services and EndpointSlices from YAML and JSON; dot-files, Pods and subfolders are passed over")
    func scan() throws {
        let url = try Self.folder()
        defer { try? FileManager.default.removeItem(at: url) }
        try Self.serviceYAML.write(to: url.appendingPathComponent("web.yaml"), atomically: true, encoding: .utf8)
        try #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"api","namespace":"shop"},"spec":{"clusterIP":"10.96.0.11","ports":[{"port":8080}]}}"#
            .write(to: url.appendingPathComponent("api.json"), atomically: true, encoding: .utf8)
        try """
            apiVersion: v1
            kind: Pod
            metadata: {name: web-pod}
            spec: {containers: [{name: c, image: busybox}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: api-manual
              namespace: shop
              labels: {kubernetes.io/service-name: api}
            addressType: IPv4
            endpoints: [{addresses: [10.1.0.9]}]
            ports: [{port: 8080}]
            """.write(to: url.appendingPathComponent("mixed.yml"), atomically: true, encoding: .utf8)
        try Self.serviceYAML.replacingOccurrences(of: "name: web", with: "name: hidden").write(
            to: url.appendingPathComponent(".hidden.yaml"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: url.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try "kind: Service\nmetadata: {name: broken}\nspec: {ports: [{port: eighty}]}\n".write(
            to: url.appendingPathComponent("broken.yaml"), atomically: true, encoding: .utf8)

        let scan = ServiceManifestFolder(path: url.path).scan()
        #expect(Set(scan.services.keys) == [NamespacedName("default", "web"), NamespacedName("shop", "api")])
        #expect(scan.services[NamespacedName("default", "web")]?.spec.ports?.first?.targetPort == .string("http"))
        #expect(Set(scan.endpointSlices.keys) == [NamespacedName("shop", "api-manual")])
        #expect(scan.problems.keys.sorted() == ["broken.yaml"])
        #expect(scan.problems["broken.yaml"]?.contains("spec.ports[0].port") == true)
        #expect(ServiceManifestFolder(path: url.appendingPathComponent("absent").path).scan().problems.count == 1)
    }

    @Test("Services get their endpoints from the node's Ready pods; pod changes and manifest changes follow")
    func standaloneSource() async throws {
        let url = try Self.folder()
        defer { try? FileManager.default.removeItem(at: url) }
        try Self.serviceYAML.write(to: url.appendingPathComponent("web.yaml"), atomically: true, encoding: .utf8)
        let pods = FakeLocalPodSource()
        pods.set([Self.pod("web-1", ip: "10.244.0.5"), Self.pod("web-2", ip: "10.244.0.6", ready: false), Self.pod("db", ip: "10.244.0.7", labels: ["app": "db"])])
        let harness = ProxierHarness()
        let status = ProxySourceStatus(source: "manifests")
        try await Self.running(folder: url, pods: pods, harness: harness, status: status, rescanInterval: .milliseconds(100)) {
            try await eventually("the ready pod serves") { harness.rules("svc-default/web/tcp/http").last == "meta l4proto tcp dnat to 10.244.0.5:8080" }
            #expect(status.synced)

            // The second pod becomes Ready: the pod source's change is followed without waiting for a rescan.
            pods.set([Self.pod("web-1", ip: "10.244.0.5"), Self.pod("web-2", ip: "10.244.0.6")])
            try await eventually("both pods serve") { Set(harness.elements("endpoints-tcp-0").values) == ["10.244.0.5 . 8080", "10.244.0.6 . 8080"] }

            // No pods left: rejected.
            pods.set([])
            try await eventually("rejected without pods") { harness.elements("no-endpoint-services")["10.96.0.10 . tcp . 80"] == "goto reject-chain" }

            // A second Service appears in the folder; the first is removed.
            try Self.serviceYAML.replacingOccurrences(of: "name: web", with: "name: web2").replacingOccurrences(of: "10.96.0.10", with: "10.96.0.12")
                .write(to: url.appendingPathComponent("web2.yaml"), atomically: true, encoding: .utf8)
            try FileManager.default.removeItem(at: url.appendingPathComponent("web.yaml"))
            try await eventually("the folder's change followed") {
                harness.elements("no-endpoint-services").keys.sorted() == ["10.96.0.12 . tcp . 80"]
            }
        }
    }

    /// Runs a standalone source over `folder` feeding `harness`'s proxier while `body` runs, then shuts both down.
    static func running(
        folder: URL, pods: FakeLocalPodSource?, harness: ProxierHarness, status: ProxySourceStatus = ProxySourceStatus(source: "manifests"),
        rescanInterval: Duration, _ body: () async throws -> Void
    ) async throws {
        let source = StandaloneServiceSource(
            folder: ServiceManifestFolder(path: folder.path), pods: pods, nodeName: "node-a", proxier: harness.proxier,
            rescanInterval: rescanInterval, status: status, logger: harness.logs.logger(label: "standalone"))
        let group = ServiceGroup(configuration: .init(services: [harness.proxier, source], gracefulShutdownSignals: [], logger: quietLogger()))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test("a pod change wakes one round, not a loop: with nothing changing the folder is not rescanned")
    func noHotLoop() async throws {
        let url = try Self.folder()
        defer { try? FileManager.default.removeItem(at: url) }
        try Self.serviceYAML.write(to: url.appendingPathComponent("web.yaml"), atomically: true, encoding: .utf8)
        let pods = FakeLocalPodSource()
        let harness = ProxierHarness()
        let status = ProxySourceStatus(source: "manifests")
        try await Self.running(folder: url, pods: pods, harness: harness, status: status, rescanInterval: .seconds(3600)) {
            try await eventually("the first round ran") { status.synced }
            pods.set([Self.pod("web-1", ip: "10.244.0.5")])
            try await eventually("the pod serves") { harness.rules("svc-default/web/tcp/http").last == "meta l4proto tcp dnat to 10.244.0.5:8080" }
            // Two seconds with nothing changing: the rounds stay at the first one plus the pod change's (a cancelled
            // timer that woke the next round made this thousands).
            try await Task.sleep(for: .seconds(2))
            #expect(pods.reads <= 3, "\(pods.reads) rounds")
        }
    }

    @Test("an unreadable manifest is logged once, the others are served")
    func badManifest() async throws {
        let url = try Self.folder()
        defer { try? FileManager.default.removeItem(at: url) }
        try Self.serviceYAML.write(to: url.appendingPathComponent("web.yaml"), atomically: true, encoding: .utf8)
        try "kind: Service\nmetadata: [oops\n".write(to: url.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
        let harness = ProxierHarness()
        try await Self.running(folder: url, pods: nil, harness: harness, rescanInterval: .milliseconds(50)) {
            try await eventually("web programmed") { harness.elements("no-endpoint-services")["10.96.0.10 . tcp . 80"] != nil }
            try await Task.sleep(for: .milliseconds(300))
        }
        let warnings = harness.logs.records.filter { $0.message == "skipping unreadable manifest" }
        #expect(warnings.count == 1)
        #expect(warnings.first?.metadata["file"] == "bad.yaml")
    }
}
