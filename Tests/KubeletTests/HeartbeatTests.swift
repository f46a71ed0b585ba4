import Foundation
import KubeAPI
import Logging
import NodeAgentTesting
import ServiceLifecycle
import Synchronization
import Testing

@testable import Kubelet

/// A node wired to an API server double over real HTTP, with a manual clock driving every loop.
private final class HeartbeatFixture: Sendable {
    let double: APIServerDouble
    let client: KubeClient
    let clock = ManualClock()
    let configuration: NodeConfiguration
    let state: HeartbeatState
    let registration: NodeRegistration
    let recorder = LogRecorder()
    let readiness = Mutex(RuntimeReadiness(runtimeVersion: "containerd://1.6.20"))

    static let machine = MachineInfo(
        machineID: "m-1", bootID: "b-1", systemUUID: "u-1", kernelVersion: "6.1.0-28-amd64", osImage: "Debian GNU/Linux 12 (bookworm)",
        architecture: "amd64", cpuCount: 4, memoryBytes: 8 << 30, filesystemBytes: 100 << 30
    )

    init(double: APIServerDouble? = nil, nodeName: String = "node-a", configure: (inout NodeConfiguration) -> Void = { _ in }) async throws {
        if let double {
            self.double = double
        } else {
            self.double = try await APIServerDouble.start()
        }
        client = try KubeClient(configuration: try self.double.clientConfiguration(), logger: recorder.logger(label: "client", level: .info))
        var configuration = NodeConfiguration(nodeName: nodeName, kubeletVersion: "v1.32.0-node-agent.0.1.0")
        configure(&configuration)
        self.configuration = configuration
        let clock = self.clock
        state = HeartbeatState(nodeName: nodeName, leaseDuration: configuration.leaseDuration, renewInterval: configuration.leaseRenewInterval) {
            clock.date
        }
        let builder = NodeStatusBuilder(configuration: configuration, machine: Self.machine, addresses: [])
        registration = NodeRegistration(
            client: client, configuration: configuration, labels: builder.labels, logger: recorder.logger(label: "kubelet", level: .info),
            sleep: { try await clock.sleep(for: $0) }
        )
    }

    func leaseController() -> NodeLeaseController<ManualClock> {
        let clock = self.clock
        return NodeLeaseController(
            client: client, registration: registration, configuration: configuration, state: state, clock: clock, now: { clock.date },
            logger: recorder.logger(label: "kubelet", level: .info))
    }

    func statusController() -> NodeStatusController<ManualClock> {
        let clock = self.clock
        let sources = NodeStatusController<ManualClock>.Sources(
            machine: { Self.machine },
            readings: {
                ResourceReadings(
                    memoryAvailableBytes: 4 << 30, memoryCapacityBytes: 8 << 30, filesystemAvailableBytes: 50 << 30,
                    filesystemCapacityBytes: 100 << 30, inodesFree: 900, inodes: 1000, processes: 100, pidMax: 32768)
            },
            readiness: { [self] in self.readiness.withLock { $0 } },
            addresses: { [NodeAddress(type: "InternalIP", address: "10.250.0.1"), NodeAddress(type: "Hostname", address: "node-a")] }
        )
        return NodeStatusController(
            client: client, registration: registration, configuration: configuration, sources: sources, state: state, clock: clock,
            now: { clock.date }, logger: recorder.logger(label: "kubelet", level: .info))
    }

    func node() async throws -> Node { try await client.get(Node.self, namespace: nil, name: configuration.nodeName) }

    func lease() async throws -> Lease { try await client.get(Lease.self, namespace: "kube-node-lease", name: configuration.nodeName) }

    /// The Lease as stored, read without an API request (so request counts stay the daemon's own).
    func storedLease() throws -> Lease? {
        try double.object(Lease.resourceType, namespace: "kube-node-lease", name: configuration.nodeName).map { try $0.decode(as: Lease.self) }
    }

