public import Foundation

/// Settings of the IPVS proxier, each named after the kube-proxy flag of the same meaning.
///
/// The daemon fills it from its flags; every field has kube-proxy's default.
public struct IPVSProxierConfiguration: Sendable, Hashable {
    /// The annotation that picks the scheduler of one Service, e.g. `node-agent.io/ipvs-scheduler: sh`.
    ///
    /// Values are the scheduler names of ``IPVSProxierConfiguration/knownSchedulers``. A value the proxier does not
    /// know, or one the kernel refuses (its `ip_vs_<name>` module is missing), is reported (a warning event on the
    /// Service) and the Service uses ``scheduler`` instead.
    public static let schedulerAnnotation = "node-agent.io/ipvs-scheduler"
    /// The schedulers the annotation and `--ipvs-scheduler` accept.
    public static let knownSchedulers = ["rr", "lc", "dh", "sh", "sed", "nq", "wrr", "wlc", "lblc", "lblcr", "mh"]

    /// The IP family this proxier serves (one proxier per family; ``MetaProxier`` combines them).
    public var family: IPFamily
    /// This node's name, to recognise local endpoints.
    public var nodeName: String
    /// `--ipvs-scheduler`: the scheduler of every virtual server without the annotation (kube-proxy: `rr`).
    public var scheduler: String
    /// `--ipvs-sync-period`: the longest time between syncs, and between full syncs that read the kernel back.
    public var syncPeriod: Duration
    /// `--ipvs-min-sync-period`: the shortest time between syncs (kube-proxy: 0).
    public var minSyncPeriod: Duration
    /// `--ipvs-tcp-timeout`: IPVS idle timeout of established TCP connections; zero leaves the kernel's (900 s).
    public var tcpTimeout: Duration
    /// `--ipvs-tcpfin-timeout`: IPVS timeout of TCP connections after a FIN; zero leaves the kernel's (120 s).
    public var tcpFinTimeout: Duration
    /// `--ipvs-udp-timeout`: IPVS timeout of UDP flows; zero leaves the kernel's (300 s).
    public var udpTimeout: Duration
    /// `--ipvs-strict-arp`: `arp_ignore=1` and `arp_announce=2`, so the node never answers ARP for addresses on
    /// `kube-ipvs0` (needed by MetalLB-style load balancers in L2 mode).
    public var strictARP: Bool
    /// `--ipvs-exclude-cidrs`: virtual servers in these ranges are never touched, even on owned addresses.
    public var excludeCIDRs: [IPPrefix]
    /// `--cluster-cidr`: traffic to a cluster IP from outside it is masqueraded.
    public var clusterCIDR: IPPrefix?
    /// The node addresses that accept NodePorts (`--nodeport-addresses`, else the node's IPs): one virtual server
    /// per address and NodePort. Empty means no NodePort virtual servers.
    public var nodePortAddresses: [IPAddress]
    /// `--service-node-port-range`: virtual servers on a node address with a port in this range are this proxier's,
    /// so a restarted daemon may remove stale ones; other virtual servers on node addresses are never touched.
    public var nodePortRange: ClosedRange<Int>
    /// `--masquerade-bit` (kube-proxy's `--iptables-masquerade-bit`, 14): the fwmark bit that asks for SNAT.
    public var masqueradeBit: Int
    /// The dummy interface holding the virtual IPs.
    public var interfaceName: String
    /// The nf_tables table this proxier owns entirely (`ip node-agent-ipvs` / `ip6 node-agent-ipvs`).
    public var tableName: String
    /// How long a removed TCP real server may keep connections (weight 0) before it is deleted anyway.
    /// kube-proxy waits without bound; the IPVS established timeout (900 s) is the default bound here.
    public var gracefulTerminationTimeout: Duration
    /// How often draining real servers' connection counters are read.
    public var gracefulTerminationCheckInterval: Duration
    /// Set the sysctls IPVS needs at start (see ``IPVSSysctls``).
    public var manageSysctls: Bool

