/// What a command does to its object, as `nft` spells the verb.
public enum Verb: String, Sendable, Hashable {
    /// Create if absent; no error if it exists (rules and elements: append).
    case add
    /// Create; an error if it exists.
    case create
    /// Prepend a rule (or insert before `handle`).
    case insert
    /// Replace the rule at `handle`.
    case replace
    /// Remove the object's contents (chain rules, set elements); the object stays.
    case flush
    /// Remove the object; an error if absent or still referenced.
    case delete
}

/// One line of a transaction.
public struct TransactionCommand: Sendable, Hashable {
    public var verb: Verb
    public var object: Object
}

/// A batch of commands against one table, applied atomically: either every command takes effect or none.
///
/// Rendered one command per line, so an error's line number names the command at fault
/// (see ``NftablesError/command``).
public struct Transaction: Sendable, Hashable {
    public let family: Family
    public let table: String
    public private(set) var commands: [TransactionCommand] = []

    public init(family: Family, table: String) {
        self.family = family
        self.table = table
    }

    public var isEmpty: Bool { commands.isEmpty }
    public var count: Int { commands.count }

    /// Appends `verb object`. Consecutive element commands of the same verb and set are merged into one line.
    public mutating func append(_ verb: Verb, _ object: Object) {
        if case .elements(let new) = object, let last = commands.last, last.verb == verb,
            case .elements(let peek) = last.object, peek.setName == new.setName
        {
            // Take the command out and drop its reference first, so the element array is appended to in place
            // (a copy per element would make large transactions quadratic).
            var command = commands.removeLast()
            guard case .elements(var existing) = command.object else { return }
            command.object = .table
            existing.elements.append(contentsOf: new.elements)
            command.object = .elements(existing)
            commands.append(command)
            return
        }
        commands.append(TransactionCommand(verb: verb, object: object))
    }

    public mutating func add(_ object: Object) { append(.add, object) }
    public mutating func create(_ object: Object) { append(.create, object) }
    public mutating func flush(_ object: Object) { append(.flush, object) }
    public mutating func delete(_ object: Object) { append(.delete, object) }
    public mutating func insert(_ object: Object) { append(.insert, object) }
    public mutating func replace(_ object: Object) { append(.replace, object) }

    public mutating func add(_ chain: Chain) { add(.chain(chain)) }
    public mutating func add(_ rule: Rule) { add(.rule(rule)) }
    public mutating func add(_ set: NamedSet) { add(.set(set)) }
    public mutating func add(_ map: NamedMap) { add(.map(map)) }
    /// Adds one element to set or map `name`.
    public mutating func addElement(_ name: String, _ element: Element) {
        add(.elements(Elements(setName: name, elements: [element])))
    }
    /// Deletes one element (by key) from set or map `name`.
    public mutating func deleteElement(_ name: String, key: String) {
        delete(.elements(Elements(setName: name, elements: [Element(key: key)])))
    }

    /// The `nft` script: one command per line, in order.
    public func script() -> String {
        var text = ""
        text.reserveCapacity(commands.count * 80)
        for command in commands {
            render(command, into: &text)
            text.append("\n")
        }
        return text
    }

    /// The rendered line of command `index` (0-based).
    public func line(_ index: Int) -> String {
        var text = ""
        render(commands[index], into: &text)
        return text
    }

    private func render(_ command: TransactionCommand, into text: inout String) {
        let verb = command.verb.rawValue
        let prefix = "\(family.rawValue) \(table)"
        switch command.object {
        case .table:
            text += "\(verb) table \(prefix)"
        case .chain(let chain):
            text += "\(verb) chain \(prefix) \(chain.name)"
            if command.verb == .add || command.verb == .create {
                var parts: [String] = []
                if let base = chain.base {
                    parts.append("type \(base.type) hook \(base.hook) priority \(base.priority)")
                    if let policy = base.policy { parts.append("policy \(policy)") }
                }
                if let comment = chain.comment { parts.append("comment \(Self.quote(comment))") }
                if !parts.isEmpty { text += " { " + parts.joined(separator: " ; ") + " ; }" }
            }
        case .rule(let rule):
            text += "\(verb) rule \(prefix) \(rule.chain)"
            if let handle = rule.handle { text += " handle \(handle)" }
            if command.verb != .delete {
                text += " " + rule.rule
                if let comment = rule.comment { text += " comment \(Self.quote(comment))" }
            }
        case .set(let set):
            text += "\(verb) set \(prefix) \(set.name)"
            if command.verb == .add || command.verb == .create {
                var parts = ["type \(set.type)"]
                if !set.flags.isEmpty { parts.append("flags \(set.flags.joined(separator: ","))") }
                if let timeout = set.timeout { parts.append("timeout \(Self.seconds(timeout))") }
                if let comment = set.comment { parts.append("comment \(Self.quote(comment))") }
                text += " { " + parts.joined(separator: " ; ") + " ; }"
            }
        case .map(let map):
            text += "\(verb) map \(prefix) \(map.name)"
            if command.verb == .add || command.verb == .create {
                var parts = [map.typeof.map { "typeof \($0)" } ?? "type \(map.keyType) : \(map.valueType)"]
                if !map.flags.isEmpty { parts.append("flags \(map.flags.joined(separator: ","))") }
                if let comment = map.comment { parts.append("comment \(Self.quote(comment))") }
                text += " { " + parts.joined(separator: " ; ") + " ; }"
            }
        case .elements(let elements):
            text += "\(verb) element \(prefix) \(elements.setName) { "
            var first = true
            for element in elements.elements {
                if !first { text += ", " }
                first = false
                text += element.key
                if command.verb != .delete {
                    if let comment = element.comment { text += " comment \(Self.quote(comment))" }
                    if let value = element.value { text += " : " + value }
                }
            }
            text += " }"
        }
    }

    /// `nft` duration syntax in whole seconds (at least 1s).
    static func seconds(_ duration: Duration) -> String {
        "\(max(1, duration.components.seconds))s"
    }

    /// A double-quoted `nft` string; quotes inside are dropped (nft strings cannot escape them).
    static func quote(_ string: String) -> String {
        "\"" + string.replacingOccurrences(of: "\"", with: "'") + "\""
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
