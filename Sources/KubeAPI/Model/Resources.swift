public import Foundation

/// A node (`v1/Node`).
public struct Node: KubeResource, Hashable {
    public static let resourceType = ResourceType(group: "", version: "v1", kind: "Node", plural: "nodes", namespaced: false, hasStatusSubresource: true)
    public var metadata: ObjectMeta
    public var spec: NodeSpec?
    public var status: NodeStatus?
    public var unknownFields = UnknownFields()

    enum CodingKeys: String, CodingKey { case metadata, spec, status }

    public init(metadata: ObjectMeta = ObjectMeta(), spec: NodeSpec? = nil, status: NodeStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

public struct NodeSpec: Codable, Sendable, Hashable {
    public var podCIDR: String?
    public var podCIDRs: [String]?
    public var providerID: String?
    public var unschedulable: Bool?
    public var taints: [Taint]?
    public init() {}
}

public struct Taint: Codable, Sendable, Hashable {
    public var key: String
    public var value: String?
    public var effect: String
    public var timeAdded: KubeTime?
    public init(key: String, value: String? = nil, effect: String) {
        self.key = key
        self.value = value
        self.effect = effect
    }
}

public struct NodeStatus: Codable, Sendable, Hashable {
    public var capacity: [String: Quantity]?
    public var allocatable: [String: Quantity]?
    public var phase: String?
    public var conditions: [NodeCondition]?
    public var addresses: [NodeAddress]?
    public var daemonEndpoints: NodeDaemonEndpoints?
    public var nodeInfo: NodeSystemInfo?
    public init() {}
}

public struct NodeCondition: Codable, Sendable, Hashable {
    /// `Ready`, `MemoryPressure`, `DiskPressure`, `PIDPressure`, `NetworkUnavailable`.
    public var type: String
    public var status: String
    public var lastHeartbeatTime: KubeTime?
    public var lastTransitionTime: KubeTime?
    public var reason: String?
    public var message: String?
    public init(type: String, status: String, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
    }
}

public struct NodeAddress: Codable, Sendable, Hashable {
    /// `InternalIP`, `ExternalIP`, `Hostname` ...
    public var type: String
    public var address: String
    public init(type: String, address: String) {
        self.type = type
        self.address = address
    }
}

public struct NodeDaemonEndpoints: Codable, Sendable, Hashable {
    public var kubeletEndpoint: DaemonEndpoint?
    public init(kubeletEndpoint: DaemonEndpoint? = nil) { self.kubeletEndpoint = kubeletEndpoint }
}

public struct DaemonEndpoint: Codable, Sendable, Hashable {
    public var port: Int32
    enum CodingKeys: String, CodingKey { case port = "Port" }
    public init(port: Int32) { self.port = port }
}

public struct NodeSystemInfo: Codable, Sendable, Hashable {
    public var machineID: String = ""
    public var systemUUID: String = ""
    public var bootID: String = ""
    public var kernelVersion: String = ""
    public var osImage: String = ""
    public var containerRuntimeVersion: String = ""
    public var kubeletVersion: String = ""
    public var kubeProxyVersion: String = ""
    public var operatingSystem: String = ""
    public var architecture: String = ""
    public init() {}
}

/// A lease (`coordination.k8s.io/v1`): the node heartbeat lives in `kube-node-lease/<node>`.
public struct Lease: KubeResource, Hashable {
    public static let resourceType = ResourceType(
        group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", namespaced: true, hasStatusSubresource: false)
    public var metadata: ObjectMeta
    public var spec: LeaseSpec?
    public var unknownFields = UnknownFields()

    enum CodingKeys: String, CodingKey { case metadata, spec }

    public init(metadata: ObjectMeta = ObjectMeta(), spec: LeaseSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

public struct LeaseSpec: Codable, Sendable, Hashable {
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int32?
    public var acquireTime: MicroTime?
    public var renewTime: MicroTime?
    public var leaseTransitions: Int32?
    public init(holderIdentity: String? = nil, leaseDurationSeconds: Int32? = nil, renewTime: MicroTime? = nil) {
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.renewTime = renewTime
    }
}

/// A service (`v1/Service`). Named `KubeService` so it does not clash with swift-service-lifecycle's `Service`.
public struct KubeService: KubeResource, Hashable {
    public static let resourceType = ResourceType(group: "", version: "v1", kind: "Service", plural: "services", namespaced: true, hasStatusSubresource: true)
    public var metadata: ObjectMeta
    public var spec: ServiceSpec?
    public var status: ServiceStatus?
    public var unknownFields = UnknownFields()

    enum CodingKeys: String, CodingKey { case metadata, spec, status }

    public init(metadata: ObjectMeta = ObjectMeta(), spec: ServiceSpec? = nil, status: ServiceStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

public struct ServiceSpec: Codable, Sendable, Hashable {
    public var ports: [ServicePort]?
    public var selector: [String: String]?
    public var clusterIP: String?
    public var clusterIPs: [String]?
    /// `ClusterIP`, `NodePort`, `LoadBalancer` or `ExternalName`.
    public var type: String?
    public var externalIPs: [String]?
    /// `None` or `ClientIP`.
    public var sessionAffinity: String?
    public var loadBalancerIP: String?
    public var loadBalancerSourceRanges: [String]?
    public var externalName: String?
    /// `Cluster` or `Local`.
    public var externalTrafficPolicy: String?
    public var healthCheckNodePort: Int32?
    public var publishNotReadyAddresses: Bool?
    public var sessionAffinityConfig: SessionAffinityConfig?
    public var ipFamilies: [String]?
    public var ipFamilyPolicy: String?
    public var allocateLoadBalancerNodePorts: Bool?
    public var loadBalancerClass: String?
    public var internalTrafficPolicy: String?
    public var trafficDistribution: String?
    public init() {}
}

public struct ServicePort: Codable, Sendable, Hashable {
    public var name: String?
    public var `protocol`: String?
    public var appProtocol: String?
    public var port: Int32
    public var targetPort: IntOrString?
    public var nodePort: Int32?
    public init(name: String? = nil, protocol: String? = nil, port: Int32, targetPort: IntOrString? = nil, nodePort: Int32? = nil) {
        self.name = name
        self.protocol = `protocol`
        self.port = port
        self.targetPort = targetPort
        self.nodePort = nodePort
    }
}

public struct SessionAffinityConfig: Codable, Sendable, Hashable {
    public var clientIP: ClientIPConfig?
    public init(clientIP: ClientIPConfig? = nil) { self.clientIP = clientIP }
}

public struct ClientIPConfig: Codable, Sendable, Hashable {
    public var timeoutSeconds: Int32?
    public init(timeoutSeconds: Int32? = nil) { self.timeoutSeconds = timeoutSeconds }
}

public struct ServiceStatus: Codable, Sendable, Hashable {
    public var loadBalancer: LoadBalancerStatus?
    public var conditions: JSONValue?
    public init() {}
}

public struct LoadBalancerStatus: Codable, Sendable, Hashable {
    public var ingress: [LoadBalancerIngress]?
    public init(ingress: [LoadBalancerIngress]? = nil) { self.ingress = ingress }
}

public struct LoadBalancerIngress: Codable, Sendable, Hashable {
    public var ip: String?
    public var hostname: String?
    public var ipMode: String?
    public init(ip: String? = nil, hostname: String? = nil) {
        self.ip = ip
        self.hostname = hostname
    }
}

/// An endpoint slice (`discovery.k8s.io/v1`): the backends of a service.
public struct EndpointSlice: KubeResource, Hashable {
    public static let resourceType = ResourceType(
        group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", plural: "endpointslices", namespaced: true, hasStatusSubresource: false)
    public var metadata: ObjectMeta
    /// `IPv4`, `IPv6` or `FQDN`.
    public var addressType: String
    public var endpoints: [Endpoint]
    public var ports: [EndpointPort]?
    public var unknownFields = UnknownFields()

    enum CodingKeys: String, CodingKey { case metadata, addressType, endpoints, ports }

    public init(metadata: ObjectMeta = ObjectMeta(), addressType: String = "IPv4", endpoints: [Endpoint] = [], ports: [EndpointPort]? = nil) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        addressType = try container.decode(String.self, forKey: .addressType)
        // The API omits an empty endpoints list.
        endpoints = try container.decodeIfPresent([Endpoint].self, forKey: .endpoints) ?? []
        ports = try container.decodeIfPresent([EndpointPort].self, forKey: .ports)
    }
}

public struct Endpoint: Codable, Sendable, Hashable {
    public var addresses: [String]
    public var conditions: EndpointConditions?
    public var hostname: String?
    public var targetRef: ObjectReference?
    public var nodeName: String?
    public var zone: String?
    public var hints: EndpointHints?
    public init(addresses: [String], conditions: EndpointConditions? = nil, nodeName: String? = nil) {
        self.addresses = addresses
        self.conditions = conditions
        self.nodeName = nodeName
    }
}

public struct EndpointConditions: Codable, Sendable, Hashable {
    public var ready: Bool?
    public var serving: Bool?
    public var terminating: Bool?
    public init(ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
    }
}

public struct EndpointHints: Codable, Sendable, Hashable {
    public var forZones: [ForZone]?
    public init() {}
}

public struct ForZone: Codable, Sendable, Hashable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct EndpointPort: Codable, Sendable, Hashable {
    public var name: String?
    public var `protocol`: String?
    public var port: Int32?
    public var appProtocol: String?
    public init(name: String? = nil, protocol: String? = nil, port: Int32? = nil) {
        self.name = name
        self.protocol = `protocol`
        self.port = port
    }
}

/// An event (`v1/Event`), as the kubelet records them.
public struct Event: KubeResource, Hashable {
    public static let resourceType = ResourceType(group: "", version: "v1", kind: "Event", plural: "events", namespaced: true, hasStatusSubresource: false)
    public var metadata: ObjectMeta
    public var involvedObject: ObjectReference
    public var reason: String?
    public var message: String?
    public var source: EventSource?
    public var firstTimestamp: KubeTime?
    public var lastTimestamp: KubeTime?
    public var count: Int32?
    /// `Normal` or `Warning`.
    public var type: String?
    public var eventTime: MicroTime?
    public var reportingComponent: String?
    public var reportingInstance: String?
    public var action: String?
    public var unknownFields = UnknownFields()

    enum CodingKeys: String, CodingKey {
        case metadata, involvedObject, reason, message, source, firstTimestamp, lastTimestamp, count, type, eventTime
        case reportingComponent, reportingInstance, action
    }

    public init(metadata: ObjectMeta = ObjectMeta(), involvedObject: ObjectReference, reason: String? = nil, message: String? = nil, type: String? = nil) {
        self.metadata = metadata
        self.involvedObject = involvedObject
        self.reason = reason
        self.message = message
        self.type = type
    }
}

public struct EventSource: Codable, Sendable, Hashable {
    public var component: String?
    public var host: String?
    public init(component: String? = nil, host: String? = nil) {
        self.component = component
        self.host = host
    }
}

/// A config map (`v1/ConfigMap`).
public struct ConfigMap: KubeResource, Hashable {
    public static let resourceType = ResourceType(group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true, hasStatusSubresource: false)
    public var metadata: ObjectMeta
    public var data: [String: String]?
    /// Values are base64 in JSON and bytes here.
    public var binaryData: [String: Data]?
    public var immutable: Bool?
    public var unknownFields = UnknownFields()

    enum CodingKeys: String, CodingKey { case metadata, data, binaryData, immutable }

    public init(metadata: ObjectMeta = ObjectMeta(), data: [String: String]? = nil) {
        self.metadata = metadata
        self.data = data
    }
}

/// A secret (`v1/Secret`). `data` values are base64 in JSON and bytes here.
public struct Secret: KubeResource, Hashable {
    public static let resourceType = ResourceType(group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true, hasStatusSubresource: false)
    public var metadata: ObjectMeta
    public var data: [String: Data]?
    /// Write-only convenience: the server merges it into `data`.
    public var stringData: [String: String]?
    public var type: String?
    public var immutable: Bool?
    public var unknownFields = UnknownFields()

    enum CodingKeys: String, CodingKey { case metadata, data, stringData, type, immutable }

    public init(metadata: ObjectMeta = ObjectMeta(), data: [String: Data]? = nil, type: String? = nil) {
        self.metadata = metadata
        self.data = data
        self.type = type
    }
}

/// A namespace (`v1/Namespace`).
public struct Namespace: KubeResource, Hashable {
    public static let resourceType = ResourceType(group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, hasStatusSubresource: true)
    public var metadata: ObjectMeta
    public var spec: JSONValue?
    public var status: NamespaceStatus?
    public var unknownFields = UnknownFields()

    enum CodingKeys: String, CodingKey { case metadata, spec, status }

    public init(metadata: ObjectMeta = ObjectMeta()) { self.metadata = metadata }
}

public struct NamespaceStatus: Codable, Sendable, Hashable {
    public var phase: String?
    public init(phase: String? = nil) { self.phase = phase }
}
