public import Foundation
public import Iptables
public import Logging
public import ServiceLifecycle
public import CoreMetrics
import Synchronization

/// Settings of the nftables proxier (kube-proxy's flags of the same meaning).
public struct NftablesProxierConfiguration: Sendable {
    public var family: IPFamily
    /// The table the proxier owns entirely (`ip node-agent` / `ip6 node-agent`).
    public var tableName: String
    /// This node's name, to recognise local endpoints.
    public var nodeName: String
    /// Addresses that accept NodePorts (`--nodeport-addresses`; default the node's primary IPs).
    public var nodePortAddresses: [IPAddress]
    /// `--cluster-cidr`: traffic to a cluster IP from outside it is masqueraded.
    public var clusterCIDR: IPPrefix?
    /// The fwmark bit that flags packets for masquerade (kube-proxy's `--masquerade-bit`, 14).
    public var masqueradeBit: Int
    /// `--*-sync-period`: the longest time between syncs, and between full syncs.
    public var syncPeriod: Duration
    /// `--*-min-sync-period`: the shortest time between syncs.
    public var minSyncPeriod: Duration
    /// Set `ip_forward` (and `route_localnet` for loopback NodePorts) at start.
    public var manageSysctls: Bool
    /// `--masquerade-all`: mark every connection to a cluster IP for masquerade, not only those from outside
    /// ``clusterCIDR``.
    public var masqueradeAll = false

    public init(
        family: IPFamily = .ipv4,
        tableName: String = "node-agent",
        nodeName: String,
        nodePortAddresses: [IPAddress] = [],
        clusterCIDR: IPPrefix? = nil,
        masqueradeBit: Int = 14,
        syncPeriod: Duration = .seconds(30),
        minSyncPeriod: Duration = .seconds(1),
        manageSysctls: Bool = true
    ) {
        self.family = family
        self.tableName = tableName
        self.nodeName = nodeName
        self.nodePortAddresses = nodePortAddresses
        self.clusterCIDR = clusterCIDR
        self.masqueradeBit = masqueradeBit
        self.syncPeriod = syncPeriod
        self.minSyncPeriod = minSyncPeriod
        self.manageSysctls = manageSysctls
    }

    var nftFamily: Family { family == .ipv4 ? .ip : .ip6 }
}

/// The nftables proxier: Services and EndpointSlices of one IP family become the table `ip node-agent`
/// (or `ip6 node-agent`) through one libnftables transaction per sync (see ``RulesetBuilder`` for the layout).
///
/// The first sync, any sync after a failure, and one per sync period are full: the table's objects are read back
/// and one transaction rewrites every wanted chain and map and deletes everything else, so a restarted daemon
/// converges on what it finds without a moment where traffic is dropped. Other syncs send only the difference
/// from the last applied ruleset.
public final class NftablesProxier: Proxier, Sendable {
    private struct State: Sendable {
        var applied: Applied?
        var lastFullSync: ContinuousClock.Instant?
    }

    /// What the last successful sync put in the kernel, per Service port.
    private struct Applied: Sendable {
        var base: DesiredRuleset
        var fragments: [ServicePortName: DesiredRuleset]
        /// How many fragments use each hairpin element (Services may share an endpoint).
        var hairpinUses: [String: Int]
        /// How many fragments declare each endpoint map (a map serves a group of slots, see
        /// ``RulesetBuilder/slotsPerEndpointMap``): it is created with its first user and deleted with its last.
        var mapUses: [String: Int] = [:]
        /// Each Service port's endpoint-map slot (see ``RulesetBuilder/fragment(for:port:endpoints:slot:configuration:nodeZone:)``).
        var slots: [ServicePortName: Int] = [:]
        var freeSlots: [Int] = []
        var nextSlot = 0
        /// Rules in `base` and all fragments, kept up to date so that reporting it is not O(Services).
        var ruleCount = 0

