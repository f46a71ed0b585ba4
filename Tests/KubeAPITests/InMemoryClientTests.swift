import Foundation
import KubeAPI
import NodeAgentTesting
import Testing

/// The socket-free seam for logic above KubeAPI: same store, same semantics as over HTTP.
@Suite("in-memory client over the double's store")
struct InMemoryClientTests {
    @Test("verbs and typed errors match the HTTP client's")
    func verbs() async throws {
        let double = try await APIServerDouble.start()
        let client = double.inMemoryClient()
        let lease = try await client.create(
            Lease(metadata: ObjectMeta(name: "n1", namespace: "kube-node-lease"), spec: LeaseSpec(holderIdentity: "n1", leaseDurationSeconds: 40)))
        var stale = lease
        _ = try await client.update(lease)  // no-op write: same version, no conflict
        var renewed = lease
        renewed.spec?.renewTime = .now()
        _ = try await client.update(renewed)
        stale.spec?.holderIdentity = "other"
        await #expect { _ = try await client.update(stale) } throws: { ($0 as? KubeAPIError)?.isConflict == true }
        await #expect { _ = try await client.get(Lease.self, namespace: "kube-node-lease", name: "nope") } throws: {
            ($0 as? KubeAPIError)?.isNotFound == true
        }
        await double.stop()
    }

    @Test("an informer runs on the in-memory client exactly as over HTTP")
    func informer() async throws {
        let double = try await APIServerDouble.start()
        let client = double.inMemoryClient()
        let informer = Informer(Pod.self, client: client, configuration: InformerConfiguration(fieldSelector: "spec.nodeName=n1"), logger: testLogger())
        let log = EventLog(informer)
        let task = Task { try await informer.run() }
        await informer.waitForSync()
        _ = try await client.create(makePod("a", node: "n1"))
        try await eventually("added a") { log.contains("added a") }
        double.dropWatches()
        _ = try await client.create(makePod("b", node: "n1"))
        try await eventually("added b after resume") { log.contains("added b") }
        task.cancel()
        _ = try? await task.value
        log.stop()
        await double.stop()
    }
}
