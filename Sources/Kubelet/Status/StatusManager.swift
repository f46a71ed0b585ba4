import Foundation
public import KubeAPI
import Logging
public import ServiceLifecycle
import Synchronization

/// The mirror pods the API server holds for static pods, by `namespace/name` (fed by the pod informer).
final class MirrorPodCache: Sendable {
    private let pods = Mutex<[String: Pod]>([:])

    func set(_ pod: Pod) { pods.withLock { $0["\(pod.metadata.namespace ?? "default")/\(pod.metadata.name ?? "")"] = pod } }
    func remove(_ pod: Pod) {
        pods.withLock { pods in
            let key = "\(pod.metadata.namespace ?? "default")/\(pod.metadata.name ?? "")"
            if pods[key]?.metadata.uid == pod.metadata.uid { pods[key] = nil }
        }
    }
    func get(_ fullName: String) -> Pod? { pods.withLock { $0[fullName] } }
    var all: [Pod] { pods.withLock { Array($0.values) } }
}

/// Writes pod status to the API server as the kubelet's status manager does: a merge PATCH to `pods/<name>/status`
/// carrying the pod's UID as a precondition, holding only what changed since the API's copy, sent only when the
/// status changed; changes that arrive while a write is in flight are coalesced into the next one. Static pods'
/// status goes to their mirror pod. Once a deleted pod's terminal status is written, the pod is deleted with grace 0
/// and a UID precondition. Without an API server statuses are only kept (they show in `/pods`).
public final class StatusManager: Service, Sendable {
    /// A pod's status as `/pods` shows it.
    public struct Snapshot: Sendable {
        public var pod: DesiredPod
        public var status: PodStatus
        /// The API server has this status (always true standalone).
        public var synced: Bool
    }

    private struct Entry {
        var pod: DesiredPod
        var status: PodStatus
        var version = 0
        var sentVersion = -1
        /// What the API has, as far as we know.
        var apiStatus: PodStatus?
        /// The UID of the object written (the mirror pod's for a static pod).
        var targetUID: String?
        var deleteRequested = false
        var deleted = false
        var inFlight = false
    }

    private let client: (any KubeClientProtocol)?
    private let mirrors: MirrorPodCache
    private let logger: Logger
    private let signal = WakeSignal()
    private let entries = Mutex<[String: Entry]>([:])
    private let resync: Duration
    private let clock: any KubeletClock
    private let counters = Mutex<(patches: Int, deletes: Int, failures: Int)>((0, 0, 0))
    /// Subscribers of ``changes()``, by subscription number.
    private let watchers = Mutex<(next: Int, continuations: [Int: AsyncStream<Void>.Continuation])>((0, [:]))
    static let concurrency = 8

    init(client: (any KubeClientProtocol)?, mirrors: MirrorPodCache, clock: any KubeletClock, resync: Duration = .seconds(10), logger: Logger) {
        self.client = client
        self.mirrors = mirrors
        self.clock = clock
        self.resync = resync
        self.logger = logger
    }

    /// Sets a pod's wanted status; nothing is sent when it equals the last one.
    func set(_ pod: DesiredPod, status: PodStatus) {
        let (changed, podChanged) = entries.withLock { entries -> (Bool, Bool) in
            guard var entry = entries[pod.uid] else {
                var entry = Entry(pod: pod, status: status)
                entry.apiStatus = pod.isStatic ? nil : pod.pod.status
                entries[pod.uid] = entry
                return (true, true)
            }
            let podChanged = entry.pod != pod
            entry.pod = pod
            guard entry.status != status else {
                entries[pod.uid] = entry
                return (false, podChanged)
            }
            entry.status = status
            entry.version += 1
            entries[pod.uid] = entry
            return (true, podChanged)
        }
        if changed { signal.fire() }
        if changed || podChanged { notifyWatchers() }
    }

    /// The last status set for a pod.
    func status(_ uid: String) -> PodStatus? { entries.withLock { $0[uid]?.status } }

    /// After its terminal status is written, delete the pod from the API (grace 0, UID precondition).
    func requestDeletion(_ uid: String) {
        let changed = entries.withLock { entries -> Bool in
            guard entries[uid] != nil, entries[uid]?.deleteRequested == false else { return false }
            entries[uid]?.deleteRequested = true
            return true
        }
        if changed { signal.fire() }
    }

    /// Forgets a pod that left every source.
    func forget(_ uid: String) {
        if entries.withLock({ $0.removeValue(forKey: uid) }) != nil { notifyWatchers() }
    }

