public import Foundation
public import Kubelet

/// The kubelet's clock seam over a ``ManualClock``, for tests: time moves only on ``advance(by:)``, which wakes
/// every sleeper whose deadline passed. Dates map to the manual clock's instants from `start`.
public final class ManualKubeletClock: KubeletClock {
    /// The clock underneath, for tests that wait for sleepers.
    public let clock: ManualClock

    public init(start: Date = Date(timeIntervalSince1970: 1_700_000_000)) {
        clock = ManualClock(epoch: start)
    }

    public func now() -> Date { clock.date }

    /// How many tasks are waiting on this clock.
    public var sleeperCount: Int { clock.sleeperCount }

    public func sleep(until deadline: Date) async throws {
        // Whole microseconds: a Date near 2023 resolves only ~0.2 µs, and a deadline computed as now() + 10 s must
        // be exactly the instant that advance(by: .seconds(10)) reaches.
        let microseconds = (deadline.timeIntervalSince(clock.epoch) * 1e6).rounded()
        try await clock.sleep(until: ManualClock.Instant(offset: .microseconds(Int64(microseconds))))
    }

    /// Moves time forward and wakes the sleepers whose deadline is now due, earliest first.
    public func advance(by duration: Duration) { clock.advance(by: duration) }
}
