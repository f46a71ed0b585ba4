public import Foundation
public import KubeAPI
public import Logging
public import ServiceLifecycle
import Synchronization

/// Records core/v1 Events about pods (Scheduled, Pulling, Pulled, Created, Started, Killing, Unhealthy, BackOff,
/// FailedMount, ...) the way the kubelet's recorder does: a repeat of the same event within 10 minutes bumps
/// `count` and `lastTimestamp` of the existing Event instead of creating a new one, and a spam filter gives each
/// object a burst of 25 events refilled by one every 5 minutes. Sending happens in the background (this is a
/// `Service`); a full queue drops the newest events rather than slow a pod worker. Without an API server the
/// events are only logged and kept for `/pods`.
public final class EventRecorder: Service, Sendable {
    /// One event as kept for `/pods`.
    public struct Record: Sendable, Hashable, Codable {
        public var type: String
        public var reason: String
        public var message: String
        public var count: Int
        public var lastTimestamp: Date
    }

    struct Pending: Sendable {
        var object: ObjectReference
        var type: String
        var reason: String
        var message: String
        var time: Date
    }

    private struct Aggregate {
        var name: String
        var namespace: String
        var count: Int32
        var first: Date
        var last: Date
    }

    private struct Bucket {
        var tokens: Double
        var updated: Date
    }

    private struct State {
        var queue: [Pending] = []
        var aggregates: [String: Aggregate] = [:]
        var buckets: [String: Bucket] = [:]
        var recent: [String: [Record]] = [:]
        var dropped = 0
    }

    private let client: (any KubeClientProtocol)?
    private let nodeName: String
    private let clock: any KubeletClock
    private let logger: Logger
    private let signal = WakeSignal()
    private let state = Mutex(State())
    private let recentLimit: Int
    static let queueLimit = 1000
    static let burst = 25.0
    static let refillSeconds = 300.0
    static let aggregationWindow: TimeInterval = 600

    public init(client: (any KubeClientProtocol)?, nodeName: String, clock: any KubeletClock, recentLimit: Int = 10, logger: Logger) {
        self.client = client
        self.nodeName = nodeName
        self.clock = clock
        self.recentLimit = recentLimit
        self.logger = logger
    }

    /// Queues an event about `pod`.
    func record(_ pod: DesiredPod, type: String = "Normal", reason: String, message: String, fieldPath: String? = nil) {
        var reference = ObjectReference(kind: "Pod", namespace: pod.namespace, name: pod.name, uid: pod.uid, apiVersion: "v1")
        reference.fieldPath = fieldPath
        record(reference, type: type, reason: reason, message: message)
    }

