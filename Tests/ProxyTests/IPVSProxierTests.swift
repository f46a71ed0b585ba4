import Foundation
import IPVS
import Iptables
import Logging
import MetricsTestKit
import NodeAgentTesting
import Synchronization
import Testing

@testable import Proxy

typealias VIP = IPVS.IPAddress

/// `kube-ipvs0` in memory that also counts every change asked of it (an independent count of address writes).
final class CountingDummy: VirtualIPInterface {
    let inner = FakeDummyInterface()
    let changes = Mutex(0)
    var name: String { inner.name }
    var writes: Int { changes.withLock { $0 } }
    func ensureInterface() throws(IPVSError) -> Int32 { try inner.ensureInterface() }
    func addresses() throws(IPVSError) -> Set<VIP> { try inner.addresses() }
    func addAddress(_ address: VIP) throws(IPVSError) {
        changes.withLock { $0 += 1 }
        try inner.addAddress(address)
    }
    func removeAddress(_ address: VIP) throws(IPVSError) {
        changes.withLock { $0 += 1 }
        try inner.removeAddress(address)
    }
    func syncAddresses(_ desired: Set<VIP>) throws(IPVSError) -> AddressSyncResult {
        let result = try inner.syncAddresses(desired)
        changes.withLock { $0 += result.added.count + result.removed.count }
        return result
    }
}

/// An IPVS proxier over the fakes, with a manual clock.
struct IPVSHarness {
    let ipvs: FakeIPVS
    let dummy: CountingDummy
    let nft: FakeNftables
    let clock = ManualClock()
    let conntrack = RecordingConntrack()
    let events = RecordingEvents()
    let sysctl = MemorySysctl()
    let logs = LogRecorder()
    let metrics = TestMetrics()
    let health = ProxyHealth(timeout: .seconds(60))
    let proxier: IPVSProxier
    let configuration: IPVSProxierConfiguration

    static func configuration(_ tweak: (inout IPVSProxierConfiguration) -> Void = { _ in }) -> IPVSProxierConfiguration {
        var configuration = IPVSProxierConfiguration(
            nodeName: "node-a", syncPeriod: .seconds(3600), clusterCIDR: IPPrefix("10.244.0.0/16"),
            nodePortAddresses: [IPAddress("10.250.0.1")!], gracefulTerminationTimeout: .seconds(600))
        tweak(&configuration)
        return configuration
    }

    init(
        ipvs: FakeIPVS = FakeIPVS(), dummy: CountingDummy = CountingDummy(), nft: FakeNftables = FakeNftables(),
        configuration: IPVSProxierConfiguration = IPVSHarness.configuration()
    ) {
        self.ipvs = ipvs
        self.dummy = dummy
        self.nft = nft
        self.configuration = configuration
        proxier = IPVSProxier.make(
            configuration: configuration, ipvs: ipvs, dummy: dummy, nftables: nft, conntrack: conntrack, sysctl: sysctl,
            health: health, events: events, metricsFactory: metrics, logger: logs.logger(label: "ipvs"), clock: clock)
    }

    /// A second proxier over the same kernel (a restarted daemon).
    func restarted() -> IPVSHarness { IPVSHarness(ipvs: ipvs, dummy: dummy, nft: nft, configuration: configuration) }

    func synced() {
        proxier.servicesSynced()
        proxier.endpointSlicesSynced()
    }

    func add(_ service: ServiceObject) { proxier.serviceChanged(previous: nil, current: service) }
    func add(_ slice: EndpointSliceObject) { proxier.endpointSliceChanged(previous: nil, current: slice) }

    /// Runs a sync and returns the IPVS operations it sent.
    @discardableResult
    func sync() async -> (outcome: SyncOutcome, operations: [IPVSOperation]) {
        ipvs.clearOperations()
        let outcome = await proxier.syncNow()
        return (outcome, ipvs.operations)
    }

    /// Every virtual server in the (fake) kernel with its real servers, as `ipvsadm -Sn` would list them.
    var table: [String: [String]] {
        var result: [String: [String]] = [:]
        for status in (try? ipvs.snapshot()) ?? [] {
            let service = status.service
            var line = "\(service.key) \(service.schedulerName)"
            if service.flags.contains(.persistent) { line += " persistent \(service.timeout)" }
            result[line] = status.realServers.map { "\($0.server) w\($0.server.weight)" }.sorted()
        }
        return result
    }

    var addresses: Set<String> { Set(((try? dummy.addresses()) ?? []).map(\.description)) }
    func elements(_ set: String) -> Set<String> { Set(nft.table(.ip, "node-agent-ipvs")?.sets[set]?.elements.keys ?? [:].keys) }
}

func key(_ text: String, _ proto: IPProtocol = .tcp) -> ServiceKey {
    let parts = text.split(separator: ":")
    return .address(proto, VIP(String(parts[0]))!, port: UInt16(parts[1])!)
}

func server(_ text: String, weight: Int32 = 1) -> RealServer {
    let parts = text.split(separator: ":")
    return RealServer(VIP(String(parts[0]))!, port: UInt16(parts[1])!, weight: weight)
}

func web(_ name: String = "web", clusterIP: String = "10.96.0.10", affinity: Int? = nil, annotations: [String: String]? = nil, protocol proto: String = "TCP")
    -> ServiceObject
{
    var service = Fixtures.service(name, clusterIP: clusterIP, ports: [.init(name: "http", protocol: proto, port: 80, targetPort: .int(8080))], affinity: affinity)
    service.metadata.annotations = annotations
    return service
}

func webSlice(_ ips: [String], service: String = "web", protocol proto: String = "TCP") -> EndpointSliceObject {
    Fixtures.slice("\(service)-1", service: service, ports: [.init(name: "http", protocol: proto, port: 8080)], endpoints: ips.map { .init(ip: $0) })
}

