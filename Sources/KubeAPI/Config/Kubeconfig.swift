public import Foundation
import Yams

/// A kubeconfig file set, resolved the way kubectl and the kubelet resolve it.
///
/// Order: an explicit path (`--kubeconfig`, which must exist), else every file of `KUBECONFIG` (a colon list;
/// missing files are skipped; the first file to define a cluster, user, context or `current-context` wins),
/// else `~/.kube/config`, else the in-cluster service account (`KUBERNETES_SERVICE_HOST`/`_PORT`).
public enum Kubeconfig {
    /// Loads and resolves a configuration.
    ///
    /// - Parameters:
    ///   - explicitPath: the `--kubeconfig` flag.
    ///   - context: a context to use instead of `current-context`.
    ///   - environment: the process environment (`KUBECONFIG`, `HOME`, `KUBERNETES_SERVICE_*`).
    ///   - serviceAccountDirectory: where the in-cluster token, CA and namespace live.
    /// - Throws: ``KubeAPIError`` naming the file, the entry and the field at fault, or listing where it looked.
    public static func load(
        explicitPath: String? = nil,
        context: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws -> ClientConfiguration {
        let candidates = KubeconfigLocator.candidates(explicit: explicitPath, environment: environment)
        var files: [KubeconfigFile] = []
        for path in candidates {
            let exists = FileManager.default.fileExists(atPath: path)
            if !exists {
                if let explicitPath, !explicitPath.isEmpty {
                    throw KubeAPIError.kubeconfig(file: path, entry: nil, field: nil, problem: "file does not exist (given with --kubeconfig)")
                }
                continue
            }
            files.append(try KubeconfigFile.read(path: path))
        }
        if files.isEmpty {
            if let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] {
                return try inCluster(host: host, port: port, directory: serviceAccountDirectory)
            }
            let looked = candidates.isEmpty ? "no candidate (HOME unset)" : candidates.joined(separator: ", ")
            throw KubeAPIError.kubeconfig(
                file: looked, entry: nil, field: nil,
                problem: "no kubeconfig found and not running in a cluster; pass --kubeconfig or set KUBECONFIG")
        }
        return try resolve(files: files, context: context)
    }

    /// Parses kubeconfig text (for tests and for callers holding the bytes); relative paths resolve against `directory`.
    public static func parse(_ text: String, path: String = "<memory>", directory: String = ".", context: String? = nil) throws -> ClientConfiguration {
        try resolve(files: [try KubeconfigFile.parse(text, path: path, directory: directory)], context: context)
    }

    /// The in-cluster configuration from the service-account files.
    ///
    /// - Throws: ``KubeAPIError`` when the token or CA file cannot be read.
    public static func inCluster(host: String, port: String, directory: String) throws -> ClientConfiguration {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        guard let url = URL(string: "https://\(hostPart):\(port)") else {
            throw KubeAPIError.kubeconfig(
                file: "in-cluster", entry: nil, field: "KUBERNETES_SERVICE_HOST", problem: "\(host):\(port) is not a host and port")
        }
        var configuration = ClientConfiguration(server: url)
        let tokenPath = directory + "/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw KubeAPIError.kubeconfig(file: "in-cluster", entry: nil, field: "token", problem: "cannot read \(tokenPath)")
        }
        configuration.credentials = .tokenFile(tokenPath)
        let caPath = directory + "/ca.crt"
        guard let ca = FileManager.default.contents(atPath: caPath) else {
            throw KubeAPIError.kubeconfig(file: "in-cluster", entry: nil, field: "ca.crt", problem: "cannot read \(caPath)")
        }
        configuration.certificateAuthorityPEM = Array(ca)
        if let namespace = FileManager.default.contents(atPath: directory + "/namespace") {
            let text = String(decoding: namespace, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { configuration.namespace = text }
        }
        configuration.source = "in-cluster service account \(directory)"
        return configuration
    }

