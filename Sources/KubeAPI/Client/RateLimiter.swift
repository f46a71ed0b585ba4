/// A token bucket: `burst` requests at once, refilled at `qps` per second (client-go's default limiter).
///
/// Waiters are served in order; the clock is injectable so tests do not sleep.
public actor RateLimiter {
    private let qps: Double
    private let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant
    private let clock: ContinuousClock

    /// A limiter allowing `qps` requests per second with bursts of `burst`; `qps <= 0` disables limiting.
    public init(qps: Double, burst: Int) {
        self.qps = qps
        self.burst = Double(max(burst, 1))
        self.tokens = Double(max(burst, 1))
        self.clock = ContinuousClock()
        self.last = clock.now
    }

    /// Waits until a request may go.
    public func acquire() async throws {
        guard qps > 0 else { return }
        refill()
        tokens -= 1
        if tokens >= 0 { return }
        // Reserve our token now and sleep until it exists: later callers queue behind us.
        let wait = -tokens / qps
        try await Task.sleep(for: .milliseconds(Int64((wait * 1000).rounded(.up))))
    }

    private func refill() {
        let now = clock.now
        let elapsed = now - last
        last = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(burst, tokens + seconds * qps)
    }
}