@Suite("IPVS proxier: what it programs")
struct IPVSProxierLayoutTests {
    @Test("nothing is written before the initial lists are complete")
    func waitsForLists() async {
        let harness = IPVSHarness()
        harness.add(web())
        #expect(await harness.proxier.syncNow() == .notReady)
        #expect(harness.ipvs.operations.isEmpty && harness.nft.transactions.isEmpty && !harness.dummy.inner.exists)
    }

    @Test("a ClusterIP Service: one virtual server (rr) with masquerading real servers of weight 1, its IP on kube-ipvs0, its elements in the filter sets")
    func clusterIP() async throws {
        let harness = IPVSHarness()
        harness.add(web())
        harness.add(webSlice(["10.244.1.1", "10.244.1.2"]))
        harness.add(Fixtures.service("empty", clusterIP: "10.96.0.20"))
        harness.synced()
        let (outcome, operations) = await harness.sync()
        guard case .applied(full: true, _) = outcome else { Issue.record("\(outcome)"); return }
        #expect(
            Set(operations) == [
                .addService(VirtualService(key("10.96.0.10:80"), scheduler: .rr)),
                .addRealServer(server("10.244.1.1:8080"), service: key("10.96.0.10:80")),
                .addRealServer(server("10.244.1.2:8080"), service: key("10.96.0.10:80")),
                .addService(VirtualService(key("10.96.0.20:80"), scheduler: .rr)),
            ])
        #expect(operations.allSatisfy { if case .addRealServer(let s, _) = $0 { s.forwarding == .masquerade && s.weight == 1 } else { true } })
        #expect(harness.addresses == ["10.96.0.10", "10.96.0.20"])
        #expect(harness.elements("service-ips") == ["10.96.0.10 . tcp . 80", "10.96.0.20 . tcp . 80"])
        #expect(harness.elements("cluster-ips") == ["10.96.0.10 . tcp . 80", "10.96.0.20 . tcp . 80"])
        #expect(harness.elements("no-endpoint-services") == ["10.96.0.20 . tcp . 80"])
        #expect(harness.elements("hairpin-endpoints") == ["10.244.1.1 . 10.244.1.1", "10.244.1.2 . 10.244.1.2"])
        #expect(harness.elements("nodeport-ips") == ["10.250.0.1"])
        #expect(harness.elements("vips") == ["10.96.0.10", "10.96.0.20"])
        let table = try #require(harness.nft.table(.ip, "node-agent-ipvs"))
        #expect(table.chains["services"]?.ruleTexts.first?.contains("ip saddr != 10.244.0.0/16 jump mark-for-masquerade") == true)
        #expect(harness.proxier.status().virtualServers == 2 && harness.proxier.status().realServers == 2)
    }

    @Test("NodePort on every NodePort address, external and load-balancer IPs bound on kube-ipvs0; policy Local keeps local endpoints only")
    func external() async {
        let harness = IPVSHarness(configuration: IPVSHarness.configuration { $0.nodePortAddresses = [IPAddress("10.250.0.1")!, IPAddress("10.250.1.1")!] })
        harness.add(
            Fixtures.service(
                "lb", type: "LoadBalancer", ports: [.init(name: "http", port: 80, targetPort: .int(8080), nodePort: 30080)],
                externalIPs: ["192.0.2.1"], loadBalancerIPs: ["198.51.100.7"]))
        harness.add(Fixtures.slice("lb-1", service: "lb", endpoints: [.init(ip: "10.244.1.1", node: "node-a"), .init(ip: "10.244.2.1", node: "node-b")]))
        harness.add(
            Fixtures.service(
                "local", type: "NodePort", clusterIP: "10.96.0.30", ports: [.init(name: "http", port: 80, targetPort: .int(8080), nodePort: 30090)],
                externalTrafficPolicy: "Local"))
        harness.add(Fixtures.slice("local-1", service: "local", endpoints: [.init(ip: "10.244.1.5", node: "node-a"), .init(ip: "10.244.2.5", node: "node-b")]))
        harness.synced()
        await harness.sync()
        let both = ["10.244.1.1:8080 w1", "10.244.2.1:8080 w1"]
        #expect(
            harness.table == [
                "TCP 10.96.0.10:80 rr": both, "TCP 192.0.2.1:80 rr": both, "TCP 198.51.100.7:80 rr": both,
                "TCP 10.250.0.1:30080 rr": both, "TCP 10.250.1.1:30080 rr": both,
                "TCP 10.96.0.30:80 rr": ["10.244.1.5:8080 w1", "10.244.2.5:8080 w1"],
                "TCP 10.250.0.1:30090 rr": ["10.244.1.5:8080 w1"], "TCP 10.250.1.1:30090 rr": ["10.244.1.5:8080 w1"],
            ])
        #expect(harness.addresses == ["10.96.0.10", "192.0.2.1", "198.51.100.7", "10.96.0.30"])
        #expect(harness.elements("external-ips") == ["192.0.2.1 . tcp . 80", "198.51.100.7 . tcp . 80"])
        #expect(harness.elements("nodeports") == ["tcp . 30080"])  // policy Local is not masqueraded
        #expect(harness.elements("nodeport-ips") == ["10.250.0.1", "10.250.1.1"])
    }

    @Test("ClientIP affinity is persistence with the Service's timeout")
    func affinity() async {
        let harness = IPVSHarness()
        harness.add(web(affinity: 600))
        harness.add(webSlice(["10.244.1.1"]))
        harness.synced()
        let (_, operations) = await harness.sync()
        #expect(operations.first == .addService(VirtualService(key("10.96.0.10:80"), scheduler: .rr, flags: .persistent, timeout: 600)))
    }

    @Test("the scheduler is --ipvs-scheduler, or the Service's annotation; a bad annotation is reported and the default used")
    func schedulers() async {
        let harness = IPVSHarness(configuration: IPVSHarness.configuration { $0.scheduler = "lc" })
        harness.add(web())
        harness.add(web("hashed", clusterIP: "10.96.0.11", annotations: [IPVSProxierConfiguration.schedulerAnnotation: "sh"]))
        harness.add(web("typo", clusterIP: "10.96.0.12", annotations: [IPVSProxierConfiguration.schedulerAnnotation: "round-robin"]))
        harness.synced()
        await harness.sync()
        #expect(Set(harness.table.keys) == ["TCP 10.96.0.10:80 lc", "TCP 10.96.0.11:80 sh", "TCP 10.96.0.12:80 lc"])
        let events = harness.events.events.withLock { $0 }
        #expect(events.count == 1)
        #expect(events.first?.contains("Service default/typo InvalidIPVSScheduler") == true)
        #expect(events.first?.contains("metadata.annotations[\"node-agent.io/ipvs-scheduler\"] \"round-robin\"") == true)
    }

    @Test("a scheduler the kernel refuses falls back to the default after one failed sync, with an event")
    func unavailableScheduler() async {
        let harness = IPVSHarness(ipvs: FakeIPVS(knownSchedulers: ["rr", "lc"]))
        harness.add(web(annotations: [IPVSProxierConfiguration.schedulerAnnotation: "mh"]))
        harness.add(webSlice(["10.244.1.1"]))
        harness.synced()
        guard case .failed(let message) = await harness.proxier.syncNow() else { Issue.record("expected a failure"); return }
        #expect(message.contains("scheduler"))
        #expect(harness.events.events.withLock { $0 }.contains { $0.contains("IPVSSchedulerUnavailable") && $0.contains("mh") })
        guard case .applied = await harness.proxier.syncNow() else { Issue.record("the retry should succeed"); return }
        #expect(harness.table == ["TCP 10.96.0.10:80 rr": ["10.244.1.1:8080 w1"]])
        #expect(harness.proxier.status().unavailableSchedulers == ["mh"])
    }

    @Test("an invalid Service is skipped with an event naming the field; the others are served")
    func invalidInput() async {
        let harness = IPVSHarness()
        harness.add(web())
        harness.add(Fixtures.service("broken", clusterIP: "10.96.0.66", ports: [.init(name: "http", port: 99999)]))
        harness.synced()
        await harness.sync()
        #expect(Set(harness.table.keys) == ["TCP 10.96.0.10:80 rr"])
        #expect(harness.events.events.withLock { $0 }.contains { $0.contains("spec.ports[0].port") })
    }
}

