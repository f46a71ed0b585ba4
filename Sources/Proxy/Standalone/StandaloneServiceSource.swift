public import Logging
public import ServiceLifecycle

/// Feeds a proxier with no API server (standalone mode): the Services of the manifest folder, their endpoints
/// derived from this node's own pods (``StandaloneEndpoints``), plus any EndpointSlice manifests written by hand
/// for Services without a selector.
///
/// The folder is rescanned every `rescanInterval` (the kubelet's `--file-check-frequency`, 20 s) and the endpoints
/// recomputed at once whenever the pod source reports a change. Each round hands the proxier only what changed
/// since the last; the first round is followed by `servicesSynced` / `endpointSlicesSynced`. A manifest that
/// cannot be read is logged once per change of its problem; the objects of every other file keep being served.
public struct StandaloneServiceSource: Service {
    public var folder: ServiceManifestFolder
    public var pods: (any LocalPodSource)?
    public var nodeName: String
    public var proxier: any Proxier
    public var rescanInterval: Duration
    public var status: ProxySourceStatus
    public var logger: Logger

    public init(
        folder: ServiceManifestFolder,
        pods: (any LocalPodSource)?,
        nodeName: String,
        proxier: any Proxier,
        rescanInterval: Duration = .seconds(20),
        status: ProxySourceStatus = ProxySourceStatus(source: "manifests"),
        logger: Logger
    ) {
        self.folder = folder
        self.pods = pods
        self.nodeName = nodeName
        self.proxier = proxier
        self.rescanInterval = rescanInterval
        self.status = status
        self.logger = logger
    }

    /// What was last handed to the proxier.
    struct Delivered {
        var services: [NamespacedName: ServiceObject] = [:]
        var slices: [NamespacedName: EndpointSliceObject] = [:]
        var problems: [String: String] = [:]
        var first = true
    }

    public func run() async throws {
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try? await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if let pods {
                    group.addTask {
                        for await _ in pods.changes() { wake.yield() }
                    }
                }
                group.addTask {
                    var delivered = Delivered()
                    var iterator = wakes.makeAsyncIterator()
                    while !Task.isCancelled {
                        await round(&delivered)
                        // Until the rescan is due or a pod changed, whichever comes first. A timer cancelled
                        // because a pod changed must not wake the next round too: that wake would cancel the
                        // next timer, which would wake the round after, a hot loop rescanning the folder.
                        await withTaskGroup(of: Void.self) { timer in
                            timer.addTask {
                                guard (try? await Task.sleep(for: rescanInterval)) != nil else { return }
                                wake.yield()
                            }
                            _ = await iterator.next()
                            timer.cancelAll()
                        }
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
        wake.finish()
    }

    /// One scan: reads the folder and the pods, hands the proxier the difference.
    func round(_ delivered: inout Delivered) async {
        let scan = folder.scan()
        for (file, problem) in scan.problems.sorted(by: { $0.key < $1.key }) where delivered.problems[file] != problem {
            logger.warning("skipping unreadable manifest", metadata: ["file": "\(file)", "folder": "\(folder.path)", "error": "\(problem)"])
        }
        delivered.problems = scan.problems
        let localPods = await pods?.pods() ?? []
        var slices = scan.endpointSlices
        for slice in StandaloneEndpoints.slices(for: Array(scan.services.values), pods: localPods, nodeName: nodeName) {
            let key = NamespacedName(slice.metadata.namespace ?? "default", slice.metadata.name)
            if slices[key] == nil { slices[key] = slice }  // a hand-written slice of the same name wins
        }
        Self.deliver(from: delivered.services, to: scan.services) { proxier.serviceChanged(previous: $0, current: $1) }
        Self.deliver(from: delivered.slices, to: slices) { proxier.endpointSliceChanged(previous: $0, current: $1) }
        delivered.services = scan.services
        delivered.slices = slices
        status.update {
            $0.services = scan.services.count
            $0.endpointSlices = slices.count
        }
        if delivered.first {
            delivered.first = false
            proxier.servicesSynced()
            proxier.endpointSlicesSynced()
            status.update {
                $0.servicesSynced = true
                $0.endpointSlicesSynced = true
            }
            logger.info(
                "standalone Services read", metadata: ["folder": "\(folder.path)", "services": "\(scan.services.count)", "pods": "\(localPods.count)"])
        }
    }

    /// Calls `change(previous, current)` for every key added, changed or removed between `old` and `new`.
    static func deliver<Object: Equatable>(
        from old: [NamespacedName: Object], to new: [NamespacedName: Object], _ change: (Object?, Object?) -> Void
    ) {
        for key in new.keys.sorted() where old[key] != new[key] { change(old[key], new[key]) }
        for key in old.keys.sorted() where new[key] == nil { change(old[key], nil) }
    }
}
