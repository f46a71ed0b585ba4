import Foundation
import IPVS
import Iptables
import NodeAgentTesting
import Testing

@testable import Proxy

/// The IPVS proxier's nf_tables table against this machine's real nf_tables (no IPVS needed: the IPVS table and
/// kube-ipvs0 are the in-memory fakes), inside a network namespace this suite creates.
@Suite("IPVS filter table against the kernel's nf_tables", .enabled(if: SystemTests.enabled), .serialized)
struct IPVSFilterTableKernelTests {
    @Test("the kernel accepts the table; it lists back equal, so a full resync writes nothing; element changes apply; a restarted proxier adopts it")
    func kernelRoundTrip() async throws {
        try SystemTests.requireRoot()
        let namespace = try NetworkNamespace.create("naipvsp-nft-\(UInt16.random(in: 1000...9999))")
        defer { namespace.delete() }
        let nft = try LibNftables(networkNamespace: namespace.path)
        let harness = IPVSHarness(nft: FakeNftables())
        let proxier = IPVSProxier.make(
            configuration: harness.configuration, ipvs: harness.ipvs, dummy: harness.dummy, nftables: nft, conntrack: harness.conntrack,
            sysctl: harness.sysctl, health: harness.health, logger: harness.logs.logger(label: "ipvs"), clock: harness.clock)
        proxier.serviceChanged(previous: nil, current: web())
        proxier.endpointSliceChanged(previous: nil, current: webSlice(["10.244.1.1", "10.244.1.2"]))
        proxier.serviceChanged(
            previous: nil,
            current: Fixtures.service(
                "lb", type: "LoadBalancer", clusterIP: "10.96.0.20", ports: [.init(name: "dns", protocol: "UDP", port: 53, nodePort: 30053)],
                externalIPs: ["192.0.2.1"]))
        proxier.serviceChanged(previous: nil, current: Fixtures.service("empty", clusterIP: "10.96.0.30"))
        proxier.servicesSynced()
        proxier.endpointSlicesSynced()
        guard case .applied(full: true, let commands) = await proxier.syncNow(), commands > 0 else { Issue.record("the first sync failed"); return }

        let text = try namespace.run(["nft", "list", "table", "ip", "node-agent-ipvs"])
        #expect(text.contains("10.96.0.10 . tcp . 80"))
        #expect(text.contains("10.96.0.30 . tcp . 80"))  // no-endpoint-services
        #expect(text.contains("udp . 30053"))
        #expect(text.contains("ip daddr . meta l4proto . th dport != @service-ips reject"))
        #expect(text.contains("hook output priority -110"))

        // Idle full resync: the listing equals the wanted table, nothing is written.
        proxier.requestFullSync()
        #expect(await proxier.syncNow() == .applied(full: true, commands: 0))

        // Incremental element changes (the direct netlink path) and their read-back.
        proxier.endpointSliceChanged(previous: nil, current: webSlice([]))
        guard case .applied(full: false, let changeCommands) = await proxier.syncNow(), changeCommands > 0 else { Issue.record("no change applied"); return }
        #expect(try namespace.run(["nft", "list", "set", "ip", "node-agent-ipvs", "no-endpoint-services"]).contains("10.96.0.10 . tcp . 80"))

        // A proxier restarted on the same kernel adopts the table without writing.
        let restarted = IPVSProxier.make(
            configuration: harness.configuration, ipvs: harness.ipvs, dummy: harness.dummy, nftables: try LibNftables(networkNamespace: namespace.path),
            conntrack: harness.conntrack, sysctl: harness.sysctl, health: harness.health, logger: harness.logs.logger(label: "ipvs"), clock: harness.clock)
        restarted.serviceChanged(previous: nil, current: web())
        restarted.endpointSliceChanged(previous: nil, current: webSlice([]))
        restarted.serviceChanged(
            previous: nil,
            current: Fixtures.service(
                "lb", type: "LoadBalancer", clusterIP: "10.96.0.20", ports: [.init(name: "dns", protocol: "UDP", port: 53, nodePort: 30053)],
                externalIPs: ["192.0.2.1"]))
        restarted.serviceChanged(previous: nil, current: Fixtures.service("empty", clusterIP: "10.96.0.30"))
        restarted.servicesSynced()
        restarted.endpointSlicesSynced()
        // The hairpin elements of the endpoints that left are stale, and the restart's full sync removes them.
        guard case .applied(full: true, _) = await restarted.syncNow() else { Issue.record("the restarted sync failed"); return }
        restarted.requestFullSync()
        #expect(await restarted.syncNow() == .applied(full: true, commands: 0))

        // Element-only changes of a restarted instance take the direct path too (it learned the set types).
        restarted.endpointSliceChanged(previous: nil, current: webSlice(["10.244.1.9"]))
        guard case .applied(full: false, _) = await restarted.syncNow() else { Issue.record("the incremental sync failed"); return }
        #expect(try namespace.run(["nft", "list", "set", "ip", "node-agent-ipvs", "hairpin-endpoints"]).contains("10.244.1.9 . 10.244.1.9"))
    }

    @Test("thousands of Services: the elements go in bounded direct batches the kernel accepts, and read back equal")
    func scale() async throws {
        try SystemTests.requireRoot()
        let namespace = try NetworkNamespace.create("naipvsp-nft-\(UInt16.random(in: 1000...9999))")
        defer { namespace.delete() }
        let nft = try LibNftables(networkNamespace: namespace.path)
        let harness = IPVSHarness()
        let proxier = IPVSProxier.make(
            configuration: harness.configuration, ipvs: harness.ipvs, dummy: harness.dummy, nftables: nft, conntrack: harness.conntrack,
            sysctl: harness.sysctl, health: harness.health, logger: harness.logs.logger(label: "ipvs"), clock: harness.clock)
        for index in 0..<3000 {
            let name = "svc-\(index)"
            proxier.serviceChanged(previous: nil, current: web(name, clusterIP: "10.96.\(index / 250).\(index % 250 + 1)"))
            proxier.endpointSliceChanged(previous: nil, current: webSlice(["10.244.\(index / 250).\(index % 250 + 1)", "10.245.\(index / 250).\(index % 250 + 1)"], service: name))
        }
        proxier.servicesSynced()
        proxier.endpointSlicesSynced()
        guard case .applied(full: true, _) = await proxier.syncNow() else { Issue.record("the first sync failed: \(harness.logs.records.last?.metadata ?? [:])"); return }
        let listing = try #require(try nft.list(family: .ip, table: "node-agent-ipvs"))
        #expect(listing.sets["service-ips"]?.elements.count == 3000)
        #expect(listing.sets["hairpin-endpoints"]?.elements.count == 6000)
        proxier.requestFullSync()
        #expect(await proxier.syncNow() == .applied(full: true, commands: 0))
    }
}
