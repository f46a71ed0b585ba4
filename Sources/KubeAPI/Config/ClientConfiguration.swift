public import Foundation

/// Everything the client needs to reach one API server: where, how to trust it, who we are, and limits.
///
/// Built from a kubeconfig (``Kubeconfig``), from in-cluster service-account files, or by hand in tests.
public struct ClientConfiguration: Sendable {
    /// `https://host:port` (or `http://` for loopback tests), possibly with a path prefix.
    public var server: URL
    /// PEM bytes of the CA bundle that signs the server's certificate; nil means the system's roots.
    public var certificateAuthorityPEM: [UInt8]?
    /// Skip server certificate verification (`insecure-skip-tls-verify`).
    public var insecureSkipTLSVerify: Bool = false
    /// The name to verify the server's certificate against instead of the URL's host (`tls-server-name`).
    public var tlsServerName: String?
    /// PEM client certificate chain and key for client-certificate authentication.
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    /// How requests authenticate beyond TLS.
    public var credentials: Credentials = .none
    /// The namespace of the kubeconfig context, `default` when none.
    public var namespace: String = "default"
    /// Upper bound on one non-watch request, including reading its body.
    public var requestTimeout: Duration = .seconds(30)
    /// Sustained requests per second and burst (the kubelet's defaults are 50 and 100).
    public var qps: Double = 50
    public var burst: Int = 100
    /// Retries of a request the server answered 429 (or 5xx for reads) with a `Retry-After` header.
    public var maximumRetryAfterRetries: Int = 3
    /// Sent as `User-Agent`.
    public var userAgent: String = "node-agent/\(KubeAPIVersion.current)"
    /// Where this configuration came from, for messages (`kubeconfig /root/.kube/config, context kind`).
    public var source: String = "manual"

    /// Bearer-token authentication.
    public enum Credentials: Sendable, Equatable {
        case none
        case token(String)
        /// A file holding the token, re-read when it changes (projected service-account tokens rotate).
        case tokenFile(String)
        case basic(username: String, password: String)
    }

    public init(server: URL) {
        self.server = server
    }
}

/// The version reported in the user agent.
public enum KubeAPIVersion {
    public static let current = "0.1.0"
}
