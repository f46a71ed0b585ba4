import Foundation
import Iptables
import NodeAgentTesting
import Proxy
import Testing

/// The proxier's rules against the real nf_tables, in a namespace this suite creates: every rule form the
/// builder writes (both families, affinity, Local policies, NodePorts, UDP, SCTP) must be accepted by the
/// kernel, and the table read back must match the desired state exactly.
@Suite("nftables proxier against the kernel", .enabled(if: SystemTests.enabled), .serialized)
struct KernelRulesetTests {
    static func feed(_ proxier: NftablesProxier, family: IPFamily) {
        let v6 = family == .ipv6
        func ip(_ v4: String, _ v6Text: String) -> String { v6 ? v6Text : v4 }
        let addressType = v6 ? "IPv6" : "IPv4"
        let services = [
            Fixtures.service("web", clusterIP: ip("10.96.0.10", "fd00::10"), clusterIPs: [ip("10.96.0.10", "fd00::10")]),
            Fixtures.service(
                "np", type: "LoadBalancer", clusterIP: ip("10.96.0.11", "fd00::11"), clusterIPs: [ip("10.96.0.11", "fd00::11")],
                ports: [.init(name: "http", port: 80, nodePort: 30080), .init(name: "dns", protocol: "UDP", port: 53, nodePort: 30053)],
                externalIPs: [ip("192.0.2.1", "2001:db8::1")], externalTrafficPolicy: "Local", healthCheckNodePort: 0,
                loadBalancerIPs: [ip("198.51.100.7", "2001:db8::7")]
            ),
            Fixtures.service("sticky", clusterIP: ip("10.96.0.12", "fd00::12"), clusterIPs: [ip("10.96.0.12", "fd00::12")], affinity: 120),
            Fixtures.service("itp", clusterIP: ip("10.96.0.13", "fd00::13"), clusterIPs: [ip("10.96.0.13", "fd00::13")], internalTrafficPolicy: "Local"),
            Fixtures.service("sctp", clusterIP: ip("10.96.0.14", "fd00::14"), clusterIPs: [ip("10.96.0.14", "fd00::14")], ports: [.init(name: "s", protocol: "SCTP", port: 9999)]),
            Fixtures.service("none", clusterIP: ip("10.96.0.15", "fd00::15"), clusterIPs: [ip("10.96.0.15", "fd00::15")]),
        ]
        let eps: [Fixtures.EP] = [
            .init(ip: ip("10.1.0.1", "fd00:1::1"), node: "node-a"), .init(ip: ip("10.1.0.2", "fd00:1::2"), node: "node-b"),
            .init(ip: ip("10.1.0.3", "fd00:1::3"), ready: false, serving: true, terminating: true),
        ]
        let slices = [
            Fixtures.slice("web-1", service: "web", addressType: addressType, endpoints: eps),
            Fixtures.slice("np-1", service: "np", addressType: addressType, ports: [.init(name: "http", port: 8080), .init(name: "dns", protocol: "UDP", port: 5353)], endpoints: eps),
            Fixtures.slice("sticky-1", service: "sticky", addressType: addressType, endpoints: eps),
            Fixtures.slice("itp-1", service: "itp", addressType: addressType, endpoints: Array(eps.dropFirst())),
            Fixtures.slice("sctp-1", service: "sctp", addressType: addressType, ports: [.init(name: "s", protocol: "SCTP", port: 9999)], endpoints: eps),
        ]
        for service in services { proxier.serviceChanged(previous: nil, current: service) }
        for slice in slices { proxier.endpointSliceChanged(previous: nil, current: slice) }
    }

    static func compare(_ listing: TableListing, _ desired: DesiredRuleset) {
        #expect(Set(listing.chains.keys) == Set(desired.chains.keys))
        for (name, chain) in desired.chains {
            #expect(listing.chains[name]?.rules.count == chain.rules.count, "rules of \(name)")
        }
        #expect(Set(listing.sets.keys) == Set(desired.sets.keys).union(desired.maps.keys))
        for (name, elements) in desired.elements {
            #expect(listing.sets[name]?.elements == elements, "elements of \(name)")
        }
    }

    /// A proxier with `harness`'s configuration over the real kernel's `nft`, fed every rule form and synced.
    static func kernelProxier(like harness: ProxierHarness, over nft: LibNftables, family: IPFamily) -> NftablesProxier {
        let proxier = NftablesProxier(
            configuration: harness.proxier.configuration,
            nftables: nft,
            conntrack: RecordingConntrack(),
            sysctl: MemorySysctl(),
            health: ProxyHealth(timeout: .seconds(60)),
            logger: harness.logs.logger(label: "proxy")
        )
        feed(proxier, family: family)
        proxier.servicesSynced()
        proxier.endpointSlicesSynced()
        return proxier
    }

