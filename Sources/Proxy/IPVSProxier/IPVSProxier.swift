public import CoreMetrics
public import Foundation
public import IPVS
public import Iptables
public import Logging
public import ServiceLifecycle
import Synchronization

/// A monotonic time source for the proxier's decisions (periodic full syncs, graceful termination bounds):
/// the time since the proxier was made. Tests drive it with a manual clock.
public struct ProxierClock: Sendable {
    /// Time since the clock was made.
    public let now: @Sendable () -> Duration
    /// Sleeps for a duration of this clock.
    public let sleep: @Sendable (Duration) async throws -> Void

    public init<C: Clock<Duration>>(_ clock: C) {
        let start = clock.now
        now = { start.duration(to: clock.now) }
        sleep = { try await clock.sleep(until: clock.now.advanced(by: $0), tolerance: nil) }
    }
}

/// What the IPVS proxier reports for `/status`: the mode, what it programs, the sysctls it set, its last error.
public struct IPVSProxierStatus: Sendable, Hashable, Codable {
    public var mode = ProxyMode.ipvs
    public var family: IPFamily
    public var scheduler: String
    public var interface: String
    public var virtualServers = 0
    public var realServers = 0
    public var drainingRealServers = 0
    public var boundAddresses = 0
    public var lastSync: Date?
    public var lastFullSync: Date?
    /// Kernel writes of the last sync (IPVS changes, address changes, nft commands); an idle sync makes none.
    public var lastSyncWrites = 0
    public var lastError: String?
    public var sysctls: IPVSSysctls?
    /// The outcome of setting `--ipvs-tcp-timeout`, `--ipvs-tcpfin-timeout`, `--ipvs-udp-timeout` (nil: none asked).
    public var timeouts: String?
    /// Schedulers the kernel refused; Services annotated with them use the default scheduler.
    public var unavailableSchedulers: [String] = []
}

/// The IPVS proxier (`--proxy-mode=ipvs`): Services and EndpointSlices of one IP family become IPVS virtual
/// servers over generic netlink, their virtual IPs addresses of `kube-ipvs0`, plus one small nf_tables table
/// (``IPVSFilterTable``) for masquerade, NodePort acceptance and rejecting Services without endpoints.
///
/// - **Incremental syncs** keep the last programmed state and each Service port's contribution
///   (``IPVSFragment``); a change recomputes only the changed ports and sends only the difference, so one endpoint
///   change costs a handful of netlink messages whatever the number of Services.
/// - **Full syncs** (the first, after any failure, once per `--ipvs-sync-period`) read the kernel back (one service
///   dump, one real-server dump per owned service, the interface's addresses, the nft table) and repair any drift,
///   touching only what this daemon owns (``IPVSOwnership``). A full sync of an unchanged kernel writes nothing, so
///   a restarted daemon re-adopts the table without flushing it: connections keep flowing.
/// - **Graceful termination**: a TCP real server no longer wanted gets weight 0 and is deleted when its
///   connections end or after ``IPVSProxierConfiguration/gracefulTerminationTimeout``
///   (``GracefulTerminationStateMachine``); UDP and SCTP ones are deleted at once and their conntrack entries
///   flushed.
///
/// Make one with ``make(configuration:ipvs:dummy:nftables:conntrack:sysctl:health:serviceHealth:events:metricsFactory:logger:clock:)``.
public final class IPVSProxier: Proxier, Sendable {
    private struct State: Sendable {
        var lastFullSync: Duration?
        var status: IPVSProxierStatus
    }

    /// What the proxier wants and what it believes the kernel holds; touched only by syncs and drain checks, which
    /// run one at a time on the sync queue.
    struct KernelState: Sendable {
        var desired = IPVSDesiredTable()
        var programmed: [ServiceKey: ProgrammedVirtualServer] = [:]
        var programmedAddresses: Set<IPVS.IPAddress> = []
        var programmedElements: [String: Set<String>] = [:]
        var termination: GracefulTerminationStateMachine
        var unavailableSchedulers: Set<String> = []
        var realServerCount = 0

        mutating func setProgrammed(_ key: ServiceKey, _ value: ProgrammedVirtualServer?) {
            realServerCount += (value?.realServers.count ?? 0) - (programmed[key]?.realServers.count ?? 0)
            programmed[key] = value
        }
    }

