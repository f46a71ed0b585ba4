import CRI
import Foundation
import KubeAPI

/// Builds a pod's API status from what the runtime shows and what the worker decided: phase, conditions, IPs,
/// container statuses (kubelet's `generateAPIPodStatus`). Pure: the same inputs give the same status, and
/// condition transition times change only when a condition's status changes.
struct PodStatusBuilder {
    var pod: DesiredPod
    var observed: ObservedPod
    var probes: [String: ContainerProbeStatus]
    var machine: PodWorker.StateMachine
    var nodeIPs: [String]
    /// The status the API (or the last build) has, to keep transition times and startTime.
    var previous: PodStatus?
    /// Termination messages read from the containers' message files, by container ID.
    var terminationMessages: [String: String] = [:]
    var now: Date

    /// Condition types the kubelet owns; others (set by other controllers) are kept as they are.
    static let ownedConditions: Set<String> = ["PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"]

    func build() -> PodStatus {
        let spec = pod.spec
        var status = PodStatus()
        let initStatuses = spec.initContainerList.map { containerStatus($0, kind: .initContainer) }
        let appStatuses = spec.containers.map { containerStatus($0, kind: .app) }
        status.initContainerStatuses = initStatuses.isEmpty ? nil : initStatuses
        status.containerStatuses = appStatuses
        var phase = machine.terminal?.phase ?? Self.phase(spec, initStatuses: initStatuses, statuses: appStatuses)
        if machine.terminal == nil, case .terminated = machine.lifecycle {
            // A deleted pod whose containers all stopped ends Succeeded only when every one exited 0.
            let allSucceeded = spec.containers.allSatisfy { observed.latest($0.name).map { $0.state == .exited && $0.exitCode == 0 } ?? false }
            phase = allSucceeded ? "Succeeded" : "Failed"
        }
        status.phase = phase
        if let terminal = machine.terminal {
            status.reason = terminal.reason
            status.message = terminal.message
        }
        status.qosClass = Self.qosClass(spec)
        let start = previous?.startTime ?? machine.startTime.map(KubeTime.init) ?? KubeTime(now)
        status.startTime = KubeTime(Date(timeIntervalSince1970: start.date.timeIntervalSince1970.rounded(.down)))
        if let hostIP = nodeIPs.first {
            status.hostIP = hostIP
            status.hostIPs = nodeIPs.map(IPAddressEntry.init(ip:))
        }
        let podIPs: [String]
        if spec.isHostNetwork {
            podIPs = nodeIPs
        } else if let sandbox = observed.readySandbox ?? observed.newestSandbox, !sandbox.podIPs.isEmpty {
            podIPs = sandbox.podIPs
        } else {
            podIPs = previous?.podIPs?.map(\.ip) ?? previous?.podIP.map { [$0] } ?? []
        }
        if let first = podIPs.first {
            status.podIP = first
            status.podIPs = podIPs.map(IPAddressEntry.init(ip:))
        }
        status.conditions = conditions(phase: phase, initStatuses: initStatuses, statuses: appStatuses)
        return status
    }

    // MARK: Containers

    private func containerStatus(_ container: Container, kind: ContainerKind) -> KubeAPI.ContainerStatus {
        let attempts = observed.attempts(container.name)
        var result = KubeAPI.ContainerStatus(name: container.name, image: container.image ?? "")
        let waiting = machine.waiting[container.name]
        guard let latest = attempts.first else {
            let reason = waiting?.reason ?? (kind == .app && !initializedByAttempts ? "PodInitializing" : "ContainerCreating")
            result.state = KubeAPI.ContainerState(waiting: ContainerStateWaiting(reason: reason, message: waiting?.message))
            result.started = false
            return result
        }
        result.restartCount = Int32(clamping: latest.attempt)
        result.image = latest.image
        result.imageID = latest.imageDigest.map { ImageStatus(reference: latest.image, digest: $0).imageID } ?? ""
        result.containerID = latest.runtimeID
        let previousAttempt = attempts.dropFirst().first { $0.state == .exited }
        switch latest.state {
        case .running:
            result.state = KubeAPI.ContainerState(running: ContainerStateRunning(startedAt: latest.startedAt.map(Self.second)))
            if let previousAttempt { result.lastState = KubeAPI.ContainerState(terminated: terminated(previousAttempt)) }
            let probe = probes[latest.id] ?? ContainerProbeStatus()
            let running = !machine.isTerminating && machine.terminal == nil
            result.started = probe.started
            result.ready = running && probe.started && probe.ready
        case .exited:
            if let waiting, machine.terminal == nil, !machine.isTerminating {
                result.state = KubeAPI.ContainerState(waiting: ContainerStateWaiting(reason: waiting.reason, message: waiting.message))
                result.lastState = KubeAPI.ContainerState(terminated: terminated(latest))
            } else {
                result.state = KubeAPI.ContainerState(terminated: terminated(latest))
                if let previousAttempt { result.lastState = KubeAPI.ContainerState(terminated: terminated(previousAttempt)) }
            }
            result.started = false
        case .created, .unknown:
            result.state = KubeAPI.ContainerState(waiting: ContainerStateWaiting(reason: waiting?.reason ?? "ContainerCreating", message: waiting?.message))
            if let previousAttempt { result.lastState = KubeAPI.ContainerState(terminated: terminated(previousAttempt)) }
            result.started = false
        }
        return result
    }

