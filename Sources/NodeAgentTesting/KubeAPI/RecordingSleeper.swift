public import KubeAPI
import Synchronization

/// A ``Sleeper`` that records every requested wait and sleeps only briefly, so backoff is asserted from the
/// durations asked for rather than from wall-clock timing.
public final class RecordingSleeper: Sleeper {
    private let recorded = Mutex<[Duration]>([])
    private let actualSleep: Duration

    /// - Parameter actualSleep: how long each call really sleeps (keeps retry loops from spinning).
    public init(actualSleep: Duration = .milliseconds(5)) {
        self.actualSleep = actualSleep
    }

    /// Every duration asked for, in order.
    public var durations: [Duration] { recorded.withLock { $0 } }

    public func sleep(for duration: Duration) async throws {
        recorded.withLock { $0.append(duration) }
        try await Task.sleep(for: min(duration, actualSleep))
    }
}
