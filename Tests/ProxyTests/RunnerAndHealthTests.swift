import Foundation
import Logging
import Metrics
@testable import Proxy
import ServiceLifecycle
import Synchronization
import Testing
import NodeAgentTesting

@Suite("Bounded-frequency runner state machine")
struct BoundedFrequencyRunnerTests {
    typealias Machine = BoundedFrequencyRunnerStateMachine<ContinuousClock.Instant>
    let t0 = ContinuousClock.now

    @Test("the first run is immediate")
    func firstRun() {
        let machine = Machine(minInterval: .seconds(1), maxInterval: .seconds(30))
        #expect(machine.next(now: t0) == .run)
    }

    @Test("requests within the minimum interval are batched into one run at its end")
    func minInterval() {
        var machine = Machine(minInterval: .seconds(1), maxInterval: .seconds(30))
        machine.started(at: t0)
        machine.request()
        machine.request()
        #expect(machine.next(now: t0 + .milliseconds(200)) == .sleep(until: t0 + .seconds(1)))
        #expect(machine.next(now: t0 + .seconds(1)) == .run)
        machine.started(at: t0 + .seconds(1))
        #expect(machine.next(now: t0 + .seconds(2)) == .sleep(until: t0 + .seconds(31)))
    }

    @Test("without requests it still runs once per maximum interval (the periodic resync)")
    func maxInterval() {
        var machine = Machine(minInterval: .seconds(1), maxInterval: .seconds(30))
        machine.started(at: t0)
        #expect(machine.next(now: t0 + .seconds(29)) == .sleep(until: t0 + .seconds(30)))
        #expect(machine.next(now: t0 + .seconds(30)) == .run)
    }

    @Test("a retry is honoured, but never sooner than the minimum interval")
    func retry() {
        var machine = Machine(minInterval: .seconds(2), maxInterval: .seconds(30))
        machine.started(at: t0)
        machine.retry(after: .milliseconds(500), now: t0)
        #expect(machine.next(now: t0 + .seconds(1)) == .sleep(until: t0 + .seconds(2)))
        machine.retry(after: .seconds(10), now: t0)
        #expect(machine.next(now: t0 + .seconds(2)) == .run)
    }