    static func resolve(files: [KubeconfigFile], context requested: String?) throws -> ClientConfiguration {
        // First file wins per key.
        var clusters: [String: (KubeconfigFile, KubeconfigFile.NamedCluster)] = [:]
        var users: [String: (KubeconfigFile, KubeconfigFile.NamedUser)] = [:]
        var contexts: [String: (KubeconfigFile, KubeconfigFile.NamedContext)] = [:]
        var currentContext: (KubeconfigFile, String)?
        for file in files {
            for cluster in file.content.clusters ?? [] where clusters[cluster.name] == nil { clusters[cluster.name] = (file, cluster) }
            for user in file.content.users ?? [] where users[user.name] == nil { users[user.name] = (file, user) }
            for context in file.content.contexts ?? [] where contexts[context.name] == nil { contexts[context.name] = (file, context) }
            if currentContext == nil, let name = file.content.currentContext, !name.isEmpty { currentContext = (file, name) }
        }
        let firstFile = files[0].path
        guard let contextName = requested ?? currentContext?.1 else {
            throw KubeAPIError.kubeconfig(file: firstFile, entry: nil, field: "current-context", problem: "not set and no context was requested")
        }
        guard let (contextFile, namedContext) = contexts[contextName] else {
            throw KubeAPIError.kubeconfig(
                file: currentContext?.0.path ?? firstFile, entry: nil, field: "current-context",
                problem: "names context \"\(contextName)\" which no file defines")
        }
        let contextEntry = "contexts[\(contextName)]"
        guard let context = namedContext.context else {
            throw KubeAPIError.kubeconfig(file: contextFile.path, entry: contextEntry, field: "context", problem: "missing")
        }
        guard let clusterName = context.cluster, !clusterName.isEmpty else {
            throw KubeAPIError.kubeconfig(file: contextFile.path, entry: contextEntry, field: "cluster", problem: "missing")
        }
        guard let (clusterFile, namedCluster) = clusters[clusterName] else {
            throw KubeAPIError.kubeconfig(
                file: contextFile.path, entry: contextEntry, field: "cluster", problem: "names cluster \"\(clusterName)\" which no file defines")
        }
        let clusterEntry = "clusters[\(clusterName)]"
        guard let cluster = namedCluster.cluster else {
            throw KubeAPIError.kubeconfig(file: clusterFile.path, entry: clusterEntry, field: "cluster", problem: "missing")
        }
        guard let serverText = cluster.server, !serverText.isEmpty else {
            throw KubeAPIError.kubeconfig(file: clusterFile.path, entry: clusterEntry, field: "server", problem: "missing")
        }
        guard let server = URL(string: serverText), let scheme = server.scheme, scheme == "https" || scheme == "http", server.host != nil else {
            throw KubeAPIError.kubeconfig(
                file: clusterFile.path, entry: clusterEntry, field: "server", problem: "\"\(serverText)\" is not an http(s)://host[:port] URL")
        }
        var configuration = ClientConfiguration(server: server)
        configuration.insecureSkipTLSVerify = cluster.insecureSkipTLSVerify ?? false
        configuration.tlsServerName = cluster.tlsServerName
        configuration.certificateAuthorityPEM = try clusterFile.bytes(
            inline: cluster.certificateAuthorityData, inlineField: "certificate-authority-data",
            path: cluster.certificateAuthority, pathField: "certificate-authority", entry: clusterEntry)
        if configuration.insecureSkipTLSVerify, configuration.certificateAuthorityPEM != nil {
            throw KubeAPIError.kubeconfig(
                file: clusterFile.path, entry: clusterEntry, field: "insecure-skip-tls-verify",
                problem: "cannot be combined with a certificate authority; remove one of them")
        }

        if let userName = context.user, !userName.isEmpty {
            guard let (userFile, namedUser) = users[userName] else {
                throw KubeAPIError.kubeconfig(
                    file: contextFile.path, entry: contextEntry, field: "user", problem: "names user \"\(userName)\" which no file defines")
            }
            let userEntry = "users[\(userName)]"
            let user = namedUser.user ?? KubeconfigFile.User()
            configuration.clientCertificatePEM = try userFile.bytes(
                inline: user.clientCertificateData, inlineField: "client-certificate-data",
                path: user.clientCertificate, pathField: "client-certificate", entry: userEntry)
            configuration.clientKeyPEM = try userFile.bytes(
                inline: user.clientKeyData, inlineField: "client-key-data",
                path: user.clientKey, pathField: "client-key", entry: userEntry)
            if (configuration.clientCertificatePEM == nil) != (configuration.clientKeyPEM == nil) {
                throw KubeAPIError.kubeconfig(
                    file: userFile.path, entry: userEntry,
                    field: configuration.clientCertificatePEM == nil ? "client-certificate" : "client-key",
                    problem: "a client certificate needs both a certificate and a key")
            }
            if let token = user.token, !token.isEmpty {
                configuration.credentials = .token(token)
            } else if let tokenFile = user.tokenFile, !tokenFile.isEmpty {
                let resolved = userFile.resolve(tokenFile)
                guard FileManager.default.isReadableFile(atPath: resolved) else {
                    throw KubeAPIError.kubeconfig(file: userFile.path, entry: userEntry, field: "tokenFile", problem: "cannot read \(resolved)")
                }
                configuration.credentials = .tokenFile(resolved)
            } else if let username = user.username, let password = user.password {
                configuration.credentials = .basic(username: username, password: password)
            }
            if user.exec != nil, configuration.credentials == .none, configuration.clientCertificatePEM == nil {
                throw KubeAPIError.kubeconfig(
                    file: userFile.path, entry: userEntry, field: "exec",
                    problem: "exec credential plugins are not supported; use a token, tokenFile or client certificate")
            }
        }
        if let namespace = context.namespace, !namespace.isEmpty { configuration.namespace = namespace }
        configuration.source = "kubeconfig \(contextFile.path), context \(contextName)"
        return configuration
    }
}

