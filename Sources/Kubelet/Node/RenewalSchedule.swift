/// When the next heartbeat is due, on a fixed grid that a slow apiserver cannot push.
///
/// Ticks fall at `start + n × interval`. After a renewal that took longer than an interval, the next tick is the
/// first grid point still in the future, so a slow round never shifts later rounds (kubelet's lease controller
/// uses the same fixed-period loop, `wait.JitterUntil` without sliding).
public struct RenewalSchedule<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    public let start: Instant
    public let interval: Duration

    public init(start: Instant, interval: Duration) {
        precondition(interval > .zero, "a renewal interval must be positive")
        self.start = start
        self.interval = interval
    }

    /// The first tick strictly after `now`.
    public func nextTick(after now: Instant) -> Instant {
        let elapsed = start.duration(to: now)
        if elapsed < .zero { return start }
        let ticks = Int64((elapsed / interval).rounded(.down)) + 1
        return start.advanced(by: interval * ticks)
    }
}
