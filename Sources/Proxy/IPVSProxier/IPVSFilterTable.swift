public import Iptables

/// The one small nf_tables table IPVS mode still needs (`ip node-agent-ipvs`, `ip6 node-agent-ipvs`), owned
/// entirely by the IPVS proxier. Its chains and rules are fixed; everything per Service is an element of a named
/// set, so the rule count stays constant however many Services there are:
///
/// - `nat-prerouting` / `nat-output` → `services`: marks for masquerade the connections to a cluster IP from
///   outside `--cluster-cidr` (set `cluster-ips`), to an external or load-balancer IP with policy Cluster
///   (`external-ips`) and to a NodePort with policy Cluster on a NodePort address (`nodeports`, `nodeport-ips`).
/// - `nat-postrouting` masquerades marked connections (IPVS forwards them with `net.ipv4.vs.conntrack=1`, so
///   netfilter NAT sees them) and hairpin connections, an endpoint reaching itself through its Service
///   (`hairpin-endpoints`).
/// - `filter-input` / `filter-output` → `endpoints-check`: new connections to a Service without any endpoint are
///   rejected at once (`no-endpoint-services`, `no-endpoint-nodeports`), and so are new TCP/UDP/SCTP connections to
///   a virtual IP on a port that is no Service's (`vips` minus `service-ips`; kube-proxy's KUBE-IPVS-FILTER), so
///   the node's own listeners are not exposed on every Service IP. The output chain runs at priority -110, before
///   IPVS's own output hook (-99), which would otherwise drop such packets silently.
///
/// Every rule carries a comment with a hash of its text: a full sync lists the table and rewrites only the chains
/// whose rules differ, so an unchanged table costs no write.
public enum IPVSFilterTable {
    /// Names of the sets.
    public enum Names {
        public static let clusterIPs = "cluster-ips"
        public static let externalIPs = "external-ips"
        public static let nodePorts = "nodeports"
        public static let nodePortIPs = "nodeport-ips"
        public static let serviceIPs = "service-ips"
        public static let vips = "vips"
        public static let noEndpointServices = "no-endpoint-services"
        public static let noEndpointNodePorts = "no-endpoint-nodeports"
        public static let hairpin = "hairpin-endpoints"
    }

    /// A chain and its rules.
    public struct ChainContents: Sendable, Hashable {
        public var base: Chain.Base?
        public var rules: [String]
    }

    /// The fixed part: chains with their rules, and set declarations.
    public struct Layout: Sendable, Hashable {
        public var chains: [String: ChainContents]
        public var sets: [String: NamedSet]
        /// Elements that come from the configuration, not from Services (`nodeport-ips`).
        public var staticElements: [String: Set<String>]
    }

    public static func layout(_ configuration: IPVSProxierConfiguration) -> Layout {
        typealias N = Names
        let ipv4 = configuration.family == .ipv4
        let ip = ipv4 ? "ip" : "ip6"
        let address = ipv4 ? "ipv4_addr" : "ipv6_addr"
        let mark = "0x" + String(1 << configuration.masqueradeBit, radix: 16)
        var chains: [String: ChainContents] = [:]
        chains["nat-prerouting"] = .init(base: .init(type: "nat", hook: "prerouting", priority: "dstnat"), rules: ["jump services"])
        chains["nat-output"] = .init(base: .init(type: "nat", hook: "output", priority: "-100"), rules: ["jump services"])
        var services: [String] = []
        if let cidr = configuration.clusterCIDR, cidr.family == configuration.family {
            services.append("\(ip) daddr . meta l4proto . th dport @\(N.clusterIPs) \(ip) saddr != \(cidr) jump mark-for-masquerade")
        }
        services.append("\(ip) daddr . meta l4proto . th dport @\(N.externalIPs) jump mark-for-masquerade")
        services.append("\(ip) daddr @\(N.nodePortIPs) meta l4proto . th dport @\(N.nodePorts) jump mark-for-masquerade")
        chains["services"] = .init(base: nil, rules: services)
        chains["mark-for-masquerade"] = .init(base: nil, rules: ["meta mark set meta mark or \(mark)"])
        chains["nat-postrouting"] = .init(
            base: .init(type: "nat", hook: "postrouting", priority: "srcnat"),
            rules: [
                "\(ip) saddr . \(ip) daddr @\(N.hairpin) masquerade",
                "meta mark & \(mark) == 0 return",
                "meta mark set meta mark xor \(mark)",
                "masquerade fully-random",
            ])
        chains["filter-input"] = .init(base: .init(type: "filter", hook: "input", priority: "-10"), rules: ["ct state new jump endpoints-check"])
        chains["filter-output"] = .init(base: .init(type: "filter", hook: "output", priority: "-110"), rules: ["ct state new jump endpoints-check"])
        chains["endpoints-check"] = .init(
            base: nil,
            rules: [
                "\(ip) daddr . meta l4proto . th dport @\(N.noEndpointServices) reject",
                "\(ip) daddr @\(N.nodePortIPs) meta l4proto . th dport @\(N.noEndpointNodePorts) reject",
                "\(ip) daddr @\(N.vips) meta l4proto { tcp, udp, sctp } \(ip) daddr . meta l4proto . th dport != @\(N.serviceIPs) reject",
            ])
        let serviceKey = "\(address) . inet_proto . inet_service"
        var sets: [String: NamedSet] = [:]
        for name in [N.clusterIPs, N.externalIPs, N.serviceIPs, N.noEndpointServices] { sets[name] = NamedSet(name, type: serviceKey) }
        for name in [N.nodePorts, N.noEndpointNodePorts] { sets[name] = NamedSet(name, type: "inet_proto . inet_service") }
        for name in [N.nodePortIPs, N.vips] { sets[name] = NamedSet(name, type: address) }
        sets[N.hairpin] = NamedSet(N.hairpin, type: "\(address) . \(address)")
        let nodeIPs = Set(configuration.nodePortAddresses.filter { $0.family == configuration.family }.map(\.text))
        return Layout(chains: chains, sets: sets, staticElements: [N.nodePortIPs: nodeIPs])
    }

