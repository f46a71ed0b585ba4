/// How Services become kernel load balancing, as kube-proxy's `--proxy-mode` names it.
public enum ProxyMode: String, Sendable, CaseIterable, Hashable, Codable {
    /// IPVS virtual servers over generic netlink; falls back to ``iptables`` when ip_vs is absent.
    case ipvs
    /// nf_tables rules through libnftables (the rules `iptables-nft` would write, as one table).
    case iptables
}
