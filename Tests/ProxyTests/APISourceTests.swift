import Foundation
import KubeAPI
import Logging
import NodeAgentTesting
import ServiceLifecycle
import Testing

@testable import Proxy

/// The API source: KubeAPI objects converted field for field, and informers against the API server double (over
/// real HTTP on loopback) feeding a proxier over the in-memory nftables.
@Suite("Proxy API source")
struct APISourceTests {
    // MARK: Conversion

    @Test("a KubeAPI Service converts field for field, Int32s widened and targetPort kept as number or name")
    func serviceConversion() {
        var spec = ServiceSpec()
        spec.type = "LoadBalancer"
        spec.clusterIP = "10.96.0.10"
        spec.clusterIPs = ["10.96.0.10", "fd00::10"]
        spec.ipFamilies = ["IPv4", "IPv6"]
        spec.ports = [
            KubeAPI.ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: .string("web"), nodePort: 30080),
            KubeAPI.ServicePort(name: "dns", protocol: "UDP", port: 53, targetPort: .int(5353)),
        ]
        spec.selector = ["app": "web"]
        spec.externalIPs = ["192.0.2.1"]
        spec.sessionAffinity = "ClientIP"
        spec.sessionAffinityConfig = SessionAffinityConfig(clientIP: ClientIPConfig(timeoutSeconds: 600))
        spec.externalTrafficPolicy = "Local"
        spec.internalTrafficPolicy = "Cluster"
        spec.healthCheckNodePort = 31000
        var status = ServiceStatus()
        status.loadBalancer = LoadBalancerStatus(ingress: [LoadBalancerIngress(ip: "198.51.100.7")])
        var metadata = KubeAPI.ObjectMeta(name: "web", namespace: "shop", labels: ["tier": "front"], annotations: ["a": "b"])
        metadata.resourceVersion = "42"
        let converted = ServiceObject(KubeService(metadata: metadata, spec: spec, status: status))

