public import IPVS

/// A virtual server as the proxier wants it: the service and its real servers by key.
public struct DesiredVirtualServer: Sendable, Hashable {
    public var service: VirtualService
    public var realServers: [RealServerKey: RealServer]

    public init(service: VirtualService, realServers: [RealServerKey: RealServer] = [:]) {
        self.service = service
        self.realServers = realServers
    }
}

/// Everything one Service port asks of the kernel in IPVS mode: virtual servers, addresses on `kube-ipvs0`, and
/// elements of the filter table's sets (see ``IPVSFilterTable``).
///
/// A pure value computed by ``IPVSPlan/fragment(for:port:endpoints:configuration:nodeZone:unavailableSchedulers:)``;
/// the proxier compares a port's old and new fragments, so one endpoint change costs work for that port only.
public struct IPVSFragment: Sendable, Hashable {
    public var virtualServers: [ServiceKey: DesiredVirtualServer] = [:]
    /// Virtual IPs to bind on `kube-ipvs0` (cluster, external and load-balancer IPs; never node addresses).
    public var addresses: Set<IPVS.IPAddress> = []
    /// Filter-table set name → element keys in nft syntax (`10.96.0.10 . tcp . 80`).
    public var elements: [String: Set<String>] = [:]

    public init() {}

    mutating func insert(_ key: String, into set: String) { elements[set, default: []].insert(key) }
}

extension IPVS.IPAddress {
    /// The proxy model's address as the IPVS layer spells it.
    init(_ address: IPAddress) { self.init(bytes: address.bytes)! }
}

extension IPProtocol {
    init(_ transport: TransportProtocol) {
        switch transport {
        case .tcp: self = .tcp
        case .udp: self = .udp
        case .sctp: self = .sctp
        }
    }
}

/// Computes what Service ports mean for IPVS, as kube-proxy's IPVS mode does.
///
/// For each Service port: one virtual server per cluster IP, external IP, load-balancer IP and (per NodePort
/// address) NodePort, with the configured or annotated scheduler; ClientIP affinity is persistence with the
/// Service's timeout; every selected endpoint is a masquerading real server of weight 1. Cluster IP traffic uses
/// the cluster endpoints (the local ones with `internalTrafficPolicy: Local`); NodePort, external and load-balancer
/// traffic the cluster endpoints, or only the local ones with `externalTrafficPolicy: Local` (source kept).
public enum IPVSPlan {
    /// The scheduler `port` uses: its annotation when valid and available, else the configured one.
    public static func scheduler(for port: ServicePort, configuration: IPVSProxierConfiguration, unavailable: Set<String> = []) -> String {
        guard let annotated = port.ipvsScheduler, IPVSProxierConfiguration.knownSchedulers.contains(annotated), !unavailable.contains(annotated) else {
            return configuration.scheduler
        }
        return annotated
    }

    /// What `port` (named `name`) with `endpoints` asks of the kernel.
    public static func fragment(
        for name: ServicePortName,
        port: ServicePort,
        endpoints: [Endpoint],
        configuration: IPVSProxierConfiguration,
        nodeZone: String? = nil,
        unavailableSchedulers: Set<String> = []
    ) -> IPVSFragment {
        var fragment = IPVSFragment()
        let family = configuration.family
        guard port.clusterIP.family == family else { return fragment }
        let selection = EndpointSelection(endpoints: endpoints, port: port, nodeZone: nodeZone)
        let scheduler = scheduler(for: port, configuration: configuration, unavailable: unavailableSchedulers)
        let proto = IPProtocol(port.protocol)
        let protoName = port.protocol.rawValue
        let sticky = port.stickySeconds
        let internalEndpoints = port.internalPolicyLocal ? selection.localEndpoints : selection.clusterEndpoints
        let externalEndpoints = port.externalPolicyLocal ? selection.localEndpoints : selection.clusterEndpoints
        typealias N = IPVSFilterTable.Names

        func virtualServer(_ address: IPAddress, _ number: Int, _ chosen: [Endpoint]) {
            let key = ServiceKey.address(proto, IPVS.IPAddress(address), port: UInt16(number))
            let service = VirtualService(
                key, scheduler: scheduler, flags: sticky == nil ? [] : [.persistent], timeout: UInt32(sticky ?? 0))
            var servers: [RealServerKey: RealServer] = [:]
            for endpoint in chosen where endpoint.ip.family == family && (1...65535).contains(endpoint.port) {
                let server = RealServer(IPVS.IPAddress(endpoint.ip), port: UInt16(endpoint.port), weight: 1, forwarding: .masquerade)
                servers[server.key] = server
                fragment.insert("\(endpoint.ip.text) . \(endpoint.ip.text)", into: N.hairpin)
            }
            fragment.virtualServers[key] = DesiredVirtualServer(service: service, realServers: servers)
        }

        // Cluster IP.
        let clusterKey = "\(port.clusterIP.text) . \(protoName) . \(port.port)"
        virtualServer(port.clusterIP, port.port, internalEndpoints)
        fragment.addresses.insert(IPVS.IPAddress(port.clusterIP))
        fragment.insert(port.clusterIP.text, into: N.vips)
        fragment.insert(clusterKey, into: N.serviceIPs)
        fragment.insert(clusterKey, into: N.clusterIPs)
        if internalEndpoints.isEmpty && !selection.hasAnyEndpoints { fragment.insert(clusterKey, into: N.noEndpointServices) }

        // External and load-balancer IPs, bound on kube-ipvs0 like the cluster IP.
        for address in Set(port.externalIPs + port.loadBalancerVIPs).sorted() where address.family == family {
            let key = "\(address.text) . \(protoName) . \(port.port)"
            virtualServer(address, port.port, externalEndpoints)
            fragment.addresses.insert(IPVS.IPAddress(address))
            fragment.insert(address.text, into: N.vips)
            fragment.insert(key, into: N.serviceIPs)
            if !port.externalPolicyLocal { fragment.insert(key, into: N.externalIPs) }
            if externalEndpoints.isEmpty && !selection.hasAnyEndpoints { fragment.insert(key, into: N.noEndpointServices) }
        }

        // NodePort: one virtual server per node address (not bound on kube-ipvs0: the node owns them).
        if port.nodePort > 0 {
            for address in Set(configuration.nodePortAddresses).sorted() where address.family == family {
                virtualServer(address, port.nodePort, externalEndpoints)
            }
            let key = "\(protoName) . \(port.nodePort)"
            if !port.externalPolicyLocal { fragment.insert(key, into: N.nodePorts) }
            if externalEndpoints.isEmpty && !selection.hasAnyEndpoints { fragment.insert(key, into: N.noEndpointNodePorts) }
        }
        return fragment
    }
}