    public let configuration: IPVSProxierConfiguration
    private let ipvs: any IPVSInterface
    private let dummy: any VirtualIPInterface
    private let nftables: any Nftables
    private let conntrack: any ConntrackCleaner
    private let sysctl: any SysctlWriter
    private let health: ProxyHealth
    private let serviceHealth: ServiceHealthServer?
    private let events: any ProxyEventRecorder
    private let logger: Logger
    private let metrics: IPVSProxierMetrics
    private let clock: ProxierClock
    private let inputs: ProxierInputs
    private let state: Mutex<State>
    private let kernel: Mutex<KernelState>
    private let runnerBox = Mutex<BoundedFrequencyRunner?>(nil)
    private let layout: IPVSFilterTable.Layout
    /// Every IPVS proxier syncs on this one thread: the IPv4 and IPv6 proxiers share `kube-ipvs0`, and netlink
    /// calls block (seconds for a full sync of thousands of Services), which the cooperative pool must not do.
    private static let syncQueue = DispatchQueue(label: "node-agent.proxy.ipvs-sync")

    /// Makes the proxier for one IP family. Nothing touches the kernel before ``run()``.
    ///
    /// - Parameters:
    ///   - ipvs: the IPVS table (``IPVSKernel`` in the daemon; `FakeIPVS` in tests).
    ///   - dummy: `kube-ipvs0` (``DummyInterface`` named ``IPVSProxierConfiguration/interfaceName``).
    ///   - nftables: for the filter table (``LibNftables`` in the daemon).
    ///   - conntrack: flushes stale UDP flows; nil uses the `conntrack` tool.
    ///   - clock: the time of graceful-termination bounds and periodic full syncs.
    public static func make(
        configuration: IPVSProxierConfiguration,
        ipvs: any IPVSInterface,
        dummy: any VirtualIPInterface,
        nftables: any Nftables,
        conntrack: (any ConntrackCleaner)? = nil,
        sysctl: any SysctlWriter = ProcSysctl(),
        health: ProxyHealth,
        serviceHealth: ServiceHealthServer? = nil,
        events: (any ProxyEventRecorder)? = nil,
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger,
        clock: some Clock<Duration> = ContinuousClock()
    ) -> IPVSProxier {
        IPVSProxier(
            configuration: configuration, ipvs: ipvs, dummy: dummy, nftables: nftables,
            conntrack: conntrack ?? ConntrackTool(logger: logger), sysctl: sysctl, health: health, serviceHealth: serviceHealth,
            events: events ?? LoggingEventRecorder(logger: logger), metricsFactory: metricsFactory ?? MetricsSystem.factory,
            logger: logger, clock: ProxierClock(clock))
    }

    init(
        configuration: IPVSProxierConfiguration,
        ipvs: any IPVSInterface,
        dummy: any VirtualIPInterface,
        nftables: any Nftables,
        conntrack: any ConntrackCleaner,
        sysctl: any SysctlWriter,
        health: ProxyHealth,
        serviceHealth: ServiceHealthServer?,
        events: any ProxyEventRecorder,
        metricsFactory: any MetricsFactory,
        logger: Logger,
        clock: ProxierClock
    ) {
        self.configuration = configuration
        self.ipvs = ipvs
        self.dummy = dummy
        self.nftables = nftables
        self.conntrack = conntrack
        self.sysctl = sysctl
        self.health = health
        self.serviceHealth = serviceHealth
        self.events = events
        var logger = logger
        logger[metadataKey: "ipFamily"] = "\(configuration.family.rawValue)"
        logger[metadataKey: "proxyMode"] = "ipvs"
        self.logger = logger
        self.clock = clock
        metrics = IPVSProxierMetrics(family: configuration.family, factory: metricsFactory)
        layout = IPVSFilterTable.layout(configuration)
        inputs = ProxierInputs(
            family: configuration.family, nodeName: configuration.nodeName, health: health, events: events, logger: logger,
            serviceChangesPending: metrics.serviceChangesPending, endpointChangesPending: metrics.endpointChangesPending)
        state = Mutex(
            State(status: IPVSProxierStatus(family: configuration.family, scheduler: configuration.scheduler, interface: configuration.interfaceName)))
        kernel = Mutex(KernelState(termination: GracefulTerminationStateMachine(timeout: configuration.gracefulTerminationTimeout)))
        let runner = BoundedFrequencyRunner(
            name: "ipvs-\(configuration.family.rawValue)", minInterval: configuration.minSyncPeriod, maxInterval: configuration.syncPeriod
        ) { [weak self] in
            await self?.syncNow()
        }
        runnerBox.withLock { $0 = runner }
        inputs.connect { runner.requestSync() }
    }

    private var runner: BoundedFrequencyRunner { runnerBox.withLock { $0! } }

