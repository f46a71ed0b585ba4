public import Iptables
import Synchronization

/// An in-memory nf_tables with ``Nftables``' contract, for unit tests of the logic above it (as knftables' `Fake`).
///
/// It applies transactions atomically on a copy and refuses what the kernel refuses, with the kernel's messages:
/// a missing table, chain, set or element (`No such file or directory`), a `create` of an existing object
/// (`File exists`), deleting a chain or set something still refers to, or re-adding a map key with another value
/// (`Device or resource busy`), a rule that jumps to a missing chain or looks up a missing set.
/// Rules are kept as text, so tests compare exactly what the proxier wrote.
public final class FakeNftables: Nftables, Sendable {
    /// One table's contents.
    public struct Table: Sendable, Hashable {
        public var chains: [String: FakeChain] = [:]
        public var sets: [String: FakeSet] = [:]
    }

    public struct FakeChain: Sendable, Hashable {
        public var base: Chain.Base?
        public var rules: [(handle: Int, text: String)] {
            get { storage.map { ($0.handle, $0.text) } }
            set { storage = newValue.map { Stored(handle: $0.handle, text: $0.text) } }
        }
        var storage: [Stored] = []
        struct Stored: Sendable, Hashable {
            var handle: Int
            var text: String
        }
        /// The rules' text in order.
        public var ruleTexts: [String] { storage.map(\.text) }
    }

    public struct FakeSet: Sendable, Hashable {
        public var type: String
        public var valueType: String?
        public var flags: [String]
        public var elements: [String: String] = [:]
    }

    private struct State: Sendable {
        var tables: [String: Table] = [:]
        var nextHandle = 1
        var transactions: [Transaction] = []
        var failNext: [NftablesError] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Every transaction ``run(_:)`` applied successfully, oldest first.
    public var transactions: [Transaction] { state.withLock { $0.transactions } }

    /// The table `family name`, if it exists.
    public func table(_ family: Family, _ name: String) -> Table? {
        state.withLock { $0.tables[Self.key(family, name)] }
    }

    /// Makes the next `run` fail with `error` (after validation, before anything applies).
    public func failNextRun(with error: NftablesError) {
        state.withLock { $0.failNext.append(error) }
    }

    /// Forgets the recorded transactions.
    public func resetTransactions() {
        state.withLock { $0.transactions.removeAll() }
    }

    public func run(_ transaction: Transaction) throws {
        try state.withLock { state in
            var copy = state
            try Self.apply(transaction, to: &copy, operation: "run")
            if !state.failNext.isEmpty {
                throw state.failNext.removeFirst()
            }
            copy.transactions.append(transaction)
            copy.failNext = state.failNext
            state = copy
        }
    }

    public func check(_ transaction: Transaction) throws {
        try state.withLock { state in
            var copy = state
            try Self.apply(transaction, to: &copy, operation: "check")
        }
    }

    public func list(family: Family, table name: String) throws -> TableListing? {
        guard let table = table(family, name) else { return nil }
        var listing = TableListing(family: family, name: name)
        for (chainName, chain) in table.chains {
            listing.chains[chainName] = ListedChain(
                name: chainName,
                base: chain.base,
                rules: chain.storage.map { ListedRule(handle: $0.handle, text: $0.text) }
            )
        }
        for (setName, set) in table.sets {
            listing.sets[setName] = ListedSet(name: setName, type: set.type, valueType: set.valueType, flags: set.flags, elements: set.elements)
        }
        return listing
    }

    public func listObjects(family: Family, table name: String) throws -> TableListing? {
        guard var listing = try list(family: family, table: name) else { return nil }
        for key in listing.chains.keys { listing.chains[key]?.rules = [] }
        for key in listing.sets.keys { listing.sets[key]?.elements = [:] }
        return listing
    }