    @Test("every rule form is accepted by the kernel, and reads back as desired", arguments: [IPFamily.ipv4, .ipv6])
    func acceptsRuleset(_ family: IPFamily) async throws {
        try SystemTests.requireRoot()
        let namespace = try NetworkNamespace.create("naproxy-krs-\(UInt16.random(in: 1000...9999))")
        defer { namespace.delete() }
        let nft = try LibNftables(networkNamespace: namespace.path)
        let harness = ProxierHarness(fake: FakeNftables(), family: family, clusterCIDR: family == .ipv4 ? "10.244.0.0/16" : "fd00:244::/64")
        // Same inputs through a proxier over the real kernel.
        let proxier = Self.kernelProxier(like: harness, over: nft, family: family)
        let outcome = await proxier.syncNow()
        guard case .applied(full: true, _) = outcome else {
            Issue.record("full sync failed: \(outcome)")
            return
        }
        let nftFamily: Family = family == .ipv4 ? .ip : .ip6
        let desired = try #require(proxier.lastApplied)
        let listing = try #require(try nft.list(family: nftFamily, table: "node-agent"))
        Self.compare(listing, desired)

        // An incremental change (endpoints scaled down, a Service removed) also applies and reads back exactly.
        proxier.endpointSliceChanged(previous: nil, current: Fixtures.slice("web-1", service: "web", addressType: family.rawValue, endpoints: [.init(ip: family == .ipv4 ? "10.1.0.2" : "fd00:1::2")]))
        proxier.serviceChanged(previous: Fixtures.service("sticky"), current: nil)
        proxier.endpointSliceChanged(previous: Fixtures.slice("sticky-1", service: "sticky", endpoints: []), current: nil)
        let incremental = await proxier.syncNow()
        guard case .applied(full: false, let commands) = incremental, commands > 0 else {
            Issue.record("incremental sync failed: \(incremental)")
            return
        }
        Self.compare(try #require(try nft.list(family: nftFamily, table: "node-agent")), try #require(proxier.lastApplied))

        // A second proxier (a restart) converges on the same table in one full sync.
        let restarted = Self.kernelProxier(like: harness, over: nft, family: family)
        let restart = await restarted.syncNow()
        guard case .applied(full: true, _) = restart else {
            Issue.record("restart sync failed: \(restart)")
            return
        }
        Self.compare(try #require(try nft.list(family: nftFamily, table: "node-agent")), try #require(restarted.lastApplied))
    }

    @Test("incremental syncs read back exactly as desired: endpoint replacement, shared endpoint maps created and deleted")
    func incrementalConverges() async throws {
        try SystemTests.requireRoot()
        let namespace = try NetworkNamespace.create("naproxy-krs-\(UInt16.random(in: 1000...9999))")
        defer { namespace.delete() }
        let nft = try LibNftables(networkNamespace: namespace.path)
        let harness = ProxierHarness(fake: FakeNftables())
        let proxier = NftablesProxier(
            configuration: harness.proxier.configuration,
            nftables: nft,
            conntrack: RecordingConntrack(),
            sysctl: MemorySysctl(),
            health: ProxyHealth(timeout: .seconds(60)),
            logger: harness.logs.logger(label: "proxy")
        )
        func name(_ index: Int) -> String { String(format: "svc%02d", index) }
        func slice(_ index: Int, _ ips: [String]) -> EndpointSliceObject {
            Fixtures.slice("\(name(index))-1", service: name(index), endpoints: ips.map { Fixtures.EP(ip: $0) })
        }
        // 70 Services: two endpoint maps (slots 0-63 and 64-69).
        for index in 0..<70 {
            proxier.serviceChanged(previous: nil, current: Fixtures.service(name(index), clusterIP: "10.96.1.\(index)"))
            proxier.endpointSliceChanged(previous: nil, current: slice(index, ["10.1.\(index).1", "10.1.\(index).2"]))
        }
        proxier.servicesSynced()
        proxier.endpointSlicesSynced()
        guard case .applied(full: true, _) = await proxier.syncNow() else {
            Issue.record("full sync failed")
            return
        }
        func converged(_ step: String) throws {
            let listing = try #require(try nft.list(family: .ip, table: "node-agent"), "table after \(step)")
            Self.compare(listing, try #require(proxier.lastApplied))
        }
        try converged("full sync")

        // One endpoint replaced (the direct element path): the old slot value and hairpin pair are gone at once.
        proxier.endpointSliceChanged(previous: nil, current: slice(3, ["10.1.3.1", "10.1.3.9"]))
        guard case .applied(full: false, let commands) = await proxier.syncNow(), commands == 4 else {
            Issue.record("endpoint replacement was not a four-command incremental sync")
            return
        }
        try converged("endpoint replacement")
        #expect(try !namespace.run(["nft", "list", "set", "ip", "node-agent", "hairpin-endpoints"]).contains("10.1.3.2"))

        // The second map's users go, the last one down to a single endpoint: the map is deleted.
        for index in 64..<69 {
            proxier.serviceChanged(previous: Fixtures.service(name(index), clusterIP: "10.96.1.\(index)"), current: nil)
            proxier.endpointSliceChanged(previous: slice(index, []), current: nil)
        }
        proxier.endpointSliceChanged(previous: nil, current: slice(69, ["10.1.69.1"]))
        guard case .applied(full: false, _) = await proxier.syncNow() else {
            Issue.record("incremental sync failed")
            return
        }
        try converged("removals")
        #expect(try nft.list(family: .ip, table: "node-agent")?.sets["endpoints-tcp-1"] == nil)

        // It comes back with a second endpoint, then a full sync finds nothing to correct.
        proxier.endpointSliceChanged(previous: nil, current: slice(69, ["10.1.69.1", "10.1.69.2"]))
        guard case .applied(full: false, _) = await proxier.syncNow() else {
            Issue.record("incremental sync failed")
            return
        }
        try converged("map recreated")
        // A full sync (which also renumbers the slots) converges as well.
        proxier.requestFullSync()
        guard case .applied(full: true, _) = await proxier.syncNow() else {
            Issue.record("full resync failed")
            return
        }
        try converged("full resync")
        #expect(try nft.list(family: .ip, table: "node-agent")?.sets["endpoints-tcp-1"]?.elements == ["4194304": "10.1.69.1 . 8080", "4194305": "10.1.69.2 . 8080"])
    }
}
