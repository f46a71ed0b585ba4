public import CRI
import Foundation
public import KubeAPI

/// Where a pod came from.
public enum PodSourceKind: String, Sendable, Hashable, Codable {
    /// The API server (bound to this node).
    case api
    /// A manifest file in `--pod-manifest-path` (a static pod).
    case file
}

/// A pod the kubelet should run, as its source describes it, keyed by UID.
public struct DesiredPod: Sendable, Hashable {
    public var pod: Pod
    public var source: PodSourceKind
    /// The manifest file of a static pod.
    public var manifestPath: String?

    public init(pod: Pod, source: PodSourceKind, manifestPath: String? = nil) {
        self.pod = pod
        self.source = source
        self.manifestPath = manifestPath
    }

    public var uid: String { pod.metadata.uid ?? "" }
    public var name: String { pod.metadata.name ?? "" }
    public var namespace: String { pod.metadata.namespace ?? "default" }
    /// `namespace/name`.
    public var fullName: String { "\(namespace)/\(name)" }
    public var isStatic: Bool { source == .file }
    public var identity: PodIdentity { PodIdentity(uid: uid, name: name, namespace: namespace) }
    public var spec: PodSpec { pod.spec ?? PodSpec() }
    /// Set when the API server asked for the pod's deletion.
    public var deletionRequested: Bool { pod.metadata.deletionTimestamp != nil }
}

/// Kubernetes' restart policies.
public enum RestartPolicy: String, Sendable, Hashable {
    case always = "Always"
    case onFailure = "OnFailure"
    case never = "Never"
}

extension PodSpec {
    var effectiveRestartPolicy: RestartPolicy { restartPolicy.flatMap(RestartPolicy.init(rawValue:)) ?? .always }
    /// `terminationGracePeriodSeconds`, default 30.
    var terminationGrace: Duration { .seconds(terminationGracePeriodSeconds ?? 30) }
    var initContainerList: [Container] { initContainers ?? [] }
    var isHostNetwork: Bool { hostNetwork ?? false }
}

/// Which list of the pod spec a container is in.
public enum ContainerKind: String, Sendable, Hashable, Codable {
    case initContainer = "init"
    case app
}

/// What the runtime shows of one pod: its sandboxes and every container attempt still present.
public struct ObservedPod: Sendable, Hashable {
    /// Newest first.
    public var sandboxes: [PodSandboxStatus]
    /// Every attempt of every container.
    public var containers: [CRI.ContainerStatus]

    public init(sandboxes: [PodSandboxStatus] = [], containers: [CRI.ContainerStatus] = []) {
        self.sandboxes = sandboxes.sorted { ($0.createdAt, $0.config.attempt) > ($1.createdAt, $1.config.attempt) }
        self.containers = containers
    }

    /// The newest sandbox that is ready.
    public var readySandbox: PodSandboxStatus? { sandboxes.first { $0.state == .ready } }
    public var newestSandbox: PodSandboxStatus? { sandboxes.first }

    /// Every attempt of `name`, newest first.
    public func attempts(_ name: String) -> [CRI.ContainerStatus] {
        containers.filter { $0.name == name }.sorted { ($0.attempt, $0.createdAt) > ($1.attempt, $1.createdAt) }
    }

    /// The newest attempt of `name`.
    public func latest(_ name: String) -> CRI.ContainerStatus? { attempts(name).first }

    /// The newest attempt of `name` in sandbox `sandboxID`.
    public func latest(_ name: String, in sandboxID: String) -> CRI.ContainerStatus? {
        attempts(name).first { $0.sandboxID == sandboxID }
    }

    public var running: [CRI.ContainerStatus] { containers.filter { $0.state == .running } }
}

/// The kind of probe.
public enum ProbeKind: String, Sendable, Hashable, Codable, CaseIterable {
    case startup
    case liveness
    case readiness
}

/// What the probes say about one running container.
public struct ContainerProbeStatus: Sendable, Hashable, Codable {
    /// The startup probe succeeded (or there is none).
    public var started: Bool
    /// The readiness probe says ready (or there is none and the container started).
    public var ready: Bool
    /// The liveness probe failed `failureThreshold` times: the container must be restarted.
    public var livenessFailed: Bool
    /// The startup probe failed `failureThreshold` times: the container must be restarted.
    public var startupFailed: Bool

    public init(started: Bool = true, ready: Bool = true, livenessFailed: Bool = false, startupFailed: Bool = false) {
        self.started = started
        self.ready = ready
        self.livenessFailed = livenessFailed
        self.startupFailed = startupFailed
    }
}

extension Container {
    /// A hash of the container's spec that stays the same across restarts of the daemon; a changed hash means the
    /// container must be restarted (as the kubelet's `hash` annotation).
    var specHash: String {
        var copy = self
        // Fields that may change without a restart.
        copy.resources = nil
        let bytes = (try? JSONEncoder.sorted.encode(copy)).map(Array.init) ?? Array(name.utf8)
        return StableHash.hex32(bytes)
    }
}

extension JSONEncoder {
    /// An encoder with sorted keys, for stable hashes.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}

/// Labels the kubelet adds to the runtime's own on every container it creates.
enum KubeletLabels {
    static let containerHash = "io.kubernetes.container.hash"
    static let containerKind = "io.node-agent.container.kind"
    static let terminationMessagePath = "io.node-agent.termination-message"
    static let sandboxAttempt = "io.node-agent.sandbox.attempt"
    static let podSource = "io.node-agent.pod.source"
}
