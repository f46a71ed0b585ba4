/// The kernel settings IPVS mode needs, as kube-proxy sets them, and what setting them found.
///
/// - `net/ipv4/vs/conntrack=1`: IPVS connections get conntrack entries, so the filter table's masquerade and
///   conntrack cleanup see them.
/// - `net/ipv4/vs/expire_nodest_conn=1`: a connection whose real server was deleted is dropped on its next packet
///   instead of hanging.
/// - `net/ipv4/vs/expire_quiescent_template=1`: persistence (ClientIP affinity) no longer pins clients to a
///   draining (weight 0) real server.
/// - `net/ipv4/ip_forward=1` (`net/ipv6/conf/all/forwarding=1` for IPv6): masqueraded traffic is forwarded.
/// - with `--ipvs-strict-arp`: `net/ipv4/conf/all/arp_ignore=1`, `net/ipv4/conf/all/arp_announce=2`.
public struct IPVSSysctls: Sendable, Hashable, Codable {
    /// One setting: what was wanted, what was there, and what happened.
    public struct Item: Sendable, Hashable, Codable {
        public var name: String
        public var wanted: String
        /// The value before (nil when the setting does not exist, e.g. ip_vs not loaded).
        public var found: String?
        /// `unchanged`, `set`, or `failed: <why>`.
        public var result: String

        public var ok: Bool { !result.hasPrefix("failed") }
    }

    public var items: [Item]

    public var ok: Bool { items.allSatisfy(\.ok) }

    /// The settings wanted for `configuration`.
    public static func wanted(_ configuration: IPVSProxierConfiguration) -> [(name: String, value: String)] {
        var wanted: [(String, String)] = [
            ("net/ipv4/vs/conntrack", "1"),
            ("net/ipv4/vs/expire_nodest_conn", "1"),
            ("net/ipv4/vs/expire_quiescent_template", "1"),
        ]
        wanted.append(configuration.family == .ipv4 ? ("net/ipv4/ip_forward", "1") : ("net/ipv6/conf/all/forwarding", "1"))
        if configuration.strictARP {
            wanted.append(("net/ipv4/conf/all/arp_ignore", "1"))
            wanted.append(("net/ipv4/conf/all/arp_announce", "2"))
        }
        return wanted
    }

    /// Sets what `configuration` wants through `sysctl` and reports each setting.
    public static func apply(_ configuration: IPVSProxierConfiguration, sysctl: any SysctlWriter) -> IPVSSysctls {
        var items: [Item] = []
        for (name, value) in wanted(configuration) {
            let found = sysctl.read(name)
            if found == value {
                items.append(Item(name: name, wanted: value, found: found, result: "unchanged"))
                continue
            }
            do {
                try sysctl.write(name, value)
                items.append(Item(name: name, wanted: value, found: found, result: "set"))
            } catch {
                items.append(Item(name: name, wanted: value, found: found, result: "failed: \(error)"))
            }
        }
        return IPVSSysctls(items: items)
    }
}
