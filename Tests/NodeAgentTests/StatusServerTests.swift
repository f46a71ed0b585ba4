import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NodeAgentTesting
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

@testable import NodeAgent

@Suite("Status server over real HTTP")
struct StatusServerTests {
    /// Runs an agent whose status server listens on 127.0.0.1:0 with `checks`, calls `body` with its base URL,
    /// then shuts the group down gracefully and checks that it ended.
    private func withAgent(
        checks: [any HealthCheck] = [],
        reporters: [any StatusReporter] = [],
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        _ body: (String) async throws -> Void
    ) async throws {
        var settings = try AgentSettings.resolve(file: nil, flags: [("healthz-bind-address", "127.0.0.1:0"), ("metrics-bind-address", "")])
        settings.hostnameOverride = "node-a"
        let (addresses, continuation) = AsyncStream<BindAddress>.makeStream()
        let recorder = LogRecorder()
        var agent = Agent(settings: settings, makeLogger: { recorder.logger(label: $0, level: .info) }, metrics: metrics, notifier: SystemdNotifier(environment: [:]))
        agent.onStatusServerBound = { continuation.yield($0) }
        for check in checks { agent.registry.register(check) }
        for reporter in reporters { agent.registry.register(reporter) }
        let group = agent.makeServiceGroup(signals: [])
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = addresses.makeAsyncIterator()
            let address = try #require(await iterator.next())
            try await body("http://127.0.0.1:\(address.port)")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    private func get(_ url: String) async throws -> (status: Int, body: String, contentType: String?) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body), response.headers.first(name: "content-type"))
    }

    @Test("health endpoints answer ok with no failing checks")
    func healthy() async throws {
        try await withAgent(checks: [ClosureHealthCheck(name: "ping", component: "agent", kinds: .all) { .healthy }]) { base in
            for path in ["/healthz", "/livez", "/readyz"] {
                let response = try await get(base + path)
                #expect(response.status == 200)
                #expect(response.body == "ok\n")
            }
            let verbose = try await get(base + "/healthz?verbose")
            #expect(verbose.body.contains("[+]ping ok"))
        }
    }

    @Test("a failing readiness check makes /readyz and /healthz 503 and lists the check, /livez stays 200")
    func failingReadiness() async throws {
        let checks: [any HealthCheck] = [
            ClosureHealthCheck(name: "runtime", component: "kubelet", kinds: .liveness) { .healthy },
            ClosureHealthCheck(name: "lease-renewal", component: "kubelet", kinds: .readiness) { .failing("last renew 45s ago") },
        ]
        try await withAgent(checks: checks) { base in
            let ready = try await get(base + "/readyz")
            #expect(ready.status == 503)
            #expect(ready.body.contains("[-]lease-renewal failed: last renew 45s ago"))
            #expect(ready.body.contains("readyz check failed"))
            let health = try await get(base + "/healthz")
            #expect(health.status == 503)
            #expect(health.body.contains("[+]runtime ok"))
            let live = try await get(base + "/livez")
            #expect(live.status == 200)
        }
    }

    @Test("/status reports identity, components with their checks, and registered sections")
    func status() async throws {
        struct Section: StatusReporter {
            struct Body: Encodable, Sendable { var renewals: Int }
            var statusKey: String { "heartbeat" }
            func statusSnapshot() async -> any Encodable & Sendable { Body(renewals: 3) }
        }
        let checks: [any HealthCheck] = [ClosureHealthCheck(name: "sync", component: "proxy", kinds: .readiness) { .failing("stale") }]
        try await withAgent(checks: checks, reporters: [Section()]) { base in
            let response = try await get(base + "/status")
            #expect(response.status == 200)
            #expect(response.contentType == "application/json")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
            #expect(json["nodeName"] as? String == "node-a")
            #expect(json["version"] as? String == AgentVersion.version)
            #expect(json["healthy"] as? Bool == false)
            #expect((json["heartbeat"] as? [String: Any])?["renewals"] as? Int == 3)
            let components = try #require(json["components"] as? [[String: Any]])
            #expect(components.map { $0["name"] as? String } == ["kubelet", "proxy"])
            let proxy = try #require(components.last)
            #expect(proxy["healthy"] as? Bool == false)
            #expect(((proxy["checks"] as? [[String: Any]])?.first?["reason"] as? String) == "stale")
        }
    }

    @Test("/metrics serves the Prometheus text format")
    func metrics() async throws {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(name: "node_agent_test_total", help: "A counter for the test.").increment(by: Int64(2))
        try await withAgent(metrics: registry) { base in
            let response = try await get(base + "/metrics")
            #expect(response.status == 200)
            #expect(response.contentType?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(response.body.contains("# TYPE node_agent_test_total counter"))
            #expect(response.body.contains("node_agent_test_total 2"))
        }
    }
}

@Suite("Structured log lines")
struct LogFormatTests {
    @Test("a record becomes time, level, component, message and sorted quoted metadata")
    func format() {
        let line = StructuredLogHandler.format(
            time: Date(timeIntervalSince1970: 1_795_000_000.25),
            level: .warning,
            component: "proxy",
            message: "sync failed",
            metadata: ["service": "default/web", "error": "nft: syntax error", "count": "3"]
        )
        #expect(line == #"2026-11-18T11:06:40.250000Z warning [proxy] sync failed count=3 error="nft: syntax error" service=default/web"#)
    }

    @Test("lines reach the sink one record at a time")
    func sink() {
        let lines = Mutex<[String]>([])
        var handler = StructuredLogHandler(label: "kubelet", level: .info, output: .closure { line in lines.withLock { $0.append(line) } })
        handler[metadataKey: "node"] = "node-a"
        let logger = Logger(label: "kubelet") { _ in handler }
        logger.debug("hidden")
        logger.info("pod started", metadata: ["pod": "default/web"])
        #expect(lines.withLock { $0.count } == 1)
        #expect(lines.withLock { $0[0] }.hasSuffix("info [kubelet] pod started node=node-a pod=default/web"))
    }
}
