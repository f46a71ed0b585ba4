import Foundation
import Proxy
import Testing

@Suite("Service change tracking")
struct ServiceChangeTrackerTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var service: ServiceObject
        var family: IPFamily = .ipv4
        /// Expected port names (`ns/name:port/proto`), or nil when an error is expected.
        var ports: [String]?
        /// Field named by the expected error.
        var errorField: String?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "two ports, TCP and UDP",
            service: Fixtures.service("dns", ports: [.init(name: "dns-tcp", protocol: "TCP", port: 53), .init(name: "dns", protocol: "UDP", port: 53)]),
            ports: ["default/dns:dns-tcp/tcp", "default/dns:dns/udp"]
        ),
        Case(name: "unnamed single port", service: Fixtures.service("web", ports: [.init(port: 80)]), ports: ["default/web:tcp"]),
        Case(name: "SCTP port", service: Fixtures.service("s", ports: [.init(name: "s", protocol: "SCTP", port: 9999)]), ports: ["default/s:s/sctp"]),
        Case(name: "headless Service is skipped", service: Fixtures.service("h", clusterIP: "None"), ports: []),
        Case(name: "ExternalName Service is skipped", service: Fixtures.service("x", type: "ExternalName", clusterIP: nil), ports: []),
        Case(
            name: "a Service handed to another proxy is skipped",
            service: Fixtures.service("other", labels: ["service.kubernetes.io/service-proxy-name": "other-proxy"]),
            ports: []
        ),
        Case(
            name: "dual-stack Service: the IPv6 proxier takes the IPv6 cluster IP",
            service: Fixtures.service("ds", clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10", "fd00::10"]),
            family: .ipv6,
            ports: ["default/ds:http/tcp"]
        ),
        Case(name: "IPv4-only Service is not the IPv6 proxier's", service: Fixtures.service("v4"), family: .ipv6, ports: []),
        Case(name: "port out of range", service: Fixtures.service("bad", ports: [.init(name: "p", port: 70000)]), errorField: "spec.ports[0].port"),
        Case(name: "unparsable cluster IP", service: Fixtures.service("bad", clusterIP: "10.96.0.300"), errorField: "spec.clusterIP"),
        Case(name: "unknown protocol", service: Fixtures.service("bad", ports: [.init(name: "p", protocol: "ICMP", port: 1)]), errorField: "spec.ports[0].protocol"),
        Case(name: "unparsable external IP", service: Fixtures.service("bad", externalIPs: ["1.2.3"]), errorField: "spec.externalIPs[0]"),
        Case(name: "affinity timeout out of range", service: Fixtures.service("bad", affinity: 100_000), errorField: "spec.sessionAffinityConfig.clientIP.timeoutSeconds"),
        Case(
            name: "duplicate port name",
            service: Fixtures.service("bad", ports: [.init(name: "a", port: 1), .init(name: "a", port: 2)]),
            errorField: "spec.ports[1].name"
        ),
    ]

    @Test("a Service becomes the ports kube-proxy would serve, or an error naming the field", arguments: cases)
    func conversion(_ testCase: Case) {
        var tracker = ServiceChangeTracker(family: testCase.family)
        let (pending, error) = tracker.update(previous: nil, current: testCase.service)
        if let field = testCase.errorField {
            #expect(error?.field == field)
            #expect(error?.description.contains("Service default/bad") == true)
            #expect(!pending)
            return
        }
        #expect(error == nil)
        let changes = tracker.checkout()
        let names = changes.values.flatMap { $0.current.keys }.map(\.description).sorted()
        #expect(names == (testCase.ports ?? []).sorted())
        #expect(pending == !(testCase.ports ?? []).isEmpty)
    }

    @Test("affinity, traffic policies and NodePorts carry over")
    func fields() throws {
        var tracker = ServiceChangeTracker(family: .ipv4)
        tracker.update(
            previous: nil,
            current: Fixtures.service(
                "np", type: "LoadBalancer",
                ports: [.init(name: "http", port: 80, nodePort: 30080)],
                externalIPs: ["192.0.2.1", "2001:db8::1"], affinity: 600, externalTrafficPolicy: "Local",
                healthCheckNodePort: 32000, loadBalancerIPs: ["198.51.100.7"]
            )
        )
        let port = try #require(tracker.checkout().values.first?.current.values.first)
        #expect(port.nodePort == 30080)
        #expect(port.externalIPs == [Fixtures.ip("192.0.2.1")])
        #expect(port.loadBalancerVIPs == [Fixtures.ip("198.51.100.7")])
        #expect(port.stickySeconds == 600)
        #expect(port.externalPolicyLocal)
        #expect(!port.internalPolicyLocal)
        #expect(port.healthCheckNodePort == 32000)
        #expect(port.usesLocalEndpoints && port.usesClusterEndpoints)
    }

    @Test("externalTrafficPolicy Local means nothing for a Service nobody reaches from outside")
    func localPolicyNeedsExternalAccess() throws {
        var tracker = ServiceChangeTracker(family: .ipv4)
        tracker.update(previous: nil, current: Fixtures.service("c", externalTrafficPolicy: "Local"))
        let port = try #require(tracker.checkout().values.first?.current.values.first)
        #expect(!port.externalPolicyLocal)
        #expect(!port.usesLocalEndpoints)
    }

    @Test("changes that cancel out leave nothing pending")
    func cancelling() {
        var tracker = ServiceChangeTracker(family: .ipv4)
        let web = Fixtures.service("web")
        tracker.update(previous: nil, current: web)
        tracker.update(previous: web, current: nil)
        #expect(tracker.pendingCount == 0)
        tracker.update(previous: nil, current: web)
        _ = tracker.checkout()
        tracker.update(previous: web, current: web)
        #expect(tracker.pendingCount == 0)
        var moved = web
        moved.spec.clusterIP = "10.96.0.11"
        tracker.update(previous: web, current: moved)
        tracker.update(previous: moved, current: web)
        #expect(tracker.pendingCount == 0)
    }

    @Test("an invalid update keeps what was served and reports the field")
    func invalidUpdateKeepsPrevious() {
        var tracker = ServiceChangeTracker(family: .ipv4)
        let web = Fixtures.service("web")
        tracker.update(previous: nil, current: web)
        var map = ServicePortMap()
        _ = map.apply(tracker.checkout())
        var broken = web
        broken.spec.ports = [.init(name: "http", port: 0)]
        let (pending, error) = tracker.update(previous: web, current: broken)
        #expect(!pending)
        #expect(error?.field == "spec.ports[0].port")
        // A later valid update is compared with what is served, not with the broken object.
        var fixed = web
        fixed.spec.ports = [.init(name: "http", port: 81)]
        tracker.update(previous: broken, current: fixed)
        let change = tracker.checkout().values.first
        #expect(change?.previous.values.first?.port == 80)
        #expect(change?.current.values.first?.port == 81)
    }

    @Test("removing a UDP port reports its cluster IP for conntrack cleanup")
    func udpRemoval() {
        var tracker = ServiceChangeTracker(family: .ipv4)
        let dns = Fixtures.service("dns", ports: [.init(name: "dns", protocol: "UDP", port: 53)], externalIPs: ["192.0.2.5"])
        tracker.update(previous: nil, current: dns)
        var map = ServicePortMap()
        _ = map.apply(tracker.checkout())
        tracker.update(previous: dns, current: nil)
        let update = map.apply(tracker.checkout())
        #expect(update.deletedUDPClusterIPs == [Fixtures.ip("10.96.0.10"), Fixtures.ip("192.0.2.5")])
        #expect(update.deletedServices == [NamespacedName("default", "dns")])
        #expect(map.isEmpty)
    }
}

