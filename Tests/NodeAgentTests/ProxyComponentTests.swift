import Foundation
import IPVS
import Iptables
import KubeAPI
import Logging
import NodeAgentTesting
import Prometheus
import Proxy
import ServiceLifecycle
import Synchronization
import Testing

@testable import Kubelet
@testable import NodeAgent

/// Keeps sysctl writes in memory (the real ones would change this host).
private final class MemorySysctl: SysctlWriter {
    let values = Mutex<[String: String]>([:])
    func read(_ name: String) -> String? { values.withLock { $0[name] } }
    func write(_ name: String, _ value: String) throws { values.withLock { $0[name] = value } }
}

private struct NoConntrack: ConntrackCleaner {
    func clearUDP(destination ip: Proxy.IPAddress) throws {}
    func clearUDP(nodePort port: Int, family: IPFamily) throws {}
    func clearUDP(destination ip: Proxy.IPAddress, endpoint: Proxy.IPAddress) throws {}
    func clearUDP(nodePort port: Int, endpoint: Proxy.IPAddress) throws {}
}

/// A proxier that only records that it ran (stands in for the IPVS proxier, which another branch supplies).
private final class RecordingProxier: Proxier {
    let ran = Mutex(false)
    func serviceChanged(previous: ServiceObject?, current: ServiceObject?) {}
    func endpointSliceChanged(previous: EndpointSliceObject?, current: EndpointSliceObject?) {}
    func nodeChanged(_ node: NodeObject?) {}
    func servicesSynced() {}
    func endpointSlicesSynced() {}
    func syncNow() async -> SyncOutcome { .notReady }
    func run() async throws {
        ran.withLock { $0 = true }
        try? await gracefulShutdown()
    }
}

/// The proxy half of the daemon, wired as `node-agent run` wires it, over the in-memory nftables.
@Suite("Proxy component wiring")
struct ProxyComponentTests {
    struct Bed {
        var settings: AgentSettings
        let fake = FakeNftables()
        let logs = LogRecorder()
        let registry = PrometheusCollectorRegistry()
        let health = HealthRegistry()

        init(_ flags: [(String, String)]) throws {
            settings = try AgentSettings.resolve(
                file: nil, flags: [("proxy-healthz-bind-address", "127.0.0.1:0"), ("iptables-min-sync-period", "0s")] + flags)
        }

        func component(
            client: (any KubeClientProtocol)? = nil, ipvs: IPVSAvailabilityStub = .absent, factory: IPVSProxierFactory? = nil
        ) -> ProxyComponent {
            let component = ProxyComponent(
                settings: settings, nodeName: "node-a", client: client, ipvsAvailability: { _ in ipvs.value }, ipvsFactory: factory,
                nftables: { [fake] in fake }, conntrack: NoConntrack(), sysctl: MemorySysctl(),
                metricsFactory: PrometheusMetricsFactory(registry: registry), nodeIPAttempts: 3,
                makeLogger: { [logs] in logs.logger(label: $0) })
            component.register(in: health)
            return component
        }

