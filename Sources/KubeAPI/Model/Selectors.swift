import Foundation

/// A label selector in the API's string form: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`,
/// joined by commas (all must hold).
public struct LabelSelector: Sendable, Hashable, CustomStringConvertible {
    public enum Requirement: Sendable, Hashable {
        case equals(String, String)
        case notEquals(String, String)
        case `in`(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    public var requirements: [Requirement]
    public let description: String

    /// Parses a selector.
    ///
    /// - Throws: ``KubeAPIError`` naming the part that is not a requirement.
    public init(_ text: String) throws {
        description = text
        requirements = []
        for part in Self.splitTopLevel(text) {
            let item = part.trimmingCharacters(in: .whitespaces)
            if item.isEmpty { continue }
            requirements.append(try Self.parseRequirement(item, in: text))
        }
    }

    /// True when every requirement holds for `labels`.
    public func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): labels[key] == value
            case .notEquals(let key, let value): labels[key] != value
            case .in(let key, let values): labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): !(labels[key].map(values.contains) ?? false)
            case .exists(let key): labels[key] != nil
            case .doesNotExist(let key): labels[key] == nil
            }
        }
    }

    /// Splits on commas that are not inside parentheses.
    private static func splitTopLevel(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == ",", depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }

    private static func parseRequirement(_ item: String, in text: String) throws -> Requirement {
        func invalid(_ why: String) -> KubeAPIError {
            KubeAPIError.invalidRequest("label selector \"\(text)\": \"\(item)\" \(why)")
        }
        func key(_ raw: Substring) throws -> String {
            let key = raw.trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || "-_./".contains($0) }) else {
                throw invalid("has an invalid key")
            }
            return key
        }
        func value(_ raw: Substring) throws -> String {
            let value = raw.trimmingCharacters(in: .whitespaces)
            guard value.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else { throw invalid("has an invalid value") }
            return value
        }
        if item.hasPrefix("!") {
            return .doesNotExist(try key(item.dropFirst()))
        }
        if let range = item.range(of: "!=") {
            return .notEquals(try key(item[..<range.lowerBound]), try value(item[range.upperBound...]))
        }
        if let range = item.range(of: "==") {
            return .equals(try key(item[..<range.lowerBound]), try value(item[range.upperBound...]))
        }
        if let range = item.range(of: "=") {
            return .equals(try key(item[..<range.lowerBound]), try value(item[range.upperBound...]))
        }
        for (word, negate) in [(" notin ", true), (" in ", false)] {
            if let range = item.range(of: word) {
                let rest = item[range.upperBound...].trimmingCharacters(in: .whitespaces)
                guard rest.hasPrefix("("), rest.hasSuffix(")") else { throw invalid("needs a parenthesised value list") }
                let values = try rest.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false).map { try value($0) }
                let selectorKey = try key(item[..<range.lowerBound])
                return negate ? .notIn(selectorKey, Set(values)) : .in(selectorKey, Set(values))
            }
        }
        return .exists(try key(Substring(item)))
    }
}

/// A field selector: `field=value`, `field==value`, `field!=value`, joined by commas.
public struct FieldSelector: Sendable, Hashable, CustomStringConvertible {
    public struct Requirement: Sendable, Hashable {
        public var field: String
        public var value: String
        public var negated: Bool
    }

    public var requirements: [Requirement]
    public let description: String

    /// Parses a selector.
    ///
    /// - Throws: ``KubeAPIError`` naming the part that is not `field=value` / `field!=value`.
    public init(_ text: String) throws {
        description = text
        requirements = []
        for part in text.split(separator: ",") {
            let item = part.trimmingCharacters(in: .whitespaces)
            if item.isEmpty { continue }
            if let range = item.range(of: "!=") {
                requirements.append(Requirement(field: String(item[..<range.lowerBound]), value: String(item[range.upperBound...]), negated: true))
            } else if let range = item.range(of: "==") ?? item.range(of: "=") {
                requirements.append(Requirement(field: String(item[..<range.lowerBound]), value: String(item[range.upperBound...]), negated: false))
            } else {
                throw KubeAPIError.invalidRequest("field selector \"\(text)\": \"\(item)\" is not field=value or field!=value")
            }
        }
    }

    /// The value of the one `field=value` requirement on `field`, if any (for the double's fast paths).
    public func requiredValue(of field: String) -> String? {
        requirements.first { $0.field == field && !$0.negated }?.value
    }

    /// True when every requirement holds; `value(field)` returns the object's value ("" when unset).
    public func matches(_ value: (String) -> String) -> Bool {
        requirements.allSatisfy { requirement in
            (value(requirement.field) == requirement.value) != requirement.negated
        }
    }
}
