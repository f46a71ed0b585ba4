public import Foundation
public import KubeAPI
public import Logging
public import ServiceLifecycle

/// Computes the node's status every `--node-status-update-frequency` (10 s) and PATCHes `nodes/<name>/status`
/// when it changed, or when `nodeStatusReportFrequency` (5 min) passed since the last report; posts a last status
/// on graceful shutdown.
///
/// The patch is a strategic merge patch, so conditions merge by type and conditions other components own (such as
/// NetworkUnavailable) are kept.
public final class NodeStatusController<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// Readings the controller takes each round; injected so tests control them.
    public struct Sources: Sendable {
        public var machine: @Sendable () -> MachineInfo
        public var readings: @Sendable () -> ResourceReadings?
        public var readiness: @Sendable () async -> RuntimeReadiness
        public var addresses: @Sendable () -> [NodeAddress]

        public init(
            machine: @escaping @Sendable () -> MachineInfo, readings: @escaping @Sendable () -> ResourceReadings?,
            readiness: @escaping @Sendable () async -> RuntimeReadiness, addresses: @escaping @Sendable () -> [NodeAddress]
        ) {
            self.machine = machine
            self.readings = readings
            self.readiness = readiness
            self.addresses = addresses
        }
    }

    private let client: any KubeClientProtocol
    private let registration: NodeRegistration
    private let configuration: NodeConfiguration
    private let sources: Sources
    private let state: HeartbeatState
    private let clock: C
    private let now: @Sendable () -> Date
    private let logger: Logger

    public init(
        client: any KubeClientProtocol, registration: NodeRegistration, configuration: NodeConfiguration, sources: Sources,
        state: HeartbeatState, clock: C, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.client = client
        self.registration = registration
        self.configuration = configuration
        self.sources = sources
        self.state = state
        self.clock = clock
        self.now = now
        self.logger = logger
    }

    /// The decision of one round (pure): post or not.
    public struct Reporter: Sendable {
        var tracker: NodeConditionTracker
        var lastPosted: NodeStatus?
        var lastReport: Date?
        let reportFrequency: TimeInterval

        public init(existing: [NodeCondition], reportFrequency: Duration) {
            tracker = NodeConditionTracker(existing: existing)
            let (seconds, attoseconds) = reportFrequency.components
            self.reportFrequency = Double(seconds) + Double(attoseconds) / 1e18
        }

        /// The status to post now, or nil when it is unchanged and the last report is recent.
        public mutating func next(_ desired: NodeStatus, observed: [NodeCondition], now: Date, force: Bool = false) -> NodeStatus? {
            var candidate = desired
            candidate.conditions = observed
            let due = force || lastReport.map { now.timeIntervalSince($0) >= reportFrequency } ?? true
            guard due || Self.withoutTimes(candidate) != lastPosted.map(Self.withoutTimes) else { return nil }
            candidate.conditions = tracker.report(observed, now: now)
            return candidate
        }

        /// Records that `status` was accepted by the apiserver.
        public mutating func posted(_ status: NodeStatus, at now: Date) {
            lastPosted = status
            lastReport = now
        }

        static func withoutTimes(_ status: NodeStatus) -> NodeStatus {
            var status = status
            status.conditions = status.conditions?.map { condition in
                var condition = condition
                condition.lastHeartbeatTime = nil
                condition.lastTransitionTime = nil
                return condition
            }
            return status
        }
    }

    public func run() async throws {
        let node: Node
        do {
            node = try await cancelWhenGracefulShutdown { try await self.registration.node() }
        } catch is CancellationError {
            return
        }
        var reporter = Reporter(existing: node.status?.conditions ?? [], reportFrequency: configuration.statusReportFrequency)
        let schedule = RenewalSchedule(start: clock.now, interval: configuration.statusUpdateFrequency)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            reporter = await round(reporter, force: false)
            do {
                try await cancelWhenGracefulShutdown {
                    try await self.clock.sleep(until: schedule.nextTick(after: self.clock.now), tolerance: nil)
                }
            } catch is CancellationError {
                break
            }
        }
        if Task.isShuttingDownGracefully {
            // The last word before stopping: a fresh status, bounded so shutdown is not held up by a dead apiserver.
            let last = reporter
            await withTaskGroup(of: Void.self) { group in
                group.addTask { _ = await self.round(last, force: true) }
                group.addTask { try? await Task.sleep(for: .seconds(2)) }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// One round: compute, and post when the reporter says so; returns the reporter's new state.
    private func round(_ reporter: Reporter, force: Bool) async -> Reporter {
        var reporter = reporter
        let machine = sources.machine()
        let readiness = await sources.readiness()
        let pressures = sources.readings().map { configuration.evictionThresholds.pressures($0) } ?? (false, false, false)
        let observed = NodeConditionTracker.observe(readiness: readiness, pressures: pressures)
        let builder = NodeStatusBuilder(configuration: configuration, machine: machine, addresses: sources.addresses())
        let date = now()
        guard let status = reporter.next(builder.status(conditions: [], runtimeVersion: readiness.runtimeVersion), observed: observed, now: date, force: force)
        else { return reporter }
        do {
            let body = try JSONValue(encoding: ["status": status])
            _ = try await client.patchStatus(Node.self, namespace: nil, name: configuration.nodeName, patch: .strategicMerge(body))
            reporter.posted(status, at: date)
            state.statusPatched(
                at: date,
                conditions: (status.conditions ?? []).map { .init(type: $0.type, status: $0.status, reason: $0.reason, message: $0.message) }
            )
            logger.debug("node status patched", metadata: ["node": "\(configuration.nodeName)"])
        } catch {
            logger.warning("failed to patch node status", metadata: ["node": "\(configuration.nodeName)", "error": "\(error)"])
        }
        return reporter
    }
}
