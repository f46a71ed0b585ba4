import KubeAPI

/// What a probe currently says.
public enum ProbeResult: String, Sendable, Hashable, Codable {
    case success
    case failure
    case unknown
}

/// Kubernetes' probe defaults and bounds for one probe.
struct ProbeTiming: Sendable, Hashable {
    var initialDelay: Duration
    var period: Duration
    var timeout: Duration
    var successThreshold: Int
    var failureThreshold: Int

    init(_ probe: Probe, kind: ProbeKind) {
        initialDelay = .seconds(Int64(max(0, probe.initialDelaySeconds ?? 0)))
        period = .seconds(Int64(max(1, probe.periodSeconds ?? 10)))
        timeout = .seconds(Int64(max(1, probe.timeoutSeconds ?? 1)))
        // Liveness and startup probes must use 1 (the API refuses anything else); readiness may ask for more.
        successThreshold = kind == .readiness ? Int(max(1, probe.successThreshold ?? 1)) : 1
        failureThreshold = Int(max(1, probe.failureThreshold ?? 3))
    }
}

enum ProbeWorker {
    /// One probe of one container instance, as a pure value (the kubelet's prober `worker.doProbe`): results count
    /// towards the thresholds and the published result changes only when a threshold is reached. After a liveness
    /// or startup failure is published the worker holds: the container is restarted, and a new one gets a new worker.
    struct StateMachine: Sendable, Hashable {
        let kind: ProbeKind
        let timing: ProbeTiming
        /// The published result: readiness starts as failure, liveness as success, startup as unknown.
        private(set) var result: ProbeResult
        private var lastOutcome: ProbeResult?
        private var run = 0
        /// Set after a liveness/startup failure: probing stops.
        private(set) var onHold = false

        init(kind: ProbeKind, timing: ProbeTiming) {
            self.kind = kind
            self.timing = timing
            switch kind {
            case .readiness: result = .failure
            case .liveness: result = .success
            case .startup: result = .unknown
            }
        }

        /// What the worker must do after a probe.
        enum Action: Sendable, Hashable {
            /// Nothing changed.
            case none
            /// The published result changed.
            case publish(ProbeResult)
        }

        /// Counts one probe outcome.
        mutating func observe(success: Bool) -> Action {
            guard !onHold else { return .none }
            let outcome: ProbeResult = success ? .success : .failure
            if lastOutcome == outcome {
                run += 1
            } else {
                lastOutcome = outcome
                run = 1
            }
            let threshold = success ? timing.successThreshold : timing.failureThreshold
            guard run >= threshold else { return .none }
            if (kind == .liveness || kind == .startup) && outcome == .failure {
                onHold = true
                run = 0
                result = .failure
                return .publish(.failure)
            }
            guard outcome != result else { return .none }
            result = outcome
            return .publish(outcome)
        }
    }
}