        #expect(converted.namespacedName == NamespacedName("shop", "web"))
        #expect(converted.metadata.labels == ["tier": "front"])
        #expect(converted.metadata.resourceVersion == nil)
        #expect(converted.spec.type == "LoadBalancer")
        #expect(converted.spec.clusterIPs == ["10.96.0.10", "fd00::10"])
        #expect(converted.spec.ports == [
            ServicePortObject(name: "http", protocol: "TCP", port: 80, targetPort: .string("web"), nodePort: 30080),
            ServicePortObject(name: "dns", protocol: "UDP", port: 53, targetPort: .int(5353)),
        ])
        #expect(converted.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds == 600)
        #expect(converted.spec.externalTrafficPolicy == "Local")
        #expect(converted.spec.healthCheckNodePort == 31000)
        #expect(converted.spec.externalIPs == ["192.0.2.1"])
        #expect(converted.status?.loadBalancer?.ingress?.first?.ip == "198.51.100.7")
    }

    @Test("a KubeAPI EndpointSlice converts with conditions, node, zone hints and ports")
    func sliceConversion() {
        var endpoint = KubeAPI.Endpoint(addresses: ["10.1.0.1"], conditions: EndpointConditions(ready: false, serving: true, terminating: true), nodeName: "node-a")
        endpoint.zone = "z1"
        var hints = EndpointHints()
        hints.forZones = [ForZone(name: "z1")]
        endpoint.hints = hints
        let slice = KubeAPI.EndpointSlice(
            metadata: KubeAPI.ObjectMeta(name: "web-abc", namespace: "shop", labels: [EndpointSliceObject.serviceNameLabel: "web"]),
            addressType: "IPv4",
            endpoints: [endpoint],
            ports: [EndpointPort(name: "http", protocol: "TCP", port: 8080)]
        )
        let converted = EndpointSliceObject(slice)
        #expect(converted.metadata.name == "web-abc")
        #expect(converted.metadata.labels?[EndpointSliceObject.serviceNameLabel] == "web")
        #expect(converted.endpoints == [
            EndpointObject(
                addresses: ["10.1.0.1"], conditions: .init(ready: false, serving: true, terminating: true), nodeName: "node-a", zone: "z1",
                hints: .init(forZones: [.init(name: "z1")]))
        ])
        #expect(converted.ports == [EndpointPortObject(name: "http", protocol: "TCP", port: 8080)])
    }

    @Test("a Node's IPs: per family the first InternalIP, else the first ExternalIP; garbage skipped")
    func nodeIPs() {
        var status = NodeStatus()
        status.addresses = [
            NodeAddress(type: "Hostname", address: "node-a"),
            NodeAddress(type: "ExternalIP", address: "203.0.113.5"),
            NodeAddress(type: "InternalIP", address: "not-an-ip"),
            NodeAddress(type: "InternalIP", address: "10.0.0.5"),
            NodeAddress(type: "InternalIP", address: "10.0.0.6"),
            NodeAddress(type: "ExternalIP", address: "2001:db8::5"),
        ]
        let node = NodeObject(KubeAPI.Node(metadata: KubeAPI.ObjectMeta(name: "node-a", labels: [NodeObject.zoneLabel: "z1"]), status: status))
        #expect(node.hostIPs.map(\.text) == ["10.0.0.5", "2001:db8::5"])
        #expect(node.metadata.labels?[NodeObject.zoneLabel] == "z1")
        #expect(NodeObject(KubeAPI.Node(metadata: KubeAPI.ObjectMeta(name: "bare"))).hostIPs.isEmpty)
    }

    @Test("NodePort addresses: the primary IPs by default, else the local addresses inside the CIDRs")
    func nodePortAddressSelection() {
        let local = ["127.0.0.1", "10.250.0.1", "192.168.1.4", "fd00::1"].map { Fixtures.ip($0) }
        let primary = [Fixtures.ip("10.250.0.1")]
        #expect(NodePortAddresses.select(cidrs: [], primary: primary, local: local) == primary)
        #expect(NodePortAddresses.select(cidrs: [IPPrefix("10.0.0.0/8")!, IPPrefix("fd00::/64")!], primary: primary, local: local).map(\.text) == [
            "10.250.0.1", "fd00::1",
        ])
        #expect(NodePortAddresses.select(cidrs: [IPPrefix("172.16.0.0/12")!], primary: primary, local: local).isEmpty)
        #expect(NodePortAddresses.localAddresses().contains(Fixtures.ip("127.0.0.1")))
    }

    // MARK: Informers against the double

    /// Runs a proxier over the fake and the API source against a fresh double, then `body`.
    func withSource(
        _ body: (APIServerDouble, ProxierHarness, ProxyAPISource, KubeClient) async throws -> Void
    ) async throws {
        let double = try await APIServerDouble.start()
        let client = try KubeClient(configuration: try double.clientConfiguration(), logger: quietLogger())
        let recorder = KubeEventRecorder(client: client, host: "node-a", logger: quietLogger())
        let harness = ProxierHarness(eventRecorder: recorder)
        let source = ProxyAPISource(client: client, nodeName: "node-a", proxier: harness.proxier, logger: harness.logs.logger(label: "source"))
        let proxier = harness.proxier
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                let services = ServiceGroup(
                    configuration: .init(services: [proxier, source, recorder], gracefulShutdownSignals: [], logger: quietLogger()))
                group.addTask { try await services.run() }
                try await body(double, harness, source, client)
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        } catch {
            try? await client.shutdown()
            await double.stop()
            throw error
        }
        try await client.shutdown()
        await double.stop()
    }

    static func service(_ name: String, ip: String, port: Int32 = 80, nodePort: Int32? = nil, externalIPs: [String]? = nil) -> KubeService {
        var spec = ServiceSpec()
        spec.type = nodePort == nil ? "ClusterIP" : "NodePort"
        spec.clusterIP = ip
        spec.externalIPs = externalIPs
        spec.ports = [KubeAPI.ServicePort(name: "http", protocol: "TCP", port: port, targetPort: .int(8080), nodePort: nodePort)]
        return KubeService(metadata: KubeAPI.ObjectMeta(name: name, namespace: "default"), spec: spec)
    }

    static func slice(_ name: String, service: String, ips: [String], ready: Bool = true) -> KubeAPI.EndpointSlice {
        KubeAPI.EndpointSlice(
            metadata: KubeAPI.ObjectMeta(name: name, namespace: "default", labels: [EndpointSliceObject.serviceNameLabel: service]),
            addressType: "IPv4",
            endpoints: ips.map { KubeAPI.Endpoint(addresses: [$0], conditions: EndpointConditions(ready: ready)) },
            ports: [EndpointPort(name: "http", protocol: "TCP", port: 8080)]
        )
    }

    @Test("the initial lists reach the kernel in one full sync; later adds, updates and deletes follow")
    func followsTheAPI() async throws {
        try await withSource { double, harness, source, _ in
            try double.create(Self.service("web", ip: "10.96.0.10"))
            try double.create(Self.slice("web-1", service: "web", ips: ["10.1.0.1", "10.1.0.2"]))
            try await eventually("web programmed") { harness.elements("service-ips")["10.96.0.10 . tcp . 80"] == "goto svc-default/web/tcp/http" }
            #expect(Set(harness.elements("endpoints-tcp-0").values) == ["10.1.0.1 . 8080", "10.1.0.2 . 8080"])
            #expect(source.status.synced)
            #expect(source.status.snapshot.services == 1 && source.status.snapshot.endpointSlices == 1)

            // Scale down and flip readiness, through the API.
            try double.mergePatch(
                KubeAPI.EndpointSlice.resourceType, namespace: "default", name: "web-1",
                ["endpoints": [["addresses": ["10.1.0.2"], "conditions": ["ready": true]], ["addresses": ["10.1.0.3"], "conditions": ["ready": false]]]])
            try await eventually("one ready endpoint left") { harness.rules("svc-default/web/tcp/http").last == "meta l4proto tcp dnat to 10.1.0.2:8080" }

            // A second Service, then the first deleted.
            try double.create(Self.service("api", ip: "10.96.0.11"))
            try await eventually("api without endpoints is rejected") {
                harness.elements("no-endpoint-services")["10.96.0.11 . tcp . 80"] == "goto reject-chain"
            }
            try double.delete(KubeService.resourceType, namespace: "default", name: "web")
            try await eventually("web gone") { harness.elements("service-ips")["10.96.0.10 . tcp . 80"] == nil && harness.table?.chains["svc-default/web/tcp/http"] == nil }
            #expect(source.status.snapshot.services == 1)
        }
    }

    @Test("nothing is programmed until both initial lists are delivered in full")
    func waitsForBothLists() async throws {
        // Slices listed while Services are held back: the proxier must not write a table without them.
        let double = try await APIServerDouble.start()
        defer { Task { await double.stop() } }
        for index in 0..<50 {
            try double.create(Self.service("svc-\(index)", ip: "10.96.1.\(index)"))
            try double.create(Self.slice("svc-\(index)-1", service: "svc-\(index)", ips: ["10.1.1.\(index)"]))
        }
        let client = try KubeClient(configuration: try double.clientConfiguration(), logger: quietLogger())
        let harness = ProxierHarness()
        let source = ProxyAPISource(client: client, nodeName: "node-a", proxier: harness.proxier, logger: harness.logs.logger(label: "source"))
        let group = ServiceGroup(configuration: .init(services: [harness.proxier, source], gracefulShutdownSignals: [], logger: quietLogger()))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await eventually("all 50 programmed") { harness.elements("service-ips").count == 50 }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // The first transaction already held every Service: no sync ever ran on half a list.
        let first = try #require(harness.fake.transactions.first)
        let replay = FakeNftables()
        try replay.run(first)
        #expect(replay.table(.ip, "node-agent")?.sets["service-ips"]?.elements.count == 50)
        try await client.shutdown()
    }

    @Test("an invalid Service and an unparsable slice address are skipped with a log and an Event; the rest is served")
    func badInputMakesEvents() async throws {
        try await withSource { double, harness, _, client in
            try double.create(Self.service("good", ip: "10.96.0.10"))
            try double.create(Self.slice("good-1", service: "good", ips: ["10.1.0.1"]))
            // The double, like older apiservers, lets these through; the proxy must not trust them.
            try double.create(Self.service("bad-ip", ip: "10.96.0.20", externalIPs: ["10.96.0.300"]))
            try double.create(Self.service("bad-port", ip: "10.96.0.21", nodePort: 70000))
            try double.create(Self.slice("good-2", service: "good", ips: ["10.1.0.999"]))
            try await eventually("good programmed") { harness.rules("svc-default/good/tcp/http").last == "meta l4proto tcp dnat to 10.1.0.1:8080" }
            #expect(harness.elements("service-ips")["10.96.0.20 . tcp . 80"] == nil)
            #expect(harness.elements("no-endpoint-services")["10.96.0.21 . tcp . 80"] == nil)

            let events = InMemoryKubeClient(double: double)
            var reasons: [String] = []
            try await eventually("three Events") {
                reasons = try await events.list(Event.self, namespace: "default").items.compactMap { event in
                    guard event.reason == "FailedToProxy", event.type == "Warning" else { return nil }
                    return "\(event.involvedObject.kind ?? "") \(event.involvedObject.name ?? ""): \(event.message ?? "")"
                }
                return reasons.count == 3
            }
            #expect(reasons.contains { $0.hasPrefix("Service bad-ip:") && $0.contains("spec.externalIPs[0]") && $0.contains("10.96.0.300") })
            #expect(reasons.contains { $0.hasPrefix("Service bad-port:") && $0.contains("spec.ports[0].nodePort") })
            #expect(reasons.contains { $0.hasPrefix("EndpointSlice good-2:") && $0.contains("endpoints[0].addresses[0]") })
            #expect(harness.logs.records.contains { $0.message == "skipping invalid object" })
            _ = client
        }
    }

    @Test("the own Node's zone label reaches the proxier (topology hints then apply)")
    func nodeLabels() async throws {
        try await withSource { double, harness, source, _ in
            var status = NodeStatus()
            status.addresses = [NodeAddress(type: "InternalIP", address: "10.250.0.1")]
            try double.create(KubeAPI.Node(metadata: KubeAPI.ObjectMeta(name: "node-a", labels: [NodeObject.zoneLabel: "z1"]), status: status))
            try double.create(KubeAPI.Node(metadata: KubeAPI.ObjectMeta(name: "node-b", labels: [NodeObject.zoneLabel: "z2"])))
            try double.create(Self.service("web", ip: "10.96.0.10"))
            var slice = Self.slice("web-1", service: "web", ips: ["10.1.0.1", "10.1.0.2"])
            for (index, zone) in ["z1", "z2"].enumerated() {
                var hints = EndpointHints()
                hints.forZones = [ForZone(name: zone)]
                slice.endpoints[index].hints = hints
            }
            try double.create(slice)
            try await eventually("only the z1 endpoint used") { harness.rules("svc-default/web/tcp/http").last == "meta l4proto tcp dnat to 10.1.0.1:8080" }
            #expect(source.status.snapshot.nodeIPs == ["10.250.0.1"])
            try double.mergePatch(KubeAPI.Node.resourceType, namespace: nil, name: "node-a", ["metadata": ["labels": [NodeObject.zoneLabel: "z2"]]])
            try await eventually("the z2 endpoint used") { harness.rules("svc-default/web/tcp/http").last == "meta l4proto tcp dnat to 10.1.0.2:8080" }
        }
    }

    @Test("the node's IPs come from its Node object, retried until it has some")
    func nodeIPsFromTheAPI() async throws {
        let double = try await APIServerDouble.start()
        let client = InMemoryKubeClient(double: double)
        async let found = NodePortAddresses.fromNode(client: client, nodeName: "node-a", attempts: 6, firstDelay: .milliseconds(50), logger: quietLogger())
        try await Task.sleep(for: .milliseconds(120))
        var status = NodeStatus()
        status.addresses = [NodeAddress(type: "InternalIP", address: "10.250.0.1")]
        try double.create(KubeAPI.Node(metadata: KubeAPI.ObjectMeta(name: "node-a"), status: status))
        #expect(await found.map(\.text) == ["10.250.0.1"])
        #expect(await NodePortAddresses.fromNode(client: client, nodeName: "absent", attempts: 2, firstDelay: .milliseconds(1), logger: quietLogger()).isEmpty)
        await double.stop()
    }
}

