public import Foundation
public import KubeAPI
public import Logging
import Metrics
public import ServiceLifecycle

/// Renews the node's Lease `kube-node-lease/<node>` every quarter of its duration, as the kubelet's node lease
/// controller does.
///
/// The Lease is renewed from the cached copy without a GET; each round tries up to five times; a 409 Conflict drops
/// the cache so the next try re-reads it; a missing Lease is created (with an owner reference to the Node) with
/// backoff from 200 ms doubling to 7 s. Rounds fall on a fixed grid of the injected clock, so a slow apiserver never
/// pushes later renewals.
public final class NodeLeaseController<C: Clock>: Service, Sendable where C.Duration == Duration {
    static var maxUpdateRetries: Int { 5 }

    private let client: any KubeClientProtocol
    private let registration: NodeRegistration
    private let configuration: NodeConfiguration
    private let state: HeartbeatState
    private let clock: C
    private let now: @Sendable () -> Date
    private let logger: Logger
    private let renewLatency = Metrics.Timer(label: "node_agent_lease_renew_duration_seconds", preferredDisplayUnit: .seconds)
    private let failures = Counter(label: "node_agent_lease_renew_failures_total")
    private let lastSuccess = Gauge(label: "node_agent_lease_last_renew_timestamp_seconds")

    public init(
        client: any KubeClientProtocol, registration: NodeRegistration, configuration: NodeConfiguration, state: HeartbeatState,
        clock: C, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.client = client
        self.registration = registration
        self.configuration = configuration
        self.state = state
        self.clock = clock
        self.now = now
        self.logger = logger
    }

    /// Renews until graceful shutdown (which ends the loop quietly).
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                let node = try await self.registration.node()
                let schedule = RenewalSchedule(start: self.clock.now, interval: self.configuration.leaseRenewInterval)
                var cached: Lease?
                while !Task.isCancelled {
                    cached = try await self.renewRound(cached: cached, node: node)
                    try await self.clock.sleep(until: schedule.nextTick(after: self.clock.now), tolerance: nil)
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// One renewal round: up to five tries; returns the Lease to cache (nil to re-read next time).
    func renewRound(cached: Lease?, node: Node) async throws -> Lease? {
        var lease = cached
        var lastError: (any Error)?
        for _ in 0..<Self.maxUpdateRetries {
            try Task.checkCancellation()
            let started = clock.now
            do {
                var current: Lease
                if let lease {
                    current = lease
                } else {
                    current = try await ensureLease(node: node)
                }
                let renewedAt = now()
                current.spec = desiredSpec(current.spec, renewTime: renewedAt)
                current.metadata.ownerReferences = ownerReferences(node)
                let updated = try await client.update(current)
                renewLatency.recordNanoseconds(Int64(started.duration(to: clock.now).nanosecondsValue))
                state.renewed(at: renewedAt)
                lastSuccess.record(renewedAt.timeIntervalSince1970)
                return updated
            } catch let error as KubeAPIError {
                lastError = error
                failures.increment()
                if error.isConflict || error.isNotFound { lease = nil }
                logger.debug("lease renewal attempt failed", metadata: ["lease": "\(state.lease)", "error": "\(error)"])
            }
        }
        let reachable = (lastError as? KubeAPIError).map { !$0.isTransport } ?? false
        state.renewFailed("\(lastError.map { "\($0)" } ?? "unknown error")", reachable: reachable)
        logger.warning(
            "failed to renew the node lease", metadata: ["lease": "\(state.lease)", "tries": "\(Self.maxUpdateRetries)", "error": "\(lastError.map { "\($0)" } ?? "")"])
        return lease
    }

    /// GETs the Lease, creating it when missing; retries with backoff 200 ms doubling to 7 s until it succeeds.
    private func ensureLease(node: Node) async throws -> Lease {
        var delay: Duration = .milliseconds(200)
        var attempts = 0
        while true {
            do {
                return try await client.get(Lease.self, namespace: NodeConfiguration.leaseNamespace, name: configuration.nodeName)
            } catch let error as KubeAPIError where error.isNotFound {
                do {
                    var lease = Lease(metadata: ObjectMeta(name: configuration.nodeName, namespace: NodeConfiguration.leaseNamespace))
                    lease.metadata.ownerReferences = ownerReferences(node)
                    lease.spec = desiredSpec(nil, renewTime: now())
                    let created = try await client.create(lease)
                    logger.info("created the node lease", metadata: ["lease": "\(state.lease)"])
                    return created
                } catch let error as KubeAPIError where error.isAlreadyExists {
                    continue
                } catch let error as KubeAPIError {
                    attempts += 1
                    guard attempts < 8 else { throw error }
                    logger.warning("failed to create the node lease, will retry", metadata: ["error": "\(error)", "retryIn": "\(delay)"])
                }
            }
            try await clock.sleep(until: clock.now.advanced(by: delay), tolerance: nil)
            delay = min(delay * 2, .seconds(7))
        }
    }

    private func desiredSpec(_ spec: LeaseSpec?, renewTime: Date) -> LeaseSpec {
        var spec = spec ?? LeaseSpec()
        spec.holderIdentity = configuration.nodeName
        spec.leaseDurationSeconds = Int32(configuration.leaseDuration.components.seconds)
        spec.renewTime = MicroTime(renewTime)
        return spec
    }

    private func ownerReferences(_ node: Node) -> [OwnerReference]? {
        guard let uid = node.metadata.uid else { return nil }
        return [OwnerReference(apiVersion: "v1", kind: "Node", name: configuration.nodeName, uid: uid)]
    }
}

extension Duration {
    var nanosecondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}
