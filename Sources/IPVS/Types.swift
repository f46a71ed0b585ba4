/// A transport protocol of a virtual service.
public enum IPProtocol: UInt16, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case tcp = 6
    case udp = 17
    case sctp = 132

    /// As ipvsadm prints it: `TCP`, `UDP`, `SCTP`.
    public var description: String {
        switch self {
        case .tcp: "TCP"
        case .udp: "UDP"
        case .sctp: "SCTP"
        }
    }
}

/// What identifies a virtual service: protocol, address and port, or a firewall mark.
public enum ServiceKey: Hashable, Sendable, CustomStringConvertible {
    case address(IPProtocol, IPAddress, port: UInt16)
    case firewallMark(UInt32, family: AddressFamily)

    public var family: AddressFamily {
        switch self {
        case .address(_, let address, _): address.family
        case .firewallMark(_, let family): family
        }
    }

    /// As ipvsadm prints it: `TCP 10.0.0.1:80`, `TCP [fd00::1]:80`, `FWM 7` (IPv6 marks as `FWM 7 IPv6`).
    public var description: String {
        switch self {
        case .address(let proto, let address, let port):
            address.family == .inet ? "\(proto) \(address):\(port)" : "\(proto) [\(address)]:\(port)"
        case .firewallMark(let mark, let family): family == .inet ? "FWM \(mark)" : "FWM \(mark) IPv6"
        }
    }
}

/// Virtual service flags (`IP_VS_SVC_F_*`). Sent as `{flags, mask}` so only the flags named in the mask change.
public struct ServiceFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Persistent: a client keeps its real server for the persistence timeout.
    public static let persistent = ServiceFlags(rawValue: 0x0001)
    /// Set by the kernel on every hashed (live) service; ignored when sent.
    public static let hashed = ServiceFlags(rawValue: 0x0002)
    /// One-packet scheduling (UDP): every datagram scheduled on its own.
    public static let onePacket = ServiceFlags(rawValue: 0x0004)
    /// sh / mh: fall back to another server when the hashed one is unavailable (`IP_VS_SVC_F_SCHED1`).
    public static let schedulerFallback = ServiceFlags(rawValue: 0x0008)
    /// sh / mh: hash the source port too (`IP_VS_SVC_F_SCHED2`).
    public static let schedulerPort = ServiceFlags(rawValue: 0x0010)
    /// Scheduler flag 3 (`IP_VS_SVC_F_SCHED3`).
    public static let scheduler3 = ServiceFlags(rawValue: 0x0020)

    /// Every flag a caller may set (all but ``hashed``).
    public static let settable: ServiceFlags = [.persistent, .onePacket, .schedulerFallback, .schedulerPort, .scheduler3]
}

/// A virtual service: what clients connect to, and how connections are scheduled.
public struct VirtualService: Hashable, Sendable, CustomStringConvertible {
    public var key: ServiceKey
    /// The scheduler's kernel name (``Scheduler`` names the usual ones; any name the kernel knows works).
    public var schedulerName: String
    /// Flags as set by the caller; the kernel's ``ServiceFlags/hashed`` is stripped when read back.
    public var flags: ServiceFlags
    /// Persistence timeout in seconds (meaningful with ``ServiceFlags/persistent``).
    public var timeout: UInt32
    /// Persistence granularity as a prefix length: 0...32 for IPv4, 1...128 for IPv6 (full length by default).
    public var netmaskPrefixLength: UInt8

    public init(
        _ key: ServiceKey, scheduler: String, flags: ServiceFlags = [], timeout: UInt32 = 0, netmaskPrefixLength: UInt8? = nil
    ) {
        self.key = key
        self.schedulerName = scheduler
        self.flags = flags
        self.timeout = timeout
        self.netmaskPrefixLength = netmaskPrefixLength ?? (key.family == .inet ? 32 : 128)
    }

    public init(_ key: ServiceKey, scheduler: Scheduler, flags: ServiceFlags = [], timeout: UInt32 = 0, netmaskPrefixLength: UInt8? = nil) {
        self.init(key, scheduler: scheduler.rawValue, flags: flags, timeout: timeout, netmaskPrefixLength: netmaskPrefixLength)
    }

