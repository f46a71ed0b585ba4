/// The Kubernetes objects the proxy reads, reduced to exactly the fields kube-proxy reads, with the API's own
/// names and nesting so that they decode from the API's JSON (and manifests) as they are, and so that mapping
/// KubeAPI's typed objects onto them is a field-for-field adapter.
///
/// Enum-like fields stay strings, as in the API: validation happens when they are converted to the proxy's
/// internal model, where a bad value becomes a ``ProxyInputError`` naming the object and the field.

/// `metadata`, as far as the proxy reads it.
public struct ObjectMeta: Sendable, Hashable, Codable {
    public var namespace: String?
    public var name: String
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var resourceVersion: String?

    public init(namespace: String? = nil, name: String, labels: [String: String]? = nil, annotations: [String: String]? = nil) {
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.annotations = annotations
    }
}

/// A `v1` Service.
public struct ServiceObject: Sendable, Hashable, Codable {
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status?

    public struct Spec: Sendable, Hashable, Codable {
        /// `ClusterIP` (default), `NodePort`, `LoadBalancer`, `ExternalName`.
        public var type: String?
        public var clusterIP: String?
        public var clusterIPs: [String]?
        /// `IPv4`, `IPv6`.
        public var ipFamilies: [String]?
        public var ports: [ServicePortObject]?
        public var selector: [String: String]?
        public var externalIPs: [String]?
        /// `None` (default) or `ClientIP`.
        public var sessionAffinity: String?
        public var sessionAffinityConfig: SessionAffinityConfig?
        /// `Cluster` (default) or `Local`.
        public var externalTrafficPolicy: String?
        /// `Cluster` (default) or `Local`.
        public var internalTrafficPolicy: String?
        public var healthCheckNodePort: Int?
        public var loadBalancerSourceRanges: [String]?
        public var externalName: String?

        public init(
            type: String? = nil,
            clusterIP: String? = nil,
            clusterIPs: [String]? = nil,
            ipFamilies: [String]? = nil,
            ports: [ServicePortObject]? = nil,
            selector: [String: String]? = nil,
            externalIPs: [String]? = nil,
            sessionAffinity: String? = nil,
            sessionAffinityConfig: SessionAffinityConfig? = nil,
            externalTrafficPolicy: String? = nil,
            internalTrafficPolicy: String? = nil,
            healthCheckNodePort: Int? = nil
        ) {
            self.type = type
            self.clusterIP = clusterIP
            self.clusterIPs = clusterIPs
            self.ipFamilies = ipFamilies
            self.ports = ports
            self.selector = selector
            self.externalIPs = externalIPs
            self.sessionAffinity = sessionAffinity
            self.sessionAffinityConfig = sessionAffinityConfig
            self.externalTrafficPolicy = externalTrafficPolicy
            self.internalTrafficPolicy = internalTrafficPolicy
            self.healthCheckNodePort = healthCheckNodePort
        }
    }

    public struct SessionAffinityConfig: Sendable, Hashable, Codable {
        public struct ClientIP: Sendable, Hashable, Codable {
            public var timeoutSeconds: Int?
            public init(timeoutSeconds: Int?) { self.timeoutSeconds = timeoutSeconds }
        }
        public var clientIP: ClientIP?
        public init(clientIP: ClientIP?) { self.clientIP = clientIP }
    }

    public struct Status: Sendable, Hashable, Codable {
        public struct LoadBalancer: Sendable, Hashable, Codable {
            public struct Ingress: Sendable, Hashable, Codable {
                public var ip: String?
                public var hostname: String?
                public init(ip: String?) { self.ip = ip }
            }
            public var ingress: [Ingress]?
            public init(ingress: [Ingress]?) { self.ingress = ingress }
        }
        public var loadBalancer: LoadBalancer?
        public init(loadBalancer: LoadBalancer?) { self.loadBalancer = loadBalancer }
    }