@Suite("IPVS proxier: incremental syncs send only the difference")
struct IPVSProxierIncrementalTests {
    /// A harness with `web` (two endpoints) and 50 other Services already synced, operations cleared.
    static func loaded(proto: String = "TCP") async -> IPVSHarness {
        let harness = IPVSHarness()
        harness.add(web(protocol: proto))
        harness.add(webSlice(["10.244.1.1", "10.244.1.2"], protocol: proto))
        for index in 0..<50 {
            harness.add(web("other-\(index)", clusterIP: "10.96.1.\(index + 1)"))
            harness.add(webSlice(["10.244.9.\(index + 1)"], service: "other-\(index)"))
        }
        harness.synced()
        await harness.sync()
        harness.nft.resetTransactions()
        return harness
    }

    static let k = key("10.96.0.10:80")

    @Test("no change: no write at all")
    func noChange() async {
        let harness = await Self.loaded()
        let (outcome, operations) = await harness.sync()
        #expect(outcome == .applied(full: false, commands: 0))
        #expect(operations.isEmpty && harness.nft.transactions.isEmpty)
    }

    @Test("an endpoint added: one real server added, plus its hairpin element")
    func endpointAdded() async {
        let harness = await Self.loaded()
        let writes = harness.dummy.writes
        harness.add(webSlice(["10.244.1.1", "10.244.1.2", "10.244.1.3"]))
        let (outcome, operations) = await harness.sync()
        #expect(operations == [.addRealServer(server("10.244.1.3:8080"), service: Self.k)])
        #expect(outcome == .applied(full: false, commands: 2))
        #expect(harness.nft.transactions.map { $0.script() } == ["add element ip node-agent-ipvs hairpin-endpoints { 10.244.1.3 . 10.244.1.3 }\n"])
        #expect(harness.dummy.writes == writes)
    }

    @Test("a TCP endpoint removed: weight 0 (graceful termination), nothing deleted yet")
    func endpointRemovedTCP() async {
        let harness = await Self.loaded()
        harness.add(webSlice(["10.244.1.1"]))
        let (_, operations) = await harness.sync()
        #expect(operations == [.updateRealServer(server("10.244.1.2:8080", weight: 0), service: Self.k)])
        #expect(harness.nft.transactions.isEmpty)
        #expect(harness.proxier.status().drainingRealServers == 1)
        #expect(harness.conntrack.recorded.isEmpty)
    }

    @Test("a UDP endpoint removed: deleted at once and its conntrack entries flushed")
    func endpointRemovedUDP() async {
        let harness = await Self.loaded(proto: "UDP")
        let flushed = harness.conntrack.recorded.count
        harness.add(webSlice(["10.244.1.1"], protocol: "UDP"))
        let (_, operations) = await harness.sync()
        #expect(operations == [.deleteRealServer(server("10.244.1.2:8080").key, service: key("10.96.0.10:80", .udp))])
        #expect(harness.conntrack.recorded.dropFirst(flushed) == ["dst 10.96.0.10 -> 10.244.1.2"])
        // Its last endpoint gone, then back: flows recorded meanwhile are stale, all of them are flushed.
        harness.add(webSlice([], protocol: "UDP"))
        await harness.sync()
        harness.add(webSlice(["10.244.1.3"], protocol: "UDP"))
        await harness.sync()
        #expect(harness.conntrack.recorded.dropFirst(flushed + 1).contains("dst 10.96.0.10"))
        #expect(harness.proxier.status().drainingRealServers == 0)
    }