    /// The scheduler, when it is one of the well-known ones.
    public var scheduler: Scheduler? { Scheduler(rawValue: schedulerName) }

    public var description: String { "\(key) \(schedulerName)" }
}

/// How packets reach a real server.
public enum ForwardingMethod: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// NAT: the destination is rewritten (ipvsadm `-m`, "Masq").
    case masquerade = 0
    /// Local node (ipvsadm "Local").
    case local = 1
    /// IP-in-IP tunnel (ipvsadm `-i`, "Tunnel").
    case tunnel = 2
    /// Direct routing (ipvsadm `-g`, "Route").
    case route = 3
    /// Cache bypass.
    case bypass = 4

    public var description: String {
        switch self {
        case .masquerade: "Masq"
        case .local: "Local"
        case .tunnel: "Tunnel"
        case .route: "Route"
        case .bypass: "Bypass"
        }
    }
}

/// A real server (destination) of a virtual service, as configured.
public struct RealServer: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public var weight: Int32
    public var forwarding: ForwardingMethod
    /// Upper connection threshold (0: none).
    public var upperThreshold: UInt32
    /// Lower connection threshold (0: none).
    public var lowerThreshold: UInt32

    public init(
        _ address: IPAddress, port: UInt16, weight: Int32 = 1, forwarding: ForwardingMethod = .masquerade,
        upperThreshold: UInt32 = 0, lowerThreshold: UInt32 = 0
    ) {
        self.address = address
        self.port = port
        self.weight = weight
        self.forwarding = forwarding
        self.upperThreshold = upperThreshold
        self.lowerThreshold = lowerThreshold
    }

    /// Address and port: what identifies a real server within its service.
    public var key: RealServerKey { RealServerKey(address: address, port: port) }

    public var description: String { address.family == .inet ? "\(address):\(port)" : "[\(address)]:\(port)" }
}

/// What identifies a real server within its service.
public struct RealServerKey: Hashable, Sendable {
    public var address: IPAddress
    public var port: UInt16
    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }
}

/// Traffic counters the kernel keeps per service and per real server.
public struct IPVSStats: Hashable, Sendable {
    public var connections: UInt64 = 0
    public var packetsIn: UInt64 = 0
    public var packetsOut: UInt64 = 0
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    public var connectionsPerSecond: UInt64 = 0
    public var packetsInPerSecond: UInt64 = 0
    public var packetsOutPerSecond: UInt64 = 0
    public var bytesInPerSecond: UInt64 = 0
    public var bytesOutPerSecond: UInt64 = 0
    public init() {}
}

/// A real server as the kernel reports it: its configuration and live counters.
public struct RealServerStatus: Hashable, Sendable {
    public var server: RealServer
    public var activeConnections: UInt32
    public var inactiveConnections: UInt32
    public var persistentConnections: UInt32
    public var stats: IPVSStats

    public init(
        server: RealServer, activeConnections: UInt32 = 0, inactiveConnections: UInt32 = 0, persistentConnections: UInt32 = 0,
        stats: IPVSStats = IPVSStats()
    ) {
        self.server = server
        self.activeConnections = activeConnections
        self.inactiveConnections = inactiveConnections
        self.persistentConnections = persistentConnections
        self.stats = stats
    }
}

/// A virtual service as the kernel reports it, with its real servers.
public struct ServiceStatus: Hashable, Sendable {
    public var service: VirtualService
    public var stats: IPVSStats
    public var realServers: [RealServerStatus]

    public init(service: VirtualService, stats: IPVSStats = IPVSStats(), realServers: [RealServerStatus] = []) {
        self.service = service
        self.stats = stats
        self.realServers = realServers
    }
}

/// IPVS connection timeouts in seconds; when setting, 0 leaves a value unchanged (as `ipvsadm --set`).
public struct IPVSTimeouts: Hashable, Sendable {
    public var tcp: UInt32
    public var tcpFin: UInt32
    public var udp: UInt32
    public init(tcp: UInt32, tcpFin: UInt32, udp: UInt32) {
        self.tcp = tcp
        self.tcpFin = tcpFin
        self.udp = udp
    }
}
