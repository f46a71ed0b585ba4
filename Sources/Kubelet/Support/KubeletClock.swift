public import Foundation

/// Where the kubelet reads the time and waits: backoff, probe periods, grace periods and resyncs all go
/// through it, so unit tests drive them with a manual clock instead of sleeping.
public protocol KubeletClock: Sendable {
    /// The current wall-clock time (what pod status timestamps show).
    func now() -> Date
    /// Suspends until `deadline` (returns at once when it has passed).
    /// - Throws: `CancellationError` when the task is cancelled while waiting.
    func sleep(until deadline: Date) async throws
}

extension KubeletClock {
    /// Suspends for `duration` from now.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now().adding(duration))
    }
}

/// The real clock: `Date()` and `Task.sleep`.
public struct SystemKubeletClock: KubeletClock {
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .seconds(seconds)) } else { try Task.checkCancellation() }
    }
}

extension Date {
    /// This date plus a `Duration`.
    public func adding(_ duration: Duration) -> Date {
        addingTimeInterval(duration.timeInterval)
    }
}

extension Duration {
    /// The duration in seconds as a `TimeInterval`.
    public var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }

    /// A duration of `interval` seconds.
    public static func interval(_ interval: TimeInterval) -> Duration {
        .nanoseconds(Int64((interval * 1e9).rounded()))
    }
}
