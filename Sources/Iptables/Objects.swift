/// One nf_tables object a transaction can add, flush or delete, named inside the transaction's table.
///
/// The objects are plain values rendered to `nft` syntax; nothing here knows about Kubernetes.
public enum Object: Sendable, Hashable {
    case table
    case chain(Chain)
    case rule(Rule)
    case set(NamedSet)
    case map(NamedMap)
    case elements(Elements)

    /// The object's name in `nft` listings (`table` for the table itself).
    public var name: String {
        switch self {
        case .table: "table"
        case .chain(let chain): chain.name
        case .rule(let rule): rule.chain
        case .set(let set): set.name
        case .map(let map): map.name
        case .elements(let elements): elements.setName
        }
    }
}

/// A chain: a regular chain (jump/goto target) or a base chain attached to a netfilter hook.
public struct Chain: Sendable, Hashable {
    /// The hook of a base chain, with its type and priority as `nft` spells them.
    public struct Base: Sendable, Hashable {
        /// `filter`, `nat` or `route`.
        public var type: String
        /// `prerouting`, `input`, `forward`, `output`, `postrouting`.
        public var hook: String
        /// A number or a named priority with an offset, e.g. `dstnat`, `dstnat - 10`, `-110`.
        public var priority: String
        /// `accept` or `drop`; nil keeps nft's default (accept).
        public var policy: String?

        public init(type: String, hook: String, priority: String, policy: String? = nil) {
            self.type = type
            self.hook = hook
            self.priority = priority
            self.policy = policy
        }
    }

    public var name: String
    public var base: Base?
    public var comment: String?

    public init(_ name: String, base: Base? = nil, comment: String? = nil) {
        self.name = name
        self.base = base
        self.comment = comment
    }
}

/// A rule in a chain, written in `nft` rule syntax (`ip daddr 10.0.0.1 tcp dport 80 accept`).
public struct Rule: Sendable, Hashable {
    public var chain: String
    /// The rule's expressions and statements; empty for a `delete` by handle.
    public var rule: String
    public var comment: String?
    /// The kernel handle, for `delete`/`replace`, and for `insert`/`add` relative to another rule.
    public var handle: Int?

    public init(chain: String, _ rule: String, comment: String? = nil, handle: Int? = nil) {
        self.chain = chain
        self.rule = rule
        self.comment = comment
        self.handle = handle
    }
}

/// A named set: `type` (or `typeof`), optional flags and default timeout.
public struct NamedSet: Sendable, Hashable {
    public var name: String
    /// The key type, e.g. `ipv4_addr` or `ipv4_addr . inet_proto . inet_service`.
    public var type: String
    /// `constant`, `interval`, `timeout`, `dynamic`.
    public var flags: [String]
    /// Default element lifetime.
    public var timeout: Duration?
    public var comment: String?

    public init(_ name: String, type: String, flags: [String] = [], timeout: Duration? = nil, comment: String? = nil) {
        self.name = name
        self.type = type
        self.flags = flags
        self.timeout = timeout
        self.comment = comment
    }
}

/// A named map: key type to value type (`verdict` for a verdict map).
public struct NamedMap: Sendable, Hashable {
    public var name: String
    /// The key type, e.g. `ipv4_addr . inet_proto . inet_service`.
    public var keyType: String
    /// The value type, e.g. `verdict` or `ipv4_addr . inet_service`.
    public var valueType: String
    public var flags: [String]
    public var comment: String?
    /// A `typeof` declaration (`numgen random mod 2 : ip daddr . th dport`) used instead of `type` when the key
    /// has no named type (a `numgen` value is a bare integer); ``keyType``/``valueType`` then say what nft
    /// lists back (`integer`, `ipv4_addr . inet_service`).
    public var typeof: String?

    public init(_ name: String, keyType: String, valueType: String, flags: [String] = [], comment: String? = nil, typeof: String? = nil) {
        self.name = name
        self.keyType = keyType
        self.valueType = valueType
        self.flags = flags
        self.comment = comment
        self.typeof = typeof
    }
}

/// One element of a set or map: a key (concatenations joined with ` . `) and, for maps, a value.
public struct Element: Sendable, Hashable {
    public var key: String
    /// The map value (`goto chain-name`, `10.0.0.1 . 8080`); nil for set elements and for deletes.
    public var value: String?
    public var comment: String?

    public init(key: String, value: String? = nil, comment: String? = nil) {
        self.key = key
        self.value = value
        self.comment = comment
    }
}

/// Elements of one set or map, added or deleted together in one command.
public struct Elements: Sendable, Hashable {
    public var setName: String
    public var elements: [Element]

    public init(setName: String, elements: [Element]) {
        self.setName = setName
        self.elements = elements
    }
}