/// Event aggregation and rate limiting (client-go's EventCorrelator rules), with the time handed in.
@Suite("Event aggregation")
struct EventAggregatorTests {
    static func key(_ name: String, _ message: String) -> EventAggregator.Key {
        .init(kind: "Service", object: NamespacedName("default", name), reason: "FailedToProxy", message: message)
    }
    let key = Self.key("bad", "Service default/bad: invalid spec.ports[0].port")

    @Test("a repeated warning raises the count of one Event; a different one creates another")
    func aggregates() {
        var aggregator = EventAggregator()
        let start = Date(timeIntervalSince1970: 1_000_000)
        guard case .create(let name) = aggregator.record(key, now: start) else {
            Issue.record("first occurrence must create")
            return
        }
        #expect(name.hasPrefix("bad."))
        #expect(aggregator.record(key, now: start + 1) == .update(name: name, count: 2, firstTimestamp: start))
        #expect(aggregator.record(key, now: start + 2) == .update(name: name, count: 3, firstTimestamp: start))
        let other = Self.key("bad", "something else")
        if case .create = aggregator.record(other, now: start + 3) {} else { Issue.record("a different message must create") }
        // Past the 10-minute window the same warning starts a new Event.
        if case .create(let later) = aggregator.record(key, now: start + 700) { #expect(later != name) } else { Issue.record("expected create") }
    }

    @Test("an object gets a burst of 25 writes, then one per 5 minutes")
    func rateLimited() {
        var aggregator = EventAggregator()
        let start = Date(timeIntervalSince1970: 1_000_000)
        var written = 0
        for index in 0..<40 {
            let key = Self.key("flap", "change \(index)")
            if aggregator.record(key, now: start + Double(index) / 10) != .drop { written += 1 }
        }
        #expect(written == 25)
        let next = Self.key("flap", "later")
        #expect(aggregator.record(next, now: start + 60) == .drop)
        #expect(aggregator.record(next, now: start + 310) != .drop)
        // Another object has its own budget.
        #expect(aggregator.record(Self.key("calm", "x"), now: start + 5) != .drop)
    }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes (generous: never a timing assertion).
func eventually(timeout: Duration = .seconds(20), _ what: String = "condition", _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting for \(what)")
    throw CancellationError()
}