        /// The slot of `name`, allocating one when it has none; nil when every slot is taken.
        mutating func slot(for name: ServicePortName) -> Int? {
            if let slot = slots[name] { return slot }
            let slot: Int
            if let free = freeSlots.popLast() {
                slot = free
            } else {
                guard nextSlot < RulesetBuilder.maxSlots else { return nil }
                slot = nextSlot
                nextSlot += 1
            }
            slots[name] = slot
            return slot
        }

        mutating func releaseSlot(of name: ServicePortName) {
            if let slot = slots.removeValue(forKey: name) { freeSlots.append(slot) }
        }

        var ruleset: DesiredRuleset {
            var whole = base
            for name in fragments.keys.sorted() { whole.merge(fragments[name]!) }
            return whole
        }
    }

    public let configuration: NftablesProxierConfiguration
    private let nftables: any Nftables
    private let conntrack: any ConntrackCleaner
    private let sysctl: any SysctlWriter
    private let health: ProxyHealth
    private let serviceHealth: ServiceHealthServer?
    private let events: any ProxyEventRecorder
    private let logger: Logger
    private let metrics: ProxyMetrics
    private let inputs: ProxierInputs
    private let state = Mutex(State())
    private let syncLock = Mutex<Void>(())
    private let runnerBox = Mutex<BoundedFrequencyRunner?>(nil)
    private static let syncQueue = DispatchQueue(label: "node-agent.proxy.nftables-sync")

    public init(
        configuration: NftablesProxierConfiguration,
        nftables: any Nftables,
        conntrack: any ConntrackCleaner,
        sysctl: any SysctlWriter = ProcSysctl(),
        health: ProxyHealth,
        serviceHealth: ServiceHealthServer? = nil,
        events: (any ProxyEventRecorder)? = nil,
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger
    ) {
        self.configuration = configuration
        self.nftables = nftables
        self.conntrack = conntrack
        self.sysctl = sysctl
        self.health = health
        self.serviceHealth = serviceHealth
        self.events = events ?? LoggingEventRecorder(logger: logger)
        var logger = logger
        logger[metadataKey: "ipFamily"] = "\(configuration.family.rawValue)"
        self.logger = logger
        metrics = ProxyMetrics(family: configuration.family, factory: metricsFactory ?? MetricsSystem.factory)
        inputs = ProxierInputs(
            family: configuration.family, nodeName: configuration.nodeName, health: health, events: self.events, logger: logger,
            serviceChangesPending: metrics.serviceChangesPending, endpointChangesPending: metrics.endpointChangesPending)
        let runner = BoundedFrequencyRunner(
            name: "nftables-\(configuration.family.rawValue)",
            minInterval: configuration.minSyncPeriod,
            maxInterval: configuration.syncPeriod
        ) { [weak self] in
            await self?.syncNow()
        }
        runnerBox.withLock { $0 = runner }
        inputs.connect { runner.requestSync() }
    }

    private var runner: BoundedFrequencyRunner { runnerBox.withLock { $0! } }

    // MARK: - Informer callbacks (shared with the IPVS proxier in ``ProxierInputs``)

    public func serviceChanged(previous: ServiceObject?, current: ServiceObject?) { inputs.serviceChanged(previous: previous, current: current) }
    public func endpointSliceChanged(previous: EndpointSliceObject?, current: EndpointSliceObject?) {
        inputs.endpointSliceChanged(previous: previous, current: current)
    }
    public func nodeChanged(_ node: NodeObject?) { inputs.nodeChanged(node) }
    /// Makes the next sync a full one (and asks for it): the table is read back and rewritten.
    public func requestFullSync() { inputs.requestFullSync() }
    public func servicesSynced() { inputs.servicesSynced() }
    public func endpointSlicesSynced() { inputs.endpointSlicesSynced() }

    // MARK: - Running

    /// Prepares the kernel settings, then runs the bounded-frequency sync loop until graceful shutdown.
    public func run() async throws {
        prepareSysctls()
        try await runner.run()
    }