    @Test("a draining endpoint that comes back: weight 1 again, no deletion later")
    func endpointBack() async {
        let harness = await Self.loaded()
        harness.add(webSlice(["10.244.1.1"]))
        await harness.sync()
        harness.add(webSlice(["10.244.1.1", "10.244.1.2"]))
        let (_, operations) = await harness.sync()
        #expect(operations == [.updateRealServer(server("10.244.1.2:8080"), service: Self.k)])
        #expect(harness.proxier.status().drainingRealServers == 0)
        harness.clock.advance(by: .seconds(3600))
        #expect(await harness.proxier.checkDraining().isEmpty)
    }

    @Test("the last endpoint gone: the Service is rejected at once (no-endpoint element), the virtual server kept")
    func lastEndpointGone() async {
        let harness = await Self.loaded()
        harness.add(webSlice([]))
        let (_, operations) = await harness.sync()
        #expect(Set(operations) == [
            .updateRealServer(server("10.244.1.1:8080", weight: 0), service: Self.k),
            .updateRealServer(server("10.244.1.2:8080", weight: 0), service: Self.k),
        ])
        #expect(harness.nft.transactions.map { $0.script() } == ["add element ip node-agent-ipvs no-endpoint-services { 10.96.0.10 . tcp . 80 }\n"])
        harness.add(webSlice(["10.244.1.7"]))
        await harness.sync()
        #expect(harness.nft.transactions.last?.script() == "add element ip node-agent-ipvs hairpin-endpoints { 10.244.1.7 . 10.244.1.7 }\ndelete element ip node-agent-ipvs no-endpoint-services { 10.96.0.10 . tcp . 80 }\n")
    }

    @Test("affinity switched on: one service update")
    func affinityChanged() async {
        let harness = await Self.loaded()
        harness.proxier.serviceChanged(previous: web(), current: web(affinity: 30))
        let (_, operations) = await harness.sync()
        #expect(operations == [.updateService(VirtualService(Self.k, scheduler: .rr, flags: .persistent, timeout: 30))])
    }

    @Test("the scheduler annotation changed: one service update")
    func schedulerChanged() async {
        let harness = await Self.loaded()
        harness.proxier.serviceChanged(previous: web(), current: web(annotations: [IPVSProxierConfiguration.schedulerAnnotation: "sed"]))
        let (_, operations) = await harness.sync()
        #expect(operations == [.updateService(VirtualService(Self.k, scheduler: .sed))])
    }

    @Test("the port changed: the old virtual server deleted, the new one added with its real servers")
    func portChanged() async {
        let harness = await Self.loaded()
        var changed = web()
        changed.spec.ports = [.init(name: "http", protocol: "TCP", port: 81, targetPort: .int(8080))]
        harness.proxier.serviceChanged(previous: web(), current: changed)
        let (_, operations) = await harness.sync()
        #expect(
            operations == [
                .deleteService(Self.k),
                .addService(VirtualService(key("10.96.0.10:81"), scheduler: .rr)),
                .addRealServer(server("10.244.1.1:8080"), service: key("10.96.0.10:81")),
                .addRealServer(server("10.244.1.2:8080"), service: key("10.96.0.10:81")),
            ])
        #expect(harness.addresses.contains("10.96.0.10"))
        #expect(harness.elements("service-ips").contains("10.96.0.10 . tcp . 81") && !harness.elements("service-ips").contains("10.96.0.10 . tcp . 80"))
    }

    @Test("an external IP added: its virtual server and address, nothing else")
    func externalIPAdded() async {
        let harness = await Self.loaded()
        var changed = web()
        changed.spec.externalIPs = ["192.0.2.9"]
        harness.proxier.serviceChanged(previous: web(), current: changed)
        let (_, operations) = await harness.sync()
        #expect(
            operations == [
                .addService(VirtualService(key("192.0.2.9:80"), scheduler: .rr)),
                .addRealServer(server("10.244.1.1:8080"), service: key("192.0.2.9:80")),
                .addRealServer(server("10.244.1.2:8080"), service: key("192.0.2.9:80")),
            ])
        #expect(harness.addresses.contains("192.0.2.9"))
    }

    @Test("a Service deleted: its virtual server deleted and its address removed; shared addresses stay")
    func serviceDeleted() async {
        let harness = await Self.loaded()
        // A second Service on the same cluster IP (another port) keeps the address bound.
        let sibling = Fixtures.service("sibling", clusterIP: "10.96.1.1", ports: [.init(name: "dns", protocol: "TCP", port: 53)])
        harness.add(sibling)
        await harness.sync()
        harness.proxier.serviceChanged(previous: web(), current: nil)
        let (_, operations) = await harness.sync()
        #expect(operations == [.deleteService(Self.k)])
        #expect(!harness.addresses.contains("10.96.0.10"))
        harness.proxier.serviceChanged(previous: sibling, current: nil)
        let (_, siblingOperations) = await harness.sync()
        #expect(siblingOperations == [.deleteService(key("10.96.1.1:53"))])
        #expect(harness.addresses.contains("10.96.1.1"))
    }

    @Test("a change to one Service of many sends operations for that Service only")
    func onlyChanged() async {
        let harness = await Self.loaded()
        harness.add(webSlice(["10.244.9.200"], service: "other-7"))
        let (_, operations) = await harness.sync()
        #expect(operations.count == 2)
        #expect(operations.allSatisfy { if case .addRealServer(_, let k) = $0 { k == key("10.96.1.8:80") } else if case .updateRealServer(_, let k) = $0 { k == key("10.96.1.8:80") } else { false } })
    }
}

