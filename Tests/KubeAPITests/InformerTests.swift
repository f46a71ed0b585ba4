import Foundation
import KubeAPI
import Logging
import NodeAgentTesting
import Testing

@Suite("informer against the API server double over HTTP")
struct InformerTests {
    /// Runs an informer for pods on node n1 while `body` drives the double.
    func withInformer(
        _ configuration: APIServerDouble.Configuration = .init(), sleeper: RecordingSleeper = RecordingSleeper(),
        recorder: LogRecorder = LogRecorder(),
        _ body: (APIServerDouble, KubeClient, Informer<Pod>, EventLog<Pod>) async throws -> Void
    ) async throws {
        try await withDouble(configuration, clientLogger: recorder.logger(label: "client", level: .warning)) { double, client in
            var informerConfiguration = InformerConfiguration(fieldSelector: "spec.nodeName=n1")
            informerConfiguration.backoff = BackoffPolicy(initial: .milliseconds(100), maximum: .seconds(2), factor: 2, jitter: 0)
            informerConfiguration.minimumWatchDuration = .zero
            let informer = Informer(
                Pod.self, client: client, configuration: informerConfiguration, sleeper: sleeper, random: { 0 },
                logger: recorder.logger(label: "informer", level: .debug))
            let log = EventLog(informer)
            let task = Task { try await informer.run() }
            do {
                try await body(double, client, informer, log)
            } catch {
                task.cancel()
                log.stop()
                throw error
            }
            task.cancel()
            _ = try? await task.value
            log.stop()
        }
    }

    @Test("the first LIST fills the cache and marks it synced; only pods on this node are seen")
    func initialSync() async throws {
        let double = try await APIServerDouble.start()
        try double.create(makePod("a", node: "n1"))
        try double.create(makePod("b", node: "n2"))
        let client = try KubeClient(configuration: try double.clientConfiguration(), logger: testLogger())
        let informer = Informer(Pod.self, client: client, configuration: InformerConfiguration(fieldSelector: "spec.nodeName=n1"), logger: testLogger())
        #expect(!informer.hasSynced)
        let task = Task { try await informer.run() }
        await informer.waitForSync()
        #expect(informer.hasSynced)
        #expect(informer.list().map(\.name) == ["a"])
        #expect(informer.get(namespace: "default", name: "a")?.spec?.nodeName == "n1")
        #expect(informer.get(namespace: "default", name: "b") == nil)
        task.cancel()
        _ = try? await task.value
        try await client.shutdown()
        await double.stop()
    }

    @Test("live changes arrive as added, updated with the old object, and deleted")
    func liveEvents() async throws {
        try await withInformer { double, client, informer, log in
            await informer.waitForSync()
            _ = try await client.create(makePod("p", node: "n1"))
            try await eventually("added") { log.contains("added p") }
            _ = try await client.patchStatus(Pod.self, namespace: "default", name: "p", patch: .merge(["status": ["phase": "Running"]]))
            try await eventually("updated") { log.contains("updated p") }
            #expect(informer.get(namespace: "default", name: "p")?.status?.phase == "Running")
            // Moving off the node is a delete for this informer (selector transition).
            _ = try await client.create(makePod("q", node: "n1"))
            try await eventually("added q") { log.contains("added q") }
            try double.delete(Pod.resourceType, namespace: "default", name: "p")
            try await eventually("deleted") { log.contains("deleted p") }
            #expect(informer.get(namespace: "default", name: "p") == nil)
            #expect(informer.list().map(\.name) == ["q"])
            #expect(log.lines.first == "added p")
        }
    }

    @Test("a dropped watch resumes from the last resourceVersion without a relist and loses nothing")
    func watchDropResumes() async throws {
        try await withInformer { double, client, informer, log in
            await informer.waitForSync()
            _ = try await client.create(makePod("before", node: "n1"))
            try await eventually("added before") { log.contains("added before") }
            double.hold(.watches)
            #expect(double.dropWatches() == 1)
            _ = try await client.create(makePod("during", node: "n1"))  // happens while no watch is open
            try await eventually("re-watch is waiting") { double.heldRequestCount == 1 }
            double.release()
            try await eventually("added during") { log.contains("added during") }
            #expect(double.requestCount("LIST", "pods") == 1)
            #expect(double.requestCount("WATCH", "pods") == 2)
            #expect(informer.requestCounts.lists == 1)
        }
    }

    @Test("bookmarks advance the resourceVersion the informer resumes from")
    func bookmarks() async throws {
        try await withInformer { double, client, informer, log in
            await informer.waitForSync()
            let before = informer.resourceVersion
            // Changes this informer does not see (another node) move the global version.
            _ = try await client.create(makePod("elsewhere", node: "n2"))
            double.sendBookmarks()
            try await eventually("bookmark applied") { informer.resourceVersion == String(double.resourceVersion) }
            #expect(informer.resourceVersion != before)
            // With history compacted past the old version, resuming from the bookmark still works: no relist.
            double.compactHistory()
            double.dropWatches()
            _ = try await client.create(makePod("next", node: "n1"))
            try await eventually("added next") { log.contains("added next") }
            #expect(informer.requestCounts.lists == 1)
        }
    }

