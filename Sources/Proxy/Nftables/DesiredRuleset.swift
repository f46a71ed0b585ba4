public import Iptables

/// The complete contents the proxier wants in its table: a pure value computed from Services and endpoints,
/// compared with the last applied one to emit only the difference.
public struct DesiredRuleset: Sendable, Hashable {
    public struct ChainContents: Sendable, Hashable {
        public var base: Chain.Base?
        public var rules: [String]
    }

    public var chains: [String: ChainContents] = [:]
    /// Named sets; those with the `dynamic` flag are filled by the data path (affinity), never by the proxier.
    public var sets: [String: NamedSet] = [:]
    public var maps: [String: NamedMap] = [:]
    /// Elements of the non-dynamic sets and of the maps: key → value (empty for set elements).
    public var elements: [String: [String: String]] = [:]

    /// Sets whose elements the kernel writes (ClientIP affinity).
    public var dynamicSets: Set<String> { Set(sets.values.filter { $0.flags.contains("dynamic") }.map(\.name)) }

    public var ruleCount: Int { chains.values.reduce(0) { $0 + $1.rules.count } }
    public var elementCount: Int { elements.values.reduce(0) { $0 + $1.count } }
}

/// Names of the table's fixed chains, sets and maps.
public enum RulesetNames {
    public static let services = "services"
    public static let serviceIPs = "service-ips"
    public static let serviceNodePorts = "service-nodeports"
    public static let noEndpointServices = "no-endpoint-services"
    public static let noEndpointNodePorts = "no-endpoint-nodeports"
    public static let nodePortIPs = "nodeport-ips"
    public static let hairpin = "hairpin-endpoints"
    public static let markForMasquerade = "mark-for-masquerade"
    public static let masquerading = "masquerading"
    public static let endpointsCheck = "service-endpoints-check"
    public static let reject = "reject-chain"
    /// Endpoint slots of the Service ports with slots `64 k ..< 64 (k + 1)`, one map per protocol and group
    /// (`endpoints-tcp-0`, ...; see ``RulesetBuilder/slotsPerEndpointMap`` for why not one map):
    /// `numgen random mod N offset BASE` picks a slot, the map turns it into `address . port`. Per protocol because
    /// the map is declared with `typeof … tcp dport`: with `th dport`, nft 1.0.6 refuses rules that use a map it
    /// finds in the kernel ("conflicting protocols specified: tcp vs. th").
    public static func endpoints(_ proto: TransportProtocol, slot: Int) -> String {
        "endpoints-\(proto.rawValue)-\(slot / RulesetBuilder.slotsPerEndpointMap)"
    }

    /// `svc-NAMESPACE/NAME/PROTO[/PORTNAME]`: the chain that picks an endpoint for cluster traffic.
    public static func serviceChain(_ name: ServicePortName) -> String { "svc-" + base(name) }
    /// `ext-...`: the chain for NodePort, external and load-balancer traffic.
    public static func externalChain(_ name: ServicePortName) -> String { "ext-" + base(name) }
    /// `ep-...__IP/PORT`: one endpoint's chain (ClientIP affinity only).
    public static func endpointChain(_ name: ServicePortName, _ endpoint: Endpoint) -> String {
        "ep-" + base(name) + "__" + endpointPart(endpoint)
    }
    /// `aff-...__IP/PORT`: one endpoint's affinity set of client addresses.
    public static func affinitySet(_ name: ServicePortName, _ endpoint: Endpoint) -> String {
        "aff-" + base(name) + "__" + endpointPart(endpoint)
    }

    static func base(_ name: ServicePortName) -> String {
        var text = "\(name.service.namespace)/\(name.service.name)/\(name.protocol.rawValue)"
        if !name.port.isEmpty { text += "/\(name.port)" }
        return text
    }

    /// nft identifiers allow letters, digits, `/`, `-`, `_` and `.`; IPv6 colons become `_`.
    static func endpointPart(_ endpoint: Endpoint) -> String {
        endpoint.ip.text.map { $0 == ":" ? "_" : $0 }.map(String.init).joined() + "/\(endpoint.port)"
    }
}