@Suite("IPVS proxier: full syncs repair drift and touch only what is owned")
struct IPVSProxierFullSyncTests {
    static func loaded() async -> IPVSHarness {
        let harness = IPVSHarness()
        harness.add(web())
        harness.add(webSlice(["10.244.1.1", "10.244.1.2"]))
        harness.add(Fixtures.service("np", type: "NodePort", clusterIP: "10.96.0.40", ports: [.init(name: "http", port: 80, targetPort: .int(8080), nodePort: 30040)]))
        harness.add(Fixtures.slice("np-1", service: "np", endpoints: [.init(ip: "10.244.1.1")]))
        harness.synced()
        await harness.sync()
        return harness
    }

    static func fullSync(_ harness: IPVSHarness) async -> (outcome: SyncOutcome, operations: [IPVSOperation], transactions: Int, addressWrites: Int) {
        let transactions = harness.nft.transactions.count
        let writes = harness.dummy.writes
        harness.proxier.requestFullSync()
        let (outcome, operations) = await harness.sync()
        return (outcome, operations, harness.nft.transactions.count - transactions, harness.dummy.writes - writes)
    }

    @Test("a full resync with nothing changed writes nothing: no IPVS change, no address change, no nft transaction")
    func idle() async {
        let harness = await Self.loaded()
        let result = await Self.fullSync(harness)
        #expect(result.outcome == .applied(full: true, commands: 0))
        #expect(result.operations.isEmpty && result.transactions == 0 && result.addressWrites == 0)
    }

    @Test("a restarted proxier re-adopts the kernel's table without a write")
    func restart() async {
        let harness = await Self.loaded()
        let second = harness.restarted()
        second.add(web())
        second.add(webSlice(["10.244.1.1", "10.244.1.2"]))
        second.add(Fixtures.service("np", type: "NodePort", clusterIP: "10.96.0.40", ports: [.init(name: "http", port: 80, targetPort: .int(8080), nodePort: 30040)]))
        second.add(Fixtures.slice("np-1", service: "np", endpoints: [.init(ip: "10.244.1.1")]))
        second.synced()
        let transactions = harness.nft.transactions.count
        let writes = harness.dummy.writes
        let (outcome, operations) = await second.sync()
        #expect(outcome == .applied(full: true, commands: 0))
        #expect(operations.isEmpty && harness.nft.transactions.count == transactions && harness.dummy.writes == writes)
    }

    @Test("a restarted proxier that finds a real server no longer wanted drains it rather than cutting its connections")
    func restartDrains() async {
        let harness = await Self.loaded()
        let second = harness.restarted()
        second.add(web())
        second.add(webSlice(["10.244.1.1"]))
        second.synced()
        let (_, operations) = await second.sync()
        #expect(operations.contains(.updateRealServer(server("10.244.1.2:8080", weight: 0), service: key("10.96.0.10:80"))))
        #expect(operations.contains(.deleteService(key("10.96.0.40:80"))))  // np is gone: on its kube-ipvs0 address
        #expect(operations.contains(.deleteService(key("10.250.0.1:30040"))))  // and its NodePort (node address, NodePort range)
        #expect(!harness.addresses.contains("10.96.0.40"))
        #expect(second.proxier.status().drainingRealServers == 1)
    }

