public import Iptables

/// Turns desired rulesets into transactions: the difference from the last applied one (incremental sync), or
/// the whole ruleset plus the removal of whatever else the kernel holds in the table (full sync). Either is one
/// transaction, applied atomically.
public enum RulesetDiff {
    /// The commands that take the table from `old` (what the last successful sync applied) to `new`.
    /// Empty when nothing changed.
    public static func incremental(from old: DesiredRuleset, to new: DesiredRuleset, family: Family, table: String) -> Transaction {
        var tx = Transaction(family: family, table: table)
        // 0. A set or map whose declaration changed (an affinity timeout) is recreated: the chains that use it are
        //    emptied first and refilled below.
        var rewrite: Set<String> = []
        let redeclared = new.sets.keys.filter { old.sets[$0] != nil && old.sets[$0] != new.sets[$0] }
            + new.maps.keys.filter { old.maps[$0] != nil && old.maps[$0] != new.maps[$0] }
        if !redeclared.isEmpty {
            for (name, contents) in old.chains where contents.rules.contains(where: { rule in redeclared.contains { rule.contains("@\($0) ") || rule.hasSuffix("@\($0)") } }) {
                rewrite.insert(name)
            }
            for name in rewrite.sorted() { tx.flush(.chain(Chain(name))) }
            for name in redeclared.sorted() {
                if old.maps[name] != nil {
                    tx.delete(.map(NamedMap(name, keyType: "", valueType: "")))
                } else {
                    tx.delete(.set(NamedSet(name, type: "")))
                }
            }
        }
        // 1. New declarations, so that rules and elements below can refer to them.
        for name in new.maps.keys.sorted() where old.maps[name] != new.maps[name] { tx.add(.map(new.maps[name]!)) }
        for name in new.sets.keys.sorted() where old.sets[name] != new.sets[name] { tx.add(.set(new.sets[name]!)) }
        for name in new.chains.keys.sorted() where old.chains[name] == nil {
            tx.add(.chain(Chain(name, base: new.chains[name]!.base)))
        }
        // 2. Elements that go away or change value (before the chains they point to can go). A set or map that
        //    goes away entirely takes its elements with it.
        let deletedSets = Set(old.sets.keys.filter { new.sets[$0] == nil }).union(old.maps.keys.filter { new.maps[$0] == nil })
        let elementSets = Set(old.elements.keys).union(new.elements.keys).subtracting(deletedSets)
        for setName in elementSets.sorted() {
            if redeclared.contains(setName) { continue }
            let before = old.elements[setName] ?? [:]
            let after = new.elements[setName] ?? [:]
            for key in before.keys.sorted() where after[key] != before[key] {
                tx.deleteElement(setName, key: key)
            }
        }
        // 3. Changed and new chains get their rules.
        for name in new.chains.keys.sorted() {
            let contents = new.chains[name]!
            guard let previous = old.chains[name] else {
                for rule in contents.rules { tx.add(.rule(Rule(chain: name, rule))) }
                continue
            }
            guard previous.rules != contents.rules || rewrite.contains(name) else { continue }
            if !rewrite.contains(name) { tx.flush(.chain(Chain(name))) }
            for rule in contents.rules { tx.add(.rule(Rule(chain: name, rule))) }
        }
        // 4. New and changed elements.
        for setName in new.elements.keys.sorted() {
            let before = redeclared.contains(setName) ? [:] : old.elements[setName] ?? [:]
            let after = new.elements[setName]!
            for key in after.keys.sorted() where before[key] != after[key] {
                tx.addElement(setName, Element(key: key, value: after[key]!.isEmpty ? nil : after[key]))
            }
        }
        // 5. Chains, sets and maps no longer wanted: empty them first, then delete (nothing refers to them now).
        let goneChains = old.chains.keys.filter { new.chains[$0] == nil }.sorted()
        for name in goneChains { tx.flush(.chain(Chain(name))) }
        for name in goneChains { tx.delete(.chain(Chain(name))) }
        for name in old.sets.keys.sorted() where new.sets[name] == nil { tx.delete(.set(NamedSet(name, type: ""))) }
        for name in old.maps.keys.sorted() where new.maps[name] == nil {
            tx.delete(.map(NamedMap(name, keyType: "", valueType: "")))
        }
        return tx
    }

    /// One transaction that makes the table exactly `desired` whatever it holds now (`existing`, the cheap
    /// object listing; nil when the table is absent): every wanted chain and map is (re)created and refilled,
    /// everything else in the table is emptied and deleted. Dynamic sets keep their elements (affinity survives).
    public static func full(_ desired: DesiredRuleset, existing: TableListing?, family: Family, table: String) -> Transaction {
        var tx = Transaction(family: family, table: table)
        tx.add(.table)
        let dynamic = desired.dynamicSets
        // A set whose declaration differs cannot be re-added in place: treat it as stale and recreate it.
        var redeclared: Set<String> = []
        for (name, listed) in existing?.sets ?? [:] {
            if let set = desired.sets[name], set.type != listed.type || listed.isMap { redeclared.insert(name) }
            if let map = desired.maps[name], map.keyType != listed.type || map.valueType != listed.valueType { redeclared.insert(name) }
        }
        let staleChains = (existing?.chains.keys.filter { desired.chains[$0] == nil } ?? []).sorted()
        let staleSets = (existing?.sets.keys.filter { (desired.sets[$0] == nil && desired.maps[$0] == nil) || redeclared.contains($0) } ?? []).sorted()
        // 1. Empty everything that stays and everything that goes, so no reference is left to the stale objects.
        // (Only what exists needs emptying: a flush per new chain costs the kernel time for nothing.)
        for name in desired.chains.keys.sorted() {
            tx.add(.chain(Chain(name, base: desired.chains[name]!.base)))
            if existing?.chains[name] != nil { tx.flush(.chain(Chain(name))) }
        }
        for name in staleChains { tx.flush(.chain(Chain(name))) }
        for name in desired.maps.keys.sorted() where !redeclared.contains(name) {
            tx.add(.map(desired.maps[name]!))
            if existing?.sets[name] != nil { tx.flush(.map(desired.maps[name]!)) }
        }
        for name in desired.sets.keys.sorted() where !redeclared.contains(name) {
            tx.add(.set(desired.sets[name]!))
            if !dynamic.contains(name) && existing?.sets[name] != nil { tx.flush(.set(desired.sets[name]!)) }
        }
        // 2. Delete the stale objects, then recreate redeclared ones.
        for name in staleChains { tx.delete(.chain(Chain(name))) }
        for name in staleSets {
            if existing?.sets[name]?.isMap == true {
                tx.delete(.map(NamedMap(name, keyType: "", valueType: "")))
            } else {
                tx.delete(.set(NamedSet(name, type: "")))
            }
        }
        for name in redeclared.sorted() {
            if let map = desired.maps[name] { tx.add(.map(map)) }
            if let set = desired.sets[name] { tx.add(.set(set)) }
        }
        // 3. Contents.
        for name in desired.chains.keys.sorted() {
            for rule in desired.chains[name]!.rules { tx.add(.rule(Rule(chain: name, rule))) }
        }
        for setName in desired.elements.keys.sorted() {
            let elements = desired.elements[setName]!
            for key in elements.keys.sorted() {
                tx.addElement(setName, Element(key: key, value: elements[key]!.isEmpty ? nil : elements[key]))
            }
        }
        return tx
    }
}
