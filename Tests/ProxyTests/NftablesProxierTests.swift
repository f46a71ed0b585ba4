import Foundation
import Iptables
import Logging
import MetricsTestKit
import NodeAgentTesting
import Proxy
import Synchronization
import Testing

/// Records conntrack cleanups instead of running the tool.
final class RecordingConntrack: ConntrackCleaner {
    let calls = Mutex<[String]>([])
    var recorded: [String] { calls.withLock { $0 } }
    func clearUDP(destination ip: IPAddress) throws { calls.withLock { $0.append("dst \(ip)") } }
    func clearUDP(nodePort port: Int, family: IPFamily) throws { calls.withLock { $0.append("nodeport \(port)") } }
    func clearUDP(destination ip: IPAddress, endpoint: IPAddress) throws { calls.withLock { $0.append("dst \(ip) -> \(endpoint)") } }
    func clearUDP(nodePort port: Int, endpoint: IPAddress) throws { calls.withLock { $0.append("nodeport \(port) -> \(endpoint)") } }
}

/// Keeps sysctl writes in memory.
final class MemorySysctl: SysctlWriter {
    let values = Mutex<[String: String]>([:])
    func read(_ name: String) -> String? { values.withLock { $0[name] } }
    func write(_ name: String, _ value: String) throws { values.withLock { $0[name] = value } }
}

/// Records the events the proxier emits.
final class RecordingEvents: ProxyEventRecorder {
    let events = Mutex<[String]>([])
    func warning(kind: String, object: NamespacedName, reason: String, message: String) {
        events.withLock { $0.append("\(kind) \(object) \(reason): \(message)") }
    }
}

struct ProxierHarness {
    let fake: FakeNftables
    let proxier: NftablesProxier
    let conntrack = RecordingConntrack()
    let events = RecordingEvents()
    let logs = LogRecorder()
    let metrics = TestMetrics()

    init(
        fake: FakeNftables = FakeNftables(), family: IPFamily = .ipv4, clusterCIDR: String? = "10.244.0.0/16",
        eventRecorder: (any ProxyEventRecorder)? = nil, masqueradeAll: Bool = false
    ) {
        self.fake = fake
        var configuration = NftablesProxierConfiguration(
            family: family,
            nodeName: "node-a",
            nodePortAddresses: family == .ipv4 ? [IPAddress("10.250.0.1")!] : [IPAddress("fd00:250::1")!],
            clusterCIDR: clusterCIDR.flatMap(IPPrefix.init),
            syncPeriod: .seconds(3600),
            minSyncPeriod: .zero
        )
        configuration.masqueradeAll = masqueradeAll
        proxier = NftablesProxier(
            configuration: configuration,
            nftables: fake,
            conntrack: conntrack,
            sysctl: MemorySysctl(),
            health: ProxyHealth(timeout: .seconds(60)),
            events: eventRecorder ?? events,
            metricsFactory: metrics,
            logger: logs.logger(label: "proxy")
        )
    }

    func synced() {
        proxier.servicesSynced()
        proxier.endpointSlicesSynced()
    }

    var table: FakeNftables.Table? { fake.table(.ip, "node-agent") }
    func elements(_ name: String) -> [String: String] { table?.sets[name]?.elements ?? [:] }
    func rules(_ chain: String) -> [String] { table?.chains[chain]?.ruleTexts ?? [] }
}

