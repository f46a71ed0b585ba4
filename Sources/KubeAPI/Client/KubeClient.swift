public import AsyncHTTPClient
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// A Kubernetes API client over HTTP(S): TLS against the configured CA, client certificates, bearer tokens,
/// QPS/burst limiting, request timeouts, and errors decoded from the API's `Status`.
///
/// Create one per API server and call ``shutdown()`` when done.
public final class KubeClient: KubeClientProtocol {
    public let configuration: ClientConfiguration
    private let http: HTTPClient
    /// `scheme://host:port[/prefix]` as requests are addressed (the TLS server name replaces the host when set).
    private let base: String
    private let limiter: RateLimiter
    private let tokens: TokenSource
    private let logger: Logger
    /// Remember each object's JSON so writes keep fields this model does not know.
    public let keepUnknownFields: Bool

    /// Builds the client and its connection pool.
    ///
    /// - Throws: ``KubeAPIError`` when the CA, client certificate or key is not valid PEM.
    public init(configuration: ClientConfiguration, keepUnknownFields: Bool = true, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.keepUnknownFields = keepUnknownFields
        self.limiter = RateLimiter(qps: configuration.qps, burst: configuration.burst)
        self.tokens = TokenSource(configuration.credentials)

        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.timeout = .init(connect: .seconds(10))
        httpConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        // Fail fast when the apiserver refuses connections, as client-go does: AsyncHTTPClient would otherwise keep
        // reconnecting until the request deadline, and one heartbeat attempt would stall a whole renewal interval.
        httpConfiguration.connectionPool.retryConnectionEstablishment = false
        httpConfiguration.httpVersion = .http1Only
        // encodedHost, not host: the latter decodes IDNA through ICU, whose code and tables then stay resident.
        guard let components = URLComponents(url: configuration.server, resolvingAgainstBaseURL: false), let host = components.encodedHost else {
            throw KubeAPIError.invalidRequest("server URL \(configuration.server) has no host")
        }
        var requestHost = host
        if components.scheme == "https" {
            httpConfiguration.tlsConfiguration = try Self.tlsConfiguration(configuration)
            if let serverName = configuration.tlsServerName, !serverName.isEmpty, serverName != host {
                // Address the request to the TLS name (for SNI and verification) and connect to the real host.
                httpConfiguration.dnsOverride = [serverName: host]
                requestHost = serverName
            }
        }
        var baseText = "\(components.scheme ?? "https")://\(Self.bracketed(requestHost))"
        if let port = components.port { baseText += ":\(port)" }
        let prefix = components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path
        self.base = baseText + prefix
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
    }

    private static func bracketed(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }

    /// Closes every connection. In-flight requests fail.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    static func tlsConfiguration(_ configuration: ClientConfiguration) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if configuration.insecureSkipTLSVerify {
            tls.certificateVerification = .none
        }
        if let ca = configuration.certificateAuthorityPEM {
            do {
                let certificates = try NIOSSLCertificate.fromPEMBytes(ca)
                guard !certificates.isEmpty else { throw KubeAPIError.invalidRequest("no certificate in the PEM") }
                tls.trustRoots = .certificates(certificates)
            } catch {
                throw KubeAPIError.kubeconfig(
                    file: configuration.source, entry: nil, field: "certificate-authority", problem: "not a PEM certificate bundle: \(error)")
            }
        }
        if let certificatePEM = configuration.clientCertificatePEM, let keyPEM = configuration.clientKeyPEM {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificatePEM).map { .certificate($0) }
            } catch {
                throw KubeAPIError.kubeconfig(
                    file: configuration.source, entry: nil, field: "client-certificate", problem: "not a PEM certificate: \(error)")
            }
            do {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: keyPEM, format: .pem))
            } catch {
                throw KubeAPIError.kubeconfig(file: configuration.source, entry: nil, field: "client-key", problem: "not a PEM private key: \(error)")
            }
        }
        return tls
    }

    // MARK: Verbs

    public func get<T: KubeResource>(_ type: T.Type, namespace: String?, name: String) async throws -> T {
        let path = T.resourceType.path(namespace: try namespaceFor(T.self, namespace), name: name)
        let data = try await send(verb: "GET", method: .GET, path: path)
        return try ResourceCodec.decode(T.self, from: data, keepUnknownFields: keepUnknownFields)
    }

    public func list<T: KubeResource>(_ type: T.Type, namespace: String?, options: ListOptions) async throws -> ResourceList<T> {
        let path = T.resourceType.path(namespace: T.resourceType.namespaced ? namespace : nil)
        let data = try await send(verb: "LIST", method: .GET, path: path, query: options.queryItems)
        return try ResourceCodec.decodeList(T.self, from: data, keepUnknownFields: keepUnknownFields)
    }

    public func create<T: KubeResource>(_ object: T) async throws -> T {
        let path = T.resourceType.path(namespace: try namespaceFor(T.self, object.metadata.namespace))
        let body = try ResourceCodec.encode(object)
        let data = try await send(verb: "CREATE", method: .POST, path: path, body: body, contentType: "application/json")
        return try ResourceCodec.decode(T.self, from: data, keepUnknownFields: keepUnknownFields)
    }

    public func update<T: KubeResource>(_ object: T) async throws -> T {
        try await put(object, subresource: nil)
    }

    public func updateStatus<T: KubeResource>(_ object: T) async throws -> T {
        try await put(object, subresource: "status")
    }

    private func put<T: KubeResource>(_ object: T, subresource: String?) async throws -> T {
        guard let name = object.metadata.name, !name.isEmpty else {
            throw KubeAPIError.invalidRequest("update of a \(T.resourceType.kind) needs metadata.name")
        }
        let path = T.resourceType.path(namespace: try namespaceFor(T.self, object.metadata.namespace), name: name, subresource: subresource)
        let body = try ResourceCodec.encode(object)
        let data = try await send(verb: "UPDATE", method: .PUT, path: path, body: body, contentType: "application/json")
        return try ResourceCodec.decode(T.self, from: data, keepUnknownFields: keepUnknownFields)
    }

    public func patch<T: KubeResource>(_ type: T.Type, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> T {
        let path = T.resourceType.path(namespace: try namespaceFor(T.self, namespace), name: name, subresource: subresource)
        let data = try await send(verb: "PATCH", method: .PATCH, path: path, body: Data(patch.body), contentType: patch.contentType)
        return try ResourceCodec.decode(T.self, from: data, keepUnknownFields: keepUnknownFields)
    }

    public func delete<T: KubeResource>(_ type: T.Type, namespace: String?, name: String, options: DeleteOptions) async throws {
        let path = T.resourceType.path(namespace: try namespaceFor(T.self, namespace), name: name)
        let body = try JSONEncoder().encode(options)
        _ = try await send(verb: "DELETE", method: .DELETE, path: path, body: body, contentType: "application/json")
    }

    public func watch<T: KubeResource>(_ type: T.Type, namespace: String?, options: WatchOptions) async throws -> WatchStream<T> {
        let path = T.resourceType.path(namespace: T.resourceType.namespaced ? namespace : nil)
        let timeout: TimeAmount = .seconds(Int64(options.timeoutSeconds ?? 3600) + 60)
        let response = try await execute(verb: "WATCH", method: .GET, path: path, query: options.queryItems, timeout: timeout)
        if response.status.code >= 300 {
            let body = try? await response.body.collect(upTo: 1 << 20)
            throw KubeAPIError.api(verb: "WATCH", path: path, status: Self.status(from: body, response: response))
        }
        var decoder = WatchEventDecoder<T>(keepUnknownFields: keepUnknownFields, logger: logger)
        let logger = self.logger
        let (stream, continuation) = AsyncThrowingStream<WatchEvent<T>, any Error>.makeStream()
        let reader = Task {
            do {
                for try await chunk in response.body {
                    for event in decoder.feed(chunk.readableBytesView) {
                        continuation.yield(event)
                    }
                }
                continuation.finish()
            } catch {
                logger.debug("watch stream broke", metadata: ["path": "\(path)", "error": "\(error)"])
                continuation.finish(throwing: error is CancellationError ? error : KubeAPIError.transport(verb: "WATCH", path: path, underlying: error))
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return WatchStream(stream)
    }

    // MARK: Raw requests

    /// Sends any request and returns the body of a 2xx answer (discovery, subresources this client does not type).
    ///
    /// - Throws: ``KubeAPIError`` with the server's `Status` for any other answer.
    public func raw(method: String, path: String, query: [(String, String)] = [], body: Data? = nil, contentType: String? = nil) async throws -> Data {
        try await send(verb: method, method: HTTPMethod(rawValue: method), path: path, query: query, body: body, contentType: contentType)
    }

    /// `GET /version`: the server's `gitVersion` and the time its `Date` header says the request was served
    /// (for checking clock skew), plus when the request was sent and answered by our clock.
    ///
    /// - Throws: ``KubeAPIError`` when the server cannot be reached or refuses.
    public func serverVersion() async throws -> (gitVersion: String?, serverDate: Date?, sent: Date, received: Date) {
        let sent = Date()
        let timeout = TimeAmount.nanoseconds(Int64(configuration.requestTimeout.components.seconds) * 1_000_000_000)
        let response = try await execute(verb: "GET", method: .GET, path: "/version", query: [], timeout: timeout)
        let buffer: ByteBuffer
        do {
            buffer = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw KubeAPIError.transport(verb: "GET", path: "/version", underlying: error)
        }
        let received = Date()
        guard (200..<300).contains(Int(response.status.code)) else {
            throw KubeAPIError.api(verb: "GET", path: "/version", status: Self.status(from: buffer, response: response))
        }
        let object = try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
        let date = response.headers.first(name: "Date").flatMap(Self.httpDate)
        return (object?["gitVersion"] as? String, date, sent, received)
    }

    /// Parses an HTTP-date (`Fri, 27 Nov 2026 09:04:16 GMT`).
    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }

    // MARK: Transport

    private func namespaceFor<T: KubeResource>(_ type: T.Type, _ namespace: String?) throws -> String? {
        guard T.resourceType.namespaced else { return nil }
        if let namespace, !namespace.isEmpty { return namespace }
        return configuration.namespace
    }

    private func send(
        verb: String, method: HTTPMethod, path: String, query: [(String, String)] = [], body: Data? = nil, contentType: String? = nil
    ) async throws -> Data {
        var attempt = 0
        while true {
            let timeout = TimeAmount.nanoseconds(Int64(configuration.requestTimeout.components.seconds) * 1_000_000_000)
            let response = try await execute(verb: verb, method: method, path: path, query: query, body: body, contentType: contentType, timeout: timeout)
            let buffer: ByteBuffer
            do {
                buffer = try await response.body.collect(upTo: 1 << 30)
            } catch {
                throw KubeAPIError.transport(verb: verb, path: path, underlying: error)
            }
            let code = Int(response.status.code)
            if (200..<300).contains(code) {
                return Data(buffer.readableBytesView)
            }
            let status = Self.status(from: buffer, response: response)
            let retryAfter = response.headers.first(name: "Retry-After").flatMap { Int($0) }
            if let retryAfter, attempt < configuration.maximumRetryAfterRetries, code == 429 || (code >= 500 && method == .GET) {
                attempt += 1
                logger.debug(
                    "server asked to retry later", metadata: ["verb": "\(verb)", "path": "\(path)", "code": "\(code)", "retryAfter": "\(retryAfter)"])
                try await Task.sleep(for: .seconds(min(max(retryAfter, 0), 10)))
                continue
            }
            throw KubeAPIError.api(verb: verb, path: path, status: status)
        }
    }

    private func execute(
        verb: String, method: HTTPMethod, path: String, query: [(String, String)], body: Data? = nil, contentType: String? = nil,
        timeout: TimeAmount
    ) async throws -> HTTPClientResponse {
        try await limiter.acquire()
        var request = HTTPClientRequest(url: base + path + Self.queryString(query))
        request.method = method
        request.headers.add(name: "User-Agent", value: configuration.userAgent)
        request.headers.add(name: "Accept", value: "application/json")
        if let authorization = try tokens.authorization() {
            request.headers.add(name: "Authorization", value: authorization)
        }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
        }
        do {
            return try await http.execute(request, timeout: timeout, logger: nil)
        } catch {
            throw KubeAPIError.transport(verb: verb, path: path, underlying: error)
        }
    }

    static func queryString(_ items: [(String, String)]) -> String {
        guard !items.isEmpty else { return "" }
        return "?" + items.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }

    private static let queryAllowed: CharacterSet = {
        var set = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        set.insert(charactersIn: "-._~")
        return set
    }()

    private static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: queryAllowed) ?? text
    }

    static func status(from body: ByteBuffer?, response: HTTPClientResponse) -> Status {
        let code = Int(response.status.code)
        if let body, body.readableBytes > 0, let status = try? JSONDecoder().decode(Status.self, from: Data(body.readableBytesView)),
            status.kind == "Status" || status.reason != nil
        {
            var status = status
            if status.code == nil { status.code = code }
            return status
        }
        let text = body.map { String(decoding: $0.readableBytesView.prefix(512), as: UTF8.self) } ?? ""
        return Status(
            status: "Failure", message: text.isEmpty ? response.status.reasonPhrase : text,
            reason: defaultReason(code), code: code)
    }

    /// The `Status` reason the API uses for an HTTP code.
    public static func defaultReason(_ code: Int) -> String {
        switch code {
        case 400: "BadRequest"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "NotFound"
        case 405: "MethodNotAllowed"
        case 409: "Conflict"
        case 410: "Expired"
        case 415: "UnsupportedMediaType"
        case 422: "Invalid"
        case 429: "TooManyRequests"
        case 500: "InternalError"
        case 503: "ServiceUnavailable"
        case 504: "Timeout"
        default: "Unknown"
        }
    }
}