@Suite("EndpointSlice change tracking")
struct EndpointsChangeTrackerTests {
    let web = ServicePortName(NamespacedName("default", "web"), port: "http", protocol: .tcp)

    @Test("slices of one Service merge into endpoints per port; the same address in two slices counts once")
    func merge() {
        var tracker = EndpointsChangeTracker(family: .ipv4, nodeName: "node-a")
        tracker.update(Fixtures.slice("web-1", service: "web", endpoints: [.init(ip: "10.1.0.1", node: "node-a"), .init(ip: "10.1.0.2")]), removed: false)
        tracker.update(Fixtures.slice("web-2", service: "web", endpoints: [.init(ip: "10.1.0.3"), .init(ip: "10.1.0.2", ready: false)]), removed: false)
        let (changes, _) = tracker.checkout()
        let endpoints = changes[NamespacedName("default", "web")]?.current[web] ?? []
        #expect(endpoints.map(\.description) == ["10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.3:8080"])
        #expect(endpoints.first?.isLocal == true)
        #expect(endpoints[1].ready)
    }

    @Test("slices of the other family and FQDN slices are ignored")
    func families() {
        var tracker = EndpointsChangeTracker(family: .ipv4, nodeName: "n")
        #expect(tracker.update(Fixtures.slice("v6", service: "web", addressType: "IPv6", endpoints: [.init(ip: "fd00::1")]), removed: false).pending == false)
        #expect(tracker.update(Fixtures.slice("f", service: "web", addressType: "FQDN", endpoints: [.init(ip: "example.com")]), removed: false).pending == false)
        var v6 = EndpointsChangeTracker(family: .ipv6, nodeName: "n")
        v6.update(Fixtures.slice("v6", service: "web", addressType: "IPv6", endpoints: [.init(ip: "fd00::1")]), removed: false)
        #expect(v6.checkout().changes.values.first?.current[web]?.first?.description == "[fd00::1]:8080")
    }

