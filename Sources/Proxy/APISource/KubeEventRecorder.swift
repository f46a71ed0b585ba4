public import Foundation
public import KubeAPI
public import Logging
public import ServiceLifecycle
import Synchronization

/// Records the proxy's warnings about objects (a Service or EndpointSlice it cannot serve) as `core/v1` Events
/// on those objects through the API client, so `kubectl describe` and `kubectl get events` show them.
///
/// ``warning(kind:object:reason:message:)`` only queues (it is called from the proxier's informer callbacks);
/// the ``run()`` loop writes, one request at a time, rate limited per object and aggregated per distinct
/// warning by ``EventAggregator``. The log line is written by the caller either way; a failed write is logged
/// and dropped (events are best effort, never a reason to stop proxying).
public final class KubeEventRecorder: ProxyEventRecorder, Service, Sendable {
    private struct Pending: Sendable {
        var key: EventAggregator.Key
        var time: Date
    }

    private let client: any KubeClientProtocol
    private let component: String
    private let host: String
    private let logger: Logger
    private let now: @Sendable () -> Date
    private let queue: AsyncStream<Pending>.Continuation
    private let stream: AsyncStream<Pending>
    private let aggregator = Mutex(EventAggregator())
    private let counters = Mutex((written: 0, dropped: 0))

    /// - Parameters:
    ///   - component: the Event's `source.component` and `reportingComponent`.
    ///   - host: this node's name (`source.host`, `reportingInstance`).
    public init(
        client: any KubeClientProtocol,
        component: String = "node-agent-proxy",
        host: String,
        now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) {
        self.client = client
        self.component = component
        self.host = host
        self.now = now
        self.logger = logger
        // A burst of warnings beyond this is dropped from the queue (the log lines remain).
        (stream, queue) = AsyncStream.makeStream(of: Pending.self, bufferingPolicy: .bufferingOldest(512))
    }

    /// Events written and warnings not written (rate limit, full queue or failed request) so far.
    public var counts: (written: Int, dropped: Int) { counters.withLock { $0 } }

    public func warning(kind: String, object: NamespacedName, reason: String, message: String) {
        let pending = Pending(key: .init(kind: kind, object: object, reason: reason, message: message), time: now())
        if case .dropped = queue.yield(pending) { counters.withLock { $0.dropped += 1 } }
    }

    /// Writes queued warnings until graceful shutdown.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            for await pending in self.stream {
                await self.write(pending)
            }
        }
    }

    private func write(_ pending: Pending) async {
        let key = pending.key
        let action = aggregator.withLock { $0.record(key, now: pending.time) }
        let involved = ObjectReference(
            kind: key.kind, namespace: key.object.namespace, name: key.object.name,
            apiVersion: key.kind == "EndpointSlice" ? "discovery.k8s.io/v1" : "v1")
        do {
            switch action {
            case .drop:
                counters.withLock { $0.dropped += 1 }
                logger.debug("event rate limited", metadata: ["object": "\(key.kind) \(key.object)", "reason": "\(key.reason)"])
                return
            case .create(let name):
                var event = Event(
                    metadata: KubeAPI.ObjectMeta(name: name, namespace: key.object.namespace),
                    involvedObject: involved, reason: key.reason, message: key.message, type: "Warning")
                event.source = EventSource(component: component, host: host)
                event.firstTimestamp = KubeTime(pending.time)
                event.lastTimestamp = KubeTime(pending.time)
                event.count = 1
                event.reportingComponent = component
                event.reportingInstance = host
                _ = try await client.create(event)
            case .update(let name, let count, _):
                let patch: JSONValue = ["count": .integer(Int64(count)), "lastTimestamp": .string(KubeTime(pending.time).description)]
                do {
                    _ = try await client.patch(Event.self, namespace: key.object.namespace, name: name, patch: .merge(patch))
                } catch let error as KubeAPIError where error.isNotFound {
                    // The Event expired on the server: start a new one.
                    aggregator.withLock { $0.forget(key) }
                    await write(pending)
                    return
                }
            }
            counters.withLock { $0.written += 1 }
        } catch {
            counters.withLock { $0.dropped += 1 }
            logger.warning(
                "cannot record event", metadata: ["object": "\(key.kind) \(key.object)", "reason": "\(key.reason)", "error": "\(error)"])
        }
    }
}
