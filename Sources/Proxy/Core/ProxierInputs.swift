import Foundation
import Logging
import Metrics
import Synchronization

/// What both proxiers do with their informers' callbacks, kept in one place: change tracking, the "initial lists
/// arrived" flags, the node's zone, the full-sync request, the pending-change gauges, and the log line and Event
/// for an object that cannot be proxied. A proxier keeps only its sync.
///
/// A sync ``take(periodicDue:)``s the accumulated changes applied to the Service and endpoint maps, together with
/// the ports they touched; after it ran it calls ``synced(_:ok:)`` so that ports changed meanwhile stay dirty.
final class ProxierInputs: Sendable {
    /// The state behind the callbacks.
    struct State: Sendable {
        var serviceChanges: ServiceChangeTracker
        var endpointChanges: EndpointsChangeTracker
        var services: ServicePortMap = [:]
        var endpoints: EndpointsMap = [:]
        var nodeZone: String?
        var servicesSynced = false
        var endpointSlicesSynced = false
        /// Full syncs asked for (a zone change, a failed sync; the first sync is one) and the request count the last
        /// successful sync covered: a request that comes in while a sync runs stays owed.
        var fullSyncRequests: UInt64 = 1
        var fullSyncsDone: UInt64 = 0
        var needFullSync: Bool { fullSyncRequests != fullSyncsDone }
        /// Service ports changed since the last successful sync.
        var dirty: Set<ServicePortName> = []

        mutating func requestFullSync() { fullSyncRequests += 1 }
    }

    /// What a sync works from.
    struct Taken: Sendable {
        var services: ServicePortMap
        var endpoints: EndpointsMap
        var nodeZone: String?
        /// A full sync was asked for (a zone change, a failed sync, or none succeeded yet).
        var needFullSync: Bool
        /// ``State/fullSyncRequests`` when this was taken.
        var fullSyncRequests: UInt64
        /// The ports changed since the last successful sync.
        var changed: Set<ServicePortName>
        var serviceUpdate: ServiceMapUpdate
        var endpointsUpdate: EndpointsMapUpdate
        /// When each changed EndpointSlice's change was triggered (network programming latency).
        var triggerTimes: [NamespacedName: [Date]]
    }

    private let family: IPFamily
    private let state: Mutex<State>
    private let health: ProxyHealth
    private let events: any ProxyEventRecorder
    private let logger: Logger
    private let serviceChangesPending: Gauge
    private let endpointChangesPending: Gauge
    /// Set once by the proxier after its runner exists; asks for a sync.
    private let requestSync = Mutex<(@Sendable () -> Void)?>(nil)

    init(
        family: IPFamily, nodeName: String, health: ProxyHealth, events: any ProxyEventRecorder, logger: Logger,
        serviceChangesPending: Gauge, endpointChangesPending: Gauge
    ) {
        self.family = family
        self.health = health
        self.events = events
        self.logger = logger
        self.serviceChangesPending = serviceChangesPending
        self.endpointChangesPending = endpointChangesPending
        state = Mutex(
            State(serviceChanges: ServiceChangeTracker(family: family), endpointChanges: EndpointsChangeTracker(family: family, nodeName: nodeName)))
    }

    /// Connects the inputs to the proxier's sync runner.
    func connect(_ requestSync: @escaping @Sendable () -> Void) { self.requestSync.withLock { $0 = requestSync } }

    private func sync() { requestSync.withLock { $0 }?() }

    // MARK: Callbacks

    func serviceChanged(previous: ServiceObject?, current: ServiceObject?) {
        let (pending, error, count) = state.withLock { state in
            let (pending, error) = state.serviceChanges.update(previous: previous, current: current)
            return (pending, error, state.serviceChanges.pendingCount)
        }
        serviceChangesPending.record(count)
        if let error { report(error) }
        if pending { queued() }
    }

    func endpointSliceChanged(previous: EndpointSliceObject?, current: EndpointSliceObject?) {
        guard let slice = current ?? previous else { return }
        let (pending, error, count) = state.withLock { state in
            let (pending, error) = state.endpointChanges.update(slice, removed: current == nil)
            return (pending, error, state.endpointChanges.pendingCount)
        }
        endpointChangesPending.record(count)
        if let error { report(error) }
        if pending { queued() }
    }

    func nodeChanged(_ node: NodeObject?) {
        let zone = node?.metadata.labels?[NodeObject.zoneLabel]
        let changed = state.withLock { state in
            defer { state.nodeZone = zone }
            // Topology hints touch every Service: rebuild everything.
            if state.nodeZone != zone { state.requestFullSync() }
            return state.nodeZone != zone
        }
        if changed { queued() }
    }

    func requestFullSync() {
        state.withLock { $0.requestFullSync() }
        sync()
    }

    func servicesSynced() {
        state.withLock { $0.servicesSynced = true }
        sync()
    }

    func endpointSlicesSynced() {
        state.withLock { $0.endpointSlicesSynced = true }
        sync()
    }

    private func queued() {
        health.queued(family)
        sync()
    }

    private func report(_ error: ProxyInputError) {
        logger.warning("skipping invalid object", metadata: ["kind": "\(error.kind)", "object": "\(error.object)", "field": "\(error.field)", "error": "\(error)"])
        events.warning(kind: error.kind, object: error.object, reason: "FailedToProxy", message: error.description)
    }

    // MARK: Syncing

    /// The changes since the last take applied to the Service and endpoint maps; nil until both initial lists
    /// arrived (a sync before that would program a half-listed state).
    func take() -> Taken? {
        let taken: Taken? = state.withLock { state in
            guard state.servicesSynced && state.endpointSlicesSynced else { return nil }
            let serviceChanges = state.serviceChanges.checkout()
            let (endpointChanges, triggerTimes) = state.endpointChanges.checkout()
            let serviceUpdate = state.services.apply(serviceChanges)
            let endpointsUpdate = state.endpoints.apply(endpointChanges)
            for change in serviceChanges.values {
                state.dirty.formUnion(change.previous.keys)
                state.dirty.formUnion(change.current.keys)
            }
            for change in endpointChanges.values {
                state.dirty.formUnion(change.previous.keys)
                state.dirty.formUnion(change.current.keys)
            }
            return Taken(
                services: state.services, endpoints: state.endpoints, nodeZone: state.nodeZone, needFullSync: state.needFullSync,
                fullSyncRequests: state.fullSyncRequests,
                changed: state.dirty, serviceUpdate: serviceUpdate, endpointsUpdate: endpointsUpdate, triggerTimes: triggerTimes)
        }
        serviceChangesPending.record(0)
        endpointChangesPending.record(0)
        return taken
    }

    /// After a sync of `taken`: when it succeeded its ports are clean (ports changed meanwhile stay dirty) and no
    /// full sync is owed, unless one was asked for while it ran (a zone change then would otherwise be lost: the
    /// sync worked from the old zone); when it failed the next sync is a full one.
    func synced(_ taken: Taken, ok: Bool) {
        state.withLock { state in
            if ok {
                state.dirty.subtract(taken.changed)
                state.fullSyncsDone = taken.fullSyncRequests
            } else {
                state.requestFullSync()
            }
        }
    }
}