@Suite("nftables proxier against the fake")
struct NftablesProxierTests {
    @Test("nothing is written before the initial lists are complete")
    func waitsForSync() async {
        let harness = ProxierHarness()
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("web"))
        #expect(await harness.proxier.syncNow() == .notReady)
        #expect(harness.table == nil)
        harness.synced()
        #expect(await harness.proxier.syncNow() == .applied(full: true, commands: harness.fake.transactions.first?.count ?? -1))
        #expect(harness.table != nil)
    }

    @Test("a Service with endpoints gets its map element and a numgen DNAT rule; one without is rejected")
    func layout() async throws {
        let harness = ProxierHarness()
        harness.synced()
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("web"))
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("web-1", service: "web", endpoints: [.init(ip: "10.1.0.1"), .init(ip: "10.1.0.2")]))
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("empty", clusterIP: "10.96.0.20"))
        await harness.proxier.syncNow()
        #expect(harness.elements("service-ips") == ["10.96.0.10 . tcp . 80": "goto svc-default/web/tcp/http"])
        #expect(harness.elements("no-endpoint-services") == ["10.96.0.20 . tcp . 80": "goto reject-chain"])
        #expect(
            harness.rules("svc-default/web/tcp/http") == [
                "ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
                "meta l4proto tcp dnat ip addr . port to numgen random mod 2 offset 65536 map @endpoints-tcp-0",
            ]
        )
        // "empty" sorts first and holds slot 0; "web" has slot 1, so its endpoints are keys 65536 and 65537.
        #expect(harness.elements("endpoints-tcp-0") == ["65536": "10.1.0.1 . 8080", "65537": "10.1.0.2 . 8080"])
        #expect(harness.elements("hairpin-endpoints").keys.sorted() == ["10.1.0.1 . 10.1.0.1", "10.1.0.2 . 10.1.0.2"])
        #expect(harness.elements("nodeport-ips") == ["10.250.0.1": ""])
    }

    @Test("NodePort, external IP and load-balancer IP go through the external chain, marked for masquerade")
    func external() async {
        let harness = ProxierHarness()
        harness.synced()
        harness.proxier.serviceChanged(
            previous: nil,
            current: Fixtures.service("lb", type: "LoadBalancer", ports: [.init(name: "http", port: 80, nodePort: 30080)], externalIPs: ["192.0.2.1"], loadBalancerIPs: ["198.51.100.7"])
        )
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("lb-1", service: "lb", endpoints: [.init(ip: "10.1.0.1")]))
        await harness.proxier.syncNow()
        #expect(harness.elements("service-nodeports") == ["tcp . 30080": "goto ext-default/lb/tcp/http"])
        #expect(harness.elements("service-ips")["192.0.2.1 . tcp . 80"] == "goto ext-default/lb/tcp/http")
        #expect(harness.elements("service-ips")["198.51.100.7 . tcp . 80"] == "goto ext-default/lb/tcp/http")
        #expect(harness.rules("ext-default/lb/tcp/http") == ["jump mark-for-masquerade", "meta l4proto tcp dnat to 10.1.0.1:8080"])
    }

    @Test("externalTrafficPolicy Local keeps outside traffic on local endpoints and drops it when there are none")
    func externalLocal() async {
        let harness = ProxierHarness()
        harness.synced()
        let service = Fixtures.service("loc", type: "NodePort", ports: [.init(name: "http", port: 80, nodePort: 30081)], externalTrafficPolicy: "Local")
        harness.proxier.serviceChanged(previous: nil, current: service)
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("loc-1", service: "loc", endpoints: [.init(ip: "10.1.0.1", node: "node-a"), .init(ip: "10.1.0.2", node: "node-b")]))
        await harness.proxier.syncNow()
        let rules = harness.rules("ext-default/loc/tcp/http")
        #expect(rules.first == "fib saddr type local jump mark-for-masquerade")
        #expect(rules.last == "meta l4proto tcp dnat to 10.1.0.1:8080")
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("loc-1", service: "loc", endpoints: [.init(ip: "10.1.0.2", node: "node-b")]))
        await harness.proxier.syncNow()
        #expect(harness.rules("ext-default/loc/tcp/http").last == "drop")
    }

    @Test("ClientIP affinity uses per-endpoint chains with a dynamic set carrying the timeout")
    func affinity() async throws {
        let harness = ProxierHarness()
        harness.synced()
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("sticky", affinity: 300))
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("s-1", service: "sticky", endpoints: [.init(ip: "10.1.0.1"), .init(ip: "10.1.0.2")]))
        await harness.proxier.syncNow()
        let rules = harness.rules("svc-default/sticky/tcp/http")
        #expect(rules.contains("ip saddr @aff-default/sticky/tcp/http__10.1.0.1/8080 goto ep-default/sticky/tcp/http__10.1.0.1/8080"))
        #expect(rules.last == "numgen random mod 2 vmap { 0 : goto ep-default/sticky/tcp/http__10.1.0.1/8080, 1 : goto ep-default/sticky/tcp/http__10.1.0.2/8080 }")
        #expect(harness.rules("ep-default/sticky/tcp/http__10.1.0.2/8080") == ["update @aff-default/sticky/tcp/http__10.1.0.2/8080 { ip saddr }", "meta l4proto tcp dnat to 10.1.0.2:8080"])
        let set = try #require(harness.table?.sets["aff-default/sticky/tcp/http__10.1.0.1/8080"])
        #expect(set.flags == ["dynamic", "timeout"])
    }

    @Test("an endpoint change sends only the difference: one chain rewritten, no table-wide flush")
    func incremental() async throws {
        let harness = ProxierHarness()
        harness.synced()
        for index in 0..<20 {
            harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("svc\(index)", clusterIP: "10.96.1.\(index)"))
            harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("svc\(index)-1", service: "svc\(index)", endpoints: [.init(ip: "10.1.1.\(index)")]))
        }
        await harness.proxier.syncNow()
        harness.fake.resetTransactions()
        harness.proxier.endpointSliceChanged(
            previous: nil,
            current: Fixtures.slice("svc7-1", service: "svc7", endpoints: [.init(ip: "10.1.1.7"), .init(ip: "10.1.2.7")])
        )
        let outcome = await harness.proxier.syncNow()
        let tx = try #require(harness.fake.transactions.last)
        #expect(outcome == .applied(full: false, commands: tx.count))
        #expect(
            tx.script() == """
                add map ip node-agent endpoints-tcp-0 { typeof numgen random mod 2 : ip daddr . tcp dport ; }
                flush chain ip node-agent svc-default/svc7/tcp/http
                add rule ip node-agent svc-default/svc7/tcp/http ip daddr 10.96.1.7 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
                add rule ip node-agent svc-default/svc7/tcp/http meta l4proto tcp dnat ip addr . port to numgen random mod 2 offset 1114112 map @endpoints-tcp-0
                add element ip node-agent endpoints-tcp-0 { 1114112 : 10.1.1.7 . 8080, 1114113 : 10.1.2.7 . 8080 }
                add element ip node-agent hairpin-endpoints { 10.1.2.7 . 10.1.2.7 }

                """
        )
        // Same number of endpoints, one replaced: only map elements change, the rule stays.
        harness.fake.resetTransactions()
        harness.proxier.endpointSliceChanged(
            previous: nil,
            current: Fixtures.slice("svc7-1", service: "svc7", endpoints: [.init(ip: "10.1.1.7"), .init(ip: "10.1.3.7")])
        )
        await harness.proxier.syncNow()
        #expect(
            harness.fake.transactions.last?.script() == """
                delete element ip node-agent endpoints-tcp-0 { 1114113 }
                delete element ip node-agent hairpin-endpoints { 10.1.2.7 . 10.1.2.7 }
                add element ip node-agent endpoints-tcp-0 { 1114113 : 10.1.3.7 . 8080 }
                add element ip node-agent hairpin-endpoints { 10.1.3.7 . 10.1.3.7 }

                """
        )
        // Nothing changed: an empty transaction.
        #expect(await harness.proxier.syncNow() == .applied(full: false, commands: 0))
    }

    @Test("endpoint maps are shared by 64 Service ports: created with the first user, kept while any is left, deleted with the last")
    func sharedEndpointMaps() async throws {
        let harness = ProxierHarness()
        harness.synced()
        // 70 Services with two endpoints each: slots 0-63 use endpoints-tcp-0, slots 64-69 endpoints-tcp-1.
        func name(_ index: Int) -> String { String(format: "svc%02d", index) }
        func slice(_ index: Int) -> EndpointSliceObject {
            Fixtures.slice("\(name(index))-1", service: name(index), endpoints: [.init(ip: "10.1.\(index).1"), .init(ip: "10.1.\(index).2")])
        }
        for index in 0..<70 {
            harness.proxier.serviceChanged(previous: nil, current: Fixtures.service(name(index), clusterIP: "10.96.1.\(index)"))
            harness.proxier.endpointSliceChanged(previous: nil, current: slice(index))
        }
        await harness.proxier.syncNow()
        #expect(harness.elements("endpoints-tcp-0").count == 128)
        #expect(harness.elements("endpoints-tcp-1").count == 12)
        #expect(harness.rules("svc-default/svc69/tcp/http").last == "meta l4proto tcp dnat ip addr . port to numgen random mod 2 offset 4521984 map @endpoints-tcp-1")

        // Five of the six users of endpoints-tcp-1 go: the map stays for the last one (the fake, like the kernel,
        // refuses to delete a map a rule still uses).
        for index in 64..<69 {
            harness.proxier.serviceChanged(previous: Fixtures.service(name(index), clusterIP: "10.96.1.\(index)"), current: nil)
            harness.proxier.endpointSliceChanged(previous: slice(index), current: nil)
        }
        #expect(await harness.proxier.syncNow() == .applied(full: false, commands: harness.fake.transactions.last?.count ?? -1))
        #expect(harness.elements("endpoints-tcp-1") == ["4521984": "10.1.69.1 . 8080", "4521985": "10.1.69.2 . 8080"])
        // The last one scales down to one endpoint (a plain DNAT, no map): the map goes in the same transaction.
        harness.fake.resetTransactions()
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("svc69-1", service: "svc69", endpoints: [.init(ip: "10.1.69.1")]))
        await harness.proxier.syncNow()
        #expect(harness.table?.sets["endpoints-tcp-1"] == nil)
        #expect(harness.fake.transactions.last?.script().contains("delete map ip node-agent endpoints-tcp-1") == true)
        #expect(harness.rules("svc-default/svc69/tcp/http").last == "meta l4proto tcp dnat to 10.1.69.1:8080")
        // And comes back with its second endpoint.
        harness.proxier.endpointSliceChanged(previous: nil, current: slice(69))
        await harness.proxier.syncNow()
        #expect(harness.elements("endpoints-tcp-1") == ["4521984": "10.1.69.1 . 8080", "4521985": "10.1.69.2 . 8080"])
        // The table holds exactly the desired state, nothing left over.
        KernelRulesetTests.compare(try #require(try harness.fake.list(family: .ip, table: "node-agent")), try #require(harness.proxier.lastApplied))
        #expect(harness.table?.sets.keys.filter { $0.hasPrefix("endpoints-") }.sorted() == ["endpoints-tcp-0", "endpoints-tcp-1"])
    }

    @Test("a deleted Service leaves no chain, element or set behind")
    func deletion() async {
        let harness = ProxierHarness()
        harness.synced()
        let service = Fixtures.service("sticky", affinity: 300)
        let slice = Fixtures.slice("s-1", service: "sticky", endpoints: [.init(ip: "10.1.0.1")])
        harness.proxier.serviceChanged(previous: nil, current: service)
        harness.proxier.endpointSliceChanged(previous: nil, current: slice)
        await harness.proxier.syncNow()
        let before = harness.fake.dump(.ip, "node-agent")
        harness.proxier.serviceChanged(previous: service, current: nil)
        harness.proxier.endpointSliceChanged(previous: slice, current: nil)
        await harness.proxier.syncNow()
        let after = harness.fake.dump(.ip, "node-agent")
        #expect(before.contains("sticky"))
        #expect(!after.contains("sticky"))
        #expect(!after.contains("10.1.0.1"))
        harness.proxier.requestFullSync()
        await harness.proxier.syncNow()
        #expect(harness.fake.dump(.ip, "node-agent") == after)
    }

    @Test("a restarted proxier converges on the table it finds: same contents, stale objects gone, nothing doubled")
    func restartConvergence() async throws {
        let fake = FakeNftables()
        let first = ProxierHarness(fake: fake)
        first.synced()
        let services = (0..<5).map { Fixtures.service("svc\($0)", clusterIP: "10.96.1.\($0)", affinity: $0 == 0 ? 60 : nil) }
        let slices = (0..<5).map { Fixtures.slice("svc\($0)-1", service: "svc\($0)", endpoints: [.init(ip: "10.1.1.\($0)"), .init(ip: "10.1.2.\($0)")]) }
        for service in services { first.proxier.serviceChanged(previous: nil, current: service) }
        for slice in slices { first.proxier.endpointSliceChanged(previous: nil, current: slice) }
        await first.proxier.syncNow()
        let expected = fake.dump(.ip, "node-agent")
        // Leftovers a crashed run could have left: a chain, a set, an element pointing at the chain.
        var junk = Transaction(family: .ip, table: "node-agent")
        junk.add(Chain("svc-default/gone/tcp/http"))
        junk.add(Rule(chain: "svc-default/gone/tcp/http", "meta l4proto tcp dnat to 10.9.9.9:80"))
        junk.add(NamedSet("aff-gone", type: "ipv4_addr", flags: ["dynamic", "timeout"], timeout: .seconds(5)))
        junk.addElement("service-ips", Element(key: "10.96.9.9 . tcp . 80", value: "goto svc-default/gone/tcp/http"))
        try fake.run(junk)

        let second = ProxierHarness(fake: fake)
        for service in services { second.proxier.serviceChanged(previous: nil, current: service) }
        for slice in slices { second.proxier.endpointSliceChanged(previous: nil, current: slice) }
        second.synced()
        let outcome = await second.proxier.syncNow()
        guard case .applied(full: true, _) = outcome else {
            Issue.record("first sync after restart must be full, got \(outcome)")
            return
        }
        #expect(fake.dump(.ip, "node-agent") == expected)
        // The first sync's desired state equals the previous run's: the next sync has nothing to do.
        #expect(await second.proxier.syncNow() == .applied(full: false, commands: 0))
    }

    @Test("a failed transaction is retried as a full sync")
    func failureRetriesFull() async {
        let harness = ProxierHarness()
        harness.synced()
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("web"))
        await harness.proxier.syncNow()
        harness.fake.failNextRun(with: .rejected("run", message: "Could not process rule: Cannot allocate memory", line: 1, command: nil))
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("web-1", service: "web", endpoints: [.init(ip: "10.1.0.1")]))
        guard case .failed(let message) = await harness.proxier.syncNow() else {
            Issue.record("expected a failure")
            return
        }
        #expect(message.contains("Cannot allocate memory"))
        #expect(harness.logs.records.contains { $0.message.contains("sync failed") && $0.level == .error })
        guard case .applied(full: true, _) = await harness.proxier.syncNow() else {
            Issue.record("expected a full sync after the failure")
            return
        }
        #expect(harness.elements("service-ips")["10.96.0.10 . tcp . 80"] != nil)
    }

    @Test("an invalid Service is skipped with a log and an event, every other Service still served")
    func badInput() async {
        let harness = ProxierHarness()
        harness.synced()
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("good"))
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("good-1", service: "good", endpoints: [.init(ip: "10.1.0.1")]))
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("bad", clusterIP: "10.96.0.11", ports: [.init(name: "x", port: 0)]))
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("good-2", service: "good", endpoints: [.init(ip: "not-an-ip")]))
        await harness.proxier.syncNow()
        #expect(harness.elements("service-ips").keys.sorted() == ["10.96.0.10 . tcp . 80"])
        let events = harness.events.events.withLock { $0 }
        #expect(events.contains { $0.hasPrefix("Service default/bad FailedToProxy") && $0.contains("spec.ports[0].port") })
        #expect(events.contains { $0.hasPrefix("EndpointSlice default/good-2 FailedToProxy") && $0.contains("endpoints[0].addresses[0]") })
        #expect(harness.logs.records.contains { $0.message == "skipping invalid object" && $0.metadata["field"] == "spec.ports[0].port" })
    }

    @Test("UDP endpoint replacement flushes the old endpoint's flows; a new Service IP's flows are flushed too")
    func udpConntrack() async {
        let harness = ProxierHarness()
        harness.synced()
        let dnsPorts = [EndpointPortObject(name: "dns", protocol: "UDP", port: 53)]
        let service = Fixtures.service("dns", ports: [.init(name: "dns", protocol: "UDP", port: 53, nodePort: nil)])
        harness.proxier.serviceChanged(previous: nil, current: service)
        await harness.proxier.syncNow()
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("dns-1", service: "dns", ports: dnsPorts, endpoints: [.init(ip: "10.1.0.1")]))
        await harness.proxier.syncNow()
        #expect(harness.conntrack.recorded == ["dst 10.96.0.10"])
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("dns-1", service: "dns", ports: dnsPorts, endpoints: [.init(ip: "10.1.0.2")]))
        await harness.proxier.syncNow()
        #expect(harness.conntrack.recorded.last == "dst 10.96.0.10 -> 10.1.0.1")
        harness.proxier.serviceChanged(previous: service, current: nil)
        await harness.proxier.syncNow()
        #expect(harness.conntrack.recorded.last == "dst 10.96.0.10")
    }

    @Test("the IPv6 proxier writes an ip6 table with ip6 matches")
    func ipv6() async {
        let harness = ProxierHarness(family: .ipv6, clusterCIDR: "fd00:244::/64")
        harness.synced()
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("v6", clusterIP: "fd00::10", clusterIPs: ["fd00::10"]))
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("v6-1", service: "v6", addressType: "IPv6", endpoints: [.init(ip: "fd00:1::1")]))
        await harness.proxier.syncNow()
        let table = harness.fake.table(.ip6, "node-agent")
        #expect(table?.sets["service-ips"]?.elements == ["fd00::10 . tcp . 80": "goto svc-default/v6/tcp/http"])
        #expect(table?.chains["svc-default/v6/tcp/http"]?.ruleTexts.last == "meta l4proto tcp dnat to [fd00:1::1]:8080")
    }

    @Test("syncs are measured as kube-proxy measures them: duration, last sync time, programming latency, failures")
    func metrics() async throws {
        let harness = ProxierHarness()
        harness.synced()
        harness.proxier.serviceChanged(previous: nil, current: Fixtures.service("web"))
        let trigger = Date().addingTimeInterval(-2)
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("web-1", service: "web", endpoints: [.init(ip: "10.1.0.1")], trigger: trigger))
        await harness.proxier.syncNow()
        let dimensions = [("ip_family", "IPv4")]
        #expect(try harness.metrics.expectTimer("kubeproxy_sync_proxy_rules_duration_seconds", dimensions).values.count == 1)
        #expect(try harness.metrics.expectTimer("kubeproxy_sync_full_proxy_rules_duration_seconds", dimensions).values.count == 1)
        let latency = try harness.metrics.expectTimer("kubeproxy_network_programming_duration_seconds", dimensions)
        #expect((latency.lastValue ?? 0) >= 1_000_000_000, "about 2 s from the trigger time to the rules")
        #expect((try harness.metrics.expectGauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds", dimensions).lastValue ?? 0) > 1_700_000_000)
        #expect(try harness.metrics.expectGauge("kubeproxy_sync_proxy_rules_endpoint_changes_pending", dimensions).lastValue == 0)
        harness.fake.failNextRun(with: .rejected("run", message: "boom", line: nil, command: nil))
        harness.proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("web-1", service: "web", endpoints: [.init(ip: "10.1.0.2")]))
        await harness.proxier.syncNow()
        #expect(harness.metrics.counterTotal(label: "kubeproxy_sync_proxy_rules_nftables_sync_failures_total") == 1)
    }
}
