/// The contents of a pod's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`, computed the way the kubelet
/// does. Pure: writing them is the sandbox manager's job.
public enum PodFiles {
    /// Node-wide DNS settings (`--cluster-dns`, `--cluster-domain`, and the node's own resolv.conf for `Default`).
    public struct ClusterDNS: Sendable, Hashable {
        public var servers: [String]
        public var domain: String
        /// The node's resolv.conf contents (kubelet's `--resolv-conf`, `/etc/resolv.conf`).
        public var hostResolvConf: String

        public init(servers: [String] = [], domain: String = "cluster.local", hostResolvConf: String = "") {
            self.servers = servers
            self.domain = domain
            self.hostResolvConf = hostResolvConf
        }
    }

    public static func hostname(_ config: PodSandboxConfig) -> String { config.hostname + "\n" }

    /// Kubernetes' managed hosts file: localhost entries, the pod's IP with its hostname, then `hostAliases`.
    public static func hosts(_ config: PodSandboxConfig, podIPs: [String]) -> String {
        var text = """
            # Kubernetes-managed hosts file.
            127.0.0.1\tlocalhost
            ::1\tlocalhost ip6-localhost ip6-loopback
            fe00::0\tip6-localnet
            fe00::0\tip6-mcastprefix
            fe00::1\tip6-allnodes
            fe00::2\tip6-allrouters

            """
        for ip in podIPs { text += "\(ip)\t\(config.hostname)\n" }
        if !config.hostAliases.isEmpty {
            text += "\n# Entries added by HostAliases.\n"
            for alias in config.hostAliases { text += "\(alias.ip)\t\(alias.hostnames.joined(separator: "\t"))\n" }
        }
        return text
    }

    /// resolv.conf per `dnsPolicy` (ClusterFirst, ClusterFirstWithHostNet, Default, None) merged with `dnsConfig`.
    /// ClusterFirst without `--cluster-dns` falls back to Default, as the kubelet does.
    public static func resolvConf(_ config: PodSandboxConfig, cluster: ClusterDNS) -> String {
        var nameservers: [String] = []
        var searches: [String] = []
        var options: [String] = []
        let host = parseResolvConf(cluster.hostResolvConf)
        var policy = config.dns.policy
        if policy == .clusterFirst && config.hostNetwork { policy = .default }
        if (policy == .clusterFirst || policy == .clusterFirstWithHostNet) && cluster.servers.isEmpty { policy = .default }
        switch policy {
        case .clusterFirst, .clusterFirstWithHostNet:
            nameservers = cluster.servers
            let domain = cluster.domain
            searches = ["\(config.pod.namespace).svc.\(domain)", "svc.\(domain)", domain] + host.searches
            options = ["ndots:5"]
        case .default:
            nameservers = host.nameservers
            searches = host.searches
            options = host.options
        case .none:
            break
        }
        nameservers += config.dns.nameservers
        searches += config.dns.searches
        for option in config.dns.options {
            let key = option.split(separator: ":").first.map(String.init) ?? option
            options.removeAll { ($0.split(separator: ":").first.map(String.init) ?? $0) == key }
            options.append(option)
        }
        var seen = Set<String>()
        searches = searches.filter { seen.insert($0).inserted }
        var text = ""
        for server in nameservers.prefix(3) { text += "nameserver \(server)\n" }
        if !searches.isEmpty { text += "search \(searches.prefix(32).joined(separator: " "))\n" }
        if !options.isEmpty { text += "options \(options.joined(separator: " "))\n" }
        return text
    }

    static func parseResolvConf(_ text: String) -> (nameservers: [String], searches: [String], options: [String]) {
        var result: (nameservers: [String], searches: [String], options: [String]) = ([], [], [])
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard let key = fields.first, !key.hasPrefix("#") else { continue }
            switch key {
            case "nameserver": result.nameservers += fields.dropFirst().prefix(1)
            case "search", "domain": result.searches = Array(fields.dropFirst())
            case "options": result.options += fields.dropFirst()
            default: break
            }
        }
        return result
    }
}