    /// The most elements one transaction carries when a full sync splits its work (see ``split(_:)``).
    public static let elementsPerTransaction = 2000

    /// Splits a full sync's transaction: first everything but elements (declarations, chain rewrites, removals),
    /// then the element changes in transactions of at most ``elementsPerTransaction`` elements.
    ///
    /// Element-only transactions go to the kernel as one direct netlink batch, without libnftables' parser (tens
    /// of thousands of elements in seconds instead of minutes under emulation); a netlink datagram must stay below
    /// the socket's send buffer (about 200 KiB), hence the chunks. The table is consistent after each part: the
    /// sets exist before their elements arrive, and element changes are independent of each other.
    public static func split(_ transaction: Transaction) -> [Transaction] {
        var head = Transaction(family: transaction.family, table: transaction.table)
        var parts: [Transaction] = []
        var current = Transaction(family: transaction.family, table: transaction.table)
        var count = 0
        for command in transaction.commands {
            guard case .elements(let elements) = command.object else {
                head.append(command.verb, command.object)
                continue
            }
            var rest = elements.elements[...]
            while !rest.isEmpty {
                let take = min(rest.count, elementsPerTransaction - count)
                current.append(command.verb, .elements(Elements(setName: elements.setName, elements: Array(rest.prefix(take)))))
                rest = rest.dropFirst(take)
                count += take
                if count == elementsPerTransaction {
                    parts.append(current)
                    current = Transaction(family: transaction.family, table: transaction.table)
                    count = 0
                }
            }
        }
        if !current.isEmpty { parts.append(current) }
        return (head.isEmpty ? [] : [head]) + parts
    }

    /// The comment that identifies a rule's text (FNV-1a, 64 bits): what a full sync compares.
    public static func comment(for rule: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in rule.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "na-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// One transaction that makes the table hold exactly `layout` and `elements`, given what it holds now
    /// (`existing`, nil when absent). Empty when nothing differs.
    public static func fullSync(
        layout: Layout, elements: [String: Set<String>], existing: TableListing?, family: Family, table: String
    ) -> Transaction {
        var tx = Transaction(family: family, table: table)
        let wanted = elements.merging(layout.staticElements) { $0.union($1) }
        // A table whose declarations differ (another version's, or a hand edit) is rebuilt whole, atomically.
        var rebuild = existing == nil
        if let existing {
            for (name, set) in layout.sets {
                guard let listed = existing.sets[name] else { continue }
                if listed.type != set.type || listed.isMap { rebuild = true }
            }
            for (name, chain) in layout.chains {
                guard let listed = existing.chains[name] else { continue }
                if (listed.base == nil) != (chain.base == nil) || listed.base?.hook != chain.base?.hook || listed.base?.type != chain.base?.type {
                    rebuild = true
                }
            }
        }
        if rebuild {
            if existing != nil { tx.delete(.table) }
            tx.add(.table)
            for name in layout.sets.keys.sorted() { tx.add(.set(layout.sets[name]!)) }
            for name in layout.chains.keys.sorted() { tx.add(.chain(Chain(name, base: layout.chains[name]!.base))) }
            for name in layout.chains.keys.sorted() {
                for rule in layout.chains[name]!.rules { tx.add(.rule(Rule(chain: name, rule, comment: comment(for: rule)))) }
            }
            for name in wanted.keys.sorted() {
                for key in wanted[name]!.sorted() { tx.addElement(name, Element(key: key)) }
            }
            return tx
        }
        let existing = existing!
        // Declarations that are missing.
        for name in layout.sets.keys.sorted() where existing.sets[name] == nil { tx.add(.set(layout.sets[name]!)) }
        for name in layout.chains.keys.sorted() where existing.chains[name] == nil {
            tx.add(.chain(Chain(name, base: layout.chains[name]!.base)))
        }
        // Chains whose rules differ are rewritten; chains and sets that are not ours any more are removed.
        let stale = existing.chains.keys.filter { layout.chains[$0] == nil }.sorted()
        for name in stale { tx.flush(.chain(Chain(name))) }
        for name in layout.chains.keys.sorted() {
            let rules = layout.chains[name]!.rules
            let listed = existing.chains[name]?.rules.map { $0.comment ?? "" } ?? []
            guard listed != rules.map(comment(for:)) else { continue }
            if existing.chains[name] != nil && !listed.isEmpty { tx.flush(.chain(Chain(name))) }
            for rule in rules { tx.add(.rule(Rule(chain: name, rule, comment: comment(for: rule)))) }
        }
        for name in stale { tx.delete(.chain(Chain(name))) }
        for name in existing.sets.keys.sorted() where layout.sets[name] == nil {
            if existing.sets[name]!.isMap {
                tx.delete(.map(NamedMap(name, keyType: "", valueType: "")))
            } else {
                tx.delete(.set(NamedSet(name, type: "")))
            }
        }
        // Elements.
        for name in layout.sets.keys.sorted() {
            let have = Set(existing.sets[name]?.elements.keys ?? [:].keys)
            let want = wanted[name] ?? []
            for key in have.subtracting(want).sorted() { tx.deleteElement(name, key: key) }
            for key in want.subtracting(have).sorted() { tx.addElement(name, Element(key: key)) }
        }
        return tx
    }
}
