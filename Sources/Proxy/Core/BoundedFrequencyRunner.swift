public import ServiceLifecycle
import Synchronization

/// Runs a sync function under the bounds of ``BoundedFrequencyRunnerStateMachine``, as a `Service`.
///
/// ``run()`` (the request) is cheap and may be called from any thread on every change; the sync itself runs on
/// the service's task, never concurrently with itself. Graceful shutdown ends the loop after the current sync.
public final class BoundedFrequencyRunner: Service, Sendable {
    private let state: Mutex<BoundedFrequencyRunnerStateMachine<ContinuousClock.Instant>>
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    private let body: @Sendable () async -> Void
    public let name: String

    /// - Parameters:
    ///   - minInterval: the least time between two syncs (`--*-min-sync-period`).
    ///   - maxInterval: the most time between two syncs (`--*-sync-period`).
    ///   - body: the sync; it calls ``retry(after:)`` itself when it fails.
    public init(name: String, minInterval: Duration, maxInterval: Duration, body: @escaping @Sendable () async -> Void) {
        self.name = name
        state = Mutex(BoundedFrequencyRunnerStateMachine(minInterval: minInterval, maxInterval: maxInterval))
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.body = body
    }

    /// Asks for a sync as soon as the minimum interval allows.
    public func requestSync() {
        state.withLock { $0.request() }
        wake.yield()
    }

    /// Asks for another sync within `interval` (after a failed one).
    public func retry(after interval: Duration) {
        state.withLock { $0.retry(after: interval, now: .now) }
        wake.yield()
    }

    public func run() async throws {
        let clock = ContinuousClock()
        await withGracefulShutdownHandler {
            var iterator = wakes.makeAsyncIterator()
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let action = state.withLock { $0.next(now: clock.now) }
                switch action {
                case .run:
                    state.withLock { $0.started(at: clock.now) }
                    await body()
                case .sleep(let deadline):
                    // Wake at the deadline or at the next request, whichever comes first. Only a sleeper that
                    // reached its deadline wakes the loop: one cancelled by a request must not leave a wake behind,
                    // or the next wait would return at once and the loop spin. Each sleeper is its own task: a task
                    // group, once cancelled, would create every later sleeper cancelled, and the loop would then
                    // sleep until the next request however close the deadline.
                    let sleeper = Task { [wake] in
                        guard (try? await clock.sleep(until: deadline)) != nil else { return }
                        wake.yield()
                    }
                    _ = await iterator.next()
                    sleeper.cancel()
                    await sleeper.value
                }
            }
        } onGracefulShutdown: { [wake] in
            wake.yield()
        }
    }
}
