public import Foundation
import Synchronization

/// A clock that moves only when a test advances it, for heartbeats, backoff and probes without real waiting.
///
/// Sleepers whose deadline is reached by ``advance(by:)`` are resumed in deadline order. ``date(of:)`` maps
/// its instants to wall-clock dates starting at ``epoch``, for timestamps such as a Lease's `renewTime`.
public final class ManualClock: Clock, Sendable {
    public struct Instant: InstantProtocol, Hashable, Sendable {
        public var offset: Duration
        public init(offset: Duration) { self.offset = offset }
        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var id: UInt64
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    /// The wall-clock date of instant zero.
    public let epoch: Date

    public init(epoch: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        self.epoch = epoch
    }

    public var now: Instant { state.withLock { $0.now } }
    public var minimumResolution: Duration { .nanoseconds(1) }

    /// The wall-clock date of `instant`.
    public func date(of instant: Instant) -> Date {
        let (seconds, attoseconds) = instant.offset.components
        return epoch.addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18)
    }

    /// The wall-clock date now.
    public var date: Date { date(of: now) }

    /// How many tasks are sleeping on this clock.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try Task.checkCancellation()
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if deadline <= state.now { return true }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward, resuming every sleeper whose deadline is reached, earliest first.
    public func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits (in real time, up to `timeout`) until `count` tasks sleep on the clock: the point where a loop has
    /// finished its work for the current instant.
    public func waitForSleepers(_ count: Int = 1, timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while sleeperCount < count {
            guard ContinuousClock.now < deadline else { throw ClockTimeout(waitedFor: count, sleeping: sleeperCount) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// ``waitForSleepers(_:timeout:)`` gave up.
    public struct ClockTimeout: Error, CustomStringConvertible {
        public var waitedFor: Int
        public var sleeping: Int
        public var description: String { "waited for \(waitedFor) sleeper(s) on the manual clock, \(sleeping) sleeping" }
    }
}