        /// Runs the component's services, then `body`, then shuts them down gracefully.
        func run(_ component: ProxyComponent, _ body: () async throws -> Void) async throws {
            let group = ServiceGroup(
                configuration: .init(services: component.services.map { .init(service: $0) }, gracefulShutdownSignals: [], logger: logs.logger(label: "group")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await body()
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }

        func status() async throws -> [String: Any] {
            let server = StatusServer(identity: .init(nodeName: "node-a", components: [.proxy], startTime: Date()), registry: health, metrics: registry)
            let document = try JSONSerialization.jsonObject(with: try await server.statusDocument()) as? [String: Any]
            return try #require(document?["proxy"] as? [String: Any])
        }

        var metricsText: String {
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
    }

    enum IPVSAvailabilityStub {
        case absent
        case present
        var value: IPVSAvailability {
            switch self {
            case .absent: .unavailable(reason: "the kernel has no IPVS generic netlink family and `modprobe ip_vs` failed: Module ip_vs not found")
            case .present: .available
            }
        }
    }

    @Test("--proxy-mode=ipvs without ip_vs runs the nftables proxier, warns once with the reason, and reports it in /status and a metric")
    func fallback() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("naproxyw-comp-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {clusterIP: 10.96.0.10, ports: [{port: 80, targetPort: 8080}]}
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            endpoints: [{addresses: [10.1.0.1]}]
            ports: [{port: 8080}]
            """.write(to: folder.appendingPathComponent("web.yaml"), atomically: true, encoding: .utf8)
        let bed = try Bed([("proxy-mode", "ipvs"), ("node-ip", "10.250.0.1"), ("pod-manifest-path", folder.path)])
        let component = bed.component()
        #expect(component.state.decision.chosen == .iptables)
        try await bed.run(component) {
            try await eventually("web programmed") {
                bed.fake.table(.ip, "node-agent")?.sets["service-ips"]?.elements["10.96.0.10 . tcp . 80"] == "goto svc-default/web/tcp"
            }
            let status = try await bed.status()
            #expect(status["requestedMode"] as? String == "ipvs")
            #expect(status["proxyMode"] as? String == "iptables")
            #expect((status["fallbackReason"] as? String)?.contains("Module ip_vs not found") == true)
            #expect(status["source"] as? String == "manifests")
            #expect(status["nodePortAddresses"] as? [String] == ["10.250.0.1"])
            #expect(status["services"] as? Int == 1)
            #expect(status["servicesSynced"] as? Bool == true)
            try await eventually("a sync recorded") { try await bed.status()["lastSync"] != nil }
            let checks = await bed.health.evaluate(.all)
            #expect(checks.filter { $0.component == "proxy" }.map(\.name) == ["proxy-sync", "proxy-informers-synced"])
            #expect(checks.allSatisfy { $0.healthy }, "\(checks)")
        }
        #expect(bed.logs.records.filter { $0.level == .warning && $0.message.contains("running the iptables (nf_tables) mode instead") }.count == 1)
        #expect(bed.metricsText.contains(#"node_agent_proxy_mode{mode="iptables",requested="ipvs"} 1"#))
        #expect(bed.metricsText.contains(#"node_agent_proxy_mode{mode="ipvs",requested="ipvs"} 0"#))
    }

    @Test("with the apiserver: NodePorts open on the Node's IPs, Services follow the informers")
    func apiserver() async throws {
        let double = try await APIServerDouble.start()
        var status = NodeStatus()
        status.addresses = [NodeAddress(type: "InternalIP", address: "10.250.0.1")]
        try double.create(KubeAPI.Node(metadata: KubeAPI.ObjectMeta(name: "node-a"), status: status))
        var spec = ServiceSpec()
        spec.type = "NodePort"
        spec.clusterIP = "10.96.0.10"
        spec.ports = [KubeAPI.ServicePort(name: "http", port: 80, targetPort: .int(8080), nodePort: 30080)]
        try double.create(KubeService(metadata: KubeAPI.ObjectMeta(name: "web", namespace: "default"), spec: spec))
        let bed = try Bed([("proxy-mode", "iptables")])
        let component = bed.component(client: InMemoryKubeClient(double: double))
        try await bed.run(component) {
            try await eventually("the NodePort on the Node's IP") {
                let table = bed.fake.table(.ip, "node-agent")
                return table?.sets["nodeport-ips"]?.elements.keys.sorted() == ["10.250.0.1"]
                    && table?.sets["no-endpoint-nodeports"]?.elements["tcp . 30080"] == "goto reject-chain"
            }
            let proxy = try await bed.status()
            #expect(proxy["proxyMode"] as? String == "iptables")
            #expect(proxy["fallbackReason"] == nil)
            #expect(proxy["source"] as? String == "apiserver")
            #expect(proxy["nodeIPs"] as? [String] == ["10.250.0.1"])
        }
        await double.stop()
    }

    @Test("IPVS mode removes the nftables tables; a failing IPVS proxier falls back and the IPVS side cleans up")
    func ipvsFactoryHooks() async throws {
        // An earlier run in iptables mode left its table.
        let bed = try Bed([("proxy-mode", "ipvs"), ("node-ip", "10.250.0.1")])
        var leftover = Transaction(family: .ip, table: "node-agent")
        leftover.add(.table)
        try bed.fake.run(leftover)
        let recording = RecordingProxier()
        let cleanups = Mutex(0)
        let factory = IPVSProxierFactory(make: { _ in recording }, cleanUp: { _ in cleanups.withLock { $0 += 1 } })
        let component = bed.component(ipvs: .present, factory: factory)
        #expect(component.state.decision == .init(requested: .ipvs, chosen: .ipvs))
        try await bed.run(component) {
            try await eventually("the IPVS proxier runs") { recording.ran.withLock { $0 } }
        }
        #expect(bed.fake.table(.ip, "node-agent") == nil)
        #expect(cleanups.withLock { $0 } == 0)

        struct Broken: Error, CustomStringConvertible { var description: String { "kube-ipvs0: Unknown device type" } }
        let failing = IPVSProxierFactory(make: { _ in throw Broken() }, cleanUp: { _ in cleanups.withLock { $0 += 1 } })
        let second = try Bed([("proxy-mode", "ipvs"), ("node-ip", "10.250.0.1")])
        let fallback = second.component(ipvs: .present, factory: failing)
        try await second.run(fallback) {
            try await eventually("the nftables proxier runs instead") { second.fake.table(.ip, "node-agent") != nil }
            let status = try await second.status()
            #expect(status["proxyMode"] as? String == "iptables")
            #expect((status["fallbackReason"] as? String)?.contains("Unknown device type") == true)
        }
        #expect(cleanups.withLock { $0 } == 1)
        #expect(second.metricsText.contains(#"node_agent_proxy_mode{mode="iptables",requested="ipvs"} 1"#))
    }

    @Test("the proxy's flags are validated like every other key")
    func flags() throws {
        let settings = try AgentSettings.resolve(
            file: nil,
            flags: [("nodeport-addresses", "10.0.0.0/8, fd00::/64"), ("masquerade-all", "true"), ("proxy-healthz-bind-address", "127.0.0.1:20256")])
        #expect(settings.nodePortAddresses == ["10.0.0.0/8", "fd00::/64"])
        #expect(settings.masqueradeAll)
        #expect(settings.proxyHealthzBindAddress == BindAddress(host: "127.0.0.1", port: 20256))
        let defaults = try AgentSettings.resolve(file: nil, flags: [])
        #expect(defaults.proxyHealthzBindAddress == BindAddress(host: "0.0.0.0", port: 10256))
        #expect(defaults.healthzBindAddress == BindAddress(host: "127.0.0.1", port: 10248))
        #expect(try AgentSettings.resolve(file: nil, flags: [("nodeport-addresses", "primary")]).nodePortAddresses.isEmpty)
        #expect(try AgentSettings.resolve(file: nil, flags: [("proxy-healthz-bind-address", "")]).proxyHealthzBindAddress == nil)
        let ipvs = try AgentSettings.resolve(
            file: nil,
            flags: [("ipvs-tcp-timeout", "15m"), ("ipvs-tcpfin-timeout", "30s"), ("ipvs-udp-timeout", "1m"), ("ipvs-strict-arp", "true"),
                ("ipvs-exclude-cidrs", "10.0.0.0/8")])
        #expect(ipvs.ipvsTCPTimeout == .seconds(900) && ipvs.ipvsTCPFinTimeout == .seconds(30) && ipvs.ipvsUDPTimeout == .seconds(60))
        #expect(ipvs.ipvsStrictARP && ipvs.ipvsExcludeCIDRs == ["10.0.0.0/8"])
        #expect(defaults.ipvsTCPTimeout == .zero && !defaults.ipvsStrictARP && defaults.ipvsExcludeCIDRs.isEmpty)
        for (key, value, expected) in [
            ("nodeport-addresses", "10.0.0.0/40", "CIDRs"), ("masquerade-all", "maybe", "true or false"),
            ("proxy-healthz-bind-address", "10256", "host:port"), ("ipvs-tcp-timeout", "soon", "duration"),
            ("ipvs-strict-arp", "yes", "true or false"), ("ipvs-exclude-cidrs", "10.0.0.1", "CIDRs"),
        ] {
            #expect {
                _ = try AgentSettings.resolve(file: nil, flags: [(key, value)])
            } throws: { error in
                let error = error as! SettingError
                return error.key == key && error.expected.contains(expected)
            }
        }
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes (generous: never a timing assertion).
private func eventually(timeout: Duration = .seconds(20), _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting for \(what)")
    throw CancellationError()
}

@Suite("standalone Services: the kubelet's pods as local endpoints")
struct KubeletLocalPodsTests {
    static func pod(ready: Bool, ips: [String], deleting: Bool = false, phase: String = "Running") -> (DesiredPod, PodStatus) {
        var pod = Pod(metadata: ObjectMeta(name: "web-0", namespace: "shop"))
        pod.metadata.labels = ["app": "web"]
        if deleting { pod.metadata.deletionTimestamp = KubeTime(Date(timeIntervalSince1970: 1_700_000_000)) }
        var container = Container(name: "httpd", image: "local/busybox:latest")
        container.ports = [ContainerPort(name: "http", containerPort: 8080), ContainerPort(containerPort: 53, protocol: "UDP")]
        pod.spec = PodSpec(containers: [container])
        var status = PodStatus(phase: phase)
        status.podIPs = ips.map(IPAddressEntry.init)
        status.podIP = ips.first
        status.conditions = [PodCondition(type: "Ready", status: ready ? "True" : "False")]
        return (DesiredPod(pod: pod, source: .file), status)
    }

    @Test("a pod becomes its name, labels, IPs, Ready condition and container ports")
    func mapping() {
        let (desired, status) = Self.pod(ready: true, ips: ["10.88.0.5"])
        let local = KubeletLocalPods.localPod(desired, status: status)
        #expect(local == LocalPod(
            namespace: "shop", name: "web-0", labels: ["app": "web"], ips: ["10.88.0.5"], ready: true, terminating: false,
            ports: [.init(name: "http", containerPort: 8080, protocol: nil), .init(name: nil, containerPort: 53, protocol: "UDP")]))
        let (unready, unreadyStatus) = Self.pod(ready: false, ips: [])
        #expect(KubeletLocalPods.localPod(unready, status: unreadyStatus).ready == false)
        let (deleting, deletingStatus) = Self.pod(ready: true, ips: ["10.88.0.5"], deleting: true)
        #expect(KubeletLocalPods.localPod(deleting, status: deletingStatus).terminating)
        let (failed, failedStatus) = Self.pod(ready: false, ips: ["10.88.0.5"], phase: "Failed")
        #expect(KubeletLocalPods.localPod(failed, status: failedStatus).terminating)
    }

    @Test("changes are pushed by the status manager: a new pod, a readiness flip and a forgotten pod each tick", .timeLimit(.minutes(1)))
    func changesFollowTheStatusManager() async throws {
        let manager = StatusManager(client: nil, mirrors: MirrorPodCache(), clock: SystemKubeletClock(), logger: Logger(label: "test"))
        let source = KubeletLocalPods(statusManager: manager)
        var ticks = source.changes().makeAsyncIterator()
        #expect(await ticks.next() != nil)  // the pods already there (none)
        #expect(await source.pods().isEmpty)

        var (desired, status) = Self.pod(ready: false, ips: ["10.88.0.5"])
        desired.pod.metadata.uid = "uid-1"
        manager.set(desired, status: status)
        #expect(await ticks.next() != nil)
        #expect(await source.pods().map(\.ready) == [false])

        status.conditions = [PodCondition(type: "Ready", status: "True")]
        manager.set(desired, status: status)
        #expect(await ticks.next() != nil)
        #expect(await source.pods().map(\.ready) == [true])

        manager.forget("uid-1")
        #expect(await ticks.next() != nil)
        #expect(await source.pods().isEmpty)
    }
}