    private var ipvsFamily: AddressFamily { configuration.family == .ipv4 ? .inet : .inet6 }
    private var nftFamily: Family { configuration.family == .ipv4 ? .ip : .ip6 }

    // MARK: - Informer callbacks (shared with the nftables proxier in ``ProxierInputs``)

    public func serviceChanged(previous: ServiceObject?, current: ServiceObject?) {
        if let current { checkSchedulerAnnotation(previous: previous, current: current) }
        inputs.serviceChanged(previous: previous, current: current)
    }
    public func endpointSliceChanged(previous: EndpointSliceObject?, current: EndpointSliceObject?) {
        inputs.endpointSliceChanged(previous: previous, current: current)
    }
    public func nodeChanged(_ node: NodeObject?) { inputs.nodeChanged(node) }
    public func servicesSynced() { inputs.servicesSynced() }
    public func endpointSlicesSynced() { inputs.endpointSlicesSynced() }
    /// Makes the next sync a full one (kernel read back, drift repaired) and asks for it.
    public func requestFullSync() { inputs.requestFullSync() }

    /// A Service whose scheduler annotation names no scheduler is served with the default one, and told so once.
    private func checkSchedulerAnnotation(previous: ServiceObject?, current: ServiceObject) {
        let key = IPVSProxierConfiguration.schedulerAnnotation
        guard let value = current.metadata.annotations?[key], !IPVSProxierConfiguration.knownSchedulers.contains(value),
            previous?.metadata.annotations?[key] != value
        else { return }
        let message =
            "Service \(current.namespacedName): invalid metadata.annotations[\"\(key)\"] \"\(value)\": must be one of "
            + "\(IPVSProxierConfiguration.knownSchedulers.joined(separator: ", ")); using the default scheduler \(configuration.scheduler)"
        logger.warning("invalid IPVS scheduler annotation", metadata: ["service": "\(current.namespacedName)", "value": "\(value)"])
        events.warning(kind: "Service", object: current.namespacedName, reason: "InvalidIPVSScheduler", message: message)
    }

    // MARK: - Running

    /// Sets the sysctls and IPVS timeouts, then runs the bounded-frequency sync loop and the graceful-termination
    /// checks until graceful shutdown.
    public func run() async throws {
        prepare()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [runner] in try await runner.run() }
            group.addTask { [self] in await drainLoop() }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Sets the IPVS sysctls (when ``IPVSProxierConfiguration/manageSysctls``) and the connection timeouts, and
    /// records what it found in ``status()``. ``run()`` calls it; calling it again is harmless.
    public func prepare() {
        var sysctls: IPVSSysctls?
        if configuration.manageSysctls {
            let report = IPVSSysctls.apply(configuration, sysctl: sysctl)
            for item in report.items {
                switch item.result {
                case "set": logger.info("set sysctl", metadata: ["name": "\(item.name)", "value": "\(item.wanted)", "was": "\(item.found ?? "absent")"])
                case "unchanged": break
                default:
                    logger.error(
                        "cannot set sysctl; IPVS Services may misbehave", metadata: ["name": "\(item.name)", "value": "\(item.wanted)", "error": "\(item.result)"])
                }
            }
            sysctls = report
        }
        var timeouts: String?
        let wanted = [configuration.tcpTimeout, configuration.tcpFinTimeout, configuration.udpTimeout].map { UInt32(clamping: $0.components.seconds) }
        if wanted.contains(where: { $0 != 0 }) {
            let values = IPVSTimeouts(tcp: wanted[0], tcpFin: wanted[1], udp: wanted[2])
            do {
                try ipvs.setTimeouts(values)
                timeouts = "set: tcp \(values.tcp)s, tcpfin \(values.tcpFin)s, udp \(values.udp)s (0 = unchanged)"
                logger.info("set IPVS timeouts", metadata: ["tcp": "\(values.tcp)", "tcpfin": "\(values.tcpFin)", "udp": "\(values.udp)"])
            } catch {
                timeouts = "failed: \(error)"
                logger.error("cannot set IPVS timeouts", metadata: ["error": "\(error)"])
            }
        }
        state.withLock { state in
            state.status.sysctls = sysctls
            state.status.timeouts = timeouts
        }
    }

    /// The proxier's current report for `/status`.
    public func status() -> IPVSProxierStatus { state.withLock { $0.status } }

