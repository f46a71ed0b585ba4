/// Where the container runtime listens, as kubelet's `--container-runtime-endpoint` spells it.
///
/// Accepts `unix:///path/to/socket` or a bare absolute path (which kubelet also tolerates).
public struct RuntimeEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The unix socket path, e.g. `/run/containerd/containerd.sock`.
    public var socketPath: String

    /// The endpoint containerd listens on by default.
    public static let containerdDefault = RuntimeEndpoint(socketPath: "/run/containerd/containerd.sock")

    public init(socketPath: String) {
        self.socketPath = socketPath
    }

    /// Parses `unix:///path` or `/path`; returns nil for any other scheme or a relative path.
    public init?(parsing text: String) {
        let path: Substring
        if text.hasPrefix("unix://") {
            path = text.dropFirst("unix://".count)
        } else {
            path = Substring(text)
        }
        guard path.hasPrefix("/"), path.count > 1 else { return nil }
        self.socketPath = String(path)
    }

    public var description: String { "unix://\(socketPath)" }
}