    @Test("an unparsable address is reported and skipped; the slice's other endpoints still count")
    func badAddress() {
        var tracker = EndpointsChangeTracker(family: .ipv4, nodeName: "n")
        let (pending, error) = tracker.update(Fixtures.slice("web-1", service: "web", endpoints: [.init(ip: "10.1.0.999"), .init(ip: "10.1.0.2")]), removed: false)
        #expect(pending)
        #expect(error?.field == "endpoints[0].addresses[0]")
        #expect(error?.description.contains("EndpointSlice default/web-1") == true)
        #expect(tracker.checkout().changes.values.first?.current[web]?.map(\.description) == ["10.1.0.2:8080"])
    }

    @Test("a slice without its Service label is refused with the label named")
    func missingLabel() {
        var tracker = EndpointsChangeTracker(family: .ipv4, nodeName: "n")
        var slice = Fixtures.slice("orphan", service: "web", endpoints: [.init(ip: "10.1.0.1")])
        slice.metadata.labels = [:]
        let (pending, error) = tracker.update(slice, removed: false)
        #expect(!pending)
        #expect(error?.field.contains("kubernetes.io/service-name") == true)
    }

    @Test("a removed UDP endpoint is reported stale, and a UDP Service that gains its first endpoint is newly active")
    func udpStaleness() {
        var tracker = EndpointsChangeTracker(family: .ipv4, nodeName: "n")
        let dnsPorts = [EndpointPortObject(name: "dns", protocol: "UDP", port: 53)]
        let dns = ServicePortName(NamespacedName("default", "dns"), port: "dns", protocol: .udp)
        var map = EndpointsMap()
        tracker.update(Fixtures.slice("dns-1", service: "dns", ports: dnsPorts, endpoints: []), removed: false)
        _ = map.apply(tracker.checkout().changes)
        tracker.update(Fixtures.slice("dns-1", service: "dns", ports: dnsPorts, endpoints: [.init(ip: "10.1.0.1")]), removed: false)
        let first = map.apply(tracker.checkout().changes)
        #expect(first.newlyActiveUDPServices == [dns])
        tracker.update(Fixtures.slice("dns-1", service: "dns", ports: dnsPorts, endpoints: [.init(ip: "10.1.0.2")]), removed: false)
        let second = map.apply(tracker.checkout().changes)
        #expect(second.deletedUDPEndpoints.map(\.endpoint.description) == ["10.1.0.1:53"])
        #expect(second.newlyActiveUDPServices.isEmpty)
        tracker.update(Fixtures.slice("dns-1", service: "dns", ports: dnsPorts, endpoints: []), removed: true)
        _ = map.apply(tracker.checkout().changes)
        #expect(map[dns] == nil)
    }

