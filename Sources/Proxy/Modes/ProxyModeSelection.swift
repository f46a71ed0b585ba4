public import CoreMetrics
public import IPVS
public import Iptables
public import Logging

/// What every proxier is built from, whatever its mode: the daemon's flags resolved for this node.
public struct ProxierSettings: Sendable {
    public var nodeName: String
    /// One proxier per family (dual-stack when both are listed), the node's primary family first.
    public var families: [IPFamily]
    /// Addresses that accept NodePorts (`--nodeport-addresses`, default the node's primary IPs).
    public var nodePortAddresses: [IPAddress]
    /// `--cluster-cidr`, at most one per family.
    public var clusterCIDRs: [IPPrefix]
    /// `--masquerade-all`: SNAT every connection to a Service IP, not only those from outside the cluster CIDR.
    public var masqueradeAll: Bool
    /// The mode's `--*-sync-period` and `--*-min-sync-period`.
    public var syncPeriod: Duration
    public var minSyncPeriod: Duration
    /// `--ipvs-scheduler` (the IPVS proxier's business).
    public var ipvsScheduler: String
    public var health: ProxyHealth
    public var serviceHealth: ServiceHealthServer?
    public var events: (any ProxyEventRecorder)?
    public var metricsFactory: (any MetricsFactory)?
    public var logger: Logger

    public init(
        nodeName: String,
        families: [IPFamily] = [.ipv4],
        nodePortAddresses: [IPAddress] = [],
        clusterCIDRs: [IPPrefix] = [],
        masqueradeAll: Bool = false,
        syncPeriod: Duration = .seconds(30),
        minSyncPeriod: Duration = .seconds(1),
        ipvsScheduler: String = "rr",
        health: ProxyHealth,
        serviceHealth: ServiceHealthServer? = nil,
        events: (any ProxyEventRecorder)? = nil,
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger
    ) {
        self.nodeName = nodeName
        self.families = families
        self.nodePortAddresses = nodePortAddresses
        self.clusterCIDRs = clusterCIDRs
        self.masqueradeAll = masqueradeAll
        self.syncPeriod = syncPeriod
        self.minSyncPeriod = minSyncPeriod
        self.ipvsScheduler = ipvsScheduler
        self.health = health
        self.serviceHealth = serviceHealth
        self.events = events
        self.metricsFactory = metricsFactory
        self.logger = logger
    }

    /// The families to proxy: the node's primary family (its first IP's, else IPv4), and the other one too when
    /// the node has an address of it (dual-stack).
    public static func families(nodeIPs: [IPAddress]) -> [IPFamily] {
        let primary = nodeIPs.first?.family ?? .ipv4
        let other: IPFamily = primary == .ipv4 ? .ipv6 : .ipv4
        return nodeIPs.contains { $0.family == other } ? [primary, other] : [primary]
    }

    /// The nftables proxier's configuration for `family`.
    public func nftablesConfiguration(family: IPFamily) -> NftablesProxierConfiguration {
        var configuration = NftablesProxierConfiguration(
            family: family,
            nodeName: nodeName,
            nodePortAddresses: nodePortAddresses.filter { $0.family == family },
            clusterCIDR: clusterCIDRs.first { $0.family == family },
            syncPeriod: syncPeriod,
            minSyncPeriod: minSyncPeriod
        )
        configuration.masqueradeAll = masqueradeAll
        return configuration
    }
}

/// Builds the IPVS proxier. The IPVS proxier's code supplies it; without one, `--proxy-mode=ipvs` falls back to
/// the nftables proxier (saying so).
public struct IPVSProxierFactory: Sendable {
    /// Builds the proxier (one per family inside, or a ``MetaProxier``).
    /// - Throws: when the proxier cannot be set up (e.g. kube-ipvs0 cannot be created); the daemon then falls back.
    public var make: @Sendable (ProxierSettings) throws -> any Proxier
    /// Removes what an earlier run in IPVS mode left behind (the virtual servers on its VIPs, the kube-ipvs0
    /// addresses, its own nf_tables table): called before the nftables proxier starts, so switching modes across
    /// restarts leaves nothing of the other mode.
    public var cleanUp: @Sendable (Logger) -> Void

    public init(make: @escaping @Sendable (ProxierSettings) throws -> any Proxier, cleanUp: @escaping @Sendable (Logger) -> Void) {
        self.make = make
        self.cleanUp = cleanUp
    }
}

/// Which proxier runs, decided from the requested mode and what the kernel offers (kube-proxy's mode fallback).
public enum ProxyModeSelection {
    public struct Decision: Sendable, Hashable, Codable {
        /// `--proxy-mode` as given.
        public var requested: ProxyMode
        /// The mode that runs.
        public var chosen: ProxyMode
        /// Why the requested mode does not run; nil when it does.
        public var fallbackReason: String?

        public init(requested: ProxyMode, chosen: ProxyMode, fallbackReason: String? = nil) {
            self.requested = requested
            self.chosen = chosen
            self.fallbackReason = fallbackReason
        }
    }

    /// `iptables` runs the nftables proxier. `ipvs` runs the IPVS proxier when the kernel has IPVS (with the
    /// scheduler's module) and an IPVS proxier exists in this build; otherwise the nftables proxier, with the reason.
    /// - Parameter ipvs: asked only when `requested` is `ipvs` (the check may try `modprobe`).
    public static func select(requested: ProxyMode, ipvs: () -> IPVSAvailability, ipvsProxierAvailable: Bool) -> Decision {
        switch requested {
        case .iptables:
            return Decision(requested: requested, chosen: .iptables)
        case .ipvs:
            if case .unavailable(let reason) = ipvs() {
                return Decision(requested: requested, chosen: .iptables, fallbackReason: reason)
            }
            guard ipvsProxierAvailable else {
                return Decision(requested: requested, chosen: .iptables, fallbackReason: "this build of node-agent has no IPVS proxier")
            }
            return Decision(requested: requested, chosen: .ipvs)
        }
    }
}

/// Removes the nftables proxier's tables (`ip node-agent`, `ip6 node-agent`) when another mode runs, so a switch
/// of `--proxy-mode` across restarts leaves no stale rules behind.
public enum NftablesCleanup {
    /// Deletes the tables that exist; returns the ones deleted.
    /// - Throws: ``NftablesError`` when listing or deleting fails.
    @discardableResult
    public static func removeTables(_ nftables: any Nftables, tableName: String = "node-agent", logger: Logger) throws -> [String] {
        var removed: [String] = []
        for family in [Family.ip, .ip6] {
            guard try nftables.listObjects(family: family, table: tableName) != nil else { continue }
            var transaction = Transaction(family: family, table: tableName)
            transaction.delete(.table)
            try nftables.run(transaction)
            removed.append("\(family.rawValue) \(tableName)")
            logger.info("removed the nftables proxier's table left by an earlier run in another mode", metadata: ["table": "\(family.rawValue) \(tableName)"])
        }
        return removed
    }
}
