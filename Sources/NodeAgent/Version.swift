/// The build's version and the Kubernetes release whose node behaviour it follows.
enum AgentVersion {
    /// node-agent's own version.
    static let version = "0.1.0"
    /// The Kubernetes minor release the flags, defaults and API objects follow.
    static let kubernetesVersion = "1.32.0"
    /// What the Node reports as its kubelet version: `v<kubernetes>-node-agent.<version>`.
    static var kubeletVersion: String { "v\(kubernetesVersion)-node-agent.\(version)" }
}
