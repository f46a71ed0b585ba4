/// A Service or EndpointSlice (or part of one) the proxy cannot serve, naming the object and the field at fault.
///
/// The object is skipped (with a log and an event) and every other object keeps being served.
public struct ProxyInputError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case invalidField
        case missingField
    }

    private let code: Code
    /// `Service` or `EndpointSlice`.
    public let kind: String
    public let object: NamespacedName
    /// The JSON path of the field, e.g. `spec.ports[1].port`.
    public let field: String
    /// The offending value, as given.
    public let value: String
    /// What is wrong and what would be right.
    public let reason: String

    static func invalid(_ kind: String, _ object: NamespacedName, field: String, value: String, reason: String) -> ProxyInputError {
        ProxyInputError(code: .invalidField, kind: kind, object: object, field: field, value: value, reason: reason)
    }

    static func missing(_ kind: String, _ object: NamespacedName, field: String, reason: String) -> ProxyInputError {
        ProxyInputError(code: .missingField, kind: kind, object: object, field: field, value: "", reason: reason)
    }

    public var description: String {
        switch code {
        case .invalidField: "\(kind) \(object): invalid \(field) \"\(value)\": \(reason)"
        case .missingField: "\(kind) \(object): missing \(field): \(reason)"
        }
    }
}
