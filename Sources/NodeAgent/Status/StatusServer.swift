import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus

/// The daemon's own HTTP endpoints: `/healthz`, `/livez`, `/readyz`, `/metrics` and `/status`.
///
/// Health endpoints answer `ok` with 200, or 503 listing each check as `[+]name ok` / `[-]name failed: reason`
/// (the format of the Kubernetes components' health endpoints); `?verbose` lists the checks on success too.
/// Served on `--healthz-bind-address` (default `127.0.0.1:10248`).
struct StatusServer: Sendable {
    /// Identity shown in `/status`.
    struct Identity: Sendable {
        var nodeName: String
        var components: [Component]
        var startTime: Date
    }

    var identity: Identity
    var registry: HealthRegistry
    var metrics: PrometheusCollectorRegistry

    /// The router of the status server; separate from the listener so tests can reach every route.
    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("healthz") { request, _ in await self.health(.all, name: "healthz", verbose: request.uri.queryParameters["verbose"] != nil) }
        router.get("livez") { request, _ in await self.health(.liveness, name: "livez", verbose: request.uri.queryParameters["verbose"] != nil) }
        router.get("readyz") { request, _ in await self.health(.readiness, name: "readyz", verbose: request.uri.queryParameters["verbose"] != nil) }
        router.get("metrics") { _, _ in self.metricsResponse() }
        router.get("status") { _, _ in try await self.statusResponse() }
        router.get("pods") { _, _ in try await self.sectionResponse("pods") }
        return router
    }

    /// A router with only `/metrics` and `/healthz`, for `--metrics-bind-address` (kube-proxy's 10249).
    func makeMetricsRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("metrics") { _, _ in self.metricsResponse() }
        router.get("healthz") { request, _ in await self.health(.all, name: "healthz", verbose: request.uri.queryParameters["verbose"] != nil) }
        return router
    }

    private func health(_ kinds: HealthCheckKinds, name: String, verbose: Bool) async -> Response {
        let reports = await registry.evaluate(kinds)
        let healthy = reports.allSatisfy(\.healthy)
        var body: String
        if healthy && !verbose {
            body = "ok"
        } else {
            body = reports.map { report in
                report.healthy ? "[+]\(report.name) ok" : "[-]\(report.name) failed: \(report.reason ?? "unhealthy")"
            }.joined(separator: "\n")
            body += body.isEmpty ? "" : "\n"
            body += healthy ? "\(name) check passed" : "\(name) check failed"
        }
        return Self.text(body + "\n", status: healthy ? .ok : .serviceUnavailable)
    }

    private func metricsResponse() -> Response {
        var buffer: [UInt8] = []
        metrics.emit(into: &buffer)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: buffer))
        )
    }

    /// The `/status` document as JSON bytes.
    func statusDocument() async throws -> Data {
        let reports = await registry.evaluate(.all)
        var sections: [String: any Encodable & Sendable] = [:]
        for reporter in registry.reporters {
            sections[reporter.statusKey] = await reporter.statusSnapshot()
        }
        let document = StatusDocument(
            nodeName: identity.nodeName,
            version: AgentVersion.version,
            kubeletVersion: AgentVersion.kubeletVersion,
            startTime: identity.startTime,
            healthy: reports.allSatisfy(\.healthy),
            components: identity.components.map { component in
                let checks = reports.filter { $0.component == component.rawValue }
                return .init(name: component.rawValue, healthy: checks.allSatisfy(\.healthy), checks: checks)
            },
            sections: sections
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(document)
    }

    private func statusResponse() async throws -> Response {
        let data = try await statusDocument()
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// One `/status` section on its own (`/pods`); 404 when no component reports it.
    private func sectionResponse(_ key: String) async throws -> Response {
        guard let reporter = registry.reporters.first(where: { $0.statusKey == key }) else {
            return Self.text("no \(key) section: the component is not running\n", status: .notFound)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(await reporter.statusSnapshot())
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private static func text(_ body: String, status: HTTPResponse.Status) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8", .init("X-Content-Type-Options")!: "nosniff"],
            body: .init(byteBuffer: ByteBuffer(string: body))
        )
    }
}

/// The `/status` JSON: identity, health per component, and one section per registered ``StatusReporter``.
struct StatusDocument: Encodable {
    struct ComponentStatus: Encodable {
        var name: String
        var healthy: Bool
        var checks: [HealthCheckReport]
    }

    var nodeName: String
    var version: String
    var kubeletVersion: String
    var startTime: Date
    var healthy: Bool
    var components: [ComponentStatus]
    var sections: [String: any Encodable & Sendable]

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(nodeName, forKey: Key("nodeName"))
        try container.encode(version, forKey: Key("version"))
        try container.encode(kubeletVersion, forKey: Key("kubeletVersion"))
        try container.encode(startTime, forKey: Key("startTime"))
        try container.encode(healthy, forKey: Key("healthy"))
        try container.encode(components, forKey: Key("components"))
        for (key, value) in sections.sorted(by: { $0.key < $1.key }) {
            try container.encode(value, forKey: Key(key))
        }
    }
}