/// One kubeconfig file as written.
struct KubeconfigFile {
    let path: String
    let directory: String
    let content: Content

    struct Content: Decodable {
        var clusters: [NamedCluster]?
        var users: [NamedUser]?
        var contexts: [NamedContext]?
        var currentContext: String?

        enum CodingKeys: String, CodingKey {
            case clusters, users, contexts
            case currentContext = "current-context"
        }
    }

    struct NamedCluster: Decodable {
        var name: String
        var cluster: Cluster?
    }

    struct Cluster: Decodable {
        var server: String?
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        var tlsServerName: String?

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
        }
    }

    struct NamedUser: Decodable {
        var name: String
        var user: User?
    }

    struct User: Decodable {
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var token: String?
        var tokenFile: String?
        var username: String?
        var password: String?
        var exec: ExecConfig?

        enum CodingKeys: String, CodingKey {
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case token, tokenFile, username, password, exec
        }

        init() {}
    }

    /// Only recognised so that an exec plugin gets a clear "not supported" error.
    struct ExecConfig: Decodable {
        var command: String?
    }

    struct NamedContext: Decodable {
        var name: String
        var context: Context?
    }

    struct Context: Decodable {
        var cluster: String?
        var user: String?
        var namespace: String?
    }

    static func read(path: String) throws -> KubeconfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KubeAPIError.kubeconfig(file: path, entry: nil, field: nil, problem: "cannot be read (check permissions)")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(String(decoding: data, as: UTF8.self), path: path, directory: directory)
    }

    static func parse(_ text: String, path: String, directory: String) throws -> KubeconfigFile {
        do {
            let content = try YAMLDecoder().decode(Content.self, from: text)
            return KubeconfigFile(path: path, directory: directory, content: content)
        } catch let error as DecodingError {
            throw KubeAPIError.kubeconfig(file: path, entry: nil, field: nil, problem: "not a valid kubeconfig: \(DecodingErrorDescription(error))")
        } catch {
            throw KubeAPIError.kubeconfig(file: path, entry: nil, field: nil, problem: "not valid YAML: \(error)")
        }
    }

    /// A path as written, resolved against this file's folder when relative.
    func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        if path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"] { return home + path.dropFirst(1) }
        return URL(fileURLWithPath: directory).appendingPathComponent(path).path
    }

    /// The bytes of a `-data` field (base64) or of the file a path field names; the inline field wins.
    func bytes(inline: String?, inlineField: String, path: String?, pathField: String, entry: String) throws -> [UInt8]? {
        if let inline, !inline.isEmpty {
            let compact = inline.filter { !$0.isWhitespace }
            guard let data = Data(base64Encoded: compact) else {
                throw KubeAPIError.kubeconfig(file: self.path, entry: entry, field: inlineField, problem: "is not valid base64")
            }
            return Array(data)
        }
        if let path, !path.isEmpty {
            let resolved = resolve(path)
            guard let data = FileManager.default.contents(atPath: resolved) else {
                throw KubeAPIError.kubeconfig(file: self.path, entry: entry, field: pathField, problem: "cannot read \(resolved)")
            }
            return Array(data)
        }
        return nil
    }
}