    public init(metadata: ObjectMeta, spec: Spec, status: Status? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// `namespace/name`.
    public var namespacedName: NamespacedName { NamespacedName(metadata.namespace ?? "default", metadata.name) }
}

/// One entry of a Service's `spec.ports`.
public struct ServicePortObject: Sendable, Hashable, Codable {
    public var name: String?
    /// `TCP` (default), `UDP`, `SCTP`.
    public var `protocol`: String?
    public var port: Int
    public var targetPort: IntOrString?
    public var nodePort: Int?

    public init(name: String? = nil, protocol: String? = nil, port: Int, targetPort: IntOrString? = nil, nodePort: Int? = nil) {
        self.name = name
        self.protocol = `protocol`
        self.port = port
        self.targetPort = targetPort
        self.nodePort = nodePort
    }
}

/// The API's int-or-string (a Service's `targetPort`).
public enum IntOrString: Sendable, Hashable, Codable {
    case int(Int)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        }
    }
}

/// A `discovery.k8s.io/v1` EndpointSlice.
public struct EndpointSliceObject: Sendable, Hashable, Codable {
    public var metadata: ObjectMeta
    /// `IPv4`, `IPv6` or `FQDN` (FQDN slices are ignored, as kube-proxy does).
    public var addressType: String
    public var endpoints: [EndpointObject]?
    public var ports: [EndpointPortObject]?

    public init(metadata: ObjectMeta, addressType: String, endpoints: [EndpointObject]?, ports: [EndpointPortObject]?) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    /// The label naming the Service a slice belongs to.
    public static let serviceNameLabel = "kubernetes.io/service-name"
    /// The annotation carrying when the change that produced this slice happened (network programming latency).
    public static let lastChangeTriggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time"
}

/// One endpoint of a slice.
public struct EndpointObject: Sendable, Hashable, Codable {
    public struct Conditions: Sendable, Hashable, Codable {
        public var ready: Bool?
        public var serving: Bool?
        public var terminating: Bool?
        public init(ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
            self.ready = ready
            self.serving = serving
            self.terminating = terminating
        }
    }
    public struct Hints: Sendable, Hashable, Codable {
        public struct ForZone: Sendable, Hashable, Codable {
            public var name: String
            public init(name: String) { self.name = name }
        }
        public var forZones: [ForZone]?
        public init(forZones: [ForZone]?) { self.forZones = forZones }
    }

    public var addresses: [String]
    public var conditions: Conditions?
    public var nodeName: String?
    public var zone: String?
    public var hints: Hints?

    public init(addresses: [String], conditions: Conditions? = nil, nodeName: String? = nil, zone: String? = nil, hints: Hints? = nil) {
        self.addresses = addresses
        self.conditions = conditions
        self.nodeName = nodeName
        self.zone = zone
        self.hints = hints
    }
}

/// One port of a slice.
public struct EndpointPortObject: Sendable, Hashable, Codable {
    public var name: String?
    public var `protocol`: String?
    public var port: Int?

    public init(name: String? = nil, protocol: String? = nil, port: Int?) {
        self.name = name
        self.protocol = `protocol`
        self.port = port
    }
}

/// A `v1` Node, as far as the proxy reads it (labels for topology, addresses for NodePorts).
public struct NodeObject: Sendable, Hashable, Codable {
    public struct Status: Sendable, Hashable, Codable {
        public struct Address: Sendable, Hashable, Codable {
            public var type: String
            public var address: String
            public init(type: String, address: String) {
                self.type = type
                self.address = address
            }
        }
        public var addresses: [Address]?
        public init(addresses: [Address]?) { self.addresses = addresses }
    }
    public var metadata: ObjectMeta
    public var status: Status?

    public init(metadata: ObjectMeta, status: Status? = nil) {
        self.metadata = metadata
        self.status = status
    }

    /// The label kube-proxy reads for topology-aware routing.
    public static let zoneLabel = "topology.kubernetes.io/zone"
}

/// `namespace/name` of an object.
public struct NamespacedName: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public var namespace: String
    public var name: String

    public init(_ namespace: String, _ name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { "\(namespace)/\(name)" }

    public static func < (lhs: NamespacedName, rhs: NamespacedName) -> Bool {
        (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
    }
}