    /// Waits in real time (up to 10 s) until `condition` holds.
    func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while !((try? await condition()) ?? false) {
            guard ContinuousClock.now < deadline else { throw DoubleError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func shutdown() async {
        try? await client.shutdown()
        await double.stop()
    }

    /// Runs `body` with a fixture and always shuts its client and double down (an unshut HTTP client traps).
    static func with(
        double: APIServerDouble? = nil, configure: (inout NodeConfiguration) -> Void = { _ in }, _ body: (HeartbeatFixture) async throws -> Void
    ) async throws {
        let fixture = try await HeartbeatFixture(double: double, configure: configure)
        do {
            try await body(fixture)
        } catch {
            await fixture.shutdown()
            throw error
        }
        await fixture.shutdown()
    }
}

/// Runs `services` in a ServiceGroup for the duration of `body`, then shuts them down gracefully.
private func running(_ services: [any Service], _ body: () async throws -> Void) async throws {
    let group = ServiceGroup(configuration: .init(services: services, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }))
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            try await body()
        } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}

@Suite("Node registration and heartbeats against the API server double", .serialized)
struct HeartbeatTests {
    @Test("registration creates a complete Node, and the first status round fills its status")
    func registrationCreatesNode() async throws {
        try await HeartbeatFixture.with(configure: { $0.labels = ["pool": "blue"]; $0.taints = [Taint(key: "dedicated", value: "infra", effect: "NoSchedule")] }) { fixture in
            try await running([fixture.statusController()]) {
                try await fixture.eventually("node status") { try await fixture.node().status?.nodeInfo != nil }
            }
            let node = try await fixture.node()
            #expect(node.metadata.labels?["kubernetes.io/hostname"] == "node-a")
            #expect(node.metadata.labels?["kubernetes.io/arch"] == "amd64")
            #expect(node.metadata.labels?["pool"] == "blue")
            #expect(node.spec?.taints == [Taint(key: "dedicated", value: "infra", effect: "NoSchedule")])
            let status = try #require(node.status)
            #expect(status.capacity?["cpu"] == Quantity(4))
            #expect(status.capacity?["memory"]?.text == "8388608Ki")
            #expect(status.capacity?["pods"] == Quantity(110))
            // allocatable memory = capacity - the 100Mi hard eviction threshold
            #expect(status.allocatable?["memory"]?.text == "\((8 << 20) - 100 * 1024)Ki")
            #expect(status.nodeInfo?.kubeletVersion == "v1.32.0-node-agent.0.1.0")
            #expect(status.nodeInfo?.containerRuntimeVersion == "containerd://1.6.20")
            #expect(status.nodeInfo?.bootID == "b-1")
            #expect(status.daemonEndpoints?.kubeletEndpoint?.port == 10250)
            #expect(status.addresses?.contains(NodeAddress(type: "InternalIP", address: "10.250.0.1")) == true)
            let ready = try #require(status.conditions?.first { $0.type == "Ready" })
            #expect(ready.status == "True" && ready.reason == "KubeletReady")
            #expect(Set(status.conditions?.map(\.type) ?? []) == ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"])
        }
    }

    @Test("a second start adopts the existing Node: our labels set, others' labels and taints kept")
    func adoptsExistingNode() async throws {
        let double = try await APIServerDouble.start()
        var existing = Node(metadata: ObjectMeta(name: "node-a", labels: ["team": "storage", "kubernetes.io/hostname": "stale"]))
        var spec = NodeSpec()
        spec.taints = [Taint(key: "node.kubernetes.io/unschedulable", effect: "NoSchedule")]
        existing.spec = spec
        try double.create(existing)
        try await HeartbeatFixture.with(double: double, configure: { $0.taints = [Taint(key: "dedicated", value: "infra", effect: "NoSchedule")] }) { fixture in
            let node = try await fixture.registration.node()
            #expect(node.metadata.labels?["team"] == "storage")
            #expect(node.metadata.labels?["kubernetes.io/hostname"] == "node-a")
            #expect(node.spec?.taints?.count == 2)
            #expect(fixture.double.requestCount("CREATE", "nodes") == 1)
            #expect(fixture.double.requestCount("UPDATE", "nodes") == 1)
        }
    }

