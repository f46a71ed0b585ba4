public import AgentJSON

/// The seam between the proxier and the kernel's nf_tables, shaped like knftables' `Interface`:
/// build a ``Transaction``, ``run(_:)`` it atomically, ``check(_:)`` it without applying, list a table back.
///
/// ``LibNftables`` is the real implementation over libnftables; `FakeNftables` (in NodeAgentTesting) keeps an
/// in-memory ruleset with the same semantics for unit tests.
public protocol Nftables: Sendable {
    /// Applies every command of `transaction` or none of them.
    /// - Throws: ``NftablesError`` with nft's message and the offending line when nft rejects it.
    func run(_ transaction: Transaction) throws

    /// Validates `transaction` against the kernel's current ruleset without applying anything (`nft --check`).
    /// - Throws: ``NftablesError`` exactly as ``run(_:)`` would.
    func check(_ transaction: Transaction) throws

    /// The full contents of table `name` (chains with rules, sets and maps with elements), or nil when the
    /// table does not exist.
    /// - Throws: ``NftablesError`` when listing or parsing fails.
    func list(family: Family, table name: String) throws -> TableListing?

    /// Only the names and declarations of the table's chains, sets and maps (no rules, no elements): the cheap
    /// read-back a full sync uses to find stale objects. Nil when the table does not exist.
    func listObjects(family: Family, table name: String) throws -> TableListing?
}

/// A table as read back from the kernel.
public struct TableListing: Sendable, Hashable {
    public var family: Family
    public var name: String
    public var chains: [String: ListedChain] = [:]
    /// Sets and maps (a map has a ``ListedSet/valueType``).
    public var sets: [String: ListedSet] = [:]

    public init(family: Family, name: String) {
        self.family = family
        self.name = name
    }

    /// Number of rules across all chains.
    public var ruleCount: Int { chains.values.reduce(0) { $0 + $1.rules.count } }
}

/// A chain read back: its hook (for base chains) and rules in order.
public struct ListedChain: Sendable, Hashable {
    public var name: String
    public var base: Chain.Base?
    public var rules: [ListedRule] = []

    public init(name: String, base: Chain.Base? = nil, rules: [ListedRule] = []) {
        self.name = name
        self.base = base
        self.rules = rules
    }
}

/// A rule read back. The kernel returns expressions, not text: ``expressions`` keeps nft's JSON as is;
/// ``text`` is set only by implementations that keep rule text (the fake).
public struct ListedRule: Sendable, Hashable {
    public var handle: Int
    public var comment: String?
    public var expressions: [JSONValue]
    public var text: String?

    public init(handle: Int, comment: String? = nil, expressions: [JSONValue] = [], text: String? = nil) {
        self.handle = handle
        self.comment = comment
        self.expressions = expressions
        self.text = text
    }
}

/// A set or map read back, with its elements rendered in nft syntax (`10.0.0.1 . tcp . 80`, `goto chain`).
public struct ListedSet: Sendable, Hashable {
    public var name: String
    /// The key type (`ipv4_addr . inet_proto . inet_service`).
    public var type: String
    /// The value type for maps (`verdict`), nil for sets.
    public var valueType: String?
    public var flags: [String]
    /// Element key → value (empty string for set elements).
    public var elements: [String: String]

    public init(name: String, type: String, valueType: String? = nil, flags: [String] = [], elements: [String: String] = [:]) {
        self.name = name
        self.type = type
        self.valueType = valueType
        self.flags = flags
        self.elements = elements
    }

    public var isMap: Bool { valueType != nil }
}
