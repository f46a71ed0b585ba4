public import Foundation

/// Decides what happens to each warning the proxy wants to record as a Kubernetes Event, as client-go's
/// `EventCorrelator` does: a token bucket per involved object (burst 25, one token back every 5 minutes) so a
/// flapping object cannot flood the API server, and repeats of the same warning within 10 minutes counted on
/// the existing Event (`count`, `lastTimestamp`) instead of creating new ones.
///
/// A pure value over the time handed in; ``KubeEventRecorder`` acts on its decisions.
struct EventAggregator: Sendable {
    struct Key: Sendable, Hashable {
        var kind: String
        var object: NamespacedName
        var reason: String
        var message: String
    }

    enum Action: Sendable, Equatable {
        /// Create Event `name` (count 1).
        case create(name: String)
        /// Raise Event `name`'s count to `count` and its lastTimestamp to now.
        case update(name: String, count: Int, firstTimestamp: Date)
        /// Over the object's budget: do not write (the log line still says it).
        case drop
    }

    struct Bucket: Sendable {
        var tokens: Double
        var updated: Date
    }

    struct Recorded: Sendable {
        var name: String
        var count: Int
        var first: Date
        var last: Date
    }

    var burst = 25
    var refillInterval: TimeInterval = 300
    var aggregationWindow: TimeInterval = 600
    /// Keys remembered at most (the oldest are forgotten first).
    var capacity = 4096
    private(set) var buckets: [String: Bucket] = [:]
    private(set) var recorded: [Key: Recorded] = [:]

    /// What to do with one more occurrence of `key` at `now`.
    mutating func record(_ key: Key, now: Date) -> Action {
        let objectKey = "\(key.kind)/\(key.object)"
        var bucket = buckets[objectKey] ?? Bucket(tokens: Double(burst), updated: now)
        bucket.tokens = min(Double(burst), bucket.tokens + max(0, now.timeIntervalSince(bucket.updated)) / refillInterval)
        bucket.updated = now
        guard bucket.tokens >= 1 else {
            buckets[objectKey] = bucket
            return .drop
        }
        bucket.tokens -= 1
        buckets[objectKey] = bucket
        if var previous = recorded[key], now.timeIntervalSince(previous.last) <= aggregationWindow {
            previous.count += 1
            previous.last = now
            recorded[key] = previous
            return .update(name: previous.name, count: previous.count, firstTimestamp: previous.first)
        }
        forgetOldest(now: now)
        let nanoseconds = UInt64(max(0, now.timeIntervalSince1970) * 1e9)
        let name = "\(key.object.name).\(String(nanoseconds, radix: 16))"
        recorded[key] = Recorded(name: name, count: 1, first: now, last: now)
        return .create(name: name)
    }

    /// The Event `name` vanished (expired on the server): the next occurrence creates a new one.
    mutating func forget(_ key: Key) {
        recorded.removeValue(forKey: key)
    }

    private mutating func forgetOldest(now: Date) {
        guard recorded.count >= capacity else { return }
        recorded = recorded.filter { now.timeIntervalSince($0.value.last) <= aggregationWindow }
        if recorded.count >= capacity {
            let keep = recorded.sorted { $0.value.last > $1.value.last }.prefix(capacity / 2)
            recorded = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
        if buckets.count >= capacity * 4 {
            buckets = buckets.filter { now.timeIntervalSince($0.value.updated) < refillInterval * Double(burst) }
        }
    }
}