    private func drainLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await clock.sleep(configuration.gracefulTerminationCheckInterval) } catch { return }
            if kernel.withLock({ $0.termination.count }) > 0 { await checkDraining() }
        }
    }

    /// Runs `body` on the sync queue with the kernel state.
    private func onSyncQueue<T: Sendable>(_ body: @escaping @Sendable (inout KernelState) -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            Self.syncQueue.async {
                continuation.resume(returning: self.kernel.withLock { body(&$0) })
            }
        }
    }

    // MARK: - Sync

    /// Computes the desired state and programs the difference (everything, read back first, on a full sync), then
    /// flushes stale UDP conntrack entries and updates health, health-check node ports and metrics.
    @discardableResult
    public func syncNow() async -> SyncOutcome {
        let (outcome, post) = await onSyncQueue { kernel in self.syncLocked(&kernel) }
        if let post { await post.run(self) }
        return outcome
    }

    /// Work after a sync that may block or await (conntrack, listeners).
    private struct PostSync: Sendable {
        var services: ServicePortMap
        var endpoints: EndpointsMap
        var nodeZone: String?
        var udpFlushes: [UDPFlush]

        func run(_ proxier: IPVSProxier) async {
            for flush in udpFlushes {
                do {
                    switch flush {
                    case .destination(let ip): try proxier.conntrack.clearUDP(destination: ip)
                    case .destinationEndpoint(let ip, let endpoint): try proxier.conntrack.clearUDP(destination: ip, endpoint: endpoint)
                    case .nodePort(let port): try proxier.conntrack.clearUDP(nodePort: port, family: proxier.configuration.family)
                    case .nodePortEndpoint(let port, let endpoint): try proxier.conntrack.clearUDP(nodePort: port, endpoint: endpoint)
                    }
                } catch {
                    proxier.logger.error("conntrack cleanup failed", metadata: ["flows": "\(flush)", "error": "\(error)"])
                }
            }
            if let serviceHealth = proxier.serviceHealth {
                var entries: [Int: ServiceHealthServer.Entry] = [:]
                for (name, port) in services where port.healthCheckNodePort > 0 {
                    let selection = EndpointSelection(endpoints: endpoints[name] ?? [], port: port, nodeZone: nodeZone)
                    let count = (entries[port.healthCheckNodePort]?.localEndpoints ?? 0) + selection.localEndpoints.count
                    entries[port.healthCheckNodePort] = .init(service: name.service, localEndpoints: count)
                }
                await serviceHealth.sync(entries)
            }
        }
    }

    private struct Snapshot {
        var services: ServicePortMap
        var endpoints: EndpointsMap
        var nodeZone: String?
        var full: Bool
        var changed: Set<ServicePortName>
        var triggerTimes: [NamespacedName: [Date]]
    }

    /// Stale UDP flows to flush after a sync.
    enum UDPFlush: Sendable, Hashable, CustomStringConvertible {
        /// Every flow to a Service IP (its virtual server went away, or got its first real server).
        case destination(IPAddress)
        /// Flows to a Service IP that went to one real server.
        case destinationEndpoint(IPAddress, IPAddress)
        /// Every flow to a NodePort.
        case nodePort(Int)
        /// Flows to a NodePort that went to one real server.
        case nodePortEndpoint(Int, IPAddress)

        var description: String {
            switch self {
            case .destination(let ip): "to \(ip)"
            case .destinationEndpoint(let ip, let endpoint): "to \(ip) via \(endpoint)"
            case .nodePort(let port): "to NodePort \(port)"
            case .nodePortEndpoint(let port, let endpoint): "to NodePort \(port) via \(endpoint)"
            }
        }
    }

    /// What a sync did, for the outcome, the log and the metrics.
    private struct SyncWork {
        var ipvsWrites = 0
        var addressWrites = 0
        var filterWrites = 0
        var failures: [String] = []
        var udpFlushes: [UDPFlush] = []
        var writes: Int { ipvsWrites + addressWrites + filterWrites }
    }

    private func syncLocked(_ kernel: inout KernelState) -> (SyncOutcome, PostSync?) {
        let wallStart = ContinuousClock.now
        let now = clock.now()
        let syncPeriod = configuration.syncPeriod
        guard let taken = inputs.take() else {
            logger.debug("not syncing: waiting for the initial Service and EndpointSlice lists")
            return (.notReady, nil)
        }
        let periodic = state.withLock { state in state.lastFullSync.map { now - $0 >= syncPeriod } ?? true }
        let snapshot = Snapshot(
            services: taken.services, endpoints: taken.endpoints, nodeZone: taken.nodeZone,
            full: taken.needFullSync || periodic, changed: taken.changed, triggerTimes: taken.triggerTimes)
        var work = SyncWork()
        do throws(IPVSProxierError) {
            if snapshot.full {
                try fullSync(&kernel, snapshot, now: now, &work)
            } else {
                try incrementalSync(&kernel, snapshot, now: now, &work)
            }
        } catch {
            work.failures.insert(error.description, at: 0)
        }
        metrics.ipvsWrites.increment(by: work.ipvsWrites)
        metrics.addressWrites.increment(by: work.addressWrites)
        metrics.filterWrites.increment(by: work.filterWrites)
        let elapsed = ContinuousClock.now - wallStart
        let ok = work.failures.isEmpty
        let counts = (kernel.programmed.count, kernel.realServerCount, kernel.termination.count, kernel.programmedAddresses.count)
        let unavailable = kernel.unavailableSchedulers.sorted()
        // Ports changed while this sync ran stay dirty for the next one; a failed sync makes the next one full.
        inputs.synced(taken, ok: ok)
        state.withLock { state in
            if snapshot.full && ok { state.lastFullSync = now }
            state.status.virtualServers = counts.0
            state.status.realServers = counts.1
            state.status.drainingRealServers = counts.2
            state.status.boundAddresses = counts.3
            state.status.lastSyncWrites = work.writes
            state.status.unavailableSchedulers = unavailable
            if ok {
                state.status.lastSync = Date()
                if snapshot.full { state.status.lastFullSync = state.status.lastSync }
                state.status.lastError = nil
            } else {
                state.status.lastError = work.failures.first
            }
        }
        metrics.virtualServers.record(counts.0)
        metrics.realServers.record(counts.1)
        metrics.drainingRealServers.record(counts.2)
        let post = PostSync(services: snapshot.services, endpoints: snapshot.endpoints, nodeZone: snapshot.nodeZone, udpFlushes: work.udpFlushes)
        guard ok else {
            metrics.syncFailures.increment()
            let retry = max(configuration.minSyncPeriod, .seconds(1))
            logger.error(
                "sync failed; retrying with a full sync",
                metadata: [
                    "full": "\(snapshot.full)", "failures": "\(work.failures.count)", "error": "\(work.failures[0])",
                    "more": "\(work.failures.dropFirst().prefix(4).joined(separator: "; "))", "retryIn": "\(retry)",
                ])
            runner.retry(after: retry)
            return (.failed(work.failures[0] + (work.failures.count > 1 ? " (and \(work.failures.count - 1) more)" : "")), post)
        }
        health.updated(configuration.family)
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        metrics.syncDuration.recordNanoseconds(nanoseconds)
        (snapshot.full ? metrics.fullSyncDuration : metrics.partialSyncDuration).recordNanoseconds(nanoseconds)
        metrics.lastSync.record(Date().timeIntervalSince1970)
        let wall = Date()
        for times in snapshot.triggerTimes.values {
            for time in times where time <= wall {
                metrics.programmingLatency.recordNanoseconds(Int64(wall.timeIntervalSince(time) * 1e9))
            }
        }
        logger.debug(
            "synced",
            metadata: [
                "full": "\(snapshot.full)", "ipvsWrites": "\(work.ipvsWrites)", "addressWrites": "\(work.addressWrites)",
                "nftCommands": "\(work.filterWrites)", "virtualServers": "\(counts.0)", "duration": "\(elapsed)",
            ])
        return (.applied(full: snapshot.full, commands: work.writes), post)
    }

    private func fragment(_ name: ServicePortName, _ snapshot: Snapshot, _ kernel: KernelState) -> IPVSFragment? {
        guard let port = snapshot.services[name] else { return nil }
        return IPVSPlan.fragment(
            for: name, port: port, endpoints: snapshot.endpoints[name] ?? [], configuration: configuration, nodeZone: snapshot.nodeZone,
            unavailableSchedulers: kernel.unavailableSchedulers)
    }

    /// Recomputes everything, reads the kernel back and repairs every difference on what this daemon owns.
    private func fullSync(_ kernel: inout KernelState, _ snapshot: Snapshot, now: Duration, _ work: inout SyncWork) throws(IPVSProxierError) {
        var desired = IPVSDesiredTable()
        var ignored = IPVSDesiredTable.Touched()
        for name in snapshot.services.keys.sorted() {
            desired.replace(name, with: fragment(name, snapshot, kernel), touched: &ignored)
        }
        kernel.desired = desired
        for (key, claimants) in desired.conflicts.sorted(by: { ServiceKey.ordered($0.key, $1.key) }).prefix(20) {
            logger.warning(
                "Service ports claim the same virtual server; the first is served",
                metadata: ["virtualServer": "\(key)", "ports": "\(claimants.map(\.description).joined(separator: ", "))"])
        }

        // kube-ipvs0 and what it holds.
        let bound: Set<IPVS.IPAddress>
        do {
            try dummy.ensureInterface()
            bound = try dummy.addresses()
        } catch {
            throw IPVSProxierError(kind: .interface, operation: "prepare", object: "interface \(dummy.name)", detail: error.description)
        }
        let family = ipvsFamily
        let ours = bound.filter { $0.family == family }
        let others = bound.subtracting(ours)

        // The kernel's virtual servers that are ours, with their real servers.
        let ownership = IPVSOwnership(configuration: configuration, boundAddresses: ours)
        var observed: [ServiceKey: ProgrammedVirtualServer] = [:]
        do {
            for status in try ipvs.services() where status.service.key.family == family {
                let key = status.service.key
                guard desired.virtualServer(key) != nil || kernel.programmed[key] != nil || ownership.owns(key) else { continue }
                let servers: [RealServerStatus]
                do { servers = try ipvs.realServers(of: key) } catch where error.kind == .notFound { continue }
                var map: [RealServerKey: RealServer] = [:]
                for server in servers { map[server.server.key] = server.server }
                observed[key] = ProgrammedVirtualServer(service: status.service, realServers: map)
            }
        } catch {
            throw IPVSProxierError(kind: .kernel, operation: "read back", object: "the IPVS table", detail: error.description)
        }
        kernel.programmed = observed
        kernel.realServerCount = observed.values.reduce(0) { $0 + $1.realServers.count }

        // Addresses first (a virtual server answers only once its address is local), the filter table, then IPVS.
        let wantedAddresses = desired.addresses
        if !wantedAddresses.isSubset(of: ours) {
            syncAddresses(ours.union(wantedAddresses).union(others), &work)
        }
        try syncFilterTable(desired.elements, &work)
        kernel.programmedElements = desired.elements

        let keys = Set(desired.serviceKeys).union(observed.keys).sorted(by: ServiceKey.ordered)
        applyDiffs(keys, &kernel, now: now, &work)
        for key in kernel.termination.servicesToCheck where kernel.programmed[key] == nil {
            kernel.termination.serviceRemoved(key)
        }

        if !ours.isSubset(of: wantedAddresses) {
            syncAddresses(wantedAddresses.union(others), &work)
        }
        kernel.programmedAddresses = wantedAddresses
    }

    /// Recomputes the changed Service ports and sends only what changed for them.
    private func incrementalSync(_ kernel: inout KernelState, _ snapshot: Snapshot, now: Duration, _ work: inout SyncWork) throws(IPVSProxierError) {
        var touched = IPVSDesiredTable.Touched()
        for name in snapshot.changed.sorted() {
            kernel.desired.replace(name, with: fragment(name, snapshot, kernel), touched: &touched)
        }
        guard !touched.isEmpty else { return }
        let desired = kernel.desired
        var removeAddresses: [IPVS.IPAddress] = []
        for address in touched.addresses.sorted() {
            let wanted = desired.wantsAddress(address)
            let bound = kernel.programmedAddresses.contains(address)
            if wanted && !bound {
                do {
                    try dummy.addAddress(address)
                    work.addressWrites += 1
                } catch where error.kind == .alreadyExists {
                } catch {
                    work.failures.append(error.description)
                }
                kernel.programmedAddresses.insert(address)
            } else if !wanted && bound {
                removeAddresses.append(address)
            }
        }

        // Filter-table elements. Hairpin elements no port uses stay until the next full sync: a stale pair is
        // harmless, and each element deletion costs the kernel an RCU grace period on the endpoint-change path.
        var transaction = Transaction(family: nftFamily, table: configuration.tableName)
        for set in touched.elements.keys.sorted() {
            for key in touched.elements[set]!.sorted() {
                let wanted = desired.wantsElement(key, in: set)
                let present = kernel.programmedElements[set]?.contains(key) ?? false
                if wanted && !present {
                    transaction.addElement(set, Element(key: key))
                    kernel.programmedElements[set, default: []].insert(key)
                } else if !wanted && present && set != IPVSFilterTable.Names.hairpin {
                    transaction.deleteElement(set, key: key)
                    kernel.programmedElements[set]?.remove(key)
                }
            }
        }
        if !transaction.isEmpty {
            do {
                try nftables.run(transaction)
                work.filterWrites += transaction.count
            } catch {
                throw IPVSProxierError(kind: .filterTable, operation: "update", object: "table \(nftFamily.rawValue) \(configuration.tableName)", detail: "\(error)")
            }
        }

        applyDiffs(touched.serviceKeys.sorted(by: ServiceKey.ordered), &kernel, now: now, &work)

        for address in removeAddresses {
            do {
                try dummy.removeAddress(address)
                work.addressWrites += 1
            } catch where error.kind == .notFound {
            } catch {
                work.failures.append(error.description)
            }
            kernel.programmedAddresses.remove(address)
        }
    }

    /// Makes `kube-ipvs0` hold exactly `addresses` (both families: the other family's proxier shares it).
    private func syncAddresses(_ addresses: Set<IPVS.IPAddress>, _ work: inout SyncWork) {
        do {
            let result = try dummy.syncAddresses(addresses)
            work.addressWrites += result.added.count + result.removed.count + result.failed.count
            for (address, failure) in result.failed.sorted(by: { $0.key < $1.key }) {
                work.failures.append("address \(address) on \(dummy.name): \(failure)")
            }
        } catch {
            work.failures.append(error.description)
        }
    }

    /// Lists the filter table and writes only what differs (nothing when the table is as wanted).
    private func syncFilterTable(_ elements: [String: Set<String>], _ work: inout SyncWork) throws(IPVSProxierError) {
        let table = "table \(nftFamily.rawValue) \(configuration.tableName)"
        do {
            let existing = try nftables.list(family: nftFamily, table: configuration.tableName)
            let transaction = IPVSFilterTable.fullSync(layout: layout, elements: elements, existing: existing, family: nftFamily, table: configuration.tableName)
            for part in IPVSFilterTable.split(transaction) {
                try nftables.run(part)
                work.filterWrites += part.count
            }
        } catch {
            throw IPVSProxierError(kind: .filterTable, operation: "sync", object: table, detail: "\(error)")
        }
    }

    /// Diffs `keys`, sends every change in one batch, and updates the programmed state and graceful termination.
    private func applyDiffs(_ keys: [ServiceKey], _ kernel: inout KernelState, now: Duration, _ work: inout SyncWork) {
        var operations: [IPVSOperation] = []
        var diffs: [(ServiceKey, VirtualServerDiff.Result)] = []
        for key in keys {
            let diff = VirtualServerDiff.diff(key, desired: kernel.desired.virtualServer(key), programmed: kernel.programmed[key])
            if diff.operations.isEmpty && diff.draining.isEmpty && diff.programmed == kernel.programmed[key] { continue }
            operations += diff.operations
            diffs.append((key, diff))
        }
        var results: [IPVSError?] = []
        if !operations.isEmpty {
            do {
                results = try ipvs.apply(operations)
            } catch {
                work.failures.append(error.description)
                return
            }
            work.ipvsWrites += operations.count
        }
        for (index, operation) in operations.enumerated() {
            guard let failure = results[index] else { continue }
            switch (operation, failure.kind) {
            case (.deleteService, .notFound), (.deleteRealServer, .notFound):
                continue  // Already gone: the wanted state.
            case (.addService(let service), .schedulerNotFound), (.updateService(let service), .schedulerNotFound):
                if service.schedulerName != configuration.scheduler {
                    kernel.unavailableSchedulers.insert(service.schedulerName)
                    if let owner = kernel.desired.owner(of: service.key) {
                        events.warning(
                            kind: "Service", object: owner.service, reason: "IPVSSchedulerUnavailable",
                            message: "Service \(owner.service): the kernel has no IPVS scheduler \(service.schedulerName) (module ip_vs_\(service.schedulerName)); using \(configuration.scheduler)")
                    }
                }
                work.failures.append(failure.description)
            default:
                work.failures.append(failure.description)
            }
        }
        for (key, diff) in diffs {
            let hadServers = kernel.programmed[key]?.realServers.values.contains { $0.weight > 0 } ?? false
            kernel.setProgrammed(key, diff.programmed)
            if key.transport == .udp, let address = key.address {
                let hasServers = diff.programmed?.realServers.values.contains { $0.weight > 0 } ?? false
                work.udpFlushes += udpFlushes(address: address, port: key.portNumber ?? 0, kernel: kernel, deleted: diff.deletedAtOnce, stale: hadServers != hasServers || diff.serviceDeleted)
            }
            if diff.serviceDeleted {
                kernel.termination.serviceRemoved(key)
                continue
            }
            for server in diff.draining {
                if kernel.termination.start(server, of: key, now: now) == .drain {
                    logger.info("draining real server", metadata: ["virtualServer": "\(key)", "realServer": "\(server.address):\(server.port)"])
                }
            }
            if kernel.termination.isDraining(key), let wanted = kernel.desired.virtualServer(key) {
                for server in kernel.termination.servers(of: key) where wanted.realServers[server] != nil {
                    kernel.termination.cancel(server, of: key)
                }
            }
        }
    }

    /// The UDP flows a change to a UDP virtual server makes stale: those to real servers deleted, and all of them
    /// when the virtual server went away or got its first usable real server (kube-proxy #71514).
    private func udpFlushes(address: IPVS.IPAddress, port: Int, kernel: KernelState, deleted: [RealServerKey], stale: Bool) -> [UDPFlush] {
        guard let ip = IPAddress(address.description) else { return [] }
        let nodePort = configuration.nodePortAddresses.contains(ip) && !kernel.desired.wantsAddress(address)
        var flushes: [UDPFlush] = []
        if stale { flushes.append(nodePort ? .nodePort(port) : .destination(ip)) }
        for server in deleted {
            guard let endpoint = IPAddress(server.address.description) else { continue }
            flushes.append(nodePort ? .nodePortEndpoint(port, endpoint) : .destinationEndpoint(ip, endpoint))
        }
        return flushes
    }

    // MARK: - Graceful termination

    /// Reads the counters of draining real servers and deletes those whose connections ended or whose bound
    /// passed. The proxier's loop calls it every ``IPVSProxierConfiguration/gracefulTerminationCheckInterval``.
    /// - Returns: the real servers deleted, with why.
    @discardableResult
    public func checkDraining() async -> [GracefulTerminationStateMachine.Item: GracefulTerminationStateMachine.DeletionReason] {
        await onSyncQueue { kernel in self.checkDrainingLocked(&kernel) }
    }

    private func checkDrainingLocked(
        _ kernel: inout KernelState
    ) -> [GracefulTerminationStateMachine.Item: GracefulTerminationStateMachine.DeletionReason] {
        let now = clock.now()
        var deletions: [(GracefulTerminationStateMachine.Item, GracefulTerminationStateMachine.DeletionReason)] = []
        for service in kernel.termination.servicesToCheck {
            let counters: [RealServerKey: UInt32]
            do {
                counters = Dictionary(try ipvs.realServers(of: service).map { ($0.server.key, $0.activeConnections + $0.inactiveConnections) }) { a, _ in a }
            } catch where error.kind == .notFound {
                kernel.termination.serviceRemoved(service)
                continue
            } catch {
                logger.error("cannot read real-server counters", metadata: ["virtualServer": "\(service)", "error": "\(error)"])
                continue
            }
            for server in kernel.termination.servers(of: service) {
                switch kernel.termination.observe(server, of: service, connections: counters[server], now: now) {
                case .keep: break
                case .forget:
                    if var programmed = kernel.programmed[service] {
                        programmed.realServers[server] = nil
                        kernel.setProgrammed(service, programmed)
                    }
                case .delete(let reason): deletions.append((.init(service: service, server: server), reason))
                }
            }
        }
        defer {
            let counts = (kernel.realServerCount, kernel.termination.count)
            state.withLock { state in
                state.status.realServers = counts.0
                state.status.drainingRealServers = counts.1
            }
            metrics.realServers.record(counts.0)
            metrics.drainingRealServers.record(counts.1)
        }
        guard !deletions.isEmpty else { return [:] }
        let results: [IPVSError?]
        do {
            results = try ipvs.apply(deletions.map { .deleteRealServer($0.0.server, service: $0.0.service) })
        } catch {
            logger.error("cannot delete drained real servers", metadata: ["error": "\(error)"])
            return [:]
        }
        metrics.ipvsWrites.increment(by: deletions.count)
        var done: [GracefulTerminationStateMachine.Item: GracefulTerminationStateMachine.DeletionReason] = [:]
        for ((item, reason), failure) in zip(deletions, results) {
            if let failure, failure.kind != .notFound {
                logger.error("cannot delete drained real server", metadata: ["realServer": "\(item)", "error": "\(failure)"])
                continue
            }
            kernel.termination.deleted(item.server, of: item.service)
            if var programmed = kernel.programmed[item.service] {
                programmed.realServers[item.server] = nil
                kernel.setProgrammed(item.service, programmed)
            }
            (reason == .drained ? metrics.drained : metrics.drainTimedOut).increment()
            logger.info("deleted drained real server", metadata: ["realServer": "\(item)", "reason": "\(reason.rawValue)"])
            done[item] = reason
        }
        return done
    }
}