    @Test("drift on owned virtual servers is repaired: lost and foreign real servers, a changed scheduler, a stale service, a removed address")
    func repairs() async throws {
        let harness = await Self.loaded()
        let k = key("10.96.0.10:80")
        try harness.ipvs.deleteRealServer(server("10.244.1.1:8080").key, from: k)
        try harness.ipvs.addRealServer(server("10.244.7.7:8080"), to: k)
        try harness.ipvs.updateService(VirtualService(k, scheduler: .wlc))
        try harness.ipvs.addService(VirtualService(key("10.96.0.10:443"), scheduler: .rr))  // stale, on our address
        try harness.dummy.inner.removeAddress(VIP("10.96.0.40")!)
        let result = await Self.fullSync(harness)
        #expect(
            Set(result.operations) == [
                .updateService(VirtualService(k, scheduler: .rr)),
                .addRealServer(server("10.244.1.1:8080"), service: k),
                .updateRealServer(server("10.244.7.7:8080", weight: 0), service: k),
                .deleteService(key("10.96.0.10:443")),
            ])
        #expect(harness.addresses.contains("10.96.0.40"))
        #expect(result.addressWrites == 1)
        #expect(await Self.fullSync(harness).operations.isEmpty)
    }

    @Test("virtual servers that are not ours are never touched: other addresses, node addresses outside the NodePort range, excluded CIDRs, firewall marks")
    func ownership() async throws {
        let ipvs = FakeIPVS()
        let foreign = [
            VirtualService(key("192.168.7.7:80"), scheduler: .wlc),
            VirtualService(key("10.250.0.1:22"), scheduler: .rr),  // node address, port outside the NodePort range
            VirtualService(key("10.96.200.1:80"), scheduler: .rr),  // excluded CIDR, though bound on kube-ipvs0
            VirtualService(.firewallMark(7, family: .inet), scheduler: .rr),
        ]
        for service in foreign {
            try ipvs.addService(service)
            if case .address = service.key { try ipvs.addRealServer(server("10.1.1.1:80"), to: service.key) }
        }
        try ipvs.addService(VirtualService(key("10.250.0.1:31111"), scheduler: .rr))  // ours: a stale NodePort
        let dummy = CountingDummy()
        try dummy.ensureInterface()
        try dummy.addAddress(VIP("10.96.200.1")!)
        let harness = IPVSHarness(ipvs: ipvs, dummy: dummy, configuration: IPVSHarness.configuration { $0.excludeCIDRs = [IPPrefix("10.96.200.0/24")!] })
        harness.add(web())
        harness.synced()
        let (_, operations) = await harness.sync()
        #expect(Set(operations) == [.addService(VirtualService(key("10.96.0.10:80"), scheduler: .rr)), .deleteService(key("10.250.0.1:31111"))])
        for service in foreign { #expect(try ipvs.service(service.key).service == service) }
        #expect(try ipvs.realServers(of: key("192.168.7.7:80")).count == 1)
    }

    @Test("the filter table is repaired: a lost element re-added, a flushed chain rewritten, an extra element removed")
    func filterDrift() async throws {
        let harness = await Self.loaded()
        var tamper = Transaction(family: .ip, table: "node-agent-ipvs")
        tamper.deleteElement("service-ips", key: "10.96.0.10 . tcp . 80")
        tamper.addElement("no-endpoint-services", Element(key: "10.96.9.9 . tcp . 9"))
        tamper.flush(.chain(Chain("endpoints-check")))
        try harness.nft.run(tamper)
        let result = await Self.fullSync(harness)
        #expect(result.transactions == 2)  // the chain rewrite, then the elements
        let script = harness.nft.transactions.suffix(result.transactions).map { $0.script() }.joined()
        #expect(script.contains("add element ip node-agent-ipvs service-ips { 10.96.0.10 . tcp . 80 }"))
        #expect(script.contains("delete element ip node-agent-ipvs no-endpoint-services { 10.96.9.9 . tcp . 9 }"))
        #expect(script.contains("add rule ip node-agent-ipvs endpoints-check"))
        #expect(!script.contains("flush chain ip node-agent-ipvs services"))
        #expect(await Self.fullSync(harness).transactions == 0)
    }

    @Test("a failed write makes the next sync a full one that converges")
    func failureRecovers() async {
        let harness = await Self.loaded()
        harness.nft.failNextRun(with: .rejected("run", message: "Could not process rule: Device or resource busy", line: 1, command: "x"))
        harness.add(webSlice([]))
        guard case .failed(let message) = await harness.proxier.syncNow() else { Issue.record("expected a failure"); return }
        #expect(message.contains("node-agent-ipvs"))
        #expect(harness.proxier.status().lastError != nil)
        let (outcome, _) = await harness.sync()
        guard case .applied(full: true, _) = outcome else { Issue.record("\(outcome)"); return }
        #expect(harness.elements("no-endpoint-services").contains("10.96.0.10 . tcp . 80"))
        #expect(harness.proxier.status().lastError == nil)
    }

    @Test("IPv4 and IPv6 proxiers share kube-ipvs0 without removing each other's addresses")
    func dualStack() async {
        let ipvs = FakeIPVS()
        let dummy = CountingDummy()
        let nft = FakeNftables()
        let v4 = IPVSHarness(ipvs: ipvs, dummy: dummy, nft: nft)
        let v6 = IPVSHarness(
            ipvs: ipvs, dummy: dummy, nft: nft,
            configuration: IPVSHarness.configuration {
                $0.family = .ipv6
                $0.clusterCIDR = IPPrefix("fd00:244::/48")
                $0.nodePortAddresses = [IPAddress("fd00:250::1")!]
            })
        let dual = Fixtures.service("dual", clusterIPs: ["10.96.0.50", "fd00:96::50"])
        for harness in [v4, v6] {
            harness.add(dual)
            harness.synced()
            await harness.sync()
        }
        v4.proxier.requestFullSync()
        await v4.sync()
        #expect(v4.addresses == ["10.96.0.50", "fd00:96::50"])
        #expect(Set(v4.table.keys) == ["TCP 10.96.0.50:80 rr", "TCP [fd00:96::50]:80 rr"])
        #expect(nft.table(.ip6, "node-agent-ipvs")?.sets["service-ips"]?.elements.keys.contains("fd00:96::50 . tcp . 80") == true)
    }
}

@Suite("IPVS filter table")
struct IPVSFilterTableTests {
    @Test("a full sync's transaction is split: declarations and rules first, then elements in bounded chunks, in order")
    func split() {
        var transaction = Transaction(family: .ip, table: "t")
        transaction.add(.set(NamedSet("a", type: "ipv4_addr")))
        for index in 0..<4500 { transaction.addElement("a", Element(key: "10.0.\(index / 250).\(index % 250)")) }
        transaction.add(.rule(Rule(chain: "c", "accept")))
        for index in 0..<10 { transaction.deleteElement("b", key: "\(index)") }
        let parts = IPVSFilterTable.split(transaction)
        #expect(parts.count == 4)
        #expect(parts[0].commands.map(\.verb) == [.add, .add])
        #expect(parts.dropFirst().map { $0.commands.reduce(0) { count, command in if case .elements(let e) = command.object { count + e.elements.count } else { count } } } == [2000, 2000, 510])
        #expect(parts[3].commands.last?.verb == .delete)
        let elements = parts.dropFirst().flatMap { $0.commands }.flatMap { command -> [String] in
            if case .elements(let e) = command.object { return e.elements.map(\.key) } else { return [] }
        }
        #expect(elements.count == 4510 && elements.first == "10.0.0.0" && elements.last == "9")
        #expect(IPVSFilterTable.split(Transaction(family: .ip, table: "t")).isEmpty)
    }

