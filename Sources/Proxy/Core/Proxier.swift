public import ServiceLifecycle

/// What both proxy modes implement (kube-proxy's `Provider`): informer callbacks that queue changes cheaply,
/// and a sync loop (the `Service`'s `run`) that turns them into kernel state under bounded frequency.
///
/// Callbacks follow informer semantics: an add is `(nil, new)`, an update `(old, new)`, a delete `(old, nil)`.
/// No rules are written before both ``servicesSynced()`` and ``endpointSlicesSynced()`` have been called, so a
/// restart never programs a half-listed state.
public protocol Proxier: Service {
    func serviceChanged(previous: ServiceObject?, current: ServiceObject?)
    func endpointSliceChanged(previous: EndpointSliceObject?, current: EndpointSliceObject?)
    /// This node's Node object (labels for topology hints); nil when it is deleted.
    func nodeChanged(_ node: NodeObject?)
    func servicesSynced()
    func endpointSlicesSynced()
    /// Runs one sync now, outside the bounded-frequency schedule (tests, benchmarks, shutdown).
    @discardableResult
    func syncNow() async -> SyncOutcome
}

/// What one sync did.
public enum SyncOutcome: Sendable, Equatable {
    /// Waiting for the initial lists of Services and EndpointSlices.
    case notReady
    /// Applied: whether it was a full sync, and how many commands the transaction had (0: nothing changed).
    case applied(full: Bool, commands: Int)
    /// nft refused or failed; a full sync is scheduled.
    case failed(String)
}

/// Where warnings about objects go (Kubernetes Events once the API client is wired; a log line until then).
public protocol ProxyEventRecorder: Sendable {
    /// A `Warning` event on `kind namespace/name` with `reason` and `message`.
    func warning(kind: String, object: NamespacedName, reason: String, message: String)
}

public import Logging

/// Records events as log lines.
public struct LoggingEventRecorder: ProxyEventRecorder {
    public var logger: Logger
    public init(logger: Logger) { self.logger = logger }

    public func warning(kind: String, object: NamespacedName, reason: String, message: String) {
        logger.warning("event", metadata: ["kind": "\(kind)", "object": "\(object)", "reason": "\(reason)", "message": "\(message)"])
    }
}

/// Fans every callback out to one proxier per IP family (dual-stack), as kube-proxy's `metaProxier`.
public struct MetaProxier: Proxier {
    public var proxiers: [any Proxier]

    public init(_ proxiers: [any Proxier]) { self.proxiers = proxiers }

    public func serviceChanged(previous: ServiceObject?, current: ServiceObject?) {
        for proxier in proxiers { proxier.serviceChanged(previous: previous, current: current) }
    }
    public func endpointSliceChanged(previous: EndpointSliceObject?, current: EndpointSliceObject?) {
        for proxier in proxiers { proxier.endpointSliceChanged(previous: previous, current: current) }
    }
    public func nodeChanged(_ node: NodeObject?) {
        for proxier in proxiers { proxier.nodeChanged(node) }
    }
    public func servicesSynced() { for proxier in proxiers { proxier.servicesSynced() } }
    public func endpointSlicesSynced() { for proxier in proxiers { proxier.endpointSlicesSynced() } }

    public func syncNow() async -> SyncOutcome {
        var last = SyncOutcome.notReady
        for proxier in proxiers {
            last = await proxier.syncNow()
            if case .failed = last { return last }
        }
        return last
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for proxier in proxiers { group.addTask { try await proxier.run() } }
            try await group.waitForAll()
        }
    }
}
