public import KubeAPI

// The thin adapter from KubeAPI's typed objects to the proxy's input model (Model/Objects.swift): field for field,
// no validation (that happens in ServiceConversion / EndpointsChangeTracker, where a bad value becomes a
// ProxyInputError naming the object and the field). Inside this module the proxy's own `ObjectMeta`,
// `ServicePort`, `Endpoint` and `IntOrString` shadow KubeAPI's; KubeAPI's are spelled with their module name.

extension ObjectMeta {
    /// The proxy's metadata from the API's (a missing name becomes "" and is refused by validation).
    public init(_ meta: KubeAPI.ObjectMeta) {
        // resourceVersion stays nil: the proxy does not read it, so two versions that differ only there are one input.
        self.init(namespace: meta.namespace, name: meta.name ?? "", labels: meta.labels, annotations: meta.annotations)
    }
}

extension IntOrString {
    public init(_ value: KubeAPI.IntOrString) {
        switch value {
        case .int(let number): self = .int(number)
        case .string(let name): self = .string(name)
        }
    }
}

extension ServiceObject {
    /// The proxy's view of a `v1` Service.
    public init(_ service: KubeService) {
        let spec = service.spec ?? ServiceSpec()
        var converted = Spec(
            type: spec.type,
            clusterIP: spec.clusterIP,
            clusterIPs: spec.clusterIPs,
            ipFamilies: spec.ipFamilies,
            ports: spec.ports?.map { port in
                ServicePortObject(
                    name: port.name,
                    protocol: port.protocol,
                    port: Int(port.port),
                    targetPort: port.targetPort.map(IntOrString.init),
                    nodePort: port.nodePort.map(Int.init)
                )
            },
            selector: spec.selector,
            externalIPs: spec.externalIPs,
            sessionAffinity: spec.sessionAffinity,
            sessionAffinityConfig: spec.sessionAffinityConfig.map { config in
                SessionAffinityConfig(clientIP: config.clientIP.map { .init(timeoutSeconds: $0.timeoutSeconds.map(Int.init)) })
            },
            externalTrafficPolicy: spec.externalTrafficPolicy,
            internalTrafficPolicy: spec.internalTrafficPolicy,
            healthCheckNodePort: spec.healthCheckNodePort.map(Int.init)
        )
        converted.loadBalancerSourceRanges = spec.loadBalancerSourceRanges
        converted.externalName = spec.externalName
        let ingress = service.status?.loadBalancer?.ingress?.map { entry in
            var converted = Status.LoadBalancer.Ingress(ip: entry.ip)
            converted.hostname = entry.hostname
            return converted
        }
        self.init(
            metadata: ObjectMeta(service.metadata),
            spec: converted,
            status: ingress.map { Status(loadBalancer: .init(ingress: $0)) }
        )
    }
}

extension EndpointSliceObject {
    /// The proxy's view of a `discovery.k8s.io/v1` EndpointSlice.
    public init(_ slice: KubeAPI.EndpointSlice) {
        self.init(
            metadata: ObjectMeta(slice.metadata),
            addressType: slice.addressType,
            endpoints: slice.endpoints.map { endpoint in
                EndpointObject(
                    addresses: endpoint.addresses,
                    conditions: endpoint.conditions.map {
                        .init(ready: $0.ready, serving: $0.serving, terminating: $0.terminating)
                    },
                    nodeName: endpoint.nodeName,
                    zone: endpoint.zone,
                    hints: endpoint.hints.map { hints in .init(forZones: hints.forZones?.map { .init(name: $0.name) }) }
                )
            },
            ports: slice.ports?.map { port in
                EndpointPortObject(name: port.name, protocol: port.protocol, port: port.port.map(Int.init))
            }
        )
    }
}

extension NodeObject {
    /// The proxy's view of a `v1` Node (labels for topology, addresses for NodePorts).
    public init(_ node: KubeAPI.Node) {
        self.init(
            metadata: ObjectMeta(node.metadata),
            status: node.status.map { status in
                Status(addresses: status.addresses?.map { Status.Address(type: $0.type, address: $0.address) })
            }
        )
    }

    /// The node's IPs as kube-proxy takes them (`GetNodeHostIPs`): per family the first `InternalIP`, else the
    /// first `ExternalIP`, so at most one IPv4 and one IPv6 address. Unparsable entries are skipped.
    public var hostIPs: [IPAddress] {
        let addresses = status?.addresses ?? []
        let candidates = (addresses.filter { $0.type == "InternalIP" } + addresses.filter { $0.type == "ExternalIP" })
            .compactMap { IPAddress($0.address) }
        var result: [IPAddress] = []
        for family in IPFamily.allCases {
            if let first = candidates.first(where: { $0.family == family }) { result.append(first) }
        }
        return result
    }
}
