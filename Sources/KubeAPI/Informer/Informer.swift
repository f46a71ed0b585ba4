public import Logging
public import ServiceLifecycle
import Synchronization

/// A change the informer applied to its cache.
public enum InformerEvent<T: KubeResource>: Sendable {
    case added(T)
    case updated(old: T, new: T)
    case deleted(T)

    /// The object after the change (the last known state for a delete).
    public var object: T {
        switch self {
        case .added(let object), .deleted(let object): object
        case .updated(_, let new): new
        }
    }
}

/// How an informer lists and watches.
public struct InformerConfiguration: Sendable {
    public var namespace: String?
    public var labelSelector: String?
    public var fieldSelector: String?
    /// LIST page size (`limit`); nil lists in one go.
    public var pageSize: Int? = 500
    public var backoff = BackoffPolicy()
    /// Asked of the server per watch (client-go picks 5–10 minutes so watches are spread out).
    public var watchTimeoutSeconds: ClosedRange<Int> = 300...600
    /// A watch that ends sooner than this with no event is treated as a failure (backoff).
    public var minimumWatchDuration: Duration = .seconds(1)

    public init(namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil) {
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
    }
}

/// A list+watch informer: keeps a local cache of one resource in sync with the API server and streams changes.
///
/// Run it as a `Service` (or call ``run()`` in a task). Consumers call ``waitForSync()`` then read the cache
/// (``get(namespace:name:)``, ``list()``) or iterate ``events()``. After a relist (410 Gone, restart) the
/// consumer sees exactly the difference: the adds, updates and deletes that happened while it was away.
public final class Informer<T: KubeResource>: ServiceLifecycle.Service, Sendable {
    private struct State {
        var items: [ObjectKey: T] = [:]
        var synced = false
        var subscribers: [Int: AsyncStream<InformerEvent<T>>.Continuation] = [:]
        var nextSubscriber = 0
        var syncWaiters: [CheckedContinuation<Void, Never>] = []
        var lastResourceVersion: String?
        var lists = 0
        var watches = 0
    }

    private let client: any KubeClientProtocol
    public let configuration: InformerConfiguration
    private let sleeper: any Sleeper
    private let random: @Sendable () -> Double
    private let logger: Logger
    private let state = Mutex(State())

