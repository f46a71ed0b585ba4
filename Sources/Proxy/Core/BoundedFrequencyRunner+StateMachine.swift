/// When the proxier's sync runs, as kube-proxy's `BoundedFrequencyRunner`: at most once per `minInterval`
/// however many changes arrive, at least once per `maxInterval` even with none (the periodic resync), and again
/// after a failure when a retry is asked for.
///
/// A pure value over an abstract instant; the ``BoundedFrequencyRunner`` service drives it with a real clock.
struct BoundedFrequencyRunnerStateMachine<Instant: InstantProtocol<Duration>>: Sendable where Instant: Sendable {
    enum Action: Equatable {
        /// Run the sync now.
        case run
        /// Sleep until the instant, or until a new request arrives.
        case sleep(until: Instant)
    }

    let minInterval: Duration
    let maxInterval: Duration
    private(set) var lastRun: Instant?
    private(set) var requested = false
    private(set) var retryAt: Instant?

    init(minInterval: Duration, maxInterval: Duration) {
        self.minInterval = minInterval
        self.maxInterval = max(maxInterval, minInterval)
    }

    /// A change arrived: run as soon as `minInterval` allows.
    mutating func request() {
        requested = true
    }

    /// The last run failed: run again at `now + interval` at the latest (sooner if requested).
    mutating func retry(after interval: Duration, now: Instant) {
        let at = now.advanced(by: interval)
        if let existing = retryAt, existing < at { return }
        retryAt = at
    }

    /// What to do at `now`.
    func next(now: Instant) -> Action {
        guard let lastRun else { return .run }
        let earliest = lastRun.advanced(by: minInterval)
        var deadline = lastRun.advanced(by: maxInterval)
        if requested { deadline = min(deadline, earliest) }
        if let retryAt { deadline = min(deadline, max(retryAt, earliest)) }
        return now >= deadline ? .run : .sleep(until: deadline)
    }

    /// A run started at `now`: the requests so far are being served.
    mutating func started(at now: Instant) {
        lastRun = now
        requested = false
        retryAt = nil
    }
}
