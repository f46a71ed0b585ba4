public import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import KubeAPI
public import Logging
import NIOCore
import NIOSSL
import Synchronization

/// An in-process Kubernetes API server that keeps the API's documented contract for the resources the daemon
/// uses, on a real port (0 picks a free one), over HTTP or HTTPS with a generated CA and optional client
/// certificates. Test support only: never linked into the daemon.
///
/// What it keeps: a global, monotonically increasing resourceVersion; uid, creationTimestamp, generation;
/// LIST/GET/CREATE/PUT/PATCH (merge, strategic merge, JSON patch)/DELETE with `Status` errors (404, 409
/// AlreadyExists, 409 Conflict on a stale resourceVersion or UID precondition, 422 Invalid naming the field);
/// label and field selectors; WATCH from a resourceVersion with bounded history (older answers 410 Expired),
/// bookmarks, `timeoutSeconds`; the `status` subresource; graceful pod deletion; discovery for kubectl.
///
/// Fault knobs: ``dropWatches()``, ``compactHistory()``, ``failNext(_:status:retryAfterSeconds:)``,
/// ``hold(_:)``/``release()`` (stall), ``restart(epochJump:)``.
public final class APIServerDouble: Sendable {
    /// How the double listens and authenticates.
    public struct Configuration: Sendable {
        public enum TLSMode: Sendable, Equatable {
            /// Plain HTTP (loopback tests).
            case none
            /// HTTPS with a generated CA; any client.
            case serverOnly
            /// HTTPS that requires a client certificate signed by the generated CA.
            case clientCertificates
        }

        public var host: String = "127.0.0.1"
        public var port: Int = 0
        public var tls: TLSMode = .none
        /// When set, every request must carry `Authorization: Bearer <token>` (or a client certificate).
        public var bearerToken: String?
        /// Names and addresses in the server certificate; nil means localhost, 127.0.0.1, ::1 and ``host``.
        public var certificateHosts: [String]?
        /// Events kept for watches; a watch from an older resourceVersion gets 410 Expired.
        public var historyLimit: Int = 1000
        /// How often a watch that asked for bookmarks gets one.
        public var bookmarkInterval: Duration = .seconds(5)
        /// Answer a too-old watch with HTTP 410 instead of the real server's 200 + ERROR event.
        public var expiredWatchAsHTTPStatus: Bool = false

        public init(tls: TLSMode = .none, port: Int = 0) {
            self.tls = tls
            self.port = port
        }
    }

    /// Which requests ``hold(_:)`` stalls.
    public enum HoldScope: Sendable {
        case watches
        case all
    }

    struct Faults {
        var failures: [(code: Int, retryAfter: Int?, verb: String?)] = []
        var hold: HoldScope?
        var held: [CheckedContinuation<Void, Never>] = []
        var counts: [String: Int] = [:]
        var stopping = false
        var expiredAsHTTPStatus = false
    }

    public let configuration: Configuration
    /// The generated PKI when serving HTTPS.
    public let pki: TestPKI?
    /// `http(s)://host:port`.
    public let url: URL
    let store: Store
    let faults = Mutex(Faults())
    private let serverTask: Task<Void, any Error>
    private let logger: Logger

    private init(
        configuration: Configuration, pki: TestPKI?, url: URL, store: Store, serverTask: Task<Void, any Error>, logger: Logger,
        faultsInitial: Faults
    ) {
        self.configuration = configuration
        self.pki = pki
        self.url = url
        self.store = store
        self.serverTask = serverTask
        self.logger = logger
        faults.withLock { $0 = faultsInitial }
    }

