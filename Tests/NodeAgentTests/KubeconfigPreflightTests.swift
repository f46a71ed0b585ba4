import Foundation
import KubeAPI
import NodeAgentTesting
import Testing

@testable import NodeAgent

@Suite("preflight: the kubeconfig items against the API server double", .serialized)
struct KubeconfigPreflightTests {
    private func result(_ results: [PreflightResult], _ id: String) -> PreflightResult? { results.first { $0.id == id } }

    private func withDouble(_ body: (APIServerDouble, String) async throws -> Void) async throws {
        let double = try await APIServerDouble.start(.init(tls: .clientCertificates))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("na-preflight-kc-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try double.writeKubeconfig(to: path)
        do {
            try await body(double, path)
        } catch {
            await double.stop()
            throw error
        }
        await double.stop()
    }

    @Test("a good kubeconfig passes: readable, server reachable over TLS, certificate valid, node access, no skew")
    func healthy() async throws {
        try await withDouble { double, path in
            let before = await KubeconfigPreflight(path: path, nodeName: "node-x").check()
            #expect(before.allSatisfy { $0.status == .pass }, "\(before.filter { $0.status != .pass })")
            #expect(result(before, "kubeconfig/node-access")?.found.contains("not registered yet") == true)
            #expect(result(before, "kubeconfig/client-certificate")?.found.hasPrefix("valid until") == true)
            try double.create(Node(metadata: ObjectMeta(name: "node-x")))
            let after = await KubeconfigPreflight(path: path, nodeName: "node-x").check()
            #expect(result(after, "kubeconfig/node-access")?.found == "may get node node-x")
        }
    }

    @Test("a certificate expiring within 30 days WARNs, an expired one FAILs")
    func certificateExpiry() async throws {
        try await withDouble { _, path in
            let soon = await KubeconfigPreflight(path: path, nodeName: "n", now: { Date().addingTimeInterval(86_400 * 350) }).check()
            #expect(result(soon, "kubeconfig/client-certificate")?.status == .warn)
            let late = await KubeconfigPreflight(path: path, nodeName: "n", now: { Date().addingTimeInterval(86_400 * 400) }).check()
            #expect(result(late, "kubeconfig/client-certificate")?.status == .fail)
            #expect(result(late, "kubeconfig/client-certificate")?.found.hasPrefix("expired") == true)
        }
    }

    @Test("a broken kubeconfig and an unreachable server FAIL with what is wrong")
    func failures() async throws {
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("na-preflight-broken-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: broken) }
        try "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    certificate-authority-data: not-base64!\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
            .write(toFile: broken, atomically: true, encoding: .utf8)
        let unreadable = await KubeconfigPreflight(path: broken, nodeName: "n").check()
        #expect(result(unreadable, "kubeconfig/readable")?.status == .fail)
        #expect(result(unreadable, "kubeconfig/readable")?.found.contains("certificate-authority-data") == true)

        let unreachable = FileManager.default.temporaryDirectory.appendingPathComponent("na-preflight-down-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: unreachable) }
        try "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
            .write(toFile: unreachable, atomically: true, encoding: .utf8)
        let down = await KubeconfigPreflight(path: unreachable, nodeName: "n").check()
        #expect(result(down, "kubeconfig/readable")?.status == .pass)
        #expect(result(down, "kubeconfig/server")?.status == .fail)
    }

    @Test("clock skew allows for the Date header's one-second resolution")
    func skew() {
        let sent = Date(timeIntervalSince1970: 1_000_000.2)
        let received = Date(timeIntervalSince1970: 1_000_000.4)
        #expect(KubeconfigPreflight.skewCheck(serverDate: Date(timeIntervalSince1970: 1_000_000), sent: sent, received: received).status == .pass)
        #expect(KubeconfigPreflight.skewCheck(serverDate: Date(timeIntervalSince1970: 1_000_003), sent: sent, received: received).status == .fail)
        #expect(KubeconfigPreflight.skewCheck(serverDate: Date(timeIntervalSince1970: 999_998), sent: sent, received: received).status == .fail)
        #expect(KubeconfigPreflight.skewCheck(serverDate: nil, sent: sent, received: received).status == .warn)
    }
}