    public init(
        family: IPFamily = .ipv4,
        nodeName: String,
        scheduler: String = "rr",
        syncPeriod: Duration = .seconds(30),
        minSyncPeriod: Duration = .zero,
        tcpTimeout: Duration = .zero,
        tcpFinTimeout: Duration = .zero,
        udpTimeout: Duration = .zero,
        strictARP: Bool = false,
        excludeCIDRs: [IPPrefix] = [],
        clusterCIDR: IPPrefix? = nil,
        nodePortAddresses: [IPAddress] = [],
        nodePortRange: ClosedRange<Int> = 30000...32767,
        masqueradeBit: Int = 14,
        interfaceName: String = "kube-ipvs0",
        tableName: String = "node-agent-ipvs",
        gracefulTerminationTimeout: Duration = .seconds(900),
        gracefulTerminationCheckInterval: Duration = .seconds(2),
        manageSysctls: Bool = true
    ) {
        self.family = family
        self.nodeName = nodeName
        self.scheduler = scheduler
        self.syncPeriod = syncPeriod
        self.minSyncPeriod = minSyncPeriod
        self.tcpTimeout = tcpTimeout
        self.tcpFinTimeout = tcpFinTimeout
        self.udpTimeout = udpTimeout
        self.strictARP = strictARP
        self.excludeCIDRs = excludeCIDRs
        self.clusterCIDR = clusterCIDR
        self.nodePortAddresses = nodePortAddresses
        self.nodePortRange = nodePortRange
        self.masqueradeBit = masqueradeBit
        self.interfaceName = interfaceName
        self.tableName = tableName
        self.gracefulTerminationTimeout = gracefulTerminationTimeout
        self.gracefulTerminationCheckInterval = gracefulTerminationCheckInterval
        self.manageSysctls = manageSysctls
    }

    /// Checks the settings a user gives; the message names the setting and what is allowed.
    /// - Throws: ``IPVSProxierError`` of kind ``IPVSProxierError/Kind/invalidConfiguration``.
    public func validate() throws(IPVSProxierError) {
        func invalid(_ setting: String, _ value: String, _ allowed: String) -> IPVSProxierError {
            IPVSProxierError(kind: .invalidConfiguration, operation: "configure", object: setting, detail: "invalid value \"\(value)\": \(allowed)")
        }
        guard Self.knownSchedulers.contains(scheduler) else {
            throw invalid("ipvs-scheduler", scheduler, "expected one of \(Self.knownSchedulers.joined(separator: ", "))")
        }
        for (name, value) in [("ipvs-tcp-timeout", tcpTimeout), ("ipvs-tcpfin-timeout", tcpFinTimeout), ("ipvs-udp-timeout", udpTimeout)] {
            guard value >= .zero, value.components.seconds <= Int64(UInt32.max) else {
                throw invalid(name, "\(value)", "must be zero (leave the kernel's) or a positive number of seconds")
            }
        }
        guard syncPeriod > .zero else { throw invalid("ipvs-sync-period", "\(syncPeriod)", "must be positive") }
        guard minSyncPeriod >= .zero, minSyncPeriod <= syncPeriod else {
            throw invalid("ipvs-min-sync-period", "\(minSyncPeriod)", "must be between 0 and ipvs-sync-period")
        }
        if let clusterCIDR, clusterCIDR.family != family {
            throw invalid("cluster-cidr", "\(clusterCIDR)", "must be an \(family.rawValue) prefix for the \(family.rawValue) proxier")
        }
        guard (0...31).contains(masqueradeBit) else { throw invalid("masquerade-bit", "\(masqueradeBit)", "must be between 0 and 31") }
        guard nodePortRange.lowerBound >= 1, nodePortRange.upperBound <= 65535 else {
            throw invalid("service-node-port-range", "\(nodePortRange)", "must lie within 1-65535")
        }
    }
}

/// Why the IPVS proxier could not do something, with the object at fault and what to do.
public struct IPVSProxierError: Error, Sendable, CustomStringConvertible {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Code: Hashable, Sendable { case invalidConfiguration, kernel, filterTable, interface }
        private let code: Code
        /// A setting has a value the proxier cannot use.
        public static let invalidConfiguration = Kind(code: .invalidConfiguration)
        /// The IPVS kernel refused or failed changes.
        public static let kernel = Kind(code: .kernel)
        /// The nf_tables table could not be read or written.
        public static let filterTable = Kind(code: .filterTable)
        /// `kube-ipvs0` or its addresses could not be managed.
        public static let interface = Kind(code: .interface)
        public var description: String { "\(code)" }
    }

    public let kind: Kind
    public let operation: String
    public let object: String
    public let detail: String

    public init(kind: Kind, operation: String, object: String, detail: String) {
        self.kind = kind
        self.operation = operation
        self.object = object
        self.detail = detail
    }

    public var description: String { "cannot \(operation) \(object): \(detail)" }
}
