/// A pod (`v1/Pod`): spec and status in full for what a node runs.
public struct Pod: KubeResource, Hashable {
    public static let resourceType = ResourceType(group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, hasStatusSubresource: true)
    public var metadata: ObjectMeta
    public var spec: PodSpec?
    public var status: PodStatus?
    public var unknownFields = UnknownFields()

    enum CodingKeys: String, CodingKey { case metadata, spec, status }

    public init(metadata: ObjectMeta = ObjectMeta(), spec: PodSpec? = nil, status: PodStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

public struct PodSpec: Codable, Sendable, Hashable {
    public var volumes: [Volume]?
    public var initContainers: [Container]?
    public var containers: [Container] = []
    public var ephemeralContainers: [Container]?
    /// `Always`, `OnFailure` or `Never`.
    public var restartPolicy: String?
    public var terminationGracePeriodSeconds: Int64?
    public var activeDeadlineSeconds: Int64?
    public var dnsPolicy: String?
    public var nodeSelector: [String: String]?
    public var serviceAccountName: String?
    public var serviceAccount: String?
    public var automountServiceAccountToken: Bool?
    public var nodeName: String?
    public var hostNetwork: Bool?
    public var hostPID: Bool?
    public var hostIPC: Bool?
    public var shareProcessNamespace: Bool?
    public var securityContext: PodSecurityContext? {
        get { _securityContext?.value }
        set { _securityContext = newValue.map { Indirect($0) } }
    }
    var _securityContext: Indirect<PodSecurityContext>?
    public var imagePullSecrets: [LocalObjectReference]?
    public var hostname: String?
    public var subdomain: String?
    /// Scheduling-only; kept as JSON.
    public var affinity: JSONValue? {
        get { _affinity?.value }
        set { _affinity = newValue.map { Indirect($0) } }
    }
    var _affinity: Indirect<JSONValue>?
    public var schedulerName: String?
    public var tolerations: [Toleration]?
    public var hostAliases: [HostAlias]?
    public var priorityClassName: String?
    public var priority: Int32?
    public var dnsConfig: PodDNSConfig? {
        get { _dnsConfig?.value }
        set { _dnsConfig = newValue.map { Indirect($0) } }
    }
    var _dnsConfig: Indirect<PodDNSConfig>?
    public var readinessGates: [PodReadinessGate]?
    public var runtimeClassName: String?
    public var enableServiceLinks: Bool?
    public var preemptionPolicy: String?
    public var overhead: [String: Quantity]?
    public var topologySpreadConstraints: JSONValue? {
        get { _topologySpreadConstraints?.value }
        set { _topologySpreadConstraints = newValue.map { Indirect($0) } }
    }
    var _topologySpreadConstraints: Indirect<JSONValue>?
    public var setHostnameAsFQDN: Bool?
    public var os: PodOS?
    public var hostUsers: Bool?

    public init(containers: [Container] = []) { self.containers = containers }

    enum CodingKeys: String, CodingKey {
        case volumes, initContainers, containers, ephemeralContainers, restartPolicy, terminationGracePeriodSeconds, activeDeadlineSeconds, dnsPolicy, nodeSelector, serviceAccountName, serviceAccount, automountServiceAccountToken, nodeName, hostNetwork, hostPID, hostIPC, shareProcessNamespace, _securityContext = "securityContext", imagePullSecrets, hostname, subdomain, _affinity = "affinity", schedulerName, tolerations, hostAliases, priorityClassName, priority, _dnsConfig = "dnsConfig", readinessGates, runtimeClassName, enableServiceLinks, preemptionPolicy, overhead, _topologySpreadConstraints = "topologySpreadConstraints", setHostnameAsFQDN, os, hostUsers
    }
}

public struct LocalObjectReference: Codable, Sendable, Hashable {
    public var name: String?
    public init(name: String? = nil) { self.name = name }
}

public struct PodOS: Codable, Sendable, Hashable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct HostAlias: Codable, Sendable, Hashable {
    public var ip: String?
    public var hostnames: [String]?
    public init(ip: String? = nil, hostnames: [String]? = nil) {
        self.ip = ip
        self.hostnames = hostnames
    }
}

public struct PodDNSConfig: Codable, Sendable, Hashable {
    public var nameservers: [String]?
    public var searches: [String]?
    public var options: [PodDNSConfigOption]?
    public init() {}
}

public struct PodDNSConfigOption: Codable, Sendable, Hashable {
    public var name: String?
    public var value: String?
    public init(name: String? = nil, value: String? = nil) {
        self.name = name
        self.value = value
    }
}

public struct PodReadinessGate: Codable, Sendable, Hashable {
    public var conditionType: String
    public init(conditionType: String) { self.conditionType = conditionType }
}

public struct Container: Codable, Sendable, Hashable {
    public var name: String
    public var image: String?
    public var command: [String]?
    public var args: [String]?
    public var workingDir: String?
    public var ports: [ContainerPort]?
    public var envFrom: [EnvFromSource]?
    public var env: [EnvVar]?
    public var resources: ResourceRequirements?
    /// `Always` marks a restartable init container (sidecar).
    public var restartPolicy: String?
    public var volumeMounts: [VolumeMount]?
    public var volumeDevices: [VolumeDevice]?
    public var livenessProbe: Probe? {
        get { _livenessProbe?.value }
        set { _livenessProbe = newValue.map { Indirect($0) } }
    }
    var _livenessProbe: Indirect<Probe>?
    public var readinessProbe: Probe? {
        get { _readinessProbe?.value }
        set { _readinessProbe = newValue.map { Indirect($0) } }
    }
    var _readinessProbe: Indirect<Probe>?
    public var startupProbe: Probe? {
        get { _startupProbe?.value }
        set { _startupProbe = newValue.map { Indirect($0) } }
    }
    var _startupProbe: Indirect<Probe>?
    public var lifecycle: Lifecycle? {
        get { _lifecycle?.value }
        set { _lifecycle = newValue.map { Indirect($0) } }
    }
    var _lifecycle: Indirect<Lifecycle>?
    public var terminationMessagePath: String?
    public var terminationMessagePolicy: String?
    /// `Always`, `Never` or `IfNotPresent`.
    public var imagePullPolicy: String?
    public var securityContext: SecurityContext? {
        get { _securityContext?.value }
        set { _securityContext = newValue.map { Indirect($0) } }
    }
    var _securityContext: Indirect<SecurityContext>?
    public var stdin: Bool?
    public var stdinOnce: Bool?
    public var tty: Bool?

    public init(name: String, image: String? = nil, command: [String]? = nil, args: [String]? = nil) {
        self.name = name
        self.image = image
        self.command = command
        self.args = args
    }

    enum CodingKeys: String, CodingKey {
        case name, image, command, args, workingDir, ports, envFrom, env, resources, restartPolicy, volumeMounts, volumeDevices, _livenessProbe = "livenessProbe", _readinessProbe = "readinessProbe", _startupProbe = "startupProbe", _lifecycle = "lifecycle", terminationMessagePath, terminationMessagePolicy, imagePullPolicy, _securityContext = "securityContext", stdin, stdinOnce, tty
    }
}

public struct ContainerPort: Codable, Sendable, Hashable {
    public var name: String?
    public var hostPort: Int32?
    public var containerPort: Int32
    /// `TCP` (default), `UDP` or `SCTP`.
    public var `protocol`: String?
    public var hostIP: String?

    public init(name: String? = nil, containerPort: Int32, protocol: String? = nil) {
        self.name = name
        self.containerPort = containerPort
        self.protocol = `protocol`
    }
}

public struct EnvVar: Codable, Sendable, Hashable {
    public var name: String
    public var value: String?
    public var valueFrom: EnvVarSource? {
        get { _valueFrom?.value }
        set { _valueFrom = newValue.map { Indirect($0) } }
    }
    var _valueFrom: Indirect<EnvVarSource>?

    public init(name: String, value: String? = nil, valueFrom: EnvVarSource? = nil) {
        self.name = name
        self.value = value
        self.valueFrom = valueFrom
    }

    enum CodingKeys: String, CodingKey {
        case name, value, _valueFrom = "valueFrom"
    }
}

public struct EnvVarSource: Codable, Sendable, Hashable {
    public var fieldRef: ObjectFieldSelector?
    public var resourceFieldRef: ResourceFieldSelector?
    public var configMapKeyRef: KeySelector?
    public var secretKeyRef: KeySelector?
    public init() {}
}

public struct ObjectFieldSelector: Codable, Sendable, Hashable {
    public var apiVersion: String?
    public var fieldPath: String
    public init(fieldPath: String) { self.fieldPath = fieldPath }
}

public struct ResourceFieldSelector: Codable, Sendable, Hashable {
    public var containerName: String?
    public var resource: String
    public var divisor: Quantity?
    public init(resource: String) { self.resource = resource }
}

/// A key in a ConfigMap or Secret (`configMapKeyRef`, `secretKeyRef`).
public struct KeySelector: Codable, Sendable, Hashable {
    public var name: String?
    public var key: String
    public var optional: Bool?
    public init(name: String?, key: String, optional: Bool? = nil) {
        self.name = name
        self.key = key
        self.optional = optional
    }
}

public struct EnvFromSource: Codable, Sendable, Hashable {
    public var prefix: String?
    public var configMapRef: OptionalReference?
    public var secretRef: OptionalReference?
    public init() {}
}

public struct OptionalReference: Codable, Sendable, Hashable {
    public var name: String?
    public var optional: Bool?
    public init(name: String? = nil, optional: Bool? = nil) {
        self.name = name
        self.optional = optional
    }
}

public struct ResourceRequirements: Codable, Sendable, Hashable {
    public var limits: [String: Quantity]?
    public var requests: [String: Quantity]?
    public init(limits: [String: Quantity]? = nil, requests: [String: Quantity]? = nil) {
        self.limits = limits
        self.requests = requests
    }
}

public struct VolumeMount: Codable, Sendable, Hashable {
    public var name: String
    public var readOnly: Bool?
    public var mountPath: String
    public var subPath: String?
    public var mountPropagation: String?
    public var subPathExpr: String?
    public var recursiveReadOnly: String?

    public init(name: String, mountPath: String, readOnly: Bool? = nil) {
        self.name = name
        self.mountPath = mountPath
        self.readOnly = readOnly
    }
}

public struct VolumeDevice: Codable, Sendable, Hashable {
    public var name: String
    public var devicePath: String
    public init(name: String, devicePath: String) {
        self.name = name
        self.devicePath = devicePath
    }
}

/// A probe: one handler plus timing and thresholds.
public struct Probe: Codable, Sendable, Hashable {
    public var exec: ExecAction?
    public var httpGet: HTTPGetAction?
    public var tcpSocket: TCPSocketAction?
    public var grpc: GRPCAction?
    public var initialDelaySeconds: Int32?
    public var timeoutSeconds: Int32?
    public var periodSeconds: Int32?
    public var successThreshold: Int32?
    public var failureThreshold: Int32?
    public var terminationGracePeriodSeconds: Int64?
    public init() {}
}

public struct ExecAction: Codable, Sendable, Hashable {
    public var command: [String]?
    public init(command: [String]? = nil) { self.command = command }
}

public struct HTTPGetAction: Codable, Sendable, Hashable {
    public var path: String?
    public var port: IntOrString
    public var host: String?
    /// `HTTP` (default) or `HTTPS`.
    public var scheme: String?
    public var httpHeaders: [HTTPHeader]?

    public init(path: String? = nil, port: IntOrString, host: String? = nil, scheme: String? = nil) {
        self.path = path
        self.port = port
        self.host = host
        self.scheme = scheme
    }
}

public struct HTTPHeader: Codable, Sendable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public struct TCPSocketAction: Codable, Sendable, Hashable {
    public var port: IntOrString
    public var host: String?
    public init(port: IntOrString, host: String? = nil) {
        self.port = port
        self.host = host
    }
}

public struct GRPCAction: Codable, Sendable, Hashable {
    public var port: Int32
    public var service: String?
    public init(port: Int32, service: String? = nil) {
        self.port = port
        self.service = service
    }
}

public struct Lifecycle: Codable, Sendable, Hashable {
    public var postStart: LifecycleHandler?
    public var preStop: LifecycleHandler?
    public init() {}
}

public struct LifecycleHandler: Codable, Sendable, Hashable {
    public var exec: ExecAction?
    public var httpGet: HTTPGetAction?
    public var tcpSocket: TCPSocketAction?
    public var sleep: SleepAction?
    public init() {}
}

public struct SleepAction: Codable, Sendable, Hashable {
    public var seconds: Int64
    public init(seconds: Int64) { self.seconds = seconds }
}

public struct SecurityContext: Codable, Sendable, Hashable {
    public var capabilities: Capabilities?
    public var privileged: Bool?
    public var seLinuxOptions: JSONValue?
    public var windowsOptions: JSONValue?
    public var runAsUser: Int64?
    public var runAsGroup: Int64?
    public var runAsNonRoot: Bool?
    public var readOnlyRootFilesystem: Bool?
    public var allowPrivilegeEscalation: Bool?
    public var procMount: String?
    public var seccompProfile: SeccompProfile?
    public var appArmorProfile: JSONValue?
    public init() {}
}

public struct Capabilities: Codable, Sendable, Hashable {
    public var add: [String]?
    public var drop: [String]?
    public init(add: [String]? = nil, drop: [String]? = nil) {
        self.add = add
        self.drop = drop
    }
}

public struct SeccompProfile: Codable, Sendable, Hashable {
    /// `RuntimeDefault`, `Unconfined` or `Localhost`.
    public var type: String
    public var localhostProfile: String?
    public init(type: String, localhostProfile: String? = nil) {
        self.type = type
        self.localhostProfile = localhostProfile
    }
}

public struct PodSecurityContext: Codable, Sendable, Hashable {
    public var runAsUser: Int64?
    public var runAsGroup: Int64?
    public var runAsNonRoot: Bool?
    public var supplementalGroups: [Int64]?
    public var fsGroup: Int64?
    public var fsGroupChangePolicy: String?
    public var sysctls: [Sysctl]?
    public var seccompProfile: SeccompProfile?
    public var seLinuxOptions: JSONValue?
    public init() {}
}

public struct Sysctl: Codable, Sendable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public struct Toleration: Codable, Sendable, Hashable {
    public var key: String?
    /// `Exists` or `Equal` (default).
    public var `operator`: String?
    public var value: String?
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    public var effect: String?
    public var tolerationSeconds: Int64?
    public init(key: String? = nil, operator: String? = nil, value: String? = nil, effect: String? = nil, tolerationSeconds: Int64? = nil) {
        self.key = key
        self.operator = `operator`
        self.value = value
        self.effect = effect
        self.tolerationSeconds = tolerationSeconds
    }
}

/// A volume: its name and one source. Sources this model does not name are kept as unknown fields.
public struct Volume: Codable, Sendable, Hashable {
    public var name: String
    public var hostPath: HostPathVolumeSource? {
        get { _hostPath?.value }
        set { _hostPath = newValue.map { Indirect($0) } }
    }
    var _hostPath: Indirect<HostPathVolumeSource>?
    public var emptyDir: EmptyDirVolumeSource? {
        get { _emptyDir?.value }
        set { _emptyDir = newValue.map { Indirect($0) } }
    }
    var _emptyDir: Indirect<EmptyDirVolumeSource>?
    public var secret: SecretVolumeSource? {
        get { _secret?.value }
        set { _secret = newValue.map { Indirect($0) } }
    }
    var _secret: Indirect<SecretVolumeSource>?
    public var configMap: ConfigMapVolumeSource? {
        get { _configMap?.value }
        set { _configMap = newValue.map { Indirect($0) } }
    }
    var _configMap: Indirect<ConfigMapVolumeSource>?
    public var persistentVolumeClaim: PersistentVolumeClaimVolumeSource? {
        get { _persistentVolumeClaim?.value }
        set { _persistentVolumeClaim = newValue.map { Indirect($0) } }
    }
    var _persistentVolumeClaim: Indirect<PersistentVolumeClaimVolumeSource>?
    public var projected: ProjectedVolumeSource? {
        get { _projected?.value }
        set { _projected = newValue.map { Indirect($0) } }
    }
    var _projected: Indirect<ProjectedVolumeSource>?
    public var downwardAPI: DownwardAPIVolumeSource? {
        get { _downwardAPI?.value }
        set { _downwardAPI = newValue.map { Indirect($0) } }
    }
    var _downwardAPI: Indirect<DownwardAPIVolumeSource>?

    public init(name: String) { self.name = name }

    enum CodingKeys: String, CodingKey {
        case name, _hostPath = "hostPath", _emptyDir = "emptyDir", _secret = "secret", _configMap = "configMap", _persistentVolumeClaim = "persistentVolumeClaim", _projected = "projected", _downwardAPI = "downwardAPI"
    }
}

public struct HostPathVolumeSource: Codable, Sendable, Hashable {
    public var path: String
    /// `""`, `DirectoryOrCreate`, `Directory`, `FileOrCreate`, `File`, `Socket`, `CharDevice`, `BlockDevice`.
    public var type: String?
    public init(path: String, type: String? = nil) {
        self.path = path
        self.type = type
    }
}

public struct EmptyDirVolumeSource: Codable, Sendable, Hashable {
    /// `""` (node disk) or `Memory` (tmpfs).
    public var medium: String?
    public var sizeLimit: Quantity?
    public init(medium: String? = nil, sizeLimit: Quantity? = nil) {
        self.medium = medium
        self.sizeLimit = sizeLimit
    }
}

public struct KeyToPath: Codable, Sendable, Hashable {
    public var key: String
    public var path: String
    public var mode: Int32?
    public init(key: String, path: String, mode: Int32? = nil) {
        self.key = key
        self.path = path
        self.mode = mode
    }
}

public struct SecretVolumeSource: Codable, Sendable, Hashable {
    public var secretName: String?
    public var items: [KeyToPath]?
    public var defaultMode: Int32?
    public var optional: Bool?
    public init(secretName: String? = nil) { self.secretName = secretName }
}

public struct ConfigMapVolumeSource: Codable, Sendable, Hashable {
    public var name: String?
    public var items: [KeyToPath]?
    public var defaultMode: Int32?
    public var optional: Bool?
    public init(name: String? = nil) { self.name = name }
}

public struct PersistentVolumeClaimVolumeSource: Codable, Sendable, Hashable {
    public var claimName: String
    public var readOnly: Bool?
    public init(claimName: String, readOnly: Bool? = nil) {
        self.claimName = claimName
        self.readOnly = readOnly
    }
}

public struct ProjectedVolumeSource: Codable, Sendable, Hashable {
    public var sources: [VolumeProjection]?
    public var defaultMode: Int32?
    public init() {}
}

public struct VolumeProjection: Codable, Sendable, Hashable {
    public var secret: ProjectedKeys?
    public var configMap: ProjectedKeys?
    public var downwardAPI: DownwardAPIProjection?
    public var serviceAccountToken: ServiceAccountTokenProjection?
    public init() {}
}

public struct ProjectedKeys: Codable, Sendable, Hashable {
    public var name: String?
    public var items: [KeyToPath]?
    public var optional: Bool?
    public init(name: String? = nil) { self.name = name }
}

public struct DownwardAPIProjection: Codable, Sendable, Hashable {
    public var items: [DownwardAPIVolumeFile]?
    public init() {}
}

public struct ServiceAccountTokenProjection: Codable, Sendable, Hashable {
    public var audience: String?
    public var expirationSeconds: Int64?
    public var path: String
    public init(path: String) { self.path = path }
}

public struct DownwardAPIVolumeSource: Codable, Sendable, Hashable {
    public var items: [DownwardAPIVolumeFile]?
    public var defaultMode: Int32?
    public init() {}
}

public struct DownwardAPIVolumeFile: Codable, Sendable, Hashable {
    public var path: String
    public var fieldRef: ObjectFieldSelector?
    public var resourceFieldRef: ResourceFieldSelector?
    public var mode: Int32?
    public init(path: String) { self.path = path }
}

public struct PodStatus: Codable, Sendable, Hashable {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    public var phase: String?
    public var conditions: [PodCondition]?
    public var message: String?
    public var reason: String?
    public var nominatedNodeName: String?
    public var hostIP: String?
    public var hostIPs: [IPAddressEntry]?
    public var podIP: String?
    public var podIPs: [IPAddressEntry]?
    public var startTime: KubeTime?
    public var initContainerStatuses: [ContainerStatus]?
    public var containerStatuses: [ContainerStatus]?
    public var ephemeralContainerStatuses: [ContainerStatus]?
    /// `Guaranteed`, `Burstable` or `BestEffort`.
    public var qosClass: String?
    public init(phase: String? = nil) { self.phase = phase }
}

/// `{"ip": "..."}` as in `podIPs` and `hostIPs`.
public struct IPAddressEntry: Codable, Sendable, Hashable {
    public var ip: String
    public init(ip: String) { self.ip = ip }
}

public struct PodCondition: Codable, Sendable, Hashable {
    /// `PodScheduled`, `PodReadyToStartContainers`, `Initialized`, `ContainersReady`, `Ready` ...
    public var type: String
    /// `True`, `False` or `Unknown`.
    public var status: String
    public var lastProbeTime: KubeTime?
    public var lastTransitionTime: KubeTime?
    public var reason: String?
    public var message: String?

    public init(type: String, status: String, lastTransitionTime: KubeTime? = nil, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.lastTransitionTime = lastTransitionTime
        self.reason = reason
        self.message = message
    }
}

public struct ContainerStatus: Codable, Sendable, Hashable {
    public var name: String
    public var state: ContainerState? {
        get { _state?.value }
        set { _state = newValue.map { Indirect($0) } }
    }
    var _state: Indirect<ContainerState>?
    public var lastState: ContainerState? {
        get { _lastState?.value }
        set { _lastState = newValue.map { Indirect($0) } }
    }
    var _lastState: Indirect<ContainerState>?
    public var ready: Bool
    public var restartCount: Int32
    public var image: String
    public var imageID: String
    /// `containerd://<id>`.
    public var containerID: String?
    public var started: Bool?

    public init(name: String, ready: Bool = false, restartCount: Int32 = 0, image: String = "", imageID: String = "") {
        self.name = name
        self.ready = ready
        self.restartCount = restartCount
        self.image = image
        self.imageID = imageID
    }

    enum CodingKeys: String, CodingKey {
        case name, _state = "state", _lastState = "lastState", ready, restartCount, image, imageID, containerID, started
    }
}

/// Exactly one of waiting, running, terminated is set.
public struct ContainerState: Codable, Sendable, Hashable {
    public var waiting: ContainerStateWaiting?
    public var running: ContainerStateRunning?
    public var terminated: ContainerStateTerminated?
    public init(waiting: ContainerStateWaiting? = nil, running: ContainerStateRunning? = nil, terminated: ContainerStateTerminated? = nil) {
        self.waiting = waiting
        self.running = running
        self.terminated = terminated
    }
}

public struct ContainerStateWaiting: Codable, Sendable, Hashable {
    public var reason: String?
    public var message: String?
    public init(reason: String? = nil, message: String? = nil) {
        self.reason = reason
        self.message = message
    }
}

public struct ContainerStateRunning: Codable, Sendable, Hashable {
    public var startedAt: KubeTime?
    public init(startedAt: KubeTime? = nil) { self.startedAt = startedAt }
}

public struct ContainerStateTerminated: Codable, Sendable, Hashable {
    public var exitCode: Int32
    public var signal: Int32?
    public var reason: String?
    public var message: String?
    public var startedAt: KubeTime?
    public var finishedAt: KubeTime?
    public var containerID: String?
    public init(exitCode: Int32, reason: String? = nil) {
        self.exitCode = exitCode
        self.reason = reason
    }
}