    @Test("history compacted while away: 410 Expired relists and delivers the missed delete")
    func compactionRelists() async throws {
        try await withInformer { double, client, informer, log in
            await informer.waitForSync()
            _ = try await client.create(makePod("doomed", node: "n1"))
            _ = try await client.create(makePod("kept", node: "n1"))
            try await eventually("both added") { log.contains("added doomed") && log.contains("added kept") }
            double.hold(.watches)
            double.dropWatches()
            try await eventually("re-watch is waiting") { double.heldRequestCount == 1 }
            try double.delete(Pod.resourceType, namespace: "default", name: "doomed")
            _ = try await client.patchStatus(Pod.self, namespace: "default", name: "kept", patch: .merge(["status": ["phase": "Running"]]))
            _ = try await client.create(makePod("new", node: "n1"))
            double.compactHistory()
            double.release()
            try await eventually("missed delete delivered") { log.contains("deleted doomed") }
            try await eventually("missed update delivered") { log.contains("updated kept") }
            try await eventually("missed add delivered") { log.contains("added new") }
            #expect(informer.list().map(\.name) == ["kept", "new"])
            #expect(informer.get(namespace: "default", name: "kept")?.status?.phase == "Running")
            #expect(double.requestCount("LIST", "pods") == 2)
        }
    }

    @Test("410 as an HTTP status (not an ERROR event) also relists")
    func goneAsHTTPStatus() async throws {
        var configuration = APIServerDouble.Configuration()
        configuration.expiredWatchAsHTTPStatus = true
        try await withInformer(configuration) { double, client, informer, log in
            await informer.waitForSync()
            double.hold(.watches)
            double.dropWatches()
            try await eventually("re-watch is waiting") { double.heldRequestCount == 1 }
            _ = try await client.create(makePod("x", node: "n1"))
            double.compactHistory()
            double.release()
            try await eventually("added after relist") { log.contains("added x") }
            #expect(informer.requestCounts.lists == 2)
        }
    }

    @Test("an API server restart into a new epoch: watches drop, the informer relists and converges")
    func serverRestart() async throws {
        try await withInformer { double, client, informer, log in
            await informer.waitForSync()
            _ = try await client.create(makePod("old", node: "n1"))
            try await eventually("added old") { log.contains("added old") }
            double.hold(.watches)
            double.restart()
            try await eventually("re-watch is waiting") { double.heldRequestCount == 1 }
            try double.delete(Pod.resourceType, namespace: "default", name: "old")
            double.compactHistory()
            double.release()
            try await eventually("deleted old after restart") { log.contains("deleted old") }
            _ = try await client.create(makePod("fresh", node: "n1"))
            try await eventually("added fresh") { log.contains("added fresh") }
            #expect(informer.list().map(\.name) == ["fresh"])
            #expect(informer.requestCounts.lists == 2)
        }
    }

    @Test("a storm of 500s and 429s is retried with growing backoff, never a hot loop, then recovers")
    func errorStorm() async throws {
        let sleeper = RecordingSleeper()
        try await withInformer(sleeper: sleeper) { double, client, informer, log in
            await informer.waitForSync()
            double.hold(.watches)
            double.dropWatches()
            try await eventually("re-watch is waiting") { double.heldRequestCount == 1 }
            double.failNext(4, status: 500, verb: "WATCH")
            double.failNext(2, status: 429, verb: "WATCH")
            double.release()
            _ = try await client.create(makePod("after-storm", node: "n1"))
            try await eventually("recovered") { log.contains("added after-storm") }
            let waits = sleeper.durations
            // Each failed attempt waited, and the waits grew: 0.1, 0.2, 0.4, 0.8, 1.6, 2 (capped) ...
            #expect(waits.count >= 5, "\(waits)")
            for (earlier, later) in zip(waits, waits.dropFirst()) { #expect(later >= earlier, "\(waits)") }
            #expect(waits.max() ?? .zero <= .seconds(2))
            #expect(double.requestCount("WATCH", "pods") <= waits.count + 2)
        }
    }

    @Test("a malformed event on the wire is skipped and logged; the informer keeps going")
    func malformedEventOnTheWire() async throws {
        let recorder = LogRecorder()
        try await withInformer(recorder: recorder) { double, client, informer, log in
            await informer.waitForSync()
            // A pod the typed model refuses (containerPort is not a number) reaches the watch as-is.
            var bad = makePod("bad", node: "n1")
            bad.spec?.containers[0].ports = [ContainerPort(containerPort: 80)]
            _ = try await client.create(bad)
            try await eventually("added bad") { log.contains("added bad") }
            double.injectRawWatchEvent(#"{"type":"MODIFIED","object":{"metadata":{"name":"bad","namespace":"default"},"spec":{"containers":[{"name":"c","ports":[{"containerPort":"eighty"}]}]}}}"#)
            _ = try await client.create(makePod("good", node: "n1"))
            try await eventually("added good") { log.contains("added good") }
            #expect(recorder.records.contains { $0.message == "skipped malformed watch event" })
            #expect(informer.requestCounts.lists == 1)
        }
    }

    @Test("graceful shutdown stops the informer and ends its event streams")
    func gracefulShutdown() async throws {
        let double = try await APIServerDouble.start()
        let client = try KubeClient(configuration: try double.clientConfiguration(), logger: testLogger())
        let informer = Informer(Pod.self, client: client, logger: testLogger())
        let events = informer.events()
        let task = Task { try await informer.run() }
        await informer.waitForSync()
        task.cancel()
        try await task.value
        var count = 0
        for await _ in events { count += 1 }  // ends because the informer stopped
        #expect(count == 0)
        try await client.shutdown()
        await double.stop()
    }
}
