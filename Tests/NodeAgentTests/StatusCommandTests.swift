import Foundation
import Kubelet
import NodeAgentTesting
import Testing

@testable import NodeAgent

@Suite("node-agent status: judging /status")
struct StatusCommandTests {
    private func document(healthy: Bool = true, renewAge: Double? = 3.5, failingCheck: String? = nil) throws -> Data {
        var heartbeat: [String: Any] = [
            "lease": "kube-node-lease/node-a", "leaseDurationSeconds": 40, "renewIntervalSeconds": 10,
            "consecutiveFailures": renewAge == nil ? 3 : 0, "totalFailures": 0, "apiserverReachable": renewAge != nil,
            "conditions": [["type": "Ready", "status": "True", "reason": "KubeletReady"]],
        ]
        if let renewAge { heartbeat["renewAgeSeconds"] = renewAge }
        var checks: [[String: Any]] = [["name": "lease-renewal", "component": "kubelet", "healthy": true]]
        if let failingCheck { checks.append(["name": failingCheck, "component": "kubelet", "healthy": false, "reason": "broken"]) }
        let object: [String: Any] = [
            "nodeName": "node-a", "version": "0.1.0", "healthy": healthy && failingCheck == nil,
            "components": [["name": "kubelet", "healthy": failingCheck == nil, "checks": checks]],
            "heartbeat": heartbeat,
        ]
        return try JSONSerialization.data(withJSONObject: object)
    }

    @Test("a fresh lease and passing checks exit 0")
    func healthy() throws {
        let verdict = StatusVerdict.judge(try document(), maxAge: .seconds(40))
        #expect(verdict.exitCode == 0)
        #expect(verdict.text().contains("node-agent 0.1.0 on node node-a: healthy"))
        #expect(verdict.text().contains("renewed 3.5s ago"))
    }

    @Test("a lease older than --max-age exits 1 and says how old")
    func stale() throws {
        let verdict = StatusVerdict.judge(try document(renewAge: 45), maxAge: .seconds(40))
        #expect(verdict.exitCode == 1)
        #expect(verdict.reasons == ["lease kube-node-lease/node-a last renewed 45.0s ago, over the 40.0s limit"])
    }

    @Test("a lease never renewed exits 1")
    func neverRenewed() throws {
        #expect(StatusVerdict.judge(try document(renewAge: nil), maxAge: .seconds(40)).exitCode == 1)
    }

    @Test("a failing check exits 1 and is named")
    func failingCheck() throws {
        let verdict = StatusVerdict.judge(try document(failingCheck: "runtime"), maxAge: .seconds(40))
        #expect(verdict.exitCode == 1)
        #expect(verdict.reasons.contains("check runtime failing: broken"))
    }

    @Test("an answer that is not status JSON counts as unreachable")
    func garbage() {
        #expect(StatusVerdict.judge(Data("<html>".utf8), maxAge: .seconds(40)).exitCode == 2)
    }

    @Test("JSON output carries the verdict and the document")
    func json() throws {
        let verdict = StatusVerdict.judge(try document(renewAge: 50), maxAge: .seconds(40))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(verdict.json().utf8)) as? [String: Any])
        #expect(object["healthy"] as? Bool == false)
        #expect(object["exitCode"] as? Int == 1)
        #expect(((object["status"] as? [String: Any])?["nodeName"]) as? String == "node-a")
    }

    @Test("exit 2 when no agent listens at the address")
    func unreachableAgent() async throws {
        let binary = NodeAgentTestingPaths.binary
        let unreachable = try Command.output([binary, "status", "--address", "127.0.0.1:1", "--timeout", "2s"])
        #expect(unreachable.status == 2)
        #expect(unreachable.stdout.contains("agent unreachable at 127.0.0.1:1"))
    }
}
