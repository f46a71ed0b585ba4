import AgentJSON
import Foundation

/// Turns nft's `--json` listing (`{"nftables": [{"metainfo": ...}, {"table": ...}, {"chain": ...}, ...]}`)
/// into a ``TableListing``.
enum ListingParser {
    /// Parses `json`, keeping only objects of table `family name`. Returns nil when the document has no such table
    /// and `requireTable` is set.
    static func parse(_ json: String, family: Family, table name: String, requireTable: Bool) throws -> TableListing? {
        let document: JSONValue
        do {
            document = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
        } catch {
            throw NftablesError.listing("\(error)")
        }
        guard let entries = document["nftables"]?.arrayValue else {
            throw NftablesError.listing("no top-level \"nftables\" array")
        }
        var listing = TableListing(family: family, name: name)
        var sawTable = false
        for entry in entries {
            guard case .object(let object) = entry, let (kind, body) = object.first else { continue }
            guard body["family"]?.stringValue == family.rawValue else { continue }
            let tableName = kind == "table" ? body["name"]?.stringValue : body["table"]?.stringValue
            guard tableName == name else { continue }
            switch kind {
            case "table":
                sawTable = true
            case "chain":
                guard let chainName = body["name"]?.stringValue else { continue }
                var chain = listing.chains[chainName] ?? ListedChain(name: chainName)
                if let hook = body["hook"]?.stringValue, let type = body["type"]?.stringValue {
                    let priority = body["prio"]?.integerValue.map(String.init) ?? body["prio"]?.stringValue ?? "0"
                    chain.base = Chain.Base(type: type, hook: hook, priority: priority, policy: body["policy"]?.stringValue)
                }
                listing.chains[chainName] = chain
            case "rule":
                guard let chainName = body["chain"]?.stringValue else { continue }
                let rule = ListedRule(
                    handle: body["handle"]?.integerValue.map { Int($0) } ?? 0,
                    comment: body["comment"]?.stringValue,
                    expressions: body["expr"]?.arrayValue ?? []
                )
                listing.chains[chainName, default: ListedChain(name: chainName)].rules.append(rule)
            case "set", "map":
                guard let setName = body["name"]?.stringValue else { continue }
                var elements: [String: String] = [:]
                for element in body["elem"]?.arrayValue ?? [] {
                    if kind == "map", let pair = element.arrayValue, pair.count == 2 {
                        elements[render(pair[0])] = render(pair[1])
                    } else {
                        elements[render(element)] = ""
                    }
                }
                let flags: [String] = body["flags"]?.arrayValue?.compactMap(\.stringValue) ?? body["flags"]?.stringValue.map { [$0] } ?? []
                listing.sets[setName] = ListedSet(
                    name: setName,
                    type: renderType(body["type"]),
                    valueType: kind == "map" ? renderType(body["map"]) : nil,
                    flags: flags,
                    elements: elements
                )
            default:
                continue
            }
        }
        if requireTable && !sawTable { return nil }
        return listing
    }

    /// `"ipv4_addr"` or `["ipv4_addr", "inet_proto"]` → `ipv4_addr . inet_proto`.
    static func renderType(_ value: JSONValue?) -> String {
        switch value {
        case .string(let type): type
        case .array(let parts): parts.compactMap(\.stringValue).joined(separator: " . ")
        default: ""
        }
    }

    /// Renders an element key or value expression in nft syntax.
    static func render(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return text
        case .integer(let integer): return String(integer)
        case .number(let number): return number == number.rounded() ? String(Int(number)) : String(number)
        case .bool(let flag): return String(flag)
        case .null: return ""
        case .array(let items): return items.map(render).joined(separator: ", ")
        case .object(let object):
            if let parts = object["concat"]?.arrayValue { return parts.map(render).joined(separator: " . ") }
            if let element = object["elem"] { return element["val"].map(render) ?? "" }
            if let prefix = object["prefix"] {
                return "\(prefix["addr"].map(render) ?? "")/\(prefix["len"].map(render) ?? "")"
            }
            if let range = object["range"]?.arrayValue, range.count == 2 { return "\(render(range[0]))-\(render(range[1]))" }
            for verdict in ["goto", "jump"] {
                if let target = object[verdict]?["target"]?.stringValue { return "\(verdict) \(target)" }
            }
            for verdict in ["accept", "drop", "continue", "return"] where object[verdict] != nil {
                return verdict
            }
            return object.map { "\($0.key) \(render($0.value))" }.sorted().joined(separator: " ")
        }
    }
}
