/// The container runtime's health as the node reports it.
public struct RuntimeStatus: Sendable, Equatable {
    /// `<runtime>://<version>`, e.g. `containerd://1.6.20`; `containerd://unknown` when it does not answer.
    public var version: String
    /// nil when the runtime answers; else why it does not.
    public var runtimeProblem: String?
    /// nil when the pod network can be set up (a CNI configuration is present); else why not.
    public var networkProblem: String?

    public init(version: String, runtimeProblem: String? = nil, networkProblem: String? = nil) {
        self.version = version
        self.runtimeProblem = runtimeProblem
        self.networkProblem = networkProblem
    }
}
