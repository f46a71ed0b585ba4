/// Which endpoints of a Service port the data path uses, as kube-proxy's `CategorizeEndpoints`.
public struct EndpointSelection: Sendable, Hashable {
    /// For traffic under the "Cluster" policy; empty when the port uses no cluster endpoints.
    public var clusterEndpoints: [Endpoint] = []
    /// For traffic under a "Local" policy; empty when the port uses no local endpoints.
    public var localEndpoints: [Endpoint] = []
    /// Every endpoint some traffic can reach (health checks, conntrack).
    public var allReachable: [Endpoint] = []
    /// Whether the Service has any usable endpoint anywhere: when false, traffic is rejected;
    /// when true but none applies to a policy, that traffic is dropped.
    public var hasAnyEndpoints = false

    /// Selects among `endpoints` for `port`: ready endpoints, else serving-and-terminating ones; topology hints
    /// when every ready endpoint carries them and some name `nodeZone`; local ones for "Local" policies.
    public init(endpoints: [Endpoint], port: ServicePort, nodeZone: String?) {
        let useTopology = Self.canUseTopology(endpoints, nodeZone: nodeZone)
        if port.usesClusterEndpoints {
            clusterEndpoints = endpoints.filter { endpoint in
                endpoint.ready && (!useTopology || endpoint.zoneHints?.contains(nodeZone ?? "") == true)
            }
            if clusterEndpoints.isEmpty {
                clusterEndpoints = endpoints.filter { $0.serving && $0.terminating }
            }
            if !clusterEndpoints.isEmpty { hasAnyEndpoints = true }
        }
        guard port.usesLocalEndpoints else {
            allReachable = clusterEndpoints
            return
        }
        var hasLocalReady = false
        var hasLocalServingTerminating = false
        for endpoint in endpoints {
            if endpoint.ready {
                hasAnyEndpoints = true
                if endpoint.isLocal { hasLocalReady = true }
            } else if endpoint.serving && endpoint.terminating {
                hasAnyEndpoints = true
                if endpoint.isLocal { hasLocalServingTerminating = true }
            }
        }
        if hasLocalReady {
            localEndpoints = endpoints.filter { $0.isLocal && $0.ready }
        } else if hasLocalServingTerminating {
            localEndpoints = endpoints.filter { $0.isLocal && $0.serving && $0.terminating }
        }
        guard port.usesClusterEndpoints else {
            allReachable = localEndpoints
            return
        }
        allReachable = Array(Set(clusterEndpoints).union(localEndpoints)).sorted()
    }

    /// Topology hints apply only when every ready endpoint has them, the node has a zone, and some endpoint is
    /// hinted for it (else traffic would have nowhere to go).
    static func canUseTopology(_ endpoints: [Endpoint], nodeZone: String?) -> Bool {
        guard let nodeZone, !nodeZone.isEmpty else { return false }
        var hasForZone = false
        for endpoint in endpoints where endpoint.ready {
            guard let hints = endpoint.zoneHints else { return false }
            if hints.contains(nodeZone) { hasForZone = true }
        }
        return hasForZone
    }
}