    /// Starts a double and returns once it accepts connections.
    ///
    /// - Throws: when the address cannot be bound or certificates cannot be made.
    public static func start(_ configuration: Configuration = Configuration(), logger: Logger = Logger(label: "apiserver-double")) async throws
        -> APIServerDouble
    {
        let pki: TestPKI? = configuration.tls == .none ? nil : try TestPKI(hosts: configuration.certificateHosts ?? ["localhost", "127.0.0.1", "::1", configuration.host])
        let store = Store(historyLimit: configuration.historyLimit, now: { Date() })
        let box = DoubleBox()
        let responder = DoubleResponder(box: box)
        let server: HTTPServerBuilder
        if let pki {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(pki.serverCertificatePEM.utf8)).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(pki.serverKeyPEM.utf8), format: .pem)))
            if configuration.tls == .clientCertificates {
                tls.certificateVerification = .noHostnameVerification
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(pki.caCertificatePEM.utf8)))
            }
            server = try .tls(.http1(), tlsConfiguration: tls)
        } else {
            server = .http1()
        }
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        var quiet = logger
        // Hummingbird logs cancelled child channels as errors on every stop; keep them unless debugging.
        quiet.logLevel = logger.logLevel <= .debug ? logger.logLevel : .critical
        let app = Application(
            responder: responder, server: server,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: quiet)
        let task = Task { try await app.run() }
        var port = 0
        for await bound in portStream {
            port = bound
            break
        }
        guard port > 0 else {
            task.cancel()
            _ = try? await task.value
            throw DoubleError("could not bind \(configuration.host):\(configuration.port)")
        }
        let hostPart = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        let url = URL(string: "\(pki == nil ? "http" : "https")://\(hostPart):\(port)")!
        var initialFaults = Faults()
        initialFaults.expiredAsHTTPStatus = configuration.expiredWatchAsHTTPStatus
        let double = APIServerDouble(
            configuration: configuration, pki: pki, url: url, store: store, serverTask: task, logger: logger, faultsInitial: initialFaults)
        box.double.withLock { $0 = double }
        return double
    }

    /// Ends every watch and stops listening.
    public func stop() async {
        let held = faults.withLock { faults -> [CheckedContinuation<Void, Never>] in
            faults.stopping = true
            faults.hold = nil
            defer { faults.held = [] }
            return faults.held
        }
        for waiter in held { waiter.resume() }
        _ = store.dropWatches()
        serverTask.cancel()
        _ = try? await serverTask.value
    }

    // MARK: Fault knobs

    /// Ends every open watch, as a dropped connection would. Returns how many were open.
    @discardableResult
    public func dropWatches() -> Int { store.dropWatches() }

    /// Forgets the event history: a watch from any older resourceVersion answers 410 Expired.
    public func compactHistory() { store.compact() }

    /// The next `count` API requests (not discovery; only `verb` ones such as `WATCH` when given) fail with
    /// `status` (500, 429 ...), optionally with Retry-After. Failures queue in order.
    public func failNext(_ count: Int, status: Int, retryAfterSeconds: Int? = nil, verb: String? = nil) {
        faults.withLock { $0.failures.append(contentsOf: Array(repeating: (status, retryAfterSeconds, verb), count: count)) }
    }

    /// Writes raw bytes (say, a malformed event) to every open watch.
    public func injectRawWatchEvent(_ text: String) { store.injectRaw(text + "\n") }

    /// Stalls matching requests (before they are served) until ``release()``.
    public func hold(_ scope: HoldScope) {
        faults.withLock { $0.hold = scope }
    }

    /// Lets stalled requests through and stops stalling.
    public func release() {
        let held = faults.withLock { faults -> [CheckedContinuation<Void, Never>] in
            faults.hold = nil
            defer { faults.held = [] }
            return faults.held
        }
        for waiter in held { waiter.resume() }
    }

    /// How many requests are stalled right now.
    public var heldRequestCount: Int { faults.withLock { $0.held.count } }

    /// Simulates an API server restart into a new resourceVersion epoch: every watch drops, history is gone,
    /// and versions jump by `epochJump`, so clients must relist.
    public func restart(epochJump: Int64 = 1_000_000) { store.restart(epochJump: epochJump) }

    /// Answer too-old watches with HTTP 410 (true) or the real server's 200 + ERROR event (false).
    public func setExpiredWatchAsHTTPStatus(_ value: Bool) { faults.withLock { $0.expiredAsHTTPStatus = value } }

    /// Sends a BOOKMARK to every watch that asked for bookmarks, now.
    public func sendBookmarks() { store.bookmarkAll() }

    // MARK: Observation

    /// Requests served so far for a verb (`LIST`, `WATCH`, `GET`, `CREATE`, `UPDATE`, `PATCH`, `DELETE`) on a
    /// resource (`pods`, `leases.coordination.k8s.io`).
    public func requestCount(_ verb: String, _ resource: String) -> Int {
        faults.withLock { $0.counts["\(verb) \(resource)"] ?? 0 }
    }

    /// The number of watches open now.
    public var openWatchCount: Int { store.openWatchCount }

    /// The current global resourceVersion.
    public var resourceVersion: Int64 { store.currentResourceVersion }

    /// Creates an object directly (as another client would), returning the stored JSON.
    ///
    /// - Throws: ``DoubleError`` with the API's message when the object is refused.
    @discardableResult
    public func create(_ object: JSONValue) throws -> JSONValue {
        let resource = try served(object)
        do {
            return try store.create(resource, namespace: resource.type.namespaced ? (object["metadata"]?["namespace"]?.stringValue ?? "default") : nil, body: object)
        } catch {
            throw DoubleError(error.status.message ?? "refused")
        }
    }

    /// Creates a typed object directly.
    @discardableResult
    public func create<T: KubeResource>(_ object: T) throws -> JSONValue {
        try create(try ResourceCodec.encodeValue(object))
    }

    /// The stored JSON of an object, or nil.
    public func object(_ type: ResourceType, namespace: String?, name: String) -> JSONValue? {
        guard let resource = Catalog.resource(group: type.group, version: type.version, plural: type.plural) else { return nil }
        return try? store.get(resource, namespace: namespace, name: name)
    }

    /// Applies a merge patch directly, as another client would.
    @discardableResult
    public func mergePatch(_ type: ResourceType, namespace: String?, name: String, _ patch: JSONValue, status: Bool = false) throws -> JSONValue {
        guard let resource = Catalog.resource(group: type.group, version: type.version, plural: type.plural) else {
            throw DoubleError("\(type) is not served")
        }
        do {
            return try store.patch(
                resource, namespace: namespace, name: name, contentType: "application/merge-patch+json", body: patch.serialized(),
                target: status ? .status : .main)
        } catch {
            throw DoubleError(error.status.message ?? "refused")
        }
    }

    /// Deletes an object directly (grace 0), as another client would.
    public func delete(_ type: ResourceType, namespace: String?, name: String) throws {
        guard let resource = Catalog.resource(group: type.group, version: type.version, plural: type.plural) else {
            throw DoubleError("\(type) is not served")
        }
        do {
            _ = try store.delete(resource, namespace: namespace, name: name, options: ["gracePeriodSeconds": 0])
        } catch {
            throw DoubleError(error.status.message ?? "refused")
        }
    }

    private func served(_ object: JSONValue) throws -> ServedResource {
        let apiVersion = object["apiVersion"]?.stringValue ?? ""
        let kind = object["kind"]?.stringValue ?? ""
        guard let resource = Catalog.resources.first(where: { $0.type.apiVersion == apiVersion && $0.type.kind == kind }) else {
            throw DoubleError("\(apiVersion) \(kind) is not served by the double")
        }
        return resource
    }

    // MARK: Client configuration

    /// A kubeconfig (YAML) for this double with inline data: the CA when HTTPS, a client certificate when
    /// `clientCertificate` (required in `.clientCertificates` mode), the bearer token when configured.
    public func kubeconfig(user: String = "node-agent", groups: [String] = ["system:nodes"], clientCertificate: Bool? = nil) throws -> String {
        var cluster = "    server: \(url.absoluteString)\n"
        if let pki { cluster += "    certificate-authority-data: \(Data(pki.caCertificatePEM.utf8).base64EncodedString())\n" }
        var userBody = ""
        let wantsCertificate = clientCertificate ?? (configuration.tls == .clientCertificates)
        if wantsCertificate, let pki {
            let (certificate, key) = try pki.clientCertificate(user: user, groups: groups)
            userBody += "    client-certificate-data: \(Data(certificate.utf8).base64EncodedString())\n"
            userBody += "    client-key-data: \(Data(key.utf8).base64EncodedString())\n"
        }
        // Without any credential kubectl prompts for a password; an unchecked token keeps it quiet.
        userBody += "    token: \(configuration.bearerToken ?? "double-accepts-any-token")\n"
        return """
            apiVersion: v1
            kind: Config
            clusters:
            - name: double
              cluster:
            \(cluster.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            users:
            - name: \(user)
              user:
            \(userBody.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            contexts:
            - name: double
              context:
                cluster: double
                user: \(user)
                namespace: default
            current-context: double

            """
    }

    /// Writes ``kubeconfig(user:groups:clientCertificate:)`` to `path` (mode 0600).
    public func writeKubeconfig(to path: String, clientCertificate: Bool? = nil) throws {
        let text = try kubeconfig(clientCertificate: clientCertificate)
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
    }

    /// A client configuration for this double (through the same kubeconfig path a user would take).
    public func clientConfiguration(clientCertificate: Bool? = nil) throws -> ClientConfiguration {
        try Kubeconfig.parse(try kubeconfig(clientCertificate: clientCertificate), path: "<double>")
    }

    // MARK: Serving

    /// Applies faults to an API request; returns a failure to answer with, if any.
    func admit(verb: String, isWatch: Bool, isResource: Bool) async -> APIFailure? {
        let mustHold = faults.withLock { faults in faults.hold.map { $0 == .all || ($0 == .watches && isWatch) } ?? false }
        if mustHold {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = faults.withLock { faults -> Bool in
                    guard faults.hold != nil, !faults.stopping else { return true }
                    faults.held.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
        let failure = faults.withLock { faults -> (code: Int, retryAfter: Int?, verb: String?)? in
            guard isResource, let first = faults.failures.first, first.verb == nil || first.verb == verb else { return nil }
            return faults.failures.removeFirst()
        }
        if let failure {
            var refusal = APIFailure(failure.code, KubeClient.defaultReason(failure.code), "injected failure \(failure.code)")
            refusal.status.details = failure.retryAfter.map { StatusDetails(retryAfterSeconds: $0) }
            return refusal
        }
        return nil
    }

    func count(_ verb: String, _ resource: String) {
        faults.withLock { $0.counts["\(verb) \(resource)", default: 0] += 1 }
    }

    var isStopping: Bool { faults.withLock { $0.stopping } }
    var expiredAsHTTPStatus: Bool { faults.withLock { $0.expiredAsHTTPStatus } }
}

/// Lets the responder reach the double, which is built after the server starts.
final class DoubleBox: Sendable {
    let double = Mutex<APIServerDouble?>(nil)
}

/// A failure of the double's own API (not an HTTP answer).
public struct DoubleError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
