import Foundation
import KubeAPI
import Testing

@Suite("kubeconfig")
final class KubeconfigTests {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "nakube-kubeconfig-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func write(_ name: String, _ text: String) -> String {
        let path = folder + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    static let caPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

    func config(server: String = "https://10.0.0.1:6443", cluster: String = "", user: String = "", context: String = "namespace: team") -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: c1
          cluster:
            server: \(server)
        \(cluster)
        users:
        - name: u1
          user:
        \(user.isEmpty ? "    token: abc" : user)
        contexts:
        - name: ctx
          context:
            cluster: c1
            user: u1
            \(context)
        current-context: ctx
        """
    }

    @Test("reads server, inline CA, token and namespace from the current context")
    func basicFields() throws {
        let ca = Data(Self.caPEM.utf8).base64EncodedString()
        let path = write("config", config(cluster: "    certificate-authority-data: \(ca)\n    tls-server-name: api.internal"))
        let configuration = try Kubeconfig.load(explicitPath: path, environment: [:])
        #expect(configuration.server.absoluteString == "https://10.0.0.1:6443")
        #expect(configuration.certificateAuthorityPEM == Array(Self.caPEM.utf8))
        #expect(configuration.tlsServerName == "api.internal")
        #expect(configuration.credentials == .token("abc"))
        #expect(configuration.namespace == "team")
        #expect(configuration.insecureSkipTLSVerify == false)
    }

    @Test("resolves certificate, key and tokenFile paths against the kubeconfig's folder")
    func relativePaths() throws {
        _ = write("ca.crt", Self.caPEM)
        _ = write("client.crt", "CERT")
        _ = write("client.key", "KEY")
        _ = write("token", "file-token\n")
        let path = write(
            "config",
            config(
                cluster: "    certificate-authority: ca.crt",
                user: "    client-certificate: client.crt\n    client-key: client.key\n    tokenFile: token"))
        let configuration = try Kubeconfig.load(explicitPath: path, environment: [:])
        #expect(configuration.certificateAuthorityPEM == Array(Self.caPEM.utf8))
        #expect(configuration.clientCertificatePEM == Array("CERT".utf8))
        #expect(configuration.clientKeyPEM == Array("KEY".utf8))
        #expect(configuration.credentials == .tokenFile(folder + "/token"))
    }

    @Test("insecure-skip-tls-verify and inline client certificate data are read")
    func insecureAndInlineClientData() throws {
        let path = write(
            "config",
            config(
                cluster: "    insecure-skip-tls-verify: true",
                user: "    client-certificate-data: \(Data("CERT".utf8).base64EncodedString())\n    client-key-data: \(Data("KEY".utf8).base64EncodedString())"))
        let configuration = try Kubeconfig.load(explicitPath: path, environment: [:])
        #expect(configuration.insecureSkipTLSVerify)
        #expect(configuration.clientCertificatePEM == Array("CERT".utf8))
        #expect(configuration.clientKeyPEM == Array("KEY".utf8))
    }

    @Test("KUBECONFIG lists merge with the first file winning per entry and missing files skipped")
    func kubeconfigListMerge() throws {
        let first = write(
            "a",
            """
            clusters:
            - name: c1
              cluster: {server: "https://first:6443"}
            current-context: ctx
            """)
        let second = write(
            "b",
            """
            clusters:
            - name: c1
              cluster: {server: "https://second:6443"}
            users:
            - name: u1
              user: {token: t2}
            contexts:
            - name: ctx
              context: {cluster: c1, user: u1}
            current-context: other
            """)
        let configuration = try Kubeconfig.load(environment: ["KUBECONFIG": "\(folder)/missing:\(first):\(second)"])
        #expect(configuration.server.host == "first")
        #expect(configuration.credentials == .token("t2"))
        #expect(configuration.namespace == "default")
    }

    @Test("falls back to ~/.kube/config, then to the in-cluster service account")
    func fallbacks() throws {
        let home = folder + "/home"
        try FileManager.default.createDirectory(atPath: home + "/.kube", withIntermediateDirectories: true)
        _ = write("home/.kube/config", config(server: "https://home:6443"))
        #expect(try Kubeconfig.load(environment: ["HOME": home]).server.host == "home")

        let serviceAccount = folder + "/sa"
        try FileManager.default.createDirectory(atPath: serviceAccount, withIntermediateDirectories: true)
        _ = write("sa/token", "sa-token")
        _ = write("sa/ca.crt", Self.caPEM)
        _ = write("sa/namespace", "kube-system\n")
        let inCluster = try Kubeconfig.load(
            environment: ["HOME": folder + "/nohome", "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
            serviceAccountDirectory: serviceAccount)
        #expect(inCluster.server.absoluteString == "https://10.96.0.1:443")
        #expect(inCluster.credentials == .tokenFile(serviceAccount + "/token"))
        #expect(inCluster.namespace == "kube-system")
    }

    func expectError(_ text: String, contains fragments: [String], explicit: Bool = true) {
        let path = write("broken-\(UUID().uuidString)", text)
        do {
            _ = try Kubeconfig.load(explicitPath: path, environment: [:])
            Issue.record("expected an error mentioning \(fragments)")
        } catch let error as KubeAPIError {
            #expect(error.isKubeconfig)
            #expect(error.message.contains(path), "message names the file: \(error.message)")
            for fragment in fragments {
                #expect(error.message.contains(fragment), "message \(error.message) should contain \(fragment)")
            }
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("each broken field gets an error naming the file, the entry and the field")
    func errors() {
        expectError(config(server: ""), contains: ["clusters[c1]", "server", "missing"])
        expectError(config(server: "ftp://x"), contains: ["clusters[c1]", "server"])
        expectError(config(cluster: "    certificate-authority-data: '%%%'"), contains: ["clusters[c1]", "certificate-authority-data", "base64"])
        expectError(config(cluster: "    certificate-authority: /nonexistent/ca.crt"), contains: ["certificate-authority", "/nonexistent/ca.crt"])
        expectError(config(user: "    client-certificate-data: \(Data("C".utf8).base64EncodedString())"), contains: ["users[u1]", "client"])
        expectError(config(user: "    client-key-data: '***'"), contains: ["users[u1]", "client-key-data"])
        expectError(config(user: "    tokenFile: /nonexistent/token"), contains: ["users[u1]", "tokenFile"])
        expectError(config(user: "    exec: {command: aws}"), contains: ["users[u1]", "exec"])
        expectError(
            config(cluster: "    insecure-skip-tls-verify: true\n    certificate-authority-data: \(Data("x".utf8).base64EncodedString())"),
            contains: ["insecure-skip-tls-verify"])
        expectError(config().replacingOccurrences(of: "cluster: c1", with: "cluster: nope"), contains: ["contexts[ctx]", "cluster", "nope"])
        expectError(config().replacingOccurrences(of: "user: u1", with: "user: nobody"), contains: ["contexts[ctx]", "user", "nobody"])
        expectError(config().replacingOccurrences(of: "current-context: ctx", with: "current-context: gone"), contains: ["current-context", "gone"])
        expectError("clusters: [unterminated", contains: ["YAML"])
        expectError("clusters: 5", contains: ["clusters"])
    }

    @Test("an explicit kubeconfig that does not exist is an error, not a fallback")
    func explicitMissing() {
        #expect(throws: KubeAPIError.self) {
            _ = try Kubeconfig.load(explicitPath: folder + "/nope", environment: ["KUBERNETES_SERVICE_HOST": "x", "KUBERNETES_SERVICE_PORT": "1"])
        }
    }

    @Test("nothing found anywhere names where it looked")
    func nothingFound() {
        do {
            _ = try Kubeconfig.load(environment: ["HOME": folder + "/empty"])
            Issue.record("expected an error")
        } catch let error as KubeAPIError {
            #expect(error.message.contains(folder + "/empty/.kube/config"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