    /// Ticks after a pod's status or spec changed here, or a pod was forgotten: what ``snapshots()`` shows moved.
    /// A burst of changes before the subscriber looks again is one tick.
    public func changes() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = watchers.withLock { watchers -> Int in
            watchers.next += 1
            watchers.continuations[watchers.next] = continuation
            return watchers.next
        }
        continuation.onTermination = { [weak self] _ in
            self?.watchers.withLock { _ = $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    private func notifyWatchers() {
        for continuation in watchers.withLock({ Array($0.continuations.values) }) { continuation.yield() }
    }

    /// Every pod's status, by UID.
    public func snapshots() -> [Snapshot] {
        entries.withLock { entries in
            entries.values.map { Snapshot(pod: $0.pod, status: $0.status, synced: client == nil || $0.sentVersion == $0.version) }
        }
    }

    /// PATCHes and DELETEs sent, and failed writes (tests, metrics).
    public var counts: (patches: Int, deletes: Int, failures: Int) { counters.withLock { $0 } }

    /// Wakes the syncer (a mirror pod appeared).
    func poke() { signal.fire() }

    public func run() async throws {
        guard client != nil else {
            // Standalone: statuses are only kept; stay up until the daemon stops.
            try? await gracefulShutdown()
            return
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { [signal, clock, resync] in
                    while !Task.isCancelled {
                        try? await clock.sleep(for: resync)
                        signal.fire()
                    }
                }
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    await signal.wait()
                    if Task.isShuttingDownGracefully { break }
                    await syncOnce()
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.signal.fire()
        }
    }

    /// Sends every pending status and deletion now (the loop calls it; tests too).
    func syncOnce() async {
        guard let client else { return }
        let mirrors = self.mirrors
        let pending = entries.withLock { entries -> [String] in
            entries.filter { _, entry in
                guard !entry.inFlight, !entry.deleted else { return false }
                if entry.sentVersion != entry.version || entry.deleteRequested { return true }
                // A static pod whose mirror was (re)created has its status written to the new mirror.
                return entry.pod.isStatic && mirrors.get(entry.pod.fullName)?.metadata.uid.map { $0 != entry.targetUID } == true
            }.map(\.key)
        }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for uid in pending {
                if running >= Self.concurrency {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.sync(uid, client: client) }
                running += 1
            }
        }
    }

    private func sync(_ uid: String, client: any KubeClientProtocol) async {
        guard var entry = entries.withLock({ entries -> Entry? in
            guard var entry = entries[uid], !entry.inFlight else { return nil }
            entry.inFlight = true
            entries[uid] = entry
            return entry
        }) else { return }
        defer { entries.withLock { $0[uid]?.inFlight = false } }
        let version = entry.version
        // Where to write: the pod itself, or a static pod's mirror.
        var namespace = entry.pod.namespace
        var name = entry.pod.name
        var targetUID = entry.pod.uid
        if entry.pod.isStatic {
            guard let mirror = mirrors.get(entry.pod.fullName), let mirrorUID = mirror.metadata.uid else { return }
            namespace = mirror.metadata.namespace ?? namespace
            name = mirror.metadata.name ?? name
            targetUID = mirrorUID
            if entry.targetUID != mirrorUID {
                entry.apiStatus = mirror.status
                entry.targetUID = mirrorUID
                entry.sentVersion = -1
                entries.withLock { $0[uid]?.apiStatus = mirror.status; $0[uid]?.targetUID = mirrorUID }
            }
        }
        if entry.sentVersion != version {
            do {
                let old = try JSONValue(encoding: entry.apiStatus ?? PodStatus())
                let new = try JSONValue(encoding: entry.status)
                if let diff = JSONValue.mergePatch(from: old, to: new) {
                    let patch: JSONValue = ["metadata": ["uid": .string(targetUID)], "status": diff]
                    logger.trace("pod status patch", metadata: ["pod": "\(entry.pod.fullName)", "patch": "\(patch.jsonString)"])
                    let written = try await client.patchStatus(Pod.self, namespace: namespace, name: name, patch: .merge(patch))
                    counters.withLock { $0.patches += 1 }
                    entries.withLock { $0[uid]?.apiStatus = written.status }
                    logger.debug("pod status written", metadata: ["pod": "\(entry.pod.fullName)", "phase": "\(entry.status.phase ?? "")"])
                }
                entries.withLock { entries in
                    if entries[uid]?.sentVersion ?? version < version { entries[uid]?.sentVersion = version }
                }
                entry.sentVersion = version
            } catch let error as KubeAPIError where error.isNotFound || error.isConflict {
                // The pod is gone or was replaced (UID precondition): nothing to write to.
                logger.info("pod status not written: the pod is gone or replaced", metadata: ["pod": "\(entry.pod.fullName)", "error": "\(error)"])
                entries.withLock { $0[uid]?.sentVersion = version }
                if entry.pod.isStatic { entries.withLock { $0[uid]?.targetUID = nil } }
                return
            } catch {
                counters.withLock { $0.failures += 1 }
                logger.warning("pod status write failed; retrying", metadata: ["pod": "\(entry.pod.fullName)", "error": "\(error)"])
                return
            }
        }
        if entry.deleteRequested && !entry.pod.isStatic && entry.sentVersion == version {
            do {
                try await client.delete(
                    Pod.self, namespace: namespace, name: name,
                    options: DeleteOptions(gracePeriodSeconds: 0, preconditions: Preconditions(uid: entry.pod.uid)))
                counters.withLock { $0.deletes += 1 }
                logger.info("pod deleted from the API server", metadata: ["pod": "\(entry.pod.fullName)"])
                entries.withLock { $0[uid]?.deleted = true }
            } catch let error as KubeAPIError where error.isNotFound || error.isConflict {
                entries.withLock { $0[uid]?.deleted = true }
            } catch {
                counters.withLock { $0.failures += 1 }
                logger.warning("pod deletion failed; retrying", metadata: ["pod": "\(entry.pod.fullName)", "error": "\(error)"])
            }
        }
    }
}
