import Foundation
import Yams

/// A problem with the `--config` file itself: unreadable, not YAML, not a mapping, or an unknown key.
struct ConfigFileError: Error, Sendable, Equatable, CustomStringConvertible {
    var path: String
    /// The 1-based line, when the problem has one.
    var line: Int?
    var message: String

    var description: String {
        let place = line.map { "\(path):\($0)" } ?? path
        return "config file \(place): \(message)"
    }
}

/// The `--config` YAML file: a flat mapping whose keys are the flag names without dashes.
///
/// ```yaml
/// proxy-mode: ipvs
/// ipvs-scheduler: lc
/// cluster-cidr: [10.244.0.0/16, fd00:10:244::/56]
/// ```
/// Lists may be written as YAML sequences or as comma-separated strings.
struct ConfigFile: Sendable {
    struct Entry: Sendable, Equatable {
        var key: String
        var value: String
        var line: Int
    }

    var path: String
    var entries: [Entry]

    /// Reads and parses the file at `path`.
    /// - Throws: ``ConfigFileError`` when the file cannot be read or is not a flat YAML mapping of known keys.
    init(contentsOf path: String) throws(ConfigFileError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigFileError(path: path, line: nil, message: "cannot be read: \(error.localizedDescription)")
        }
        try self.init(path: path, yaml: text)
    }

    /// Parses YAML text that came from `path` (used in messages only).
    init(path: String, yaml text: String) throws(ConfigFileError) {
        self.path = path
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigFileError(path: path, line: Self.line(of: error), message: "is not valid YAML: \(Self.summary(of: error))")
        } catch {
            throw ConfigFileError(path: path, line: nil, message: "is not valid YAML: \(error)")
        }
        guard let root else {
            entries = []
            return
        }
        guard let mapping = root.mapping else {
            throw ConfigFileError(path: path, line: Self.line(root), message: "must be a mapping of setting names to values")
        }
        var entries: [Entry] = []
        var seen = Set<String>()
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string else {
                throw ConfigFileError(path: path, line: Self.line(keyNode), message: "keys must be plain setting names")
            }
            guard SettingKey.named(key) != nil else {
                throw ConfigFileError(path: path, line: Self.line(keyNode), message: Self.unknownKeyMessage(key))
            }
            guard seen.insert(key).inserted else {
                throw ConfigFileError(path: path, line: Self.line(keyNode), message: "key \"\(key)\" appears twice")
            }
            entries.append(Entry(key: key, value: try Self.text(of: valueNode, key: key, path: path), line: Self.line(keyNode) ?? 0))
        }
        self.entries = entries
    }

    private static func text(of node: Node, key: String, path: String) throws(ConfigFileError) -> String {
        switch node {
        case .scalar(let scalar):
            return scalar.string == "~" || scalar.string == "null" ? "" : scalar.string
        case .sequence(let sequence):
            var items: [String] = []
            for item in sequence {
                guard let text = item.scalar?.string else {
                    throw ConfigFileError(path: path, line: line(item), message: "\(key): list items must be plain values")
                }
                items.append(text)
            }
            return items.joined(separator: ",")
        case .mapping(let mapping):
            var pairs: [String] = []
            for (k, v) in mapping {
                guard let name = k.scalar?.string, let value = v.scalar?.string else {
                    throw ConfigFileError(path: path, line: line(k), message: "\(key): map entries must be plain key: value pairs")
                }
                pairs.append("\(name)=\(value)")
            }
            return pairs.joined(separator: ",")
        case .alias:
            throw ConfigFileError(path: path, line: line(node), message: "\(key): YAML aliases are not supported")
        }
    }

    /// "unknown key "x"; known keys are: ..." with the closest known key suggested.
    static func unknownKeyMessage(_ key: String) -> String {
        let known = SettingKey.all.map(\.name)
        var message = "unknown key \"\(key)\""
        if let suggestion = known.min(by: { editDistance($0, key) < editDistance($1, key) }), editDistance(suggestion, key) <= 3 {
            message += " (did you mean \"\(suggestion)\"?)"
        }
        return message + "; known keys are: " + known.joined(separator: ", ")
    }

    private static func line(_ node: Node) -> Int? { node.mark.map { $0.line } }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return nil
        }
    }

    private static func summary(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _):
            return problem
        default:
            return "\(error)"
        }
    }

    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension AgentSettings {
    /// Builds settings from defaults, then the config file (if any), then flags; flags win.
    /// - Parameters:
    ///   - file: the parsed `--config` file.
    ///   - flags: `(key, value)` pairs from the command line, in the order given.
    /// - Throws: ``SettingError`` naming the first refused key and where it came from.
    static func resolve(file: ConfigFile?, flags: [(key: String, value: String)]) throws(SettingError) -> AgentSettings {
        var settings = AgentSettings()
        for entry in file?.entries ?? [] {
            // ConfigFile only admits known keys.
            try SettingKey.named(entry.key)!.apply(entry.value, to: &settings, source: "\(file!.path):\(entry.line)")
        }
        for (key, value) in flags {
            guard let setting = SettingKey.named(key) else {
                preconditionFailure("flag --\(key) has no entry in SettingKey.all")
            }
            try setting.apply(value, to: &settings, source: "--\(key)")
        }
        return settings
    }
}
