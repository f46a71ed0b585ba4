public import Foundation
import Synchronization

/// The proxy's own health, as kube-proxy's `ProxyHealthServer` computes it: unhealthy when a change has been
/// queued for longer than the timeout (2 × the sync period) without a sync applying it.
public final class ProxyHealth: Sendable {
    /// The `/healthz` body, with kube-proxy's field names plus `healthy`.
    public struct Report: Sendable, Hashable, Codable {
        public var lastUpdated: Date?
        public var currentTime: Date
        public var healthy: Bool
        public var nodeEligible: Bool
    }

    private struct State {
        var lastUpdated: Date?
        var oldestPendingQueued: [IPFamily: Date] = [:]
    }

    private let state = Mutex(State())
    private let now: @Sendable () -> Date
    public let timeout: Duration

    /// - Parameters:
    ///   - timeout: how long a queued change may wait; kube-proxy uses 2 × the sync period.
    ///   - now: the clock (injected by tests).
    public init(timeout: Duration, now: @escaping @Sendable () -> Date = { Date() }) {
        self.timeout = timeout
        self.now = now
    }

    /// A change for `family` was queued and awaits a sync.
    public func queued(_ family: IPFamily) {
        let time = now()
        state.withLock { state in
            if state.oldestPendingQueued[family] == nil { state.oldestPendingQueued[family] = time }
        }
    }

    /// A sync of `family` applied everything queued so far.
    public func updated(_ family: IPFamily) {
        let time = now()
        state.withLock { state in
            state.lastUpdated = time
            state.oldestPendingQueued[family] = nil
        }
    }

    public func report() -> Report {
        let current = now()
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        return state.withLock { state in
            let stale = state.oldestPendingQueued.values.contains { current.timeIntervalSince($0) >= seconds }
            return Report(lastUpdated: state.lastUpdated, currentTime: current, healthy: !stale, nodeEligible: true)
        }
    }

    /// The `/healthz` answer: 200 with the JSON report when healthy, 503 otherwise.
    public func healthzResponse() -> (status: Int, body: String) {
        let report = report()
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(report)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return (report.healthy ? 200 : 503, body)
    }
}