    /// - Parameters:
    ///   - sleeper: where backoff waits happen (inject a recording one in tests).
    ///   - random: jitter source in `0..<1`.
    public init(
        _ type: T.Type = T.self,
        client: any KubeClientProtocol,
        configuration: InformerConfiguration = InformerConfiguration(),
        sleeper: any Sleeper = ContinuousSleeper(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        logger: Logger
    ) {
        self.client = client
        self.configuration = configuration
        self.sleeper = sleeper
        self.random = random
        var logger = logger
        logger[metadataKey: "resource"] = "\(T.resourceType)"
        self.logger = logger
    }

    // MARK: Cache

    /// True once the first LIST has been applied.
    public var hasSynced: Bool { state.withLock { $0.synced } }

    /// The cached object, if any.
    public func get(namespace: String?, name: String) -> T? {
        let key = ObjectKey(namespace: T.resourceType.namespaced ? namespace : nil, name: name)
        return state.withLock { $0.items[key] }
    }

    /// Every cached object, sorted by namespace/name.
    public func list() -> [T] {
        state.withLock { state in state.items.sorted { $0.key < $1.key }.map(\.value) }
    }

    /// The resourceVersion the cache is at.
    public var resourceVersion: String? { state.withLock { $0.lastResourceVersion } }

    /// How many LISTs and WATCHes were started (for tests and metrics).
    public var requestCounts: (lists: Int, watches: Int) { state.withLock { ($0.lists, $0.watches) } }

    /// Waits until the first LIST has been applied (returns at once if it has). Returns early when cancelled.
    public func waitForSync() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.synced || Task.isCancelled { return true }
                    state.syncWaiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                defer { state.syncWaiters = [] }
                return state.syncWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    /// A stream of changes. It starts with an `added` event for every object already cached, then follows live.
    /// The stream ends when the informer stops.
    public func events() -> AsyncStream<InformerEvent<T>> {
        let (stream, continuation) = AsyncStream<InformerEvent<T>>.makeStream()
        let id = state.withLock { state -> Int in
            for key in state.items.keys.sorted() { continuation.yield(.added(state.items[key]!)) }
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[id] = continuation
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    // MARK: Running

    /// Lists and watches until cancelled or until graceful shutdown; never throws for API failures (it retries).
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await self.loop()
            }
        } catch is CancellationError {
            // Stopping is not a failure.
        }
        let subscribers = state.withLock { state -> [AsyncStream<InformerEvent<T>>.Continuation] in
            defer { state.subscribers = [:] }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }

    private func loop() async throws {
        var machine = ReflectorStateMachine(
            backoff: Backoff(policy: configuration.backoff, random: random), minimumWatchDuration: configuration.minimumWatchDuration)
        var action = machine.start()
        while true {
            try Task.checkCancellation()
            switch action {
            case .wait(let duration, let then):
                logger.debug("backing off", metadata: ["seconds": "\(duration.seconds)"])
                try await sleeper.sleep(for: duration)
                action = then
            case .list:
                state.withLock { $0.lists += 1 }
                do {
                    let list = try await client.listAll(
                        T.self, namespace: configuration.namespace,
                        options: ListOptions(
                            labelSelector: configuration.labelSelector, fieldSelector: configuration.fieldSelector, limit: configuration.pageSize))
                    let version = list.metadata.resourceVersion ?? ""
                    replace(with: list.items, resourceVersion: version)
                    logger.debug("listed", metadata: ["count": "\(list.items.count)", "resourceVersion": "\(version)"])
                    action = machine.listSucceeded(resourceVersion: version)
                } catch {
                    try Task.checkCancellation()
                    logger.warning("list failed; will retry", metadata: ["error": "\(error)"])
                    action = machine.listFailed(retryAfter: retryAfter(error))
                }
            case .watch(let version):
                action = try await watch(from: version, machine: &machine)
            }
        }
    }

    private func watch(from version: String, machine: inout ReflectorStateMachine) async throws -> ReflectorStateMachine.Action {
        state.withLock { $0.watches += 1 }
        let timeout = Int(Double(configuration.watchTimeoutSeconds.lowerBound)
            + Double(configuration.watchTimeoutSeconds.count - 1) * random())
        let started = ContinuousClock.now
        var eventCount = 0
        do {
            let stream = try await client.watch(
                T.self, namespace: configuration.namespace,
                options: WatchOptions(
                    labelSelector: configuration.labelSelector, fieldSelector: configuration.fieldSelector, resourceVersion: version,
                    allowWatchBookmarks: true, timeoutSeconds: timeout))
            for try await event in stream {
                eventCount += 1
                switch event {
                case .added(let object), .modified(let object):
                    apply(upsert: object)
                    machine.observed(resourceVersion: object.metadata.resourceVersion ?? "")
                case .deleted(let object):
                    apply(delete: object)
                    machine.observed(resourceVersion: object.metadata.resourceVersion ?? "")
                case .bookmark(let bookmarkVersion):
                    machine.observed(resourceVersion: bookmarkVersion)
                    state.withLock { $0.lastResourceVersion = bookmarkVersion }
                case .error(let status):
                    let gone = status.code == 410 || status.reason == "Expired" || status.reason == "Gone"
                    logger.info(
                        gone ? "watch expired; relisting" : "watch ended with an error",
                        metadata: ["code": "\(status.code ?? 0)", "reason": "\(status.reason ?? "")", "message": "\(status.message ?? "")"])
                    return machine.watchFailed(gone: gone)
                }
            }
            try Task.checkCancellation()
            logger.debug("watch closed; resuming", metadata: ["resourceVersion": "\(machine.resourceVersion ?? "")"])
            return machine.watchEnded(after: ContinuousClock.now - started, eventCount: eventCount)
        } catch {
            try Task.checkCancellation()
            let gone = (error as? KubeAPIError)?.isGone ?? false
            logger.warning(gone ? "watch expired; relisting" : "watch failed; will retry", metadata: ["error": "\(error)"])
            return machine.watchFailed(gone: gone, retryAfter: retryAfter(error))
        }
    }

    private func retryAfter(_ error: any Error) -> Duration? {
        guard let seconds = (error as? KubeAPIError)?.status?.details?.retryAfterSeconds, seconds > 0 else { return nil }
        return .seconds(seconds)
    }

    // MARK: Applying changes

    private func emit(_ events: [InformerEvent<T>], to subscribers: [AsyncStream<InformerEvent<T>>.Continuation]) {
        for event in events {
            for subscriber in subscribers { subscriber.yield(event) }
        }
    }

    /// Applies a fresh LIST: emits adds, updates (changed resourceVersion) and deletes against the cache.
    func replace(with objects: [T], resourceVersion: String) {
        var fresh: [ObjectKey: T] = [:]
        for object in objects { fresh[object.key] = object }
        let (events, subscribers, waiters) = state.withLock { state in
            var events: [InformerEvent<T>] = []
            for key in fresh.keys.sorted() {
                let object = fresh[key]!
                if let old = state.items[key] {
                    if old.metadata.resourceVersion != object.metadata.resourceVersion || old.metadata.uid != object.metadata.uid {
                        events.append(old.metadata.uid == object.metadata.uid || old.metadata.uid == nil
                            ? .updated(old: old, new: object) : .added(object))
                    }
                } else {
                    events.append(.added(object))
                }
            }
            for key in state.items.keys.sorted() where fresh[key] == nil {
                events.append(.deleted(state.items[key]!))
            }
            // An object replaced under the same name with a new UID is a delete then an add.
            var ordered: [InformerEvent<T>] = []
            for event in events {
                if case .added(let object) = event, let old = state.items[object.key], old.metadata.uid != object.metadata.uid {
                    ordered.append(.deleted(old))
                }
                ordered.append(event)
            }
            state.items = fresh
            state.lastResourceVersion = resourceVersion
            state.synced = true
            let waiters = state.syncWaiters
            state.syncWaiters = []
            return (ordered, Array(state.subscribers.values), waiters)
        }
        emit(events, to: subscribers)
        for waiter in waiters { waiter.resume() }
    }

    private func apply(upsert object: T) {
        let (event, subscribers) = state.withLock { state -> (InformerEvent<T>?, [AsyncStream<InformerEvent<T>>.Continuation]) in
            let key = object.key
            let old = state.items[key]
            state.items[key] = object
            if let version = object.metadata.resourceVersion { state.lastResourceVersion = version }
            let event: InformerEvent<T>?
            if let old {
                event = old.metadata.resourceVersion == object.metadata.resourceVersion ? nil : .updated(old: old, new: object)
            } else {
                event = .added(object)
            }
            return (event, Array(state.subscribers.values))
        }
        if let event { emit([event], to: subscribers) }
    }

    private func apply(delete object: T) {
        let (event, subscribers) = state.withLock { state -> (InformerEvent<T>?, [AsyncStream<InformerEvent<T>>.Continuation]) in
            let key = object.key
            if let version = object.metadata.resourceVersion { state.lastResourceVersion = version }
            guard state.items.removeValue(forKey: key) != nil else { return (nil, []) }
            return (.deleted(object), Array(state.subscribers.values))
        }
        if let event { emit([event], to: subscribers) }
    }
}
