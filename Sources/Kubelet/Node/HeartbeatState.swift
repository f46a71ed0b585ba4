public import Foundation
import Synchronization

/// What the heartbeat loops have done, shared with `/status`, `/healthz` and `node-agent status`.
public final class HeartbeatState: Sendable {
    private struct State {
        var lastRenewTime: Date?
        var consecutiveFailures = 0
        var totalFailures = 0
        var lastError: String?
        var lastNodeStatusPatchTime: Date?
        var apiserverReachable = false
        var conditions: [HeartbeatStatus.Condition] = []
    }

    private let state = Mutex(State())
    public let lease: String
    public let leaseDuration: Duration
    public let renewInterval: Duration
    private let now: @Sendable () -> Date

    public init(nodeName: String, leaseDuration: Duration, renewInterval: Duration, now: @escaping @Sendable () -> Date = { Date() }) {
        lease = "\(NodeConfiguration.leaseNamespace)/\(nodeName)"
        self.leaseDuration = leaseDuration
        self.renewInterval = renewInterval
        self.now = now
    }

    func renewed(at date: Date) {
        state.withLock {
            $0.lastRenewTime = date
            $0.consecutiveFailures = 0
            $0.lastError = nil
            $0.apiserverReachable = true
        }
    }

    func renewFailed(_ error: String, reachable: Bool) {
        state.withLock {
            $0.consecutiveFailures += 1
            $0.totalFailures += 1
            $0.lastError = error
            $0.apiserverReachable = reachable
        }
    }

    func statusPatched(at date: Date, conditions: [HeartbeatStatus.Condition]) {
        state.withLock {
            $0.lastNodeStatusPatchTime = date
            $0.conditions = conditions
            $0.apiserverReachable = true
        }
    }

    /// Seconds since the last successful renewal, nil before the first.
    public var renewAge: Double? {
        state.withLock { $0.lastRenewTime }.map { now().timeIntervalSince($0) }
    }

    /// Healthy while the last renewal is younger than the lease duration: the control plane still sees the node alive.
    public var isFresh: Bool {
        guard let age = renewAge else { return false }
        let (seconds, attoseconds) = leaseDuration.components
        return age <= Double(seconds) + Double(attoseconds) / 1e18
    }

    public var snapshot: HeartbeatStatus {
        let age = renewAge
        return state.withLock { state in
            HeartbeatStatus(
                lease: lease, leaseDurationSeconds: Int(leaseDuration.components.seconds),
                renewIntervalSeconds: Int(renewInterval.components.seconds), lastRenewTime: state.lastRenewTime, renewAgeSeconds: age,
                consecutiveFailures: state.consecutiveFailures, totalFailures: state.totalFailures, lastError: state.lastError,
                lastNodeStatusPatchTime: state.lastNodeStatusPatchTime, apiserverReachable: state.apiserverReachable,
                conditions: state.conditions
            )
        }
    }
}
