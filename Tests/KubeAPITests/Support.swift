import Foundation
import KubeAPI
import Logging
import NodeAgentTesting
import Testing

/// Starts a double and a client for it, runs `body`, and tears both down.
func withDouble<R>(
    _ configuration: APIServerDouble.Configuration = .init(), clientCertificate: Bool? = nil, clientLogger: Logger = testLogger(),
    _ body: (APIServerDouble, KubeClient) async throws -> R
) async throws -> R {
    let double = try await APIServerDouble.start(configuration)
    let client: KubeClient
    do {
        client = try KubeClient(configuration: try double.clientConfiguration(clientCertificate: clientCertificate), logger: clientLogger)
    } catch {
        await double.stop()
        throw error
    }
    do {
        let result = try await body(double, client)
        try await client.shutdown()
        await double.stop()
        return result
    } catch {
        try? await client.shutdown()
        await double.stop()
        throw error
    }
}

func testLogger(_ label: String = "test") -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .critical
    return logger
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes (generous: never a timing assertion).
func eventually(timeout: Duration = .seconds(20), _ what: String = "condition", _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("timed out waiting for \(what)")
    throw CancellationError()
}

/// A minimal valid pod.
func makePod(_ name: String, namespace: String = "default", node: String? = nil, labels: [String: String]? = nil) -> Pod {
    var spec = PodSpec(containers: [Container(name: "main", image: "busybox:1.36")])
    spec.nodeName = node
    return Pod(metadata: ObjectMeta(name: name, namespace: namespace, labels: labels), spec: spec)
}

/// Collects informer events into an array for assertions.
final class EventLog<T: KubeResource>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    private var task: Task<Void, Never>?

    init(_ informer: Informer<T>) {
        let stream = informer.events()
        task = Task { [weak self] in
            for await event in stream {
                let line: String
                switch event {
                case .added(let object): line = "added \(object.name)"
                case .updated(let old, let new): line = "updated \(new.name) \(old.resourceVersion ?? "")->\(new.resourceVersion ?? "")"
                case .deleted(let object): line = "deleted \(object.name)"
                }
                self?.append(line)
            }
        }
    }

    private func append(_ line: String) {
        lock.lock()
        storage.append(line)
        lock.unlock()
    }

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }

    func contains(_ prefix: String) -> Bool { lines.contains { $0.hasPrefix(prefix) } }

    func stop() { task?.cancel() }
}
