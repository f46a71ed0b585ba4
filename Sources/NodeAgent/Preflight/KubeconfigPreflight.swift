import Foundation
import KubeAPI
import Logging
import X509

/// The kubeconfig items of `node-agent preflight --kubeconfig FILE`: readable, the server reachable, the client
/// certificate valid and not expiring within 30 days, the node's identity allowed to get its Node, and the clock
/// within a second of the apiserver's.
struct KubeconfigPreflight: Sendable {
    var path: String
    var nodeName: String
    var now: @Sendable () -> Date = { Date() }

    func check() async -> [PreflightResult] {
        let configuration: ClientConfiguration
        do {
            configuration = try Kubeconfig.load(explicitPath: path)
        } catch {
            return [
                PreflightResult(
                    id: "kubeconfig/readable", status: .fail, found: "\(error)", expected: "a readable, valid kubeconfig",
                    remedy: "fix the field named, or point --kubeconfig at the node's kubeconfig")
            ]
        }
        var results = [PreflightResult(id: "kubeconfig/readable", status: .pass, found: "\(path) (server \(configuration.server.absoluteString))", expected: "a readable, valid kubeconfig")]
        results.append(certificateCheck(configuration))

        var quick = configuration
        quick.requestTimeout = .seconds(10)
        let client: KubeClient
        do {
            client = try KubeClient(configuration: quick, logger: Logger(label: "preflight") { _ in SwiftLogNoOpLogHandler() })
        } catch {
            results.append(PreflightResult(id: "kubeconfig/server", status: .fail, found: "\(error)", expected: "the apiserver answering", remedy: "fix the kubeconfig's TLS settings"))
            return results
        }
        results += await serverChecks(client, server: configuration.server.absoluteString)
        try? await client.shutdown()
        return results
    }

    /// Reachability, clock skew and the node identity's access, over one client.
    private func serverChecks(_ client: KubeClient, server: String) async -> [PreflightResult] {
        var results: [PreflightResult] = []
        do {
            let version = try await client.serverVersion()
            results.append(
                PreflightResult(
                    id: "kubeconfig/server", status: .pass, found: "\(server) answered (\(version.gitVersion ?? "version unknown"))",
                    expected: "the apiserver answering"))
            results.append(Self.skewCheck(serverDate: version.serverDate, sent: version.sent, received: version.received))
        } catch {
            results.append(
                PreflightResult(
                    id: "kubeconfig/server", status: .fail, found: "\(error)", expected: "the apiserver answering",
                    remedy: "check the address, the firewall, and that the CA in the kubeconfig signs the server's certificate"))
            return results
        }
        do {
            _ = try await client.get(Node.self, namespace: nil, name: nodeName)
            results.append(PreflightResult(id: "kubeconfig/node-access", status: .pass, found: "may get node \(nodeName)", expected: "may get node \(nodeName)"))
        } catch let error as KubeAPIError where error.isNotFound {
            results.append(
                PreflightResult(
                    id: "kubeconfig/node-access", status: .pass, found: "may get node \(nodeName) (not registered yet)", expected: "may get node \(nodeName)"))
        } catch {
            results.append(
                PreflightResult(
                    id: "kubeconfig/node-access", status: .fail, found: "\(error)", expected: "may get node \(nodeName)",
                    remedy: "the credentials must be the node's: user system:node:\(nodeName) in group system:nodes (or an identity RBAC allows to get nodes)"))
        }
        return results
    }

    /// The client certificate's validity window against now and 30 days from now.
    func certificateCheck(_ configuration: ClientConfiguration) -> PreflightResult {
        let id = "kubeconfig/client-certificate"
        guard let pem = configuration.clientCertificatePEM else {
            return PreflightResult(id: id, status: .pass, found: "no client certificate (token or no authentication)", expected: "valid for 30 more days")
        }
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: String(decoding: pem, as: UTF8.self))
        } catch {
            return PreflightResult(id: id, status: .fail, found: "unreadable: \(error)", expected: "a PEM certificate", remedy: "fix client-certificate(-data) in the kubeconfig")
        }
        let now = now()
        let until = certificate.notValidAfter
        let format = ISO8601DateFormatter()
        if certificate.notValidBefore > now {
            return PreflightResult(
                id: id, status: .fail, found: "not valid before \(format.string(from: certificate.notValidBefore))", expected: "valid now",
                remedy: "check the clock, or issue a new certificate")
        }
        if until <= now {
            return PreflightResult(
                id: id, status: .fail, found: "expired \(format.string(from: until))", expected: "valid for 30 more days",
                remedy: "renew the node's client certificate (kubeadm certs renew, or a new CSR)")
        }
        let days = Int(until.timeIntervalSince(now) / 86_400)
        if days < 30 {
            return PreflightResult(
                id: id, status: .warn, found: "expires \(format.string(from: until)) (in \(days) days)", expected: "valid for 30 more days",
                remedy: "renew the node's client certificate before it expires")
        }
        return PreflightResult(id: id, status: .pass, found: "valid until \(format.string(from: until))", expected: "valid for 30 more days")
    }

    /// The apiserver's clock against ours. The Date header has one-second resolution, so the server's time lies in
    /// [date, date + 1 s); the skew is the distance from the middle of our request to that interval.
    static func skewCheck(serverDate: Date?, sent: Date, received: Date) -> PreflightResult {
        let id = "time/apiserver-skew"
        guard let serverDate else {
            return PreflightResult(id: id, status: .warn, found: "no Date header", expected: "under 1s", remedy: "the apiserver sent no Date header")
        }
        let middle = sent.addingTimeInterval(received.timeIntervalSince(sent) / 2)
        let lower = serverDate.timeIntervalSince(middle)
        let upper = lower + 1
        let skew = lower > 0 ? lower : (upper < 0 ? upper : 0)
        let text = String(format: "%.2fs", skew)
        if abs(skew) < 1 {
            return PreflightResult(id: id, status: .pass, found: text, expected: "under 1s")
        }
        return PreflightResult(
            id: id, status: .fail, found: text, expected: "under 1s",
            remedy: "synchronise the clock (systemd-timesyncd or chrony); leases and certificates depend on it")
    }
}