    /// A stable text dump of table `family name`, like `nft list table` (sorted, for golden comparisons).
    public func dump(_ family: Family, _ name: String) -> String {
        guard let table = table(family, name) else { return "" }
        var lines = ["table \(family.rawValue) \(name)"]
        for setName in table.sets.keys.sorted() {
            let set = table.sets[setName]!
            let kind = set.valueType == nil ? "set" : "map"
            lines.append("  \(kind) \(setName)")
            for key in set.elements.keys.sorted() {
                let value = set.elements[key]!
                lines.append(value.isEmpty ? "    \(key)" : "    \(key) : \(value)")
            }
        }
        for chainName in table.chains.keys.sorted() {
            lines.append("  chain \(chainName)")
            for rule in table.chains[chainName]!.ruleTexts { lines.append("    \(rule)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - Semantics

    private static func key(_ family: Family, _ name: String) -> String { "\(family.rawValue) \(name)" }

    private static func apply(_ transaction: Transaction, to state: inout State, operation: String) throws {
        let tableKey = key(transaction.family, transaction.table)
        for (index, command) in transaction.commands.enumerated() {
            func fail(_ message: String) -> NftablesError {
                .rejected(operation, message: message, line: index + 1, command: transaction.line(index))
            }
            let notFound = "Could not process rule: No such file or directory"
            let exists = "Could not process rule: File exists"
            let busy = "Could not process rule: Device or resource busy"

            if case .table = command.object {
                switch command.verb {
                case .add: if state.tables[tableKey] == nil { state.tables[tableKey] = Table() }
                case .create:
                    guard state.tables[tableKey] == nil else { throw fail(exists) }
                    state.tables[tableKey] = Table()
                case .delete:
                    guard state.tables.removeValue(forKey: tableKey) != nil else { throw fail(notFound) }
                case .flush:
                    guard var table = state.tables[tableKey] else { throw fail(notFound) }
                    for name in table.chains.keys { table.chains[name]?.storage = [] }
                    for name in table.sets.keys { table.sets[name]?.elements = [:] }
                    state.tables[tableKey] = table
                case .insert, .replace: throw fail("syntax error, unexpected \(command.verb.rawValue)")
                }
                continue
            }
            // Taken out of the dictionary so that mutating it does not copy it (one copy per command would make
            // large transactions quadratic); put back after the command.
            guard var table = state.tables.removeValue(forKey: tableKey) else { throw fail(notFound) }
            defer { state.tables[tableKey] = table }
            switch (command.verb, command.object) {
            case (.add, .chain(let chain)), (.create, .chain(let chain)):
                if table.chains[chain.name] != nil {
                    if command.verb == .create { throw fail(exists) }
                } else {
                    table.chains[chain.name] = FakeChain(base: chain.base)
                }
            case (.flush, .chain(let chain)):
                guard table.chains[chain.name] != nil else { throw fail(notFound) }
                table.chains[chain.name]?.storage = []
            case (.delete, .chain(let chain)):
                guard let existing = table.chains[chain.name] else { throw fail(notFound) }
                guard existing.storage.isEmpty, !references(table, chain: chain.name) else { throw fail(busy) }
                table.chains.removeValue(forKey: chain.name)
            case (.add, .rule(let rule)), (.insert, .rule(let rule)), (.replace, .rule(let rule)):
                guard table.chains[rule.chain] != nil else { throw fail(notFound) }
                for target in targets(of: rule.rule) where table.chains[target] == nil { throw fail(notFound) }
                for set in setReferences(of: rule.rule) where table.sets[set] == nil { throw fail(notFound) }
                var text = rule.rule
                if let comment = rule.comment { text += " comment \"\(comment)\"" }
                let stored = FakeChain.Stored(handle: state.nextHandle, text: text)
                state.nextHandle += 1
                var storage = table.chains[rule.chain]!.storage
                switch command.verb {
                case .add:
                    if let handle = rule.handle {
                        guard let at = storage.firstIndex(where: { $0.handle == handle }) else { throw fail(notFound) }
                        storage.insert(stored, at: at + 1)
                    } else {
                        storage.append(stored)
                    }
                case .insert:
                    if let handle = rule.handle {
                        guard let at = storage.firstIndex(where: { $0.handle == handle }) else { throw fail(notFound) }
                        storage.insert(stored, at: at)
                    } else {
                        storage.insert(stored, at: 0)
                    }
                default:
                    guard let handle = rule.handle, let at = storage.firstIndex(where: { $0.handle == handle }) else { throw fail(notFound) }
                    storage[at] = FakeChain.Stored(handle: handle, text: text)
                }
                table.chains[rule.chain]!.storage = storage
            case (.delete, .rule(let rule)):
                guard let handle = rule.handle, let at = table.chains[rule.chain]?.storage.firstIndex(where: { $0.handle == handle }) else {
                    throw fail(notFound)
                }
                table.chains[rule.chain]!.storage.remove(at: at)
            case (.add, .set(let set)), (.create, .set(let set)):
                if let existing = table.sets[set.name] {
                    if command.verb == .create { throw fail(exists) }
                    guard existing.type == set.type, existing.valueType == nil else { throw fail(exists) }
                } else {
                    table.sets[set.name] = FakeSet(type: set.type, valueType: nil, flags: set.flags)
                }
            case (.add, .map(let map)), (.create, .map(let map)):
                if let existing = table.sets[map.name] {
                    if command.verb == .create { throw fail(exists) }
                    guard existing.type == map.keyType, existing.valueType == map.valueType else { throw fail(exists) }
                } else {
                    table.sets[map.name] = FakeSet(type: map.keyType, valueType: map.valueType, flags: map.flags)
                }
            case (.flush, .set(let set)):
                guard table.sets[set.name] != nil else { throw fail(notFound) }
                table.sets[set.name]?.elements = [:]
            case (.flush, .map(let map)):
                guard table.sets[map.name] != nil else { throw fail(notFound) }
                table.sets[map.name]?.elements = [:]
            case (.delete, .set(let set)):
                guard table.sets[set.name] != nil else { throw fail(notFound) }
                guard !table.chains.values.contains(where: { $0.storage.contains { setReferences(of: $0.text).contains(set.name) } }) else {
                    throw fail(busy)
                }
                table.sets.removeValue(forKey: set.name)
            case (.delete, .map(let map)):
                guard table.sets[map.name] != nil else { throw fail(notFound) }
                guard !table.chains.values.contains(where: { $0.storage.contains { setReferences(of: $0.text).contains(map.name) } }) else {
                    throw fail(busy)
                }
                table.sets.removeValue(forKey: map.name)
            case (.add, .elements(let elements)), (.create, .elements(let elements)):
                guard var set = table.sets[elements.setName] else { throw fail(notFound) }
                for element in elements.elements {
                    let value = element.value ?? ""
                    if set.valueType != nil && element.value == nil { throw fail("map element needs a value") }
                    for target in targets(of: value) where table.chains[target] == nil { throw fail(notFound) }
                    if let existing = set.elements[element.key] {
                        if command.verb == .create { throw fail(exists) }
                        if existing != value { throw fail(busy) }
                    }
                    set.elements[element.key] = value
                }
                table.sets[elements.setName] = set
            case (.delete, .elements(let elements)):
                guard var set = table.sets[elements.setName] else { throw fail(notFound) }
                for element in elements.elements {
                    guard set.elements.removeValue(forKey: element.key) != nil else { throw fail(notFound) }
                }
                table.sets[elements.setName] = set
            default:
                throw fail("syntax error, unexpected \(command.verb.rawValue)")
            }
        }
    }

    /// Chains named after `jump`/`goto` in `text`.
    static func targets(of text: String) -> [String] {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "{" || $0 == "}" }).map(String.init)
        var result: [String] = []
        for (index, word) in words.enumerated() where (word == "jump" || word == "goto") && index + 1 < words.count {
            result.append(words[index + 1])
        }
        return result
    }

    /// Sets named as `@name` in `text`.
    static func setReferences(of text: String) -> [String] {
        text.split(whereSeparator: { $0 == " " || $0 == "{" || $0 == "}" }).compactMap { word in
            word.hasPrefix("@") ? String(word.dropFirst()) : nil
        }
    }

    private static func references(_ table: Table, chain: String) -> Bool {
        for other in table.chains.values where other.storage.contains(where: { targets(of: $0.text).contains(chain) }) {
            return true
        }
        for set in table.sets.values where set.elements.values.contains(where: { targets(of: $0).contains(chain) }) {
            return true
        }
        return false
    }
}
