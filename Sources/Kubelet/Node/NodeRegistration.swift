public import KubeAPI
public import Logging
import Synchronization

/// Registers this node once and hands the registered Node to whoever waits for it (the Lease needs its UID).
///
/// Creates the Node, or adopts an existing one: our labels are set (others' kept), our `--register-with-taints`
/// added when missing (others' kept). Retries forever with backoff (100 ms doubling to 7 s) until the apiserver
/// answers, as the kubelet does; with `--register-node=false` it only reads the Node.
public actor NodeRegistration {
    private let client: any KubeClientProtocol
    private let configuration: NodeConfiguration
    private let labels: [String: String]
    private let logger: Logger
    private let sleep: @Sendable (Duration) async throws -> Void
    private var registered: Node?
    private var inFlight: Task<Node, any Error>?

    public init(
        client: any KubeClientProtocol, configuration: NodeConfiguration, labels: [String: String], logger: Logger,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.client = client
        self.configuration = configuration
        self.labels = labels
        self.logger = logger
        self.sleep = sleep
    }

    /// The registered Node; registers on first call. Throws only `CancellationError`.
    public func node() async throws -> Node {
        if let registered { return registered }
        if let inFlight { return try await inFlight.value }
        let task = Task { try await self.registerWithRetry() }
        inFlight = task
        let node = try await task.value
        registered = node
        inFlight = nil
        return node
    }

    private func registerWithRetry() async throws -> Node {
        var delay: Duration = .milliseconds(100)
        while true {
            try Task.checkCancellation()
            do {
                let node = try await configuration.registerNode ? registerOnce() : client.get(Node.self, namespace: nil, name: configuration.nodeName)
                logger.info("node registered", metadata: ["node": "\(configuration.nodeName)", "uid": "\(node.metadata.uid ?? "")"])
                return node
            } catch let error as KubeAPIError {
                logger.warning("unable to register node, will retry", metadata: ["node": "\(configuration.nodeName)", "error": "\(error)", "retryIn": "\(delay)"])
            }
            try await sleep(delay)
            delay = min(delay * 2, .seconds(7))
        }
    }

    private func registerOnce() async throws -> Node {
        var desired = Node(metadata: ObjectMeta(name: configuration.nodeName, labels: labels, annotations: ["node.alpha.kubernetes.io/ttl": "0"]))
        var spec = NodeSpec()
        spec.taints = configuration.taints.isEmpty ? nil : configuration.taints
        desired.spec = spec
        do {
            return try await client.create(desired)
        } catch let error as KubeAPIError where error.isAlreadyExists {
            return try await adopt()
        }
    }

    /// Updates our fields on the existing Node, re-reading on a conflict.
    private func adopt() async throws -> Node {
        for _ in 0..<5 {
            var existing = try await client.get(Node.self, namespace: nil, name: configuration.nodeName)
            let adopted = Self.adopt(existing, labels: labels, taints: configuration.taints)
            guard adopted != existing else { return existing }
            existing = adopted
            do {
                return try await client.update(existing)
            } catch let error as KubeAPIError where error.isConflict {
                continue
            }
        }
        return try await client.get(Node.self, namespace: nil, name: configuration.nodeName)
    }

    /// The existing Node with our labels set and our taints present; everything else untouched (pure).
    public static func adopt(_ existing: Node, labels: [String: String], taints: [Taint]) -> Node {
        var node = existing
        var merged = node.metadata.labels ?? [:]
        merged.merge(labels) { _, ours in ours }
        node.metadata.labels = merged
        if !taints.isEmpty {
            var spec = node.spec ?? NodeSpec()
            var current = spec.taints ?? []
            for taint in taints where !current.contains(where: { $0.key == taint.key && $0.effect == taint.effect }) {
                current.append(taint)
            }
            spec.taints = current
            node.spec = spec
        }
        return node
    }
}