    private func prepareSysctls() {
        guard configuration.manageSysctls else { return }
        var wanted: [(String, String)] = []
        if configuration.family == .ipv4 {
            wanted.append(("net/ipv4/ip_forward", "1"))
            if configuration.nodePortAddresses.contains(where: \.isLoopback) { wanted.append(("net/ipv4/conf/all/route_localnet", "1")) }
        } else {
            wanted.append(("net/ipv6/conf/all/forwarding", "1"))
        }
        for (name, value) in wanted where sysctl.read(name) != value {
            do {
                try sysctl.write(name, value)
                logger.info("set sysctl", metadata: ["name": "\(name)", "value": "\(value)"])
            } catch {
                logger.error("cannot set sysctl; Services may not be reachable from other hosts", metadata: ["name": "\(name)", "error": "\(error)"])
            }
        }
    }

    /// The ruleset the last successful sync applied (nil before the first).
    public var lastApplied: DesiredRuleset? { state.withLock { $0.applied?.ruleset } }

    /// Computes the desired ruleset and applies it (incrementally when possible), then cleans up UDP conntrack
    /// entries and updates health, health-check node ports and metrics.
    @discardableResult
    public func syncNow() async -> SyncOutcome {
        // The sync blocks in libnftables and the kernel (seconds for a full sync of thousands of Services): it
        // runs on its own thread, never on a thread of Swift's cooperative pool.
        let (outcome, postSync) = await withCheckedContinuation { (continuation: CheckedContinuation<(SyncOutcome, PostSync?), Never>) in
            Self.syncQueue.async {
                continuation.resume(returning: self.syncLock.withLock { _ in self.syncLocked() })
            }
        }
        if let postSync { await postSync.run(self) }
        return outcome
    }

    /// Work after a successful sync that may block or await (conntrack, listeners).
    private struct PostSync: Sendable {
        var services: ServicePortMap
        var endpoints: EndpointsMap
        var nodeZone: String?
        var serviceUpdate: ServiceMapUpdate
        var endpointsUpdate: EndpointsMapUpdate

