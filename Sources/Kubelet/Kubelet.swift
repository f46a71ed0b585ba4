public import CRI
import Foundation
public import KubeAPI
public import Logging
public import ServiceLifecycle
import Synchronization

/// The kubelet proper: merges the pod sources (the API server's pods bound to this node, and static pods from the
/// manifest folder), admits new pods, runs one ``PodWorker`` per pod, routes container exits and probe results to
/// the pod's worker, keeps mirror pods for static pods, and at start cleans up pods that disappeared while the
/// daemon was down (once every source has been read).
///
/// Run ``services`` in the daemon's `ServiceGroup`: the pod informer (with an API server), the kubelet loop, the
/// status manager and the event recorder. Without an API client the kubelet runs standalone on the manifest
/// folder alone.
public actor Kubelet {
    /// Health as the daemon's checks read it.
    public struct Health: Sendable, Hashable {
        /// The last runtime call failed with this (nil: the runtime answers).
        public var runtimeError: String?
        /// Every pod source has been read once.
        public var sourcesReady: Bool
    }

    private struct WorkerHandle {
        var worker: PodWorker
        var task: Task<Void, Never>
        var pod: DesiredPod
    }

    public nonisolated let configuration: KubeletConfiguration
    public nonisolated let statusManager: StatusManager
    public nonisolated let events: EventRecorder
    nonisolated let runtime: any ContainerRuntime
    nonisolated let client: (any KubeClientProtocol)?
    nonisolated let clock: any KubeletClock
    nonisolated let logger: Logger
    nonisolated let probes: ProbeManager
    nonisolated let volumes: VolumeManager
    nonisolated let mirrors = MirrorPodCache()
    nonisolated let informer: Informer<Pod>?
    private nonisolated let context: PodContext
    private nonisolated let registry = Locked<[String: PodWorker]>([:])
    private nonisolated let sandboxOwners = Locked<[String: String]>([:])
    private nonisolated let health = Locked(Health(runtimeError: nil, sourcesReady: false))
    private nonisolated let manifestState = Locked<[ManifestError]>([])

    private nonisolated let housekeepingSignal = WakeSignal()
    private var workers: [String: WorkerHandle] = [:]
    private var sources: [PodSourceKind: [String: DesiredPod]] = [:]
    private var readySources: Set<PodSourceKind> = []
    private var cleanedUp = false
    private var nodeLabels: (labels: [String: String], uid: String?, read: Date)?
    private let admission: Admission

    /// - Parameters:
    ///   - client: the API server; nil runs standalone on the manifest folder.
    ///   - clock: where time is read and waited on (a manual clock in tests).
    public init(
        configuration: KubeletConfiguration, runtime: any ContainerRuntime, client: (any KubeClientProtocol)?,
        clock: any KubeletClock = SystemKubeletClock(), logger: Logger
    ) {
        self.configuration = configuration
        self.runtime = runtime
        self.client = client
        self.clock = clock
        self.logger = logger
        let mirrors = self.mirrors
        statusManager = StatusManager(client: client, mirrors: mirrors, clock: clock, logger: logger)
        events = EventRecorder(client: client, nodeName: configuration.nodeName, clock: clock, recentLimit: configuration.recentEventsPerPod, logger: logger)
        let objects = ObjectCache(client: client, ttl: configuration.objectCacheTTL, clock: clock)
        volumes = VolumeManager(podsDirectory: configuration.podsDirectory, objects: objects, logger: logger)
        let handlers = HandlerRunner(runtime: runtime, clock: clock, networkNamespace: configuration.probeNetworkNamespace, userAgent: configuration.probeUserAgent)
        let registry = self.registry
        let events = self.events
        probes = ProbeManager(
            runner: handlers, clock: clock, logger: logger,
            onChange: { uid in registry.withLock { $0[uid] }?.wake() },
            onFailure: { pod, container, kind, message in
                let name = kind.rawValue.prefix(1).uppercased() + kind.rawValue.dropFirst()
                events.record(pod, type: "Warning", reason: "Unhealthy", message: "\(name) probe failed: \(message)", fieldPath: "spec.containers{\(container)}")
            })
        if let client {
            var informerConfiguration = InformerConfiguration(fieldSelector: "spec.nodeName=\(configuration.nodeName)")
            informerConfiguration.pageSize = 500
            informer = Informer(Pod.self, client: client, configuration: informerConfiguration, logger: logger)
        } else {
            informer = nil
        }
        let health = self.health
        let owners = self.sandboxOwners
        context = PodContext(
            configuration: configuration, runtime: runtime, client: client, clock: clock, statusManager: statusManager, events: events,
            probes: probes, volumes: volumes, images: ImageManager(runtime: runtime, clock: clock), objects: objects, handlers: handlers,
            logger: logger,
            runtimeHealth: { error in
                health.withLock { state in
                    if let error { if error.kind == .runtimeUnavailable { state.runtimeError = error.description } } else { state.runtimeError = nil }
                }
            },
            sandboxesObserved: { uid, sandboxes in owners.withLock { for id in sandboxes { $0[id] = uid } } })
        admission = Admission(
            maxPods: configuration.maxPods, allocatableCPUMillis: configuration.allocatableCPUMillis,
            allocatableMemoryBytes: configuration.allocatableMemoryBytes)
    }

    /// The services to run in the daemon's group, in start order.
    public nonisolated var services: [any Service] {
        var services: [any Service] = []
        if let informer { services.append(informer) }
        services.append(KubeletService(kubelet: self))
        services.append(statusManager)
        services.append(events)
        return services
    }

    /// Health for the daemon's checks.
    public nonisolated var currentHealth: Health { health.withLock { $0 } }

    /// Manifest files that did not become pods.
    public nonisolated var manifestErrors: [ManifestError] { manifestState.withLock { $0 } }

    // MARK: The loop

    /// Runs the sources, the exit router and housekeeping until cancelled; then stops the workers (containers keep
    /// running).
    func run() async {
        if client == nil && configuration.podManifestPath == nil {
            logger.warning("no kubeconfig and no --pod-manifest-path: the kubelet has no pod source and will run no pods")
        }
        if client == nil { markReady(.api) }
        if configuration.podManifestPath == nil { markReady(.file) }
        await withTaskGroup(of: Void.self) { group in
            if let path = configuration.podManifestPath {
                group.addTask { await self.watchManifests(path) }
            }
            if let informer {
                group.addTask { await self.followInformer(informer) }
            }
            group.addTask { await self.routeExits() }
            group.addTask { await self.housekeeping() }
            await group.waitForAll()
        }
        let handles = Array(workers.values)
        for handle in handles { handle.task.cancel() }
        for handle in handles { await handle.task.value }
        probes.stopAll()
        logger.info("kubelet stopped; containers keep running")
    }

    private func markReady(_ source: PodSourceKind) {
        readySources.insert(source)
        let ready = readySources.isSuperset(of: [.api, .file])
        health.withLock { $0.sourcesReady = ready }
        if ready { housekeepingSignal.fire() }
    }

    private func watchManifests(_ path: String) async {
        let signal = WakeSignal()
        let watcher = ManifestWatcher(directory: path)
        watcher.start({ signal.fire() }, logger: logger)
        defer { watcher.stop() }
        let clock = self.clock
        let interval = configuration.manifestRescanInterval
        let ticker = Task {
            while !Task.isCancelled {
                do { try await clock.sleep(for: interval) } catch { return }
                signal.fire()
            }
        }
        defer { ticker.cancel() }
        var last: ManifestDirectory.Scan?
        while !Task.isCancelled {
            let previous = sources[.file] ?? [:]
            let scan = ManifestDirectory.scan(path, nodeName: configuration.nodeName, now: clock.now(), previous: previous)
            if scan != last {
                for error in scan.errors where !(last?.errors.contains(error) ?? false) {
                    logger.error("static pod manifest refused", metadata: ["file": "\(error.path)", "field": "\(error.field ?? "")", "error": "\(error.message)"])
                    reportManifestError(error)
                }
                manifestState.withLock { $0 = scan.errors }
                apply(.file, scan.pods)
                last = scan
            }
            markReady(.file)
            await signal.wait()
            // Editors write in several steps: let them finish.
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// An event on the Node for a manifest that was refused (there is no pod to attach it to).
    private func reportManifestError(_ error: ManifestError) {
        guard client != nil else { return }
        let node = ObjectReference(kind: "Node", namespace: "default", name: configuration.nodeName, uid: configuration.nodeName, apiVersion: "v1")
        events.record(node, type: "Warning", reason: "FailedStaticPod", message: "\(error.path)\(error.field.map { ": \($0)" } ?? ""): \(error.message)")
    }

    private func followInformer(_ informer: Informer<Pod>) async {
        let stream = informer.events()
        let synced = Task {
            await informer.waitForSync()
            self.apiSynced()
        }
        defer { synced.cancel() }
        for await event in stream {
            handle(event)
        }
    }

    private func apiSynced() {
        markReady(.api)
        logger.info("pods from the API server synced", metadata: ["pods": "\(sources[.api]?.count ?? 0)"])
    }

    private func handle(_ event: InformerEvent<Pod>) {
        let pod = event.object
        if pod.metadata.annotations?[PodManifest.mirrorAnnotation] != nil {
            switch event {
            case .added, .updated: mirrors.set(pod)
            case .deleted: mirrors.remove(pod)
            }
            statusManager.poke()
            Task { await self.syncMirrors() }
            return
        }
        guard let uid = pod.metadata.uid, !uid.isEmpty else { return }
        var current = sources[.api] ?? [:]
        switch event {
        case .added(let pod), .updated(_, let pod):
            let desired = DesiredPod(pod: pod, source: .api)
            current[uid] = desired
            sources[.api] = current
            upsert(desired)
        case .deleted:
            current[uid] = nil
            sources[.api] = current
            if sources[.file]?[uid] == nil { removeWorker(uid) }
        }
    }

    /// Replaces what one source says (the manifest folder gives whole snapshots).
    func apply(_ source: PodSourceKind, _ pods: [DesiredPod]) {
        let old = sources[source] ?? [:]
        var new: [String: DesiredPod] = [:]
        for pod in pods where !pod.uid.isEmpty { new[pod.uid] = pod }
        sources[source] = new
        for pod in pods { upsert(pod) }
        for uid in old.keys where new[uid] == nil && !sources.contains(where: { $0.key != source && $0.value[uid] != nil }) {
            removeWorker(uid)
        }
        if source == .file { Task { await self.syncMirrors() } }
    }

    private func upsert(_ pod: DesiredPod) {
        if let handle = workers[pod.uid] {
            guard handle.pod != pod else { return }
            workers[pod.uid]?.pod = pod
            // Our own status writes come back through the informer: only a change of what the worker acts on
            // (spec, metadata, deletion) wakes it, as the kubelet's pod config ignores status-only updates.
            guard Self.significantlyDifferent(handle.pod, pod) else { return }
            let worker = handle.worker
            Task { await worker.update(pod) }
            return
        }
        var rejection: (reason: String, message: String)?
        let phase = pod.pod.status?.phase
        if phase != "Succeeded" && phase != "Failed" && !pod.deletionRequested {
            let active = workers.values.filter { handle in
                let status = statusManager.status(handle.pod.uid)
                return status?.phase != "Succeeded" && status?.phase != "Failed" && !handle.pod.deletionRequested
            }.map(\.pod)
            if let refused = admission.admit(pod, active: active, nodeLabels: nodeLabels?.labels ?? configuration.nodeLabels) {
                rejection = (refused.reason, refused.message)
                logger.warning("pod rejected", metadata: ["pod": "\(pod.fullName)", "reason": "\(refused.reason)", "message": "\(refused.message)"])
                events.record(pod, type: "Warning", reason: refused.reason, message: refused.message)
            }
        }
        let worker = PodWorker(pod: pod, context: context, rejection: rejection)
        let uid = pod.uid
        let task = Task {
            await worker.run()
            self.workerFinished(uid, worker: worker)
        }
        workers[uid] = WorkerHandle(worker: worker, task: task, pod: pod)
        registry.withLock { $0[uid] = worker }
        logger.info("pod added", metadata: ["pod": "\(pod.fullName)", "uid": "\(uid)", "source": "\(pod.source.rawValue)"])
    }

    /// True when the pods differ in more than status and bookkeeping metadata.
    static func significantlyDifferent(_ old: DesiredPod, _ new: DesiredPod) -> Bool {
        var left = old.pod
        var right = new.pod
        left.status = nil
        right.status = nil
        left.metadata.resourceVersion = nil
        right.metadata.resourceVersion = nil
        left.metadata.annotations?[PodManifest.seenAnnotation] = nil
        right.metadata.annotations?[PodManifest.seenAnnotation] = nil
        // Conditions set by others (readiness gates) are read from the status: they count.
        let gates = { (pod: Pod) in (pod.status?.conditions ?? []).filter { !PodStatusBuilder.ownedConditions.contains($0.type) } }
        return left != right || old.source != new.source || gates(old.pod) != gates(new.pod)
    }

    private func removeWorker(_ uid: String) {
        guard let handle = workers[uid] else { return }
        let worker = handle.worker
        Task { await worker.remove() }
    }

    private func workerFinished(_ uid: String, worker: PodWorker) {
        guard workers[uid]?.worker === worker else { return }
        // A pod that came back while it was being removed gets a fresh worker.
        let returning = sources.values.compactMap { $0[uid] }.first
        workers[uid] = nil
        registry.withLock { $0[uid] = nil }
        sandboxOwners.withLock { owners in owners = owners.filter { $0.value != uid } }
        if let returning, !Task.isCancelled { upsert(returning) }
        Task { await self.syncMirrors() }
    }

    /// Wakes the worker of the pod a container exit belongs to.
    private func routeExits() async {
        for await exit in runtime.exitEvents() {
            var uid = exit.sandboxID.flatMap { id in sandboxOwners.withLock { $0[id] } }
            if uid == nil { uid = try? await runtime.containerStatus(exit.containerID).pod.uid }
            if let uid { registry.withLock { $0[uid] }?.wake() }
        }
    }

    private func housekeeping() async {
        while !Task.isCancelled {
            if !cleanedUp, readySources.isSuperset(of: [.api, .file]) {
                await cleanUpOrphans()
            }
            await refreshNodeLabels()
            await syncMirrors()
            // Wake at the resync interval, or at once when the sources become ready.
            let signal = housekeepingSignal
            let clock = self.clock
            let interval = configuration.resyncInterval
            let timer = Task {
                do {
                    try await clock.sleep(for: interval)
                    signal.fire()
                } catch {}
            }
            await signal.wait()
            timer.cancel()
        }
    }

    /// Pods the runtime still has but no source wants (removed while the daemon was down): stopped (grace 2 s)
    /// and removed with their volumes.
    private func cleanUpOrphans() async {
        // The informer's cache is complete once synced, but its events may still wait in the stream: count its pods too.
        let cached = Set((informer?.list() ?? []).compactMap(\.metadata.uid))
        let wanted = Set(sources.values.flatMap(\.keys)).union(workers.keys).union(cached)
        let sandboxes: [PodSandboxStatus]
        do {
            sandboxes = try await runtime.listPodSandboxes()
        } catch {
            logger.warning("cannot list sandboxes for the start-up cleanup; retrying", metadata: ["error": "\(error)"])
            return
        }
        cleanedUp = true
        var removed = 0
        for sandbox in sandboxes where !wanted.contains(sandbox.config.pod.uid) {
            do {
                try await runtime.stopPodSandbox(sandbox.id, gracePeriod: PodWorker.StateMachine.minimumGrace)
                try await runtime.removePodSandbox(sandbox.id)
                removed += 1
                logger.info("removed a pod that no source wants", metadata: ["pod": "\(sandbox.config.pod)", "sandbox": "\(sandbox.id)"])
            } catch {
                logger.warning("cannot remove an orphaned pod", metadata: ["pod": "\(sandbox.config.pod)", "error": "\(error)"])
                cleanedUp = false
            }
        }
        let current = Set(sources.values.flatMap(\.keys)).union(workers.keys).union(cached)
        for uid in volumes.podFolders() where !current.contains(uid) { volumes.tearDown(uid: uid) }
        logger.info("start-up cleanup done", metadata: ["removedPods": "\(removed)"])
    }

    private func refreshNodeLabels() async {
        guard let client else { return }
        if let nodeLabels, clock.now().timeIntervalSince(nodeLabels.read) < 30 { return }
        do {
            let node = try await client.get(Node.self, namespace: nil, name: configuration.nodeName)
            nodeLabels = (configuration.nodeLabels.merging(node.metadata.labels ?? [:]) { _, new in new }, node.metadata.uid, clock.now())
        } catch {
            nodeLabels = (configuration.nodeLabels, nil, clock.now())
        }
    }

    /// Every static pod has a current mirror pod and no mirror pod lacks its static pod.
    func syncMirrors() async {
        guard let client, readySources.contains(.api), readySources.contains(.file) else { return }
        let statics = Array((sources[.file] ?? [:]).values)
        let running = Set(statics.filter { workers[$0.uid] != nil }.map(\.fullName))
        for pod in statics where running.contains(pod.fullName) {
            let mirror = mirrors.get(pod.fullName)
            if let mirror, mirror.metadata.annotations?[PodManifest.mirrorAnnotation] == pod.uid, mirror.metadata.deletionTimestamp == nil { continue }
            if let mirror, let uid = mirror.metadata.uid {
                _ = try? await client.delete(
                    Pod.self, namespace: pod.namespace, name: pod.name, options: DeleteOptions(gracePeriodSeconds: 0, preconditions: Preconditions(uid: uid)))
                mirrors.remove(mirror)
            }
            var copy = pod.pod
            copy.metadata.uid = nil
            copy.metadata.resourceVersion = nil
            copy.metadata.creationTimestamp = nil
            copy.metadata.annotations = (copy.metadata.annotations ?? [:]).merging([PodManifest.mirrorAnnotation: pod.uid]) { _, new in new }
            if let nodeUID = nodeLabels?.uid {
                copy.metadata.ownerReferences = [OwnerReference(apiVersion: "v1", kind: "Node", name: configuration.nodeName, uid: nodeUID, controller: true)]
            }
            copy.status = nil
            do {
                let created = try await client.create(copy)
                mirrors.set(created)
                statusManager.poke()
                logger.info("mirror pod created", metadata: ["pod": "\(pod.fullName)"])
            } catch let error as KubeAPIError where error.isAlreadyExists {
                // The informer will show it.
            } catch {
                logger.warning("cannot create a mirror pod", metadata: ["pod": "\(pod.fullName)", "error": "\(error)"])
            }
        }
        let wanted = Set(statics.map(\.fullName))
        for mirror in mirrors.all {
            let fullName = "\(mirror.metadata.namespace ?? "default")/\(mirror.metadata.name ?? "")"
            guard !wanted.contains(fullName), let uid = mirror.metadata.uid else { continue }
            do {
                try await client.delete(
                    Pod.self, namespace: mirror.metadata.namespace, name: mirror.metadata.name ?? "",
                    options: DeleteOptions(gracePeriodSeconds: 0, preconditions: Preconditions(uid: uid)))
                logger.info("orphaned mirror pod deleted", metadata: ["pod": "\(fullName)"])
            } catch let error as KubeAPIError where error.isNotFound || error.isConflict {
            } catch {
                logger.warning("cannot delete an orphaned mirror pod", metadata: ["pod": "\(fullName)", "error": "\(error)"])
                continue
            }
            mirrors.remove(mirror)
        }
    }

    // MARK: Inspection

    /// The pods with a worker.
    public var podCount: Int { workers.count }

    /// A worker's state machine, for tests.
    func worker(_ uid: String) -> PodWorker? { workers[uid]?.worker }
}

/// The kubelet's loop as a `Service`: runs until graceful shutdown, then stops the pod workers without touching
/// the containers.
struct KubeletService: Service {
    let kubelet: Kubelet

    func run() async throws {
        // Graceful shutdown cancels the loop; the loop then stops the workers and returns.
        await cancelWhenGracefulShutdown {
            await kubelet.run()
        }
    }
}