    @Test("rule comments identify the rule text")
    func comments() {
        #expect(IPVSFilterTable.comment(for: "jump services") == IPVSFilterTable.comment(for: "jump services"))
        #expect(IPVSFilterTable.comment(for: "jump services") != IPVSFilterTable.comment(for: "jump service"))
        #expect(IPVSFilterTable.comment(for: "").count == 19)
    }
}

@Suite("IPVS proxier: graceful termination with an injected clock")
struct IPVSGracefulTerminationTests {
    static let k = key("10.96.0.10:80")
    static let draining = server("10.244.1.2:8080").key

    static func draining() async -> IPVSHarness {
        let harness = IPVSHarness()
        harness.add(web())
        harness.add(webSlice(["10.244.1.1", "10.244.1.2"]))
        harness.synced()
        await harness.sync()
        harness.ipvs.setConnections(active: 2, inactive: 1, of: Self.draining, in: Self.k)
        harness.add(webSlice(["10.244.1.1"]))
        await harness.sync()
        return harness
    }

    @Test("weight 0 first; deleted once active and inactive connections reach 0")
    func drained() async throws {
        let harness = await Self.draining()
        #expect(try harness.ipvs.realServers(of: Self.k).first { $0.server.key == Self.draining }?.server.weight == 0)
        harness.clock.advance(by: .seconds(5))
        #expect(await harness.proxier.checkDraining().isEmpty)
        harness.ipvs.setConnections(active: 0, inactive: 1, of: Self.draining, in: Self.k)
        harness.clock.advance(by: .seconds(5))
        #expect(await harness.proxier.checkDraining().isEmpty)
        harness.ipvs.setConnections(active: 0, inactive: 0, of: Self.draining, in: Self.k)
        harness.clock.advance(by: .seconds(5))
        #expect(await harness.proxier.checkDraining() == [.init(service: Self.k, server: Self.draining): .drained])
        #expect(try harness.ipvs.realServers(of: Self.k).map(\.server.key) == [server("10.244.1.1:8080").key])
        #expect(harness.proxier.status().drainingRealServers == 0)
        #expect(harness.metrics.counters(label: "node_agent_proxy_ipvs_graceful_deletions_total").map(\.totalValue).reduce(0, +) == 1)
        // Nothing left to do afterwards, and a full sync does not bring it back.
        harness.proxier.requestFullSync()
        #expect(await harness.sync().operations.isEmpty)
    }

    @Test("connections that never end: deleted when the bound passes, not a moment before")
    func bound() async throws {
        let harness = await Self.draining()
        harness.clock.advance(by: .seconds(599))
        #expect(await harness.proxier.checkDraining().isEmpty)
        harness.clock.advance(by: .seconds(1))
        #expect(await harness.proxier.checkDraining() == [.init(service: Self.k, server: Self.draining): .timedOut])
        #expect(try harness.ipvs.realServers(of: Self.k).count == 1)
    }

    @Test("a draining real server deleted by someone else, or whose service went away, is forgotten")
    func forgotten() async throws {
        let harness = await Self.draining()
        try harness.ipvs.deleteRealServer(Self.draining, from: Self.k)
        harness.clock.advance(by: .seconds(5))
        #expect(await harness.proxier.checkDraining().isEmpty)
        #expect(harness.proxier.status().drainingRealServers == 0)
    }

    @Test("the drain loop runs on the proxier's clock")
    func loop() async throws {
        let harness = await Self.draining()
        harness.ipvs.setConnections(active: 0, inactive: 0, of: Self.draining, in: Self.k)
        let task = Task { try await harness.proxier.run() }
        defer { task.cancel() }
        try await harness.clock.waitForSleepers(1)
        harness.clock.advance(by: .seconds(2))
        for _ in 0..<200 where (try? harness.ipvs.realServers(of: Self.k).count) != 1 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(try harness.ipvs.realServers(of: Self.k).count == 1)
    }
}

@Suite("Graceful termination state machine")
struct GracefulTerminationStateMachineTests {
    typealias Machine = GracefulTerminationStateMachine
    let tcp = key("10.96.0.10:80")
    let udp = key("10.96.0.10:53", .udp)
    let sctp = key("10.96.0.10:9", .sctp)
    let a = server("10.244.1.1:80").key

    @Test("TCP drains; UDP and SCTP are deleted at once")
    func start() {
        var machine = Machine(timeout: .seconds(10))
        #expect(machine.start(a, of: tcp, now: .zero) == .drain)
        #expect(machine.start(a, of: tcp, now: .seconds(3)) == .alreadyDraining)
        #expect(machine.entries[.init(service: tcp, server: a)]?.deadline == .seconds(10))
        #expect(machine.start(a, of: udp, now: .zero) == .deleteNow)
        #expect(machine.start(a, of: sctp, now: .zero) == .deleteNow)
        #expect(machine.count == 1)
    }

    @Test("observations: keep while connected, delete when drained or past the bound, forget when gone")
    func observe() {
        var machine = Machine(timeout: .seconds(10))
        _ = machine.start(a, of: tcp, now: .zero)
        #expect(machine.observe(a, of: tcp, connections: 3, now: .seconds(9)) == .keep)
        #expect(machine.observe(a, of: tcp, connections: 3, now: .seconds(10)) == .delete(.timedOut))
        #expect(machine.observe(a, of: tcp, connections: 0, now: .seconds(1)) == .delete(.drained))
        machine.deleted(a, of: tcp)
        #expect(machine.count == 0 && machine.servicesToCheck.isEmpty)
        _ = machine.start(a, of: tcp, now: .zero)
        #expect(machine.observe(a, of: tcp, connections: nil, now: .seconds(1)) == .forget)
        #expect(machine.count == 0)
    }