        func run(_ proxier: NftablesProxier) async {
            proxier.cleanConntrack(self)
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

    private func syncLocked() -> (SyncOutcome, PostSync?) {
        let clock = ContinuousClock()
        let start = clock.now
        struct Snapshot {
            var services: ServicePortMap
            var endpoints: EndpointsMap
            var nodeZone: String?
            var full: Bool
            var applied: Applied?
            var changed: Set<ServicePortName>
            var serviceUpdate: ServiceMapUpdate
            var endpointsUpdate: EndpointsMapUpdate
            var triggerTimes: [NamespacedName: [Date]]
        }
        let syncPeriod = configuration.syncPeriod
        guard let taken = inputs.take() else {
            logger.debug("not syncing: waiting for the initial Service and EndpointSlice lists")
            return (.notReady, nil)
        }
        var snapshot: Snapshot = state.withLock { state in
            let periodic = state.lastFullSync.map { start - $0 >= syncPeriod } ?? true
            // The applied state moves into the snapshot (and back after a successful sync) so that the sync
            // mutates it in place: a copy would cost O(Services) on every endpoint change.
            let applied = state.applied
            state.applied = nil
            return Snapshot(
                services: taken.services,
                endpoints: taken.endpoints,
                nodeZone: taken.nodeZone,
                full: taken.needFullSync || applied == nil || periodic,
                applied: applied,
                changed: taken.changed,
                serviceUpdate: taken.serviceUpdate,
                endpointsUpdate: taken.endpointsUpdate,
                triggerTimes: taken.triggerTimes
            )
        }
        let family = configuration.nftFamily
        let table = configuration.tableName
        let transaction: Transaction
        var applied: Applied
        do {
            if snapshot.full {
                // Every fragment anew; the table rewritten in one transaction.
                snapshot.applied = nil
                applied = Applied(base: RulesetBuilder.base(configuration: configuration), fragments: [:], hairpinUses: [:])
                applied.ruleCount = applied.base.ruleCount
                for name in snapshot.services.keys.sorted() {
                    let port = snapshot.services[name]!
                    guard let slot = applied.slot(for: name) else {
                        logger.error("too many Service ports; not serving this one", metadata: ["service": "\(name)", "limit": "\(RulesetBuilder.maxSlots)"])
                        continue
                    }
                    let fragment = RulesetBuilder.fragment(
                        for: name, port: port, endpoints: snapshot.endpoints[name] ?? [], slot: slot,
                        configuration: configuration, nodeZone: snapshot.nodeZone
                    )
                    applied.fragments[name] = fragment
                    applied.ruleCount += fragment.ruleCount
                    for key in fragment.elements[RulesetNames.hairpin]?.keys ?? [:].keys { applied.hairpinUses[key, default: 0] += 1 }
                    for name in fragment.maps.keys { applied.mapUses[name, default: 0] += 1 }
                }
                let existing = try nftables.listObjects(family: family, table: table)
                transaction = RulesetDiff.full(applied.ruleset, existing: existing, family: family, table: table)
            } else {
                // Only the changed Service ports: their old fragments against their new ones.
                applied = snapshot.applied!
                snapshot.applied = nil
                var before = DesiredRuleset()
                var after = DesiredRuleset()
                var hairpinGone: Set<String> = []
                var hairpinNew: Set<String> = []
                var mapsGone: [String: NamedMap] = [:]
                var mapsNew: [String: NamedMap] = [:]
                for name in snapshot.changed.sorted() {
                    let old = applied.fragments[name]
                    var new: DesiredRuleset?
                    if let port = snapshot.services[name] {
                        if let slot = applied.slot(for: name) {
                            new = RulesetBuilder.fragment(
                                for: name, port: port, endpoints: snapshot.endpoints[name] ?? [], slot: slot,
                                configuration: configuration, nodeZone: snapshot.nodeZone
                            )
                        } else {
                            logger.error("too many Service ports; not serving this one", metadata: ["service": "\(name)", "limit": "\(RulesetBuilder.maxSlots)"])
                        }
                    } else {
                        applied.releaseSlot(of: name)
                    }
                    guard old != new else { continue }
                    applied.ruleCount += (new?.ruleCount ?? 0) - (old?.ruleCount ?? 0)
                    for key in old?.elements[RulesetNames.hairpin]?.keys ?? [:].keys {
                        applied.hairpinUses[key, default: 0] -= 1
                        if applied.hairpinUses[key] == 0 {
                            applied.hairpinUses.removeValue(forKey: key)
                            hairpinGone.insert(key)
                        }
                    }
                    for key in new?.elements[RulesetNames.hairpin]?.keys ?? [:].keys {
                        applied.hairpinUses[key, default: 0] += 1
                        if applied.hairpinUses[key] == 1 { hairpinNew.insert(key) }
                    }
                    for (mapName, map) in old?.maps ?? [:] {
                        applied.mapUses[mapName, default: 0] -= 1
                        if applied.mapUses[mapName] == 0 {
                            applied.mapUses.removeValue(forKey: mapName)
                            mapsGone[mapName] = map
                        }
                    }
                    for (mapName, map) in new?.maps ?? [:] {
                        applied.mapUses[mapName, default: 0] += 1
                        if applied.mapUses[mapName] == 1 { mapsNew[mapName] = map }
                    }
                    // Shared objects (hairpin elements, endpoint maps) are declared below, by use count.
                    if var old {
                        old.elements[RulesetNames.hairpin] = nil
                        old.maps = [:]
                        before.merge(old)
                    }
                    if var new {
                        new.elements[RulesetNames.hairpin] = nil
                        new.maps = [:]
                        after.merge(new)
                    }
                    applied.fragments[name] = new
                }
                // A hairpin element or an endpoint map that left one fragment and joined another in this sync is
                // unchanged in the kernel; one whose last user left goes, one that got its first user comes.
                before.elements[RulesetNames.hairpin] = Dictionary(uniqueKeysWithValues: hairpinGone.subtracting(hairpinNew).map { ($0, "") })
                after.elements[RulesetNames.hairpin] = Dictionary(uniqueKeysWithValues: hairpinNew.subtracting(hairpinGone).map { ($0, "") })
                for (mapName, map) in mapsGone where mapsNew[mapName] == nil { before.maps[mapName] = map }
                for (mapName, map) in mapsNew where mapsGone[mapName] == nil { after.maps[mapName] = map }
                transaction = RulesetDiff.incremental(from: before, to: after, family: family, table: table)
            }
            try nftables.run(transaction)
        } catch {
            inputs.synced(taken, ok: false)
            metrics.syncFailures.increment()
            // Retry no sooner than a second: a rejected ruleset will not heal faster, and the log stays readable.
            let retry = max(configuration.minSyncPeriod, .seconds(1))
            logger.error("sync failed; retrying with a full sync", metadata: ["full": "\(snapshot.full)", "error": "\(error)", "retryIn": "\(retry)"])
            runner.retry(after: retry)
            return (.failed("\(error)"), nil)
        }
        let end = clock.now
        let ruleCount = applied.ruleCount
        state.withLock { state in
            state.applied = applied
            if snapshot.full { state.lastFullSync = start }
        }
        // Ports changed while this sync ran stay dirty for the next one.
        inputs.synced(taken, ok: true)
        health.updated(configuration.family)
        let elapsed = end - start
        metrics.syncDuration.recordNanoseconds(Self.nanoseconds(elapsed))
        (snapshot.full ? metrics.fullSyncDuration : metrics.partialSyncDuration).recordNanoseconds(Self.nanoseconds(elapsed))
        metrics.lastSync.record(Date().timeIntervalSince1970)
        metrics.rulesTotal.record(ruleCount)
        let now = Date()
        for times in snapshot.triggerTimes.values {
            for time in times where time <= now {
                metrics.programmingLatency.recordNanoseconds(Int64(now.timeIntervalSince(time) * 1e9))
            }
        }
        logger.debug(
            "synced",
            metadata: [
                "full": "\(snapshot.full)", "commands": "\(transaction.count)", "services": "\(snapshot.services.count)",
                "duration": "\(elapsed)",
            ]
        )
        return (
            .applied(full: snapshot.full, commands: transaction.count),
            PostSync(
                services: snapshot.services,
                endpoints: snapshot.endpoints,
                nodeZone: snapshot.nodeZone,
                serviceUpdate: snapshot.serviceUpdate,
                endpointsUpdate: snapshot.endpointsUpdate
            )
        )
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    /// Flushes UDP flows that the new rules no longer justify (kube-proxy's `deleteUDPEndpointConnections`).
    private func cleanConntrack(_ post: PostSync) {
        func attempt(_ what: String, _ body: () throws -> Void) {
            do { try body() } catch { logger.error("conntrack cleanup failed", metadata: ["target": "\(what)", "error": "\(error)"]) }
        }
        for ip in post.serviceUpdate.deletedUDPClusterIPs.sorted() {
            attempt("\(ip)") { try conntrack.clearUDP(destination: ip) }
        }
        for name in post.endpointsUpdate.newlyActiveUDPServices.sorted() {
            guard let port = post.services[name] else { continue }
            for ip in [port.clusterIP] + port.externalIPs + port.loadBalancerVIPs {
                attempt("\(ip)") { try conntrack.clearUDP(destination: ip) }
            }
            if port.nodePort > 0 { attempt("nodePort \(port.nodePort)") { try conntrack.clearUDP(nodePort: port.nodePort, family: configuration.family) } }
        }
        for stale in post.endpointsUpdate.deletedUDPEndpoints {
            guard let port = post.services[stale.servicePortName] else { continue }
            for ip in [port.clusterIP] + port.externalIPs + port.loadBalancerVIPs {
                attempt("\(ip) -> \(stale.endpoint)") { try conntrack.clearUDP(destination: ip, endpoint: stale.endpoint.ip) }
            }
            if port.nodePort > 0 {
                attempt("nodePort \(port.nodePort) -> \(stale.endpoint)") { try conntrack.clearUDP(nodePort: port.nodePort, endpoint: stale.endpoint.ip) }
            }
        }
    }
}