    @Test("the runner service runs the body on request and stops on graceful shutdown")
    func service() async throws {
        let runs = Mutex(0)
        let runner = BoundedFrequencyRunner(name: "test", minInterval: .zero, maxInterval: .seconds(3600)) {
            runs.withLock { $0 += 1 }
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: runner)], logger: .init(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for _ in 0..<200 where runs.withLock({ $0 }) < 1 { try await Task.sleep(for: .milliseconds(10)) }
            runner.requestSync()
            for _ in 0..<200 where runs.withLock({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(10)) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(runs.withLock { $0 } >= 2)
    }

    @Test("a request that must wait for the minimum interval still runs once the interval has passed")
    func requestWithinMinimumInterval() async throws {
        let runs = Mutex(0)
        let runner = BoundedFrequencyRunner(name: "test", minInterval: .seconds(1), maxInterval: .seconds(3600)) {
            runs.withLock { $0 += 1 }
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: runner)], logger: .init(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for _ in 0..<500 where runs.withLock({ $0 }) < 1 { try await Task.sleep(for: .milliseconds(10)) }
            // Two requests inside the minimum interval: the first cancels a sleeper, the second must still run.
            runner.requestSync()
            try await Task.sleep(for: .milliseconds(50))
            runner.requestSync()
            for _ in 0..<1000 where runs.withLock({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(10)) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(runs.withLock { $0 } >= 2, "a request waiting for the minimum interval never ran")
    }
}

@Suite("Proxy health")
struct ProxyHealthTests {
    final class Clock: Sendable {
        let time = Mutex(Date(timeIntervalSince1970: 1_000_000))
        func advance(_ seconds: Double) { time.withLock { $0 = $0.addingTimeInterval(seconds) } }
        var now: Date { time.withLock { $0 } }
    }

    @Test("healthy until a queued change waits longer than the timeout; a sync heals it")
    func timeout() {
        let clock = Clock()
        let health = ProxyHealth(timeout: .seconds(60)) { clock.now }
        #expect(health.report().healthy)
        health.queued(.ipv4)
        clock.advance(59)
        #expect(health.healthzResponse().status == 200)
        clock.advance(2)
        #expect(health.healthzResponse().status == 503)
        health.updated(.ipv4)
        let (status, body) = health.healthzResponse()
        #expect(status == 200)
        #expect(body.contains("\"healthy\":true"))
        #expect(body.contains("\"lastUpdated\":\"1970-01-12T13:47:41Z\""))
        #expect(body.contains("\"currentTime\""))
    }

    @Test("health-check node ports answer 200 with local endpoints and 503 without")
    func serviceHealth() async throws {
        let health = ProxyHealth(timeout: .seconds(60))
        let server = ServiceHealthServer(host: "127.0.0.1", health: health, logger: .init(label: "test"))
        let port = Int.random(in: 42000...42999)
        let service = NamespacedName("default", "lb")
        await server.sync([port: .init(service: service, localEndpoints: 2)])
        defer { Task { await server.closeAll() } }
        #expect(server.ports == [port])
        let (data, response) = try await fetch("http://127.0.0.1:\(port)/")
        #expect(response == 200)
        #expect(String(decoding: data, as: UTF8.self).contains("\"localEndpoints\":2"))
        await server.sync([port: .init(service: service, localEndpoints: 0)])
        #expect(try await fetch("http://127.0.0.1:\(port)/").1 == 503)
        await server.sync([:])
        #expect(server.ports.isEmpty)
    }

    /// A GET over a plain socket (no HTTP client dependency in this target).
    func fetch(_ url: String) async throws -> (Data, Int) {
        let output = try Command.run(["curl", "-s", "-w", "\n%{http_code}", url])
        let lines = output.split(separator: "\n")
        return (Data(lines.dropLast().joined(separator: "\n").utf8), Int(lines.last ?? "0") ?? 0)
    }
}

@Suite("Standalone services")
struct StandaloneEndpointsTests {
    @Test("a Service's endpoints are this node's Ready pods matching its selector, target ports resolved by number and name")
    func derive() throws {
        var service = Fixtures.service(
            "web", ports: [.init(name: "http", port: 80, targetPort: .string("web")), .init(name: "metrics", port: 9090, targetPort: .int(9100))],
            selector: ["app": "web"]
        )
        service.metadata.namespace = "default"
        let pods = [
            LocalPod(namespace: "default", name: "web-1", labels: ["app": "web"], ips: ["10.88.0.5"], ready: true, ports: [.init(name: "web", containerPort: 8080)]),
            LocalPod(namespace: "default", name: "web-2", labels: ["app": "web", "x": "y"], ips: ["10.88.0.6"], ready: false, ports: [.init(name: "web", containerPort: 8080)]),
            LocalPod(namespace: "default", name: "db", labels: ["app": "db"], ips: ["10.88.0.7"], ready: true, ports: []),
            LocalPod(namespace: "other", name: "web-3", labels: ["app": "web"], ips: ["10.88.0.8"], ready: true, ports: [.init(name: "web", containerPort: 8080)]),
        ]
        let slices = StandaloneEndpoints.slices(for: [service, Fixtures.service("manual", clusterIP: "10.96.0.2")], pods: pods, nodeName: "node-a")
        #expect(slices.count == 1)
        let slice = try #require(slices.first)
        #expect(slice.metadata.labels?[EndpointSliceObject.serviceNameLabel] == "web")
        #expect(slice.ports?.map(\.port) == [8080, 9100])
        #expect(slice.endpoints?.map(\.addresses) == [["10.88.0.5"], ["10.88.0.6"]])
        #expect(slice.endpoints?.map { $0.conditions?.ready } == [true, false])
        #expect(slice.endpoints?.allSatisfy { $0.nodeName == "node-a" } == true)

        // Fed to the tracker, only the Ready pod serves.
        var tracker = EndpointsChangeTracker(family: .ipv4, nodeName: "node-a")
        tracker.update(slice, removed: false)
        let endpoints = tracker.checkout().changes.values.first?.current
        let http = ServicePortName(NamespacedName("default", "web"), port: "http", protocol: .tcp)
        let port = ServicePort(clusterIP: IPAddress("10.96.0.10")!, port: 80, protocol: .tcp)
        #expect(EndpointSelection(endpoints: endpoints?[http] ?? [], port: port, nodeZone: nil).clusterEndpoints.map(\.description) == ["10.88.0.5:8080"])
    }
}

@Suite("Proxier inputs")
struct ProxierInputsTests {
    func inputs() -> ProxierInputs {
        let logger = Logger(label: "test")
        let inputs = ProxierInputs(
            family: .ipv4, nodeName: "node-a", health: ProxyHealth(timeout: .seconds(60)), events: LoggingEventRecorder(logger: logger),
            logger: logger, serviceChangesPending: Gauge(label: "test_service_changes"), endpointChangesPending: Gauge(label: "test_endpoint_changes"))
        inputs.servicesSynced()
        inputs.endpointSlicesSynced()
        return inputs
    }

    @Test("a zone change while a sync runs makes the next sync a full one with the new zone")
    func zoneChangeDuringSync() throws {
        let inputs = inputs()
        let first = try #require(inputs.take())
        #expect(first.needFullSync)
        inputs.synced(first, ok: true)
        let running = try #require(inputs.take())
        #expect(!running.needFullSync && running.nodeZone == nil)
        // The Node's zone label arrives while `running` is being applied.
        inputs.nodeChanged(NodeObject(metadata: ObjectMeta(name: "node-a", labels: [NodeObject.zoneLabel: "z1"])))
        inputs.synced(running, ok: true)
        let next = try #require(inputs.take())
        #expect(next.needFullSync && next.nodeZone == "z1")
        inputs.synced(next, ok: true)
        #expect(inputs.take()?.needFullSync == false)
        // A failed sync owes a full one.
        let failing = try #require(inputs.take())
        inputs.synced(failing, ok: false)
        #expect(inputs.take()?.needFullSync == true)
    }
}