    @Test("cancel and service removal end drains")
    func cancel() {
        var machine = Machine(timeout: .seconds(10))
        _ = machine.start(a, of: tcp, now: .zero)
        let first = machine.cancel(a, of: tcp)
        let second = machine.cancel(a, of: tcp)
        #expect(first && !second)
        _ = machine.start(a, of: tcp, now: .zero)
        _ = machine.start(server("10.244.1.2:80").key, of: tcp, now: .zero)
        #expect(machine.servers(of: tcp).count == 2)
        machine.serviceRemoved(tcp)
        #expect(machine.count == 0 && !machine.isDraining(tcp))
    }
}

@Suite("IPVS proxier: sysctls, timeouts, metrics, cleanup")
struct IPVSProxierSettingsTests {
    @Test("the IPVS sysctls are set and reported; strict ARP only when asked")
    func sysctls() {
        let harness = IPVSHarness(configuration: IPVSHarness.configuration { $0.strictARP = true })
        harness.sysctl.values.withLock { $0["net/ipv4/ip_forward"] = "1" }
        harness.proxier.prepare()
        let values = harness.sysctl.values.withLock { $0 }
        #expect(
            values == [
                "net/ipv4/vs/conntrack": "1", "net/ipv4/vs/expire_nodest_conn": "1", "net/ipv4/vs/expire_quiescent_template": "1",
                "net/ipv4/ip_forward": "1", "net/ipv4/conf/all/arp_ignore": "1", "net/ipv4/conf/all/arp_announce": "2",
            ])
        let report = harness.proxier.status().sysctls
        #expect(report?.ok == true)
        #expect(report?.items.first { $0.name == "net/ipv4/ip_forward" }?.result == "unchanged")
        #expect(report?.items.first { $0.name == "net/ipv4/vs/conntrack" }?.result == "set")
        #expect(IPVSSysctls.wanted(IPVSHarness.configuration()).count == 4)
    }

    @Test("--ipvs-tcp-timeout and friends are set when given, left alone when zero")
    func timeouts() throws {
        let harness = IPVSHarness(configuration: IPVSHarness.configuration { $0.tcpTimeout = .seconds(3600); $0.udpTimeout = .seconds(60) })
        harness.proxier.prepare()
        #expect(try harness.ipvs.timeouts() == IPVSTimeouts(tcp: 3600, tcpFin: 120, udp: 60))
        #expect(harness.proxier.status().timeouts?.hasPrefix("set") == true)
        let untouched = IPVSHarness()
        untouched.proxier.prepare()
        #expect(untouched.proxier.status().timeouts == nil)
    }

    @Test("bad settings are refused naming the setting")
    func validation() {
        #expect(throws: IPVSProxierError.self) { try IPVSHarness.configuration { $0.scheduler = "fastest" }.validate() }
        do {
            try IPVSHarness.configuration { $0.clusterCIDR = IPPrefix("fd00::/64") }.validate()
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("cluster-cidr"))
        }
        #expect(throws: Never.self) { try IPVSHarness.configuration().validate() }
    }

    @Test("metrics: sync durations, writes by kind, virtual and real server counts; health updated")
    func metrics() async throws {
        let harness = IPVSHarness()
        harness.add(web())
        harness.add(webSlice(["10.244.1.1"]))
        harness.synced()
        await harness.sync()
        let dimensions = [("ip_family", "IPv4")]
        #expect(try harness.metrics.expectTimer("kubeproxy_sync_proxy_rules_duration_seconds", dimensions).values.count == 1)
        #expect(try harness.metrics.expectTimer("kubeproxy_sync_full_proxy_rules_duration_seconds", dimensions).values.count == 1)
        #expect(try harness.metrics.expectGauge("node_agent_proxy_ipvs_virtual_servers", dimensions).lastValue == 1)
        #expect(try harness.metrics.expectGauge("node_agent_proxy_ipvs_real_servers", dimensions).lastValue == 1)
        #expect(try harness.metrics.expectCounter("node_agent_proxy_ipvs_kernel_writes_total", dimensions + [("kind", "ipvs")]).totalValue == 2)
        #expect(harness.health.report().healthy && harness.health.report().lastUpdated != nil)
        #expect(harness.proxier.status().mode == .ipvs)
    }

    @Test("cleanup removes owned virtual servers, kube-ipvs0 addresses and the filter tables, and leaves the rest")
    func cleanup() async throws {
        let harness = IPVSHarness()
        harness.add(Fixtures.service("np", type: "NodePort", ports: [.init(name: "http", port: 80, targetPort: .int(8080), nodePort: 30080)]))
        harness.synced()
        await harness.sync()
        try harness.ipvs.addService(VirtualService(key("192.168.7.7:80"), scheduler: .rr))
        let report = IPVSProxier.cleanupLeftovers(
            ipvs: harness.ipvs, dummy: harness.dummy, nftables: harness.nft, nodePortAddresses: [IPAddress("10.250.0.1")!], logger: harness.logs.logger(label: "cleanup"))
        #expect(Set(report.deletedVirtualServers) == ["TCP 10.96.0.10:80", "TCP 10.250.0.1:30080"])
        #expect(report.removedAddresses == ["10.96.0.10"])
        #expect(report.deletedTables == ["ip node-agent-ipvs"])
        #expect(report.failures.isEmpty)
        #expect(Set(harness.table.keys) == ["TCP 192.168.7.7:80 rr"])
        #expect(harness.addresses.isEmpty && harness.nft.table(.ip, "node-agent-ipvs") == nil)
        // Without ip_vs and without kube-ipvs0: nothing to do, no failure.
        let empty = IPVSProxier.cleanupLeftovers(ipvs: nil, dummy: FakeDummyInterface(), nftables: FakeNftables(), logger: harness.logs.logger(label: "cleanup"))
        #expect(empty.isEmpty && empty.failures.isEmpty)
    }
}
