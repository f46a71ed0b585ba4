public import Foundation

/// Kubernetes' per-item exponential backoff (`flowcontrol.Backoff`), as the kubelet uses it for
/// CrashLoopBackOff (keyed by container) and ImagePullBackOff (keyed by image): 10 s doubling to 300 s, an entry
/// forgotten once the item has gone `2 × maximum` (10 min) without a new failure.
///
/// A pure value: every method takes the time, so tests drive it without a clock.
public struct RestartBackoff: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        /// The current delay.
        public var delay: Duration
        /// When the delay was last raised.
        public var lastUpdate: Date
    }

    public let initial: Duration
    public let maximum: Duration
    public private(set) var entries: [String: Entry] = [:]

    public init(initial: Duration = .seconds(10), maximum: Duration = .seconds(300)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// An entry older than twice the maximum no longer counts (a container that ran 10 minutes starts afresh).
    private func hasExpired(_ entry: Entry, eventTime: Date) -> Bool {
        eventTime.timeIntervalSince(entry.lastUpdate) > (maximum * 2).timeInterval
    }

    /// The end of the backoff that started at `eventTime` (a container's finish), or nil when `key` is not backing
    /// off at `now` (kubelet's `IsInBackOffSince`).
    public func backoffDeadline(_ key: String, since eventTime: Date, now: Date) -> Date? {
        guard let entry = entries[key], !hasExpired(entry, eventTime: eventTime) else { return nil }
        let deadline = eventTime.adding(entry.delay)
        return now < deadline ? deadline : nil
    }

    /// The end of the backoff measured from the last failure (kubelet's `IsInBackOffSinceUpdate`, for image pulls).
    public func backoffDeadlineSinceUpdate(_ key: String, now: Date) -> Date? {
        guard let entry = entries[key], !hasExpired(entry, eventTime: now) else { return nil }
        let deadline = entry.lastUpdate.adding(entry.delay)
        return now < deadline ? deadline : nil
    }

    /// Records a failure at `eventTime`: a new or expired entry starts at `initial`, otherwise the delay doubles up
    /// to `maximum` (kubelet's `Next`).
    public mutating func next(_ key: String, eventTime: Date, now: Date) {
        if let entry = entries[key], !hasExpired(entry, eventTime: eventTime) {
            entries[key] = Entry(delay: min(entry.delay * 2, maximum), lastUpdate: now)
        } else {
            entries[key] = Entry(delay: initial, lastUpdate: now)
        }
    }

    /// The delay recorded for `key`.
    public func delay(_ key: String) -> Duration? { entries[key]?.delay }

    /// Forgets `key` (a successful pull).
    public mutating func reset(_ key: String) { entries[key] = nil }
}
