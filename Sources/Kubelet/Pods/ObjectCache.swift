import Foundation
import KubeAPI
import Synchronization

/// ConfigMaps and Secrets read from the API for env vars and volumes, each kept for a short TTL so a burst of
/// containers reads an object once (the kubelet's TTL-based manager). Without an API server (standalone) every
/// lookup fails with a message saying so.
final class ObjectCache: Sendable {
    enum Lookup<T: Sendable>: Sendable {
        case found(T)
        case notFound
    }

    private struct Entry {
        var value: any Sendable
        var fetched: Date
    }

    private let client: (any KubeClientProtocol)?
    private let ttl: Duration
    private let clock: any KubeletClock
    private let entries = Mutex<[String: Entry]>([:])

    init(client: (any KubeClientProtocol)?, ttl: Duration, clock: any KubeletClock) {
        self.client = client
        self.ttl = ttl
        self.clock = clock
    }

    func configMap(namespace: String, name: String) async throws(KubeletError) -> Lookup<ConfigMap> {
        try await lookup(ConfigMap.self, kind: "configmap", namespace: namespace, name: name)
    }

    func secret(namespace: String, name: String) async throws(KubeletError) -> Lookup<Secret> {
        try await lookup(Secret.self, kind: "secret", namespace: namespace, name: name)
    }

    private func lookup<T: KubeResource>(_ type: T.Type, kind: String, namespace: String, name: String) async throws(KubeletError) -> Lookup<T> {
        let key = "\(kind)/\(namespace)/\(name)"
        let now = clock.now()
        if let cached = entries.withLock({ $0[key] }), now.timeIntervalSince(cached.fetched) < ttl.timeInterval, let value = cached.value as? Lookup<T> {
            return value
        }
        guard let client else {
            throw KubeletError(
                .createContainerConfigError, object: "\(kind) \(namespace)/\(name)",
                "the kubelet runs standalone (no kubeconfig), so ConfigMaps and Secrets cannot be read; give the daemon a --kubeconfig or drop the reference")
        }
        let result: Lookup<T>
        do {
            result = .found(try await client.get(T.self, namespace: namespace, name: name))
        } catch let error as KubeAPIError where error.isNotFound {
            result = .notFound
        } catch {
            throw KubeletError(.createContainerConfigError, object: "\(kind) \(namespace)/\(name)", "could not be read from the API server: \(error)")
        }
        entries.withLock { $0[key] = Entry(value: result, fetched: now) }
        return result
    }

    /// Forgets every cached object (tests, or after a known change).
    func invalidate() { entries.withLock { $0 = [:] } }
}

extension Secret {
    /// The secret's values as text (keys of `data`, then `stringData` on top as the API server merges them).
    var textData: [String: Data] {
        var result = data ?? [:]
        for (key, value) in stringData ?? [:] { result[key] = Data(value.utf8) }
        return result
    }
}

extension ConfigMap {
    /// Both `data` and `binaryData` as bytes.
    var bytesData: [String: Data] {
        var result: [String: Data] = [:]
        for (key, value) in data ?? [:] { result[key] = Data(value.utf8) }
        for (key, value) in binaryData ?? [:] { result[key] = value }
        return result
    }
}