    @Test("the Lease is created with an owner reference and renewed every 10 s over two simulated minutes, without GETs")
    func leaseRenewalsOnTheGrid() async throws {
        try await HeartbeatFixture.with { fixture in
            try await running([fixture.leaseController()]) {
                try await fixture.eventually("first renewal") { fixture.state.renewAge != nil }
                try await fixture.clock.waitForSleepers()
                let lease = try #require(try fixture.storedLease())
                let node = try await fixture.node()
                #expect(lease.spec?.holderIdentity == "node-a")
                #expect(lease.spec?.leaseDurationSeconds == 40)
                #expect(lease.metadata.ownerReferences?.first?.uid == node.metadata.uid)
                let getsAfterCreate = fixture.double.requestCount("GET", "leases.coordination.k8s.io")
                var renewTimes = [try #require(lease.spec?.renewTime?.date)]
                for round in 1...12 {
                    let updates = fixture.double.requestCount("UPDATE", "leases.coordination.k8s.io")
                    fixture.clock.advance(by: .seconds(10))
                    try await fixture.eventually("renewal \(round)") { fixture.double.requestCount("UPDATE", "leases.coordination.k8s.io") == updates + 1 }
                    try await fixture.clock.waitForSleepers()
                    renewTimes.append(try #require(fixture.storedLease()?.spec?.renewTime?.date))
                }
                let gaps = zip(renewTimes.dropFirst(), renewTimes).map { $0.timeIntervalSince($1) }
                #expect(gaps.allSatisfy { abs($0 - 10) <= 0.1 }, "gaps \(gaps)")
                #expect(fixture.double.requestCount("GET", "leases.coordination.k8s.io") == getsAfterCreate, "renewals must not GET")
                #expect(fixture.state.snapshot.consecutiveFailures == 0)
            }
        }
    }

    @Test("a 409 on the Lease is handled by re-reading it within the same round")
    func leaseConflict() async throws {
        try await HeartbeatFixture.with { fixture in
            try await running([fixture.leaseController()]) {
                try await fixture.eventually("first renewal") { fixture.state.renewAge != nil }
                try await fixture.clock.waitForSleepers()
                // Another writer bumps the Lease: the cached copy is now stale.
                try fixture.double.mergePatch(Lease.resourceType, namespace: "kube-node-lease", name: "node-a", ["metadata": ["labels": ["touched": "yes"]]])
                let gets = fixture.double.requestCount("GET", "leases.coordination.k8s.io")
                fixture.clock.advance(by: .seconds(10))
                try await fixture.eventually("re-read after the conflict") { fixture.double.requestCount("GET", "leases.coordination.k8s.io") == gets + 1 }
                try await fixture.clock.waitForSleepers()
                #expect(fixture.state.snapshot.consecutiveFailures == 0)
                #expect(fixture.state.renewAge == 0)
                #expect(try fixture.storedLease()?.metadata.labels?["touched"] == "yes")
            }
        }
    }

    @Test("status is patched only when it changes or every 5 minutes")
    func statusPatchedOnChangeOrReportFrequency() async throws {
        try await HeartbeatFixture.with { fixture in
            func patches() -> Int { fixture.double.requestCount("PATCH", "nodes") }
            try await running([fixture.statusController()]) {
                try await fixture.eventually("first patch") { patches() == 1 }
                try await fixture.clock.waitForSleepers()
                let firstTransition = try #require(try await fixture.node().status?.conditions?.first { $0.type == "Ready" }?.lastTransitionTime)
                for _ in 1...29 {  // 290 s unchanged: no patch
                    fixture.clock.advance(by: .seconds(10))
                    try await fixture.clock.waitForSleepers()
                }
                #expect(patches() == 1)
                fixture.clock.advance(by: .seconds(10))  // 300 s: report frequency reached
                try await fixture.eventually("report after 5 minutes") { patches() == 2 }
                try await fixture.clock.waitForSleepers()
                let reported = try #require(try await fixture.node().status?.conditions?.first { $0.type == "Ready" })
                #expect(reported.lastTransitionTime == firstTransition, "transition time moves only when status changes")
                #expect(reported.lastHeartbeatTime?.date == fixture.clock.date)

                fixture.readiness.withLock { $0.runtimeProblem = "containerd socket refused connections" }
                fixture.clock.advance(by: .seconds(10))
                try await fixture.eventually("patch on change") { patches() == 3 }
                try await fixture.clock.waitForSleepers()
                let notReady = try #require(try await fixture.node().status?.conditions?.first { $0.type == "Ready" })
                #expect(notReady.status == "False" && notReady.reason == "KubeletNotReady")
                #expect(notReady.message == "container runtime is down: containerd socket refused connections")
                #expect(notReady.lastTransitionTime?.date == fixture.clock.date)
            }
            // Graceful shutdown posts a last status.
            #expect(patches() == 4)
        }
    }

    @Test("conditions owned by others survive a status patch")
    func othersConditionsKept() async throws {
        try await HeartbeatFixture.with { fixture in
            _ = try await fixture.registration.node()
            try fixture.double.mergePatch(
                Node.resourceType, namespace: nil, name: "node-a",
                ["status": ["conditions": [["type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated"]]]], status: true)
            try await running([fixture.statusController()]) {
                try await fixture.eventually("first patch") { fixture.double.requestCount("PATCH", "nodes") == 1 }
            }
            let types = Set(try await fixture.node().status?.conditions?.map(\.type) ?? [])
            #expect(types == ["NetworkUnavailable", "Ready", "MemoryPressure", "DiskPressure", "PIDPressure"])
        }
    }

    @Test("apiserver down for 2 minutes: failures counted, stale after the lease duration, recovered within one interval of its return")
    func apiserverOutage() async throws {
        try await HeartbeatFixture.with { fixture in
            let port = fixture.double.url.port!
            try await running([fixture.leaseController()]) {
                try await fixture.eventually("first renewal") { fixture.state.renewAge != nil }
                try await fixture.clock.waitForSleepers()
                var node = try #require(fixture.double.object(Node.resourceType, namespace: nil, name: "node-a")).decode(as: Node.self)
                var lease = try #require(try fixture.storedLease())
                // What etcd kept; the restarted apiserver serves it under new resourceVersions.
                node.metadata.resourceVersion = nil
                lease.metadata.resourceVersion = nil
                await fixture.double.stop()
                for second in stride(from: 10, through: 120, by: 10) {
                    fixture.clock.advance(by: .seconds(10))
                    try await fixture.eventually("failed round at \(second) s") { fixture.state.snapshot.consecutiveFailures == second / 10 }
                    try await fixture.clock.waitForSleepers()
                    #expect(fixture.state.isFresh == (second <= 40))
                }
                let snapshot = fixture.state.snapshot
                #expect(snapshot.apiserverReachable == false)
                #expect(snapshot.totalFailures == 12, "one failed round per interval, each of five tries")
                #expect(snapshot.lastError?.contains("node-a") == true)

                // The apiserver comes back on the same address with its data (a new resourceVersion epoch).
                let revived = try await APIServerDouble.start(.init(tls: .none, port: port))
                try revived.create(node)
                try revived.create(lease)
                fixture.clock.advance(by: .seconds(10))
                try await fixture.eventually("renewal after the return") { fixture.state.snapshot.consecutiveFailures == 0 }
                #expect(fixture.state.isFresh)
                #expect(fixture.state.renewAge == 0)
                await revived.stop()
            }
        }
    }
}
