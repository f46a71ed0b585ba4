import Iptables

/// Computes the ``DesiredRuleset`` of one IP family from the Service and endpoint maps.
///
/// Layout (table `ip node-agent` / `ip6 node-agent`):
/// - `nat-prerouting`/`nat-output` jump to `services`, which looks up `daddr . l4proto . dport` in the verdict
///   map `service-ips` (cluster, external and load-balancer IPs) and, for the node's NodePort addresses,
///   `l4proto . dport` in `service-nodeports`: one lookup whatever the number of Services.
/// - Each Service port has a chain `svc-…` that picks an endpoint with `numgen random mod N` and DNATs in one
///   rule (`dnat to numgen random mod N offset SLOT map @endpoints-PROTO-GROUP`, a map shared by 64 ports); with
///   ClientIP affinity, per-endpoint chains `ep-…` remember the client in a dynamic set `aff-…` with the
///   Service's timeout.
/// - External traffic (`ext-…`) is marked for masquerade (policy Cluster) or kept on local endpoints (Local).
/// - `filter-input/forward/output` send new connections to a Service without endpoints to `reject-chain`
///   (immediate refusal, not a timeout: a TCP reset, or ICMP port-unreachable for other protocols) through the
///   maps `no-endpoint-services` / `no-endpoint-nodeports`.
/// - `nat-postrouting` masquerades marked packets and hairpin connections (an endpoint reaching itself).
public enum RulesetBuilder {
    /// The whole ruleset: the fixed part plus every Service port's fragment.
    public static func build(
        configuration: NftablesProxierConfiguration,
        services: ServicePortMap,
        endpoints: EndpointsMap,
        nodeZone: String? = nil
    ) -> DesiredRuleset {
        var ruleset = base(configuration: configuration)
        for (index, portName) in services.keys.sorted().enumerated() {
            let fragment = fragment(
                for: portName, port: services[portName]!, endpoints: endpoints[portName] ?? [], slot: index,
                configuration: configuration, nodeZone: nodeZone
            )
            ruleset.merge(fragment)
        }
        return ruleset
    }

    /// The chains, maps and sets every table has, whatever the Services.
    public static func base(configuration: NftablesProxierConfiguration) -> DesiredRuleset {
        var ruleset = DesiredRuleset()
        let family = configuration.family
        let ip = family == .ipv4 ? "ip" : "ip6"
        let addressType = family == .ipv4 ? "ipv4_addr" : "ipv6_addr"
        let mark = "0x" + String(1 << configuration.masqueradeBit, radix: 16)
        typealias N = RulesetNames

        func chain(_ name: String, _ base: Chain.Base? = nil, _ rules: [String]) {
            ruleset.chains[name] = .init(base: base, rules: rules)
        }
        chain("nat-prerouting", .init(type: "nat", hook: "prerouting", priority: "dstnat"), ["jump \(N.services)"])
        chain("nat-output", .init(type: "nat", hook: "output", priority: "-100"), ["jump \(N.services)"])
        chain("nat-postrouting", .init(type: "nat", hook: "postrouting", priority: "srcnat"), ["jump \(N.masquerading)"])
        for hook in ["input", "forward", "output"] {
            chain("filter-\(hook)", .init(type: "filter", hook: hook, priority: "-10"), ["ct state new jump \(N.endpointsCheck)"])
        }
        chain(N.endpointsCheck, nil, [
            "\(ip) daddr . meta l4proto . th dport vmap @\(N.noEndpointServices)",
            "\(ip) daddr @\(N.nodePortIPs) meta l4proto . th dport vmap @\(N.noEndpointNodePorts)",
        ])
        // TCP gets a reset, everything else ICMP port-unreachable. (kube-proxy rejects TCP with ICMP too, but the
        // kernel rate-limits ICMP errors per client host, a new peer's first one included, so a client that had
        // just been redirected could wait for a timeout instead of being refused at once; a reset is not limited.)
        chain(N.reject, nil, ["meta l4proto tcp reject with tcp reset", "reject"])
        chain(N.services, nil, [
            "\(ip) daddr . meta l4proto . th dport vmap @\(N.serviceIPs)",
            "\(ip) daddr @\(N.nodePortIPs) meta l4proto . th dport vmap @\(N.serviceNodePorts)",
        ])
        chain(N.markForMasquerade, nil, ["meta mark set meta mark or \(mark)"])
        chain(N.masquerading, nil, [
            "ct status dnat \(ip) saddr . \(ip) daddr @\(N.hairpin) jump \(N.markForMasquerade)",
            "meta mark & \(mark) == 0 return",
            "meta mark set meta mark xor \(mark)",
            "masquerade fully-random",
        ])
        let serviceKey = "\(addressType) . inet_proto . inet_service"
        ruleset.maps[N.serviceIPs] = NamedMap(N.serviceIPs, keyType: serviceKey, valueType: "verdict")
        ruleset.maps[N.noEndpointServices] = NamedMap(N.noEndpointServices, keyType: serviceKey, valueType: "verdict")
        ruleset.maps[N.serviceNodePorts] = NamedMap(N.serviceNodePorts, keyType: "inet_proto . inet_service", valueType: "verdict")
        ruleset.maps[N.noEndpointNodePorts] = NamedMap(N.noEndpointNodePorts, keyType: "inet_proto . inet_service", valueType: "verdict")
        ruleset.sets[N.nodePortIPs] = NamedSet(N.nodePortIPs, type: addressType)
        ruleset.sets[N.hairpin] = NamedSet(N.hairpin, type: "\(addressType) . \(addressType)")
        for name in [N.serviceIPs, N.noEndpointServices, N.serviceNodePorts, N.noEndpointNodePorts, N.nodePortIPs, N.hairpin] {
            ruleset.elements[name] = [:]
        }
        for address in configuration.nodePortAddresses where address.family == family {
            ruleset.elements[N.nodePortIPs]![address.text] = ""
        }
        return ruleset
    }

