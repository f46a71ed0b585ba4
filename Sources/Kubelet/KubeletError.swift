/// A failure of the kubelet's own logic: a pod that cannot run here, a volume or environment variable that cannot
/// be resolved, a manifest that is not a valid pod. Carries the object and field at fault and the reason users
/// know from `kubectl describe` (`CreateContainerConfigError`, `FailedMount`, ...).
public struct KubeletError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The category of failure, stable for callers to switch on.
    public enum Kind: String, Sendable, Hashable {
        /// A manifest or pod spec that is not a valid pod.
        case invalidPod = "InvalidPod"
        /// A ConfigMap/Secret key or field an environment variable refers to is missing.
        case createContainerConfigError = "CreateContainerConfigError"
        /// A volume could not be set up (missing ConfigMap, hostPath of the wrong type, ...).
        case failedMount = "FailedMount"
        /// The image is absent and imagePullPolicy is Never.
        case imageNeverPull = "ErrImageNeverPull"
        /// The pod was refused by admission (node selector, capacity, host ports).
        case admission = "Admission"
        /// A lifecycle hook failed.
        case hookFailed = "HookFailed"
        /// Something the kubelet does not implement.
        case unsupported = "Unsupported"
    }

    public let kind: Kind
    /// The object at fault: `pod default/web`, `configmap default/settings`, a manifest file.
    public let object: String
    /// The field at fault (`spec.containers[0].image`), when there is one.
    public let field: String?
    /// What happened and what to do.
    public let message: String

    public init(_ kind: Kind, object: String, field: String? = nil, _ message: String) {
        self.kind = kind
        self.object = object
        self.field = field
        self.message = message
    }

    public var description: String {
        var text = "\(object)"
        if let field { text += ": \(field)" }
        return text + ": \(message)"
    }
}
