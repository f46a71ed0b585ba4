import IPVS

/// Which virtual servers in the kernel belong to this daemon, so that a full sync or a cleanup may change or
/// delete them, and which it must never touch.
///
/// A virtual server is ours when its address is bound on `kube-ipvs0` (the interface and every address on it
/// belong to the proxier), or when it sits on a NodePort address with a port in the NodePort range. Firewall-mark
/// services, services on any other address, and services inside `--ipvs-exclude-cidrs` are someone else's
/// (keepalived, a hand-made `ipvsadm` rule, another load balancer) and are left alone, unlike kube-proxy, which
/// deletes every virtual server outside the excluded ranges.
struct IPVSOwnership: Sendable {
    var family: AddressFamily
    /// Addresses currently on `kube-ipvs0`, of this family.
    var boundAddresses: Set<IPVS.IPAddress>
    var nodePortAddresses: Set<IPVS.IPAddress>
    var nodePortRange: ClosedRange<Int>
    var excludeCIDRs: [IPPrefix]

    init(configuration: IPVSProxierConfiguration, boundAddresses: Set<IPVS.IPAddress>) {
        family = configuration.family == .ipv4 ? .inet : .inet6
        self.boundAddresses = boundAddresses.filter { $0.family == (configuration.family == .ipv4 ? .inet : .inet6) }
        nodePortAddresses = Set(configuration.nodePortAddresses.filter { $0.family == configuration.family }.map(IPVS.IPAddress.init))
        nodePortRange = configuration.nodePortRange
        excludeCIDRs = configuration.excludeCIDRs
    }

    /// Whether `key` is a virtual server this daemon may change or delete.
    func owns(_ key: ServiceKey) -> Bool {
        guard case .address(_, let address, let port) = key, address.family == family, !isExcluded(address) else { return false }
        if boundAddresses.contains(address) { return true }
        return nodePortAddresses.contains(address) && nodePortRange.contains(Int(port))
    }

    /// Whether `address` lies in `--ipvs-exclude-cidrs`.
    func isExcluded(_ address: IPVS.IPAddress) -> Bool {
        guard !excludeCIDRs.isEmpty, let converted = IPAddress(address.description) else { return false }
        return excludeCIDRs.contains { $0.contains(converted) }
    }
}
