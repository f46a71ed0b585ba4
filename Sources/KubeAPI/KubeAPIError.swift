/// What went wrong talking to the Kubernetes API or reading its configuration.
///
/// API failures carry the server's ``Status`` (reason, code, message); use the predicates
/// (``isNotFound``, ``isConflict``, ``isGone`` ...) rather than matching messages.
public struct KubeAPIError: Error, CustomStringConvertible, Sendable {
    private enum Code: Sendable {
        case kubeconfig
        case transport
        case apiStatus
        case decoding
        case invalidQuantity
        case malformedJSON
        case invalidRequest
    }

    private let code: Code
    /// A sentence saying what failed, where, and what to do.
    public let message: String
    /// The API's `Status` object for a failed request (also for an ERROR watch event).
    public let status: Status?

    private init(code: Code, message: String, status: Status? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { message }

    /// The HTTP status code of a failed request (or the `code` of an ERROR watch event).
    public var httpStatus: Int? { status?.code }

    /// The machine-readable reason from the server's `Status` (`NotFound`, `Conflict`, `Expired` ...).
    public var reason: String? { status?.reason }

    public var isNotFound: Bool { httpStatus == 404 }
    public var isAlreadyExists: Bool { httpStatus == 409 && reason == "AlreadyExists" }
    /// A write lost a race: the resourceVersion or UID precondition did not match (HTTP 409 `Conflict`).
    public var isConflict: Bool { httpStatus == 409 && reason != "AlreadyExists" }
    /// The requested resourceVersion is too old (HTTP 410 or reason `Expired`/`Gone`): relist.
    public var isGone: Bool { httpStatus == 410 || reason == "Expired" || reason == "Gone" }
    public var isInvalid: Bool { httpStatus == 422 }
    public var isUnauthorized: Bool { httpStatus == 401 }
    public var isForbidden: Bool { httpStatus == 403 }
    public var isTooManyRequests: Bool { httpStatus == 429 }
    public var isServerError: Bool { (httpStatus ?? 0) >= 500 }
    /// The request never got an answer (connection refused, TLS failure, timeout).
    public var isTransport: Bool { code == .transport }
    public var isKubeconfig: Bool { code == .kubeconfig }
    /// Retrying the same request later may succeed.
    public var isRetriable: Bool { isTransport || isServerError || isTooManyRequests }

    static func kubeconfig(file: String, entry: String?, field: String?, problem: String) -> KubeAPIError {
        var location = "kubeconfig \(file)"
        if let entry { location += ", \(entry)" }
        if let field { location += ", field \(field)" }
        return KubeAPIError(code: .kubeconfig, message: "\(location): \(problem)")
    }

    static func transport(verb: String, path: String, underlying: any Error) -> KubeAPIError {
        KubeAPIError(
            code: .transport,
            message: "\(verb) \(path) got no answer from the API server: \(underlying). Check the server address and that it is reachable.")
    }

    /// The error for a request the API answered with `status` (in-memory implementations of
    /// ``KubeClientProtocol`` use this so callers see the same errors as over HTTP).
    public static func api(verb: String, path: String, status: Status) -> KubeAPIError {
        let reason = status.reason.map { " (\($0))" } ?? ""
        let message = status.message ?? "no message"
        return KubeAPIError(
            code: .apiStatus, message: "\(verb) \(path) failed with HTTP \(status.code ?? 0)\(reason): \(message)", status: status)
    }

    static func decoding(what: String, underlying: any Error) -> KubeAPIError {
        KubeAPIError(code: .decoding, message: "could not decode \(what): \(DecodingErrorDescription(underlying))")
    }

    static func malformedJSON(what: String, underlying: any Error) -> KubeAPIError {
        KubeAPIError(code: .malformedJSON, message: "\(what) is not valid JSON: \(DecodingErrorDescription(underlying))")
    }

    static func invalidQuantity(_ text: String) -> KubeAPIError {
        KubeAPIError(code: .invalidQuantity, message: "quantity \"\(text)\" is not <number><suffix> (e.g. 100m, 1Gi, 2e3)")
    }

    static func invalidRequest(_ message: String) -> KubeAPIError {
        KubeAPIError(code: .invalidRequest, message: message)
    }
}

/// Renders a `DecodingError` with the path of the field at fault, which its default description buries.
struct DecodingErrorDescription: CustomStringConvertible {
    let error: any Error
    init(_ error: any Error) { self.error = error }

    var description: String {
        func path(_ context: DecodingError.Context) -> String {
            let components = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }
            let joined = components.joined()
            return joined.isEmpty ? "<root>" : String(joined.drop(while: { $0 == "." }))
        }
        switch error {
        case DecodingError.typeMismatch(let type, let context):
            return "field \(path(context)): expected \(type): \(context.debugDescription)"
        case DecodingError.valueNotFound(let type, let context):
            return "field \(path(context)): missing \(type) value"
        case DecodingError.keyNotFound(let key, let context):
            return "field \(path(context)).\(key.stringValue) is required but missing"
        case DecodingError.dataCorrupted(let context):
            return "field \(path(context)): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