    @Test("the trigger-time annotation is kept for network programming latency")
    func triggerTimes() {
        var tracker = EndpointsChangeTracker(family: .ipv4, nodeName: "n")
        let when = Date(timeIntervalSince1970: 1_700_000_000)
        tracker.update(Fixtures.slice("web-1", service: "web", endpoints: [.init(ip: "10.1.0.1")], trigger: when), removed: false)
        #expect(tracker.checkout().triggerTimes[NamespacedName("default", "web")] == [when])
    }
}

@Suite("Endpoint selection")
struct EndpointSelectionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var endpoints: [Endpoint]
        var internalLocal = false
        var externalLocal = false
        var external = false
        var zone: String? = nil
        var cluster: [String]
        var local: [String]
        var hasAny: Bool
        var testDescription: String { name }
    }

    static func ep(_ last: Int, ready: Bool = true, serving: Bool? = nil, terminating: Bool = false, local: Bool = false, zones: Set<String>? = nil) -> Endpoint {
        Endpoint(ip: IPAddress("10.1.0.\(last)")!, port: 80, ready: ready, serving: serving, terminating: terminating, isLocal: local, zoneHints: zones)
    }

    static let cases: [Case] = [
        Case(name: "ready endpoints only", endpoints: [ep(1), ep(2, ready: false)], cluster: ["10.1.0.1:80"], local: [], hasAny: true),
        Case(
            name: "no ready endpoint: fall back to serving and terminating",
            endpoints: [ep(1, ready: false, serving: true, terminating: true), ep(2, ready: false, serving: false, terminating: true)],
            cluster: ["10.1.0.1:80"], local: [], hasAny: true
        ),
        Case(name: "nothing usable", endpoints: [ep(1, ready: false)], cluster: [], local: [], hasAny: false),
        Case(
            name: "internalTrafficPolicy Local: local ready endpoints only",
            endpoints: [ep(1, local: true), ep(2)], internalLocal: true, cluster: [], local: ["10.1.0.1:80"], hasAny: true
        ),
        Case(
            name: "internalTrafficPolicy Local with no local endpoint: nothing, but not rejected",
            endpoints: [ep(2)], internalLocal: true, cluster: [], local: [], hasAny: true
        ),
        Case(
            name: "externalTrafficPolicy Local on a NodePort: cluster for internal, local for external",
            endpoints: [ep(1, local: true), ep(2)], externalLocal: true, external: true,
            cluster: ["10.1.0.1:80", "10.1.0.2:80"], local: ["10.1.0.1:80"], hasAny: true
        ),
        Case(
            name: "topology hints for this zone are followed",
            endpoints: [ep(1, zones: ["a"]), ep(2, zones: ["b"])], zone: "a", cluster: ["10.1.0.1:80"], local: [], hasAny: true
        ),
        Case(
            name: "topology hints are ignored when one ready endpoint lacks them",
            endpoints: [ep(1, zones: ["a"]), ep(2)], zone: "a", cluster: ["10.1.0.1:80", "10.1.0.2:80"], local: [], hasAny: true
        ),
        Case(
            name: "topology hints are ignored when none names this zone",
            endpoints: [ep(1, zones: ["b"]), ep(2, zones: ["b"])], zone: "a", cluster: ["10.1.0.1:80", "10.1.0.2:80"], local: [], hasAny: true
        ),
    ]

    @Test("endpoints are chosen as kube-proxy chooses them", arguments: cases)
    func select(_ testCase: Case) {
        let port = ServicePort(
            clusterIP: IPAddress("10.96.0.1")!, port: 80, protocol: .tcp, nodePort: testCase.external ? 30080 : 0,
            externalIPs: [], loadBalancerVIPs: [], stickySeconds: nil,
            externalPolicyLocal: testCase.externalLocal, internalPolicyLocal: testCase.internalLocal, healthCheckNodePort: 0
        )
        let selection = EndpointSelection(endpoints: testCase.endpoints, port: port, nodeZone: testCase.zone)
        #expect(selection.clusterEndpoints.map(\.description) == testCase.cluster)
        #expect(selection.localEndpoints.map(\.description) == testCase.local)
        #expect(selection.hasAnyEndpoints == testCase.hasAny)
    }
}
