import Foundation
import KubeAPI
import NodeAgentTesting
import Testing

@Suite("TLS: server verification and client certificates")
struct TLSTests {
    @Test("HTTPS with the kubeconfig's CA and a client certificate works end to end")
    func clientCertificates() async throws {
        try await withDouble(.init(tls: .clientCertificates)) { double, client in
            #expect(double.url.scheme == "https")
            #expect(client.configuration.clientCertificatePEM != nil)
            let created = try await client.create(ConfigMap(metadata: ObjectMeta(name: "tls", namespace: "default"), data: ["a": "b"]))
            #expect(created.data == ["a": "b"])
        }
    }

    @Test("a server that requires client certificates refuses a client without one")
    func missingClientCertificate() async throws {
        let configuration = APIServerDouble.Configuration(tls: .clientCertificates)
        let double = try await APIServerDouble.start(configuration)
        var clientConfiguration = try double.clientConfiguration(clientCertificate: false)
        clientConfiguration.requestTimeout = .seconds(5)
        let client = try KubeClient(configuration: clientConfiguration, logger: testLogger())
        do {
            #expect(client.configuration.clientCertificatePEM == nil)
            do {
                _ = try await client.list(Namespace.self)
                Issue.record("expected the handshake to fail")
            } catch let error as KubeAPIError {
                #expect(error.isTransport)
            }
        }
        try await client.shutdown()
        await double.stop()
    }

    @Test("the client refuses a server whose certificate is not signed by the configured CA")
    func wrongCA() async throws {
        let double = try await APIServerDouble.start(.init(tls: .serverOnly))
        let otherPKI = try TestPKI(commonName: "someone else's CA")
        var configuration = try double.clientConfiguration()
        configuration.certificateAuthorityPEM = Array(otherPKI.caCertificatePEM.utf8)
        configuration.requestTimeout = .seconds(5)
        let client = try KubeClient(configuration: configuration, logger: testLogger())
        do {
            _ = try await client.list(Namespace.self)
            Issue.record("expected verification to fail")
        } catch let error as KubeAPIError {
            #expect(error.isTransport)
        }
        // insecure-skip-tls-verify turns verification off (and is the only way past a wrong CA).
        var insecure = configuration
        insecure.certificateAuthorityPEM = nil
        insecure.insecureSkipTLSVerify = true
        let insecureClient = try KubeClient(configuration: insecure, logger: testLogger())
        #expect(try await insecureClient.list(Namespace.self).items.count == 4)
        try await client.shutdown()
        try await insecureClient.shutdown()
        await double.stop()
    }

    @Test("tls-server-name verifies the certificate against that name while connecting to the URL's address")
    func serverName() async throws {
        var doubleConfiguration = APIServerDouble.Configuration(tls: .serverOnly)
        doubleConfiguration.certificateHosts = ["apiserver.nakube.test"]  // no IP address in the certificate
        let double = try await APIServerDouble.start(doubleConfiguration)
        var configuration = try double.clientConfiguration()
        configuration.requestTimeout = .seconds(5)
        let plain = try KubeClient(configuration: configuration, logger: testLogger())
        await #expect(throws: KubeAPIError.self, "127.0.0.1 is not in the certificate") { _ = try await plain.list(Namespace.self) }
        configuration.tlsServerName = "apiserver.nakube.test"
        let named = try KubeClient(configuration: configuration, logger: testLogger())
        #expect(try await named.list(Namespace.self).items.count == 4)
        try await plain.shutdown()
        try await named.shutdown()
        await double.stop()
    }

    @Test("a CA or key that is not PEM is reported naming the field")
    func badPEM() throws {
        var configuration = ClientConfiguration(server: URL(string: "https://127.0.0.1:6443")!)
        configuration.certificateAuthorityPEM = Array("not a certificate".utf8)
        do {
            _ = try KubeClient(configuration: configuration, logger: testLogger())
            Issue.record("expected an error")
        } catch let error as KubeAPIError {
            #expect(error.message.contains("certificate-authority"))
        }
    }
}