    /// Whether every init container of the current sandbox succeeded (app containers wait with PodInitializing).
    private var initializedByAttempts: Bool {
        let inits = pod.spec.initContainerList
        guard !inits.isEmpty else { return true }
        guard let sandbox = observed.readySandbox ?? observed.newestSandbox else { return false }
        return inits.allSatisfy { observed.latest($0.name, in: sandbox.id).map { $0.state == .exited && $0.exitCode == 0 } ?? false }
    }

    private func terminated(_ container: CRI.ContainerStatus) -> ContainerStateTerminated {
        let code = container.exitCode ?? 0
        var reason = container.reason ?? (code == 0 ? "Completed" : "Error")
        if code == 137, reason == "Error", machine.killReasons[container.id] == nil, container.labels[RuntimeLabels.reason] == "OOMKilled" {
            reason = "OOMKilled"
        }
        var state = ContainerStateTerminated(exitCode: code, reason: reason)
        state.startedAt = container.startedAt.map(Self.second)
        state.finishedAt = container.finishedAt.map(Self.second)
        state.containerID = container.runtimeID
        if let message = terminationMessages[container.id], !message.isEmpty { state.message = message }
        if code > 128 && code < 160 { state.signal = code - 128 }
        return state
    }

    /// API times have second precision; rounding down keeps a rebuilt status equal to the stored one.
    private static func second(_ date: Date) -> KubeTime {
        KubeTime(Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)))
    }

    // MARK: Phase

    /// Kubernetes' `getPhase` over the container statuses.
    static func phase(_ spec: PodSpec, initStatuses: [KubeAPI.ContainerStatus], statuses: [KubeAPI.ContainerStatus]) -> String {
        var pendingInitialization = 0
        var failedInitialization = 0
        for status in initStatuses {
            if status.state?.running != nil {
                pendingInitialization += 1
            } else if let terminated = status.state?.terminated {
                if terminated.exitCode != 0 { failedInitialization += 1 }
            } else if status.state?.waiting != nil {
                if let last = status.lastState?.terminated {
                    if last.exitCode != 0 { failedInitialization += 1 }
                } else {
                    pendingInitialization += 1
                }
            } else {
                pendingInitialization += 1
            }
        }
        var unknown = 0
        var running = 0
        var waiting = 0
        var stopped = 0
        var succeeded = 0
        for status in statuses {
            if status.state?.running != nil {
                running += 1
            } else if let terminated = status.state?.terminated {
                stopped += 1
                if terminated.exitCode == 0 { succeeded += 1 }
            } else if status.state?.waiting != nil {
                if status.lastState?.terminated != nil { stopped += 1 } else { waiting += 1 }
            } else {
                unknown += 1
            }
        }
        let policy = spec.effectiveRestartPolicy
        if failedInitialization > 0 && policy == .never { return "Failed" }
        if pendingInitialization > 0 || failedInitialization > 0 || waiting > 0 { return "Pending" }
        if running > 0 && unknown == 0 { return "Running" }
        if running == 0 && stopped > 0 && unknown == 0 {
            if policy == .always { return "Running" }
            if stopped == succeeded { return "Succeeded" }
            if policy == .never { return "Failed" }
            return "Running"
        }
        return "Pending"
    }

    // MARK: Conditions

    private func conditions(phase: String, initStatuses: [KubeAPI.ContainerStatus], statuses: [KubeAPI.ContainerStatus]) -> [PodCondition] {
        let spec = pod.spec
        let previousConditions = previous?.conditions ?? []
        func condition(_ type: String, _ value: Bool, reason: String? = nil, message: String? = nil) -> PodCondition {
            let status = value ? "True" : "False"
            let earlier = previousConditions.first { $0.type == type }
            let transition = earlier?.status == status ? (earlier?.lastTransitionTime ?? KubeTime(Self.second(now).date)) : Self.second(now)
            return PodCondition(type: type, status: status, lastTransitionTime: transition, reason: value ? nil : reason, message: value ? nil : message)
        }
        var result: [PodCondition] = []
        let terminal = phase == "Succeeded" || phase == "Failed"
        // Sandbox with networking ready.
        let sandboxReady = observed.readySandbox != nil && !terminal
        result.append(condition("PodReadyToStartContainers", sandboxReady))
        // Initialized.
        let incompleteInit = spec.initContainerList.enumerated().filter { index, _ in
            let status = initStatuses[index]
            if status.state?.terminated?.exitCode == 0 { return false }
            return true
        }.map(\.element.name)
        let initialized = incompleteInit.isEmpty || (terminal && phase == "Succeeded")
        result.append(
            condition(
                "Initialized", initialized, reason: "ContainersNotInitialized",
                message: "containers with incomplete status: [\(incompleteInit.joined(separator: " "))]"))
        // ContainersReady and Ready.
        let unready = statuses.filter { !$0.ready }.map(\.name)
        let containersReady = unready.isEmpty && initialized && !terminal
        let completedReason = phase == "Succeeded" ? "PodCompleted" : "ContainersNotReady"
        let unreadyMessage = phase == "Succeeded" ? nil : "containers with unready status: [\(unready.joined(separator: " "))]"
        result.append(condition("ContainersReady", containersReady, reason: completedReason, message: unreadyMessage))
        var ready = containersReady
        var readyReason = completedReason
        var readyMessage = unreadyMessage
        if ready, let gates = spec.readinessGates, !gates.isEmpty {
            let missing = gates.filter { gate in previousConditions.first { $0.type == gate.conditionType }?.status != "True" }.map(\.conditionType)
            if !missing.isEmpty {
                ready = false
                readyReason = "ReadinessGatesNotReady"
                readyMessage = "corresponding condition of pod readiness gate \(missing.map { "\"\($0)\"" }.joined(separator: ", ")) does not exist."
            }
        }
        if !initialized && !terminal {
            readyReason = "ContainersNotInitialized"
            readyMessage = "containers with incomplete status: [\(incompleteInit.joined(separator: " "))]"
        }
        result.append(condition("Ready", ready, reason: readyReason, message: readyMessage))
        // PodScheduled: kept from the scheduler, else set by the kubelet.
        if let scheduled = previousConditions.first(where: { $0.type == "PodScheduled" }) {
            result.append(scheduled)
        } else {
            result.append(PodCondition(type: "PodScheduled", status: "True", lastTransitionTime: previous?.startTime ?? Self.second(machine.startTime ?? now)))
        }
        // Conditions owned by others stay.
        result += previousConditions.filter { !Self.ownedConditions.contains($0.type) }
        return result
    }

    // MARK: QoS

    /// `Guaranteed` when every container has equal cpu and memory requests and limits, `BestEffort` when none sets
    /// any, else `Burstable`.
    static func qosClass(_ spec: PodSpec) -> String {
        let containers = spec.initContainerList + spec.containers
        var anySet = false
        var guaranteed = true
        for container in containers {
            let limits = container.resources?.limits ?? [:]
            var requests = container.resources?.requests ?? [:]
            for (key, value) in limits where requests[key] == nil { requests[key] = value }
            if !limits.filter({ ["cpu", "memory"].contains($0.key) }).isEmpty || !requests.filter({ ["cpu", "memory"].contains($0.key) }).isEmpty {
                anySet = true
            }
            for resource in ["cpu", "memory"] {
                guard let limit = limits[resource], let request = requests[resource], limit == request else {
                    guaranteed = false
                    continue
                }
            }
        }
        if !anySet { return "BestEffort" }
        return guaranteed ? "Guaranteed" : "Burstable"
    }
}
