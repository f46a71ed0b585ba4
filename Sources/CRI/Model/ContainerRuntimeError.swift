/// A failure of the runtime layer, with what failed, where, and what to do about it.
///
/// The kubelet maps ``kind`` onto the waiting reasons users know: `.imageNotFound`/`.imagePullFailed` become
/// `ErrImagePull`, `.imageNeverPull` becomes `ErrImageNeverPull`, `.invalidImageName` becomes `InvalidImageName`.
public struct ContainerRuntimeError: Error, Sendable, CustomStringConvertible {
    /// The category of failure, stable for callers to switch on.
    public enum Kind: String, Sendable, Hashable {
        case invalidImageName = "InvalidImageName"
        case imageNeverPull = "ErrImageNeverPull"
        case imagePullFailed = "ErrImagePull"
        case imageNotFound = "ImageNotFound"
        case runtimeUnavailable = "RuntimeUnavailable"
        case cniConfigMissing = "CNIConfigMissing"
        case cniFailed = "CNIFailed"
        case sandboxNotFound = "SandboxNotFound"
        case sandboxNotReady = "SandboxNotReady"
        case containerNotFound = "ContainerNotFound"
        case invalidState = "InvalidState"
        case invalidConfig = "InvalidConfig"
        case unsupported = "Unsupported"
        case commandFailed = "CommandFailed"
    }

    public let kind: Kind
    /// The object at fault: an image reference, `pod <ns>/<name>`, a container ID, a file.
    public let object: String
    /// The field at fault when there is one (`image`, `securityContext.runAsUser`, ...).
    public let field: String?
    /// What happened and what to do.
    public let message: String
    /// The command that failed underneath, when one did.
    public let underlying: CommandError?

    init(_ kind: Kind, object: String, field: String? = nil, _ message: String, underlying: CommandError? = nil) {
        self.kind = kind
        self.object = object
        self.field = field
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        var text = "\(kind.rawValue): \(object)"
        if let field { text += " (field \(field))" }
        text += ": \(message)"
        if let underlying { text += " [\(underlying)]" }
        return text
    }

    /// An error of `kind` as the real runtime raises it, for test doubles (`FakeContainerRuntime`).
    public static func fake(_ kind: Kind, _ object: String, field: String? = nil) -> Self {
        Self(kind, object: object, field: field, "reported by the fake runtime")
    }

    static func invalidImageName(_ reference: String, _ why: String) -> Self {
        Self(.invalidImageName, object: "image \"\(reference)\"", field: "image", "not a valid image reference: \(why)")
    }
    static func imageNeverPull(_ reference: String) -> Self {
        Self(
            .imageNeverPull, object: "image \"\(reference)\"", field: "imagePullPolicy",
            "the image is not present and imagePullPolicy is Never; import it into containerd namespace k8s.io or change the policy")
    }
    static func imageNotFound(_ reference: String) -> Self {
        Self(.imageNotFound, object: "image \"\(reference)\"", "the image is not present in containerd namespace k8s.io; pull it first")
    }
    static func pullFailed(_ reference: String, _ error: CommandError) -> Self {
        Self(
            .imagePullFailed, object: "image \"\(reference)\"", field: "image",
            "pulling failed; check the reference, the registry's reachability and credentials", underlying: error)
    }
    static func runtimeUnavailable(_ socket: String, _ error: CommandError) -> Self {
        Self(
            .runtimeUnavailable, object: "containerd at \(socket)",
            "containerd is not answering; start it (scripts/containerd-up) or fix --container-runtime-endpoint", underlying: error)
    }
    static func sandboxNotFound(_ id: String) -> Self {
        Self(.sandboxNotFound, object: "sandbox \(id)", "no such pod sandbox")
    }
    static func containerNotFound(_ id: String) -> Self {
        Self(.containerNotFound, object: "container \(id)", "no such container")
    }
    static func command(_ object: String, _ error: CommandError) -> Self {
        Self(.commandFailed, object: object, "the runtime command failed", underlying: error)
    }
}
