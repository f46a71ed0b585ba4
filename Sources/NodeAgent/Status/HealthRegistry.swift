import Foundation
import Synchronization

/// What a health check says.
enum HealthResult: Sendable, Equatable {
    case healthy
    case failing(String)

    var isHealthy: Bool { self == .healthy }
}

/// Which endpoints a check counts towards. `/healthz` counts every check.
struct HealthCheckKinds: OptionSet, Sendable, Hashable {
    let rawValue: UInt8
    /// `/livez` and the systemd watchdog: failing means "restart me".
    static let liveness = HealthCheckKinds(rawValue: 1 << 0)
    /// `/readyz`: failing means "do not rely on me yet".
    static let readiness = HealthCheckKinds(rawValue: 1 << 1)
    static let all: HealthCheckKinds = [.liveness, .readiness]
}

/// The one protocol through which a component reports health; the status server knows nothing else of it.
protocol HealthCheck: Sendable {
    /// Short, stable, kebab-case name, e.g. `lease-renewal`.
    var name: String { get }
    /// The component the check belongs to (`kubelet`, `proxy`, `agent`).
    var component: String { get }
    var kinds: HealthCheckKinds { get }
    func check() async -> HealthResult
}

/// A component's contribution to `/status`: a named JSON section.
protocol StatusReporter: Sendable {
    /// The key of the section in the `/status` document, e.g. `heartbeat`.
    var statusKey: String { get }
    func statusSnapshot() async -> any Encodable & Sendable
}

/// A health check made from a closure.
struct ClosureHealthCheck: HealthCheck {
    var name: String
    var component: String
    var kinds: HealthCheckKinds
    var body: @Sendable () async -> HealthResult

    func check() async -> HealthResult { await body() }
}

/// The outcome of one check, as `/status` and the health endpoints report it.
struct HealthCheckReport: Sendable, Encodable, Equatable {
    var name: String
    var component: String
    var healthy: Bool
    var reason: String?
}

/// Where components register their health checks and status sections.
final class HealthRegistry: Sendable {
    private let state = Mutex<(checks: [any HealthCheck], reporters: [any StatusReporter])>(([], []))

    init() {}

    func register(_ check: any HealthCheck) {
        state.withLock { $0.checks.append(check) }
    }

    func register(_ reporter: any StatusReporter) {
        state.withLock { $0.reporters.append(reporter) }
    }

    var reporters: [any StatusReporter] { state.withLock { $0.reporters } }

    /// Runs every check that counts towards `kinds` (all checks for `.all`), in registration order.
    func evaluate(_ kinds: HealthCheckKinds) async -> [HealthCheckReport] {
        let checks = state.withLock { $0.checks }.filter { !$0.kinds.isDisjoint(with: kinds) }
        var reports: [HealthCheckReport] = []
        for check in checks {
            let result = await check.check()
            let reason: String? = if case .failing(let why) = result { why } else { nil }
            reports.append(HealthCheckReport(name: check.name, component: check.component, healthy: result.isHealthy, reason: reason))
        }
        return reports
    }
}
