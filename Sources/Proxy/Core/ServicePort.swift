/// A transport protocol a Service port can use, spelled as nft spells it.
public enum TransportProtocol: String, Sendable, Hashable, CaseIterable, Comparable, Codable {
    case tcp
    case udp
    case sctp

    /// Parses the API's `TCP`/`UDP`/`SCTP` (nil or empty means TCP).
    init?(api: String?) {
        switch api ?? "TCP" {
        case "TCP", "": self = .tcp
        case "UDP": self = .udp
        case "SCTP": self = .sctp
        default: return nil
        }
    }

    public static func < (lhs: TransportProtocol, rhs: TransportProtocol) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Identifies one port of one Service: `namespace/name:portName` plus protocol (kube-proxy's `ServicePortName`).
public struct ServicePortName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var service: NamespacedName
    /// The port's `name` (empty for a single unnamed port).
    public var port: String
    public var `protocol`: TransportProtocol

    public init(_ service: NamespacedName, port: String, protocol: TransportProtocol) {
        self.service = service
        self.port = port
        self.protocol = `protocol`
    }

    public var description: String { port.isEmpty ? "\(service):\(`protocol`.rawValue)" : "\(service):\(port)/\(`protocol`.rawValue)" }

    public static func < (lhs: ServicePortName, rhs: ServicePortName) -> Bool {
        (lhs.service, lhs.port, lhs.protocol) < (rhs.service, rhs.port, rhs.protocol)
    }
}

/// What the proxier needs of one Service port in one IP family (kube-proxy's `BaseServicePortInfo`).
public struct ServicePort: Sendable, Hashable {
    public var clusterIP: IPAddress
    public var port: Int
    public var `protocol`: TransportProtocol
    /// 0 when the Service has no NodePort for this port.
    public var nodePort: Int
    public var externalIPs: [IPAddress]
    /// `status.loadBalancer.ingress[].ip` of this family.
    public var loadBalancerVIPs: [IPAddress]
    /// ClientIP affinity timeout in seconds; nil when affinity is `None`.
    public var stickySeconds: Int?
    public var externalPolicyLocal: Bool
    public var internalPolicyLocal: Bool
    /// The health-check node port (`externalTrafficPolicy: Local` LoadBalancers), 0 when none.
    public var healthCheckNodePort: Int

    public init(
        clusterIP: IPAddress,
        port: Int,
        protocol: TransportProtocol,
        nodePort: Int = 0,
        externalIPs: [IPAddress] = [],
        loadBalancerVIPs: [IPAddress] = [],
        stickySeconds: Int? = nil,
        externalPolicyLocal: Bool = false,
        internalPolicyLocal: Bool = false,
        healthCheckNodePort: Int = 0
    ) {
        self.clusterIP = clusterIP
        self.port = port
        self.protocol = `protocol`
        self.nodePort = nodePort
        self.externalIPs = externalIPs
        self.loadBalancerVIPs = loadBalancerVIPs
        self.stickySeconds = stickySeconds
        self.externalPolicyLocal = externalPolicyLocal
        self.internalPolicyLocal = internalPolicyLocal
        self.healthCheckNodePort = healthCheckNodePort
    }

    /// Reachable from outside the cluster network: a NodePort, an external IP or a load-balancer IP.
    public var externallyAccessible: Bool { nodePort > 0 || !externalIPs.isEmpty || !loadBalancerVIPs.isEmpty }
    /// Whether some traffic to this port goes to endpoints on any node.
    public var usesClusterEndpoints: Bool { !internalPolicyLocal || (externallyAccessible && !externalPolicyLocal) }
    /// Whether some traffic to this port goes only to endpoints on this node.
    public var usesLocalEndpoints: Bool { internalPolicyLocal || (externalPolicyLocal && externallyAccessible) }
}

/// One backend of a Service port (kube-proxy's `BaseEndpointInfo`).
public struct Endpoint: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var ip: IPAddress
    public var port: Int
    public var ready: Bool
    public var serving: Bool
    public var terminating: Bool
    /// On this node.
    public var isLocal: Bool
    /// Zones from the slice's hints; nil when the endpoint carries no hints.
    public var zoneHints: Set<String>?

    public init(ip: IPAddress, port: Int, ready: Bool = true, serving: Bool? = nil, terminating: Bool = false, isLocal: Bool = false, zoneHints: Set<String>? = nil) {
        self.ip = ip
        self.port = port
        self.ready = ready
        self.serving = serving ?? ready
        self.terminating = terminating
        self.isLocal = isLocal
        self.zoneHints = zoneHints
    }

    /// `10.0.0.1:8080` or `[fd00::1]:8080`.
    public var description: String { ip.family == .ipv4 ? "\(ip.text):\(port)" : "[\(ip.text)]:\(port)" }

    public static func < (lhs: Endpoint, rhs: Endpoint) -> Bool {
        (lhs.ip, lhs.port) < (rhs.ip, rhs.port)
    }
}
