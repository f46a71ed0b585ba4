/// Exponential backoff with jitter and a cap: `initial`, `initial*factor`, ... up to `maximum`, each stretched by a
/// random fraction up to `jitter` (client-go's wait.Backoff shape).
public struct BackoffPolicy: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration
    public var factor: Double
    /// 0 disables jitter; 0.5 stretches each delay by up to 50%.
    public var jitter: Double

    public init(initial: Duration = .milliseconds(800), maximum: Duration = .seconds(30), factor: Double = 2, jitter: Double = 0.5) {
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
    }
}

/// The running state of a ``BackoffPolicy``: how many failures in a row, and the next delay.
public struct Backoff: Sendable {
    public let policy: BackoffPolicy
    public private(set) var failures = 0
    private var random: @Sendable () -> Double

    /// - Parameter random: a source of numbers in `0..<1` for the jitter (inject a fixed one in tests).
    public init(policy: BackoffPolicy, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.policy = policy
        self.random = random
    }

    /// Records a failure and returns how long to wait before the next attempt.
    public mutating func next() -> Duration {
        let exponent = Double(min(failures, 62))
        failures += 1
        let initialSeconds = policy.initial.seconds
        let base = min(initialSeconds * pow2(policy.factor, exponent), policy.maximum.seconds)
        let stretched = base * (1 + policy.jitter * random())
        return .milliseconds(Int64((min(stretched, policy.maximum.seconds * (1 + policy.jitter)) * 1000).rounded()))
    }

    /// Forgets past failures after a success.
    public mutating func reset() { failures = 0 }

    private func pow2(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 {
            result *= base
            if result > 1e12 { return result }
            remaining -= 1
        }
        return result
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Where the informer waits: the real clock in production, a recording one in tests.
public protocol Sleeper: Sendable {
    func sleep(for duration: Duration) async throws
}

/// Sleeps on the continuous clock.
public struct ContinuousSleeper: Sleeper {
    public init() {}
    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}