    /// Queues an event about any object (the Node, for manifest errors).
    func record(_ object: ObjectReference, type: String, reason: String, message: String) {
        let now = clock.now()
        let key = "\(object.kind ?? "")/\(object.namespace ?? "")/\(object.name ?? "")/\(object.uid ?? "")"
        let accepted = state.withLock { state -> Bool in
            var recent = state.recent[key] ?? []
            if let index = recent.firstIndex(where: { $0.reason == reason && $0.message == message && $0.type == type }) {
                recent[index].count += 1
                recent[index].lastTimestamp = now
                let record = recent.remove(at: index)
                recent.append(record)
            } else {
                recent.append(Record(type: type, reason: reason, message: message, count: 1, lastTimestamp: now))
                if recent.count > recentLimit { recent.removeFirst(recent.count - recentLimit) }
            }
            state.recent[key] = recent
            // Spam filter: a token bucket per object.
            var bucket = state.buckets[key] ?? Bucket(tokens: Self.burst, updated: now)
            bucket.tokens = min(Self.burst, bucket.tokens + now.timeIntervalSince(bucket.updated) / Self.refillSeconds)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                state.buckets[key] = bucket
                return false
            }
            bucket.tokens -= 1
            state.buckets[key] = bucket
            guard state.queue.count < Self.queueLimit else {
                state.dropped += 1
                return false
            }
            state.queue.append(Pending(object: object, type: type, reason: reason, message: message, time: now))
            return true
        }
        let level: Logger.Level = type == "Warning" ? .warning : .info
        logger.log(
            level: level, "event",
            metadata: [
                "object": "\(object.kind ?? "")/\(object.namespace.map { $0 + "/" } ?? "")\(object.name ?? "")", "reason": "\(reason)",
                "message": "\(message)",
            ])
        if accepted { signal.fire() }
    }

    /// The last events of an object (`Pod`, namespace, name, uid).
    public func recent(kind: String = "Pod", namespace: String, name: String, uid: String) -> [Record] {
        state.withLock { $0.recent["\(kind)/\(namespace)/\(name)/\(uid)"] ?? [] }
    }

    /// Forgets what is kept about a pod that is gone.
    func forget(_ pod: DesiredPod) {
        let key = "Pod/\(pod.namespace)/\(pod.name)/\(pod.uid)"
        state.withLock { state in
            state.recent[key] = nil
            state.buckets[key] = nil
        }
    }

    /// Events not sent because the queue was full or the spam filter held them.
    public var droppedCount: Int { state.withLock { $0.dropped } }

    /// Sends queued events until graceful shutdown (what is queued then is sent, best effort, once).
    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await signal.wait()
                await drain()
            }
        } onGracefulShutdown: {
            self.signal.fire()
        }
        await drain()
    }

    /// Sends everything queued now (tests call it directly).
    func drain() async {
        let batch = state.withLock { state -> [Pending] in
            defer { state.queue = [] }
            return state.queue
        }
        guard let client else { return }
        for pending in batch { await send(pending, client: client) }
    }

    private func send(_ pending: Pending, client: any KubeClientProtocol) async {
        let namespace = pending.object.namespace ?? "default"
        let key = "\(pending.object.uid ?? "")/\(pending.object.name ?? "")/\(pending.object.fieldPath ?? "")/\(pending.type)/\(pending.reason)/\(pending.message)"
        let existing = state.withLock { state -> Aggregate? in
            guard let aggregate = state.aggregates[key], pending.time.timeIntervalSince(aggregate.last) < Self.aggregationWindow else { return nil }
            return aggregate
        }
        do {
            if var aggregate = existing {
                aggregate.count += 1
                aggregate.last = pending.time
                let patch: JSONValue = ["count": .integer(Int64(aggregate.count)), "lastTimestamp": .string(RFC3339.format(pending.time, fractionDigits: 0))]
                _ = try await client.patch(Event.self, namespace: aggregate.namespace, name: aggregate.name, patch: .merge(patch))
                state.withLock { $0.aggregates[key] = aggregate }
                return
            }
            let name = "\(pending.object.name ?? "node").\(String(UInt64(pending.time.timeIntervalSince1970 * 1e9), radix: 16))"
            var event = Event(
                metadata: ObjectMeta(name: name, namespace: namespace), involvedObject: pending.object, reason: pending.reason, message: pending.message,
                type: pending.type)
            event.source = EventSource(component: "kubelet", host: nodeName)
            event.firstTimestamp = KubeTime(pending.time)
            event.lastTimestamp = KubeTime(pending.time)
            event.count = 1
            event.reportingComponent = "kubelet"
            event.reportingInstance = nodeName
            _ = try await client.create(event)
            state.withLock {
                $0.aggregates[key] = Aggregate(name: name, namespace: namespace, count: 1, first: pending.time, last: pending.time)
                // Keep the aggregation map bounded.
                if $0.aggregates.count > 4096 {
                    let cutoff = pending.time.addingTimeInterval(-Self.aggregationWindow)
                    $0.aggregates = $0.aggregates.filter { $0.value.last > cutoff }
                }
            }
        } catch {
            logger.debug("event not sent", metadata: ["reason": "\(pending.reason)", "error": "\(error)"])
            if existing != nil { state.withLock { _ = $0.aggregates.removeValue(forKey: key) } }
        }
    }
}