    /// The most Service ports one table serves (a port's endpoint slots are `slot << 16 ...`, 32 bits in all).
    public static let maxSlots = 1 << 16
    /// Service ports whose endpoint slots share one map (`endpoints-tcp-0` serves slots 0–63, and so on).
    ///
    /// Why not one map for all: every rule that looks a map up binds to it, and the kernel checks each element it
    /// adds against every binding of the map (`nft_add_set_elem`) and walks every element of the map for each
    /// rule it binds (`nf_tables_bind_set`). One map used by N Service ports with 10 endpoints each therefore cost
    /// about 10 N² steps per full sync: 14 of the 16 s the kernel spent on 10,000 Services. Groups of 64 make it
    /// linear (1.9 s for the same transaction; groups of 16 or 256 were no faster), and an endpoint change
    /// checks 64 bindings instead of 10,000.
    public static let slotsPerEndpointMap = 64
    /// The most endpoints one Service port spreads traffic over.
    public static let maxEndpointsPerPort = 1 << 16

    /// What one Service port adds to the table: its chains, affinity sets, and map elements (hairpin set
    /// elements included; they are shared between Services that share an endpoint, see ``DesiredRuleset/merge(_:)``),
    /// and the declaration of its endpoint map, which it shares with the other ports of its slot group.
    ///
    /// `slot` (below ``maxSlots``) gives the port the endpoint-map keys `slot << 16 ..< (slot + 1) << 16`: its
    /// DNAT rule is `dnat to numgen random mod N offset (slot << 16) map @endpoints-PROTO-GROUP`, one rule and no anonymous
    /// set per Service (the kernel creates and binds anonymous sets in time linear in their number, which made a
    /// transaction with one per Service quadratic).
    public static func fragment(
        for portName: ServicePortName,
        port: ServicePort,
        endpoints: [Endpoint],
        slot: Int,
        configuration: NftablesProxierConfiguration,
        nodeZone: String?
    ) -> DesiredRuleset {
        var ruleset = DesiredRuleset()
        let family = configuration.family
        let ip = family == .ipv4 ? "ip" : "ip6"
        let addressType = family == .ipv4 ? "ipv4_addr" : "ipv6_addr"
        typealias N = RulesetNames
        func chain(_ name: String, _ rules: [String]) {
            ruleset.chains[name] = .init(base: nil, rules: rules)
        }
        func element(_ set: String, _ key: String, _ value: String) {
            ruleset.elements[set, default: [:]][key] = value
        }
        let clusterCIDR = configuration.clusterCIDR.flatMap { $0.family == family ? $0 : nil }
        let selection = EndpointSelection(endpoints: endpoints, port: port, nodeZone: nodeZone)
        let proto = port.protocol.rawValue
        let noEndpointVerdict = selection.hasAnyEndpoints ? "drop" : "goto \(N.reject)"

        var ranges: [[Endpoint]: Int] = [:]
        var nextKey = slot << 16
        let endpointMap = N.endpoints(port.protocol, slot: slot)
        /// Rules that pick one of `chosen` and DNAT to it, each prefixed with `match`.
        func dispatch(_ allChosen: [Endpoint], match: String = "") -> [String] {
            let chosen = Array(allChosen.prefix(maxEndpointsPerPort / 2))
            for endpoint in chosen { element(N.hairpin, "\(endpoint.ip.text) . \(endpoint.ip.text)", "") }
            if let sticky = port.stickySeconds {
                var rules: [String] = []
                for endpoint in chosen {
                    let set = N.affinitySet(portName, endpoint)
                    let endpointChain = N.endpointChain(portName, endpoint)
                    ruleset.sets[set] = NamedSet(set, type: addressType, flags: ["dynamic", "timeout"], timeout: .seconds(sticky))
                    chain(endpointChain, [
                        "update @\(set) { \(ip) saddr }",
                        "meta l4proto \(proto) dnat to \(endpoint)",
                    ])
                    rules.append("\(match)\(ip) saddr @\(set) goto \(endpointChain)")
                }
                if chosen.count == 1 {
                    rules.append("\(match)goto \(N.endpointChain(portName, chosen[0]))")
                } else {
                    let entries = chosen.enumerated().map { "\($0.offset) : goto \(N.endpointChain(portName, $0.element))" }
                    rules.append("\(match)numgen random mod \(chosen.count) vmap { \(entries.joined(separator: ", ")) }")
                }
                return rules
            }
            if chosen.count == 1 { return ["\(match)meta l4proto \(proto) dnat to \(chosen[0])"] }
            let first: Int
            if let known = ranges[chosen] {
                first = known
            } else {
                first = nextKey
                ranges[chosen] = first
                nextKey += chosen.count
                for (offset, endpoint) in chosen.enumerated() {
                    element(endpointMap, "\(first + offset)", "\(endpoint.ip.text) . \(endpoint.port)")
                }
            }
            ruleset.maps[endpointMap] = NamedMap(
                endpointMap, keyType: "integer", valueType: "\(addressType) . inet_service", typeof: "numgen random mod 2 : \(ip) daddr . \(proto) dport"
            )
            return ["\(match)meta l4proto \(proto) dnat \(ip) addr . port to numgen random mod \(chosen.count) offset \(first) map @\(endpointMap)"]
        }

        // Cluster IP.
        let clusterKey = "\(port.clusterIP.text) . \(proto) . \(port.port)"
        let internalEndpoints = port.internalPolicyLocal ? selection.localEndpoints : selection.clusterEndpoints
        if internalEndpoints.isEmpty {
            element(N.noEndpointServices, clusterKey, noEndpointVerdict)
        } else {
            let serviceChain = N.serviceChain(portName)
            var rules: [String] = []
            if configuration.masqueradeAll {
                rules.append("\(ip) daddr \(port.clusterIP.text) \(proto) dport \(port.port) jump \(N.markForMasquerade)")
            } else if let clusterCIDR {
                rules.append("\(ip) daddr \(port.clusterIP.text) \(proto) dport \(port.port) \(ip) saddr != \(clusterCIDR) jump \(N.markForMasquerade)")
            }
            chain(serviceChain, rules + dispatch(internalEndpoints))
            element(N.serviceIPs, clusterKey, "goto \(serviceChain)")
        }

        // NodePort, external IPs, load-balancer IPs.
        guard port.externallyAccessible else { return ruleset }
        var externalRules: [String]?
        if !port.externalPolicyLocal {
            if !selection.clusterEndpoints.isEmpty {
                externalRules = ["jump \(N.markForMasquerade)"] + dispatch(selection.clusterEndpoints)
            }
        } else if selection.hasAnyEndpoints {
            var rules: [String] = []
            if !selection.clusterEndpoints.isEmpty {
                // Traffic from the node itself, and from pods, is not "external": it may use any endpoint.
                rules.append("fib saddr type local jump \(N.markForMasquerade)")
                rules += dispatch(selection.clusterEndpoints, match: "fib saddr type local ")
                if let clusterCIDR { rules += dispatch(selection.clusterEndpoints, match: "\(ip) saddr \(clusterCIDR) ") }
            }
            rules += selection.localEndpoints.isEmpty ? ["drop"] : dispatch(selection.localEndpoints)
            externalRules = rules
        }
        let externalKeys = Set((port.externalIPs + port.loadBalancerVIPs).map { "\($0.text) . \(proto) . \(port.port)" }).sorted()
        let nodePortKey = port.nodePort > 0 ? "\(proto) . \(port.nodePort)" : nil
        if let externalRules {
            let externalChain = N.externalChain(portName)
            chain(externalChain, externalRules)
            for key in externalKeys { element(N.serviceIPs, key, "goto \(externalChain)") }
            if let nodePortKey { element(N.serviceNodePorts, nodePortKey, "goto \(externalChain)") }
        } else {
            for key in externalKeys { element(N.noEndpointServices, key, noEndpointVerdict) }
            if let nodePortKey { element(N.noEndpointNodePorts, nodePortKey, noEndpointVerdict) }
        }
        return ruleset
    }
}

extension DesiredRuleset {
    /// Adds `fragment`'s chains, sets and elements (a later fragment wins a key collision).
    public mutating func merge(_ fragment: DesiredRuleset) {
        chains.merge(fragment.chains) { _, new in new }
        sets.merge(fragment.sets) { _, new in new }
        maps.merge(fragment.maps) { _, new in new }
        for (name, entries) in fragment.elements {
            elements[name, default: [:]].merge(entries) { _, new in new }
        }
    }
}
