/// Turns a ``ServiceObject`` into the ``ServicePort``s of one IP family, as kube-proxy's `serviceToServiceMap`.
enum ServiceConversion {
    /// Label that hands a Service to another proxy implementation; such Services are not ours.
    static let serviceProxyNameLabel = "service.kubernetes.io/service-proxy-name"
    /// Label marking a Service headless.
    static let headlessLabel = "service.kubernetes.io/headless"
    static let defaultStickySeconds = 10800
    static let maxStickySeconds = 86400

    /// The Service's ports for `family`, or an error naming the first invalid field. An empty map means "not
    /// proxied here" (headless, ExternalName, another proxy's, or no cluster IP of this family).
    static func servicePorts(of service: ServiceObject, family: IPFamily) -> Result<[ServicePortName: ServicePort], ProxyInputError> {
        let name = service.namespacedName
        func invalid(_ field: String, _ value: String, _ reason: String) -> Result<[ServicePortName: ServicePort], ProxyInputError> {
            .failure(.invalid("Service", name, field: field, value: value, reason: reason))
        }
        if service.metadata.labels?[serviceProxyNameLabel] != nil { return .success([:]) }
        let type = service.spec.type ?? "ClusterIP"
        switch type {
        case "ClusterIP", "NodePort", "LoadBalancer": break
        case "ExternalName": return .success([:])
        default: return invalid("spec.type", type, "must be ClusterIP, NodePort, LoadBalancer or ExternalName")
        }
        let clusterIPs = service.spec.clusterIPs ?? service.spec.clusterIP.map { [$0] } ?? []
        if clusterIPs.isEmpty || clusterIPs.first == "None" || clusterIPs.first == "" { return .success([:]) }
        var clusterIP: IPAddress?
        for (index, text) in clusterIPs.enumerated() {
            guard let address = IPAddress(text) else {
                return invalid(service.spec.clusterIPs == nil ? "spec.clusterIP" : "spec.clusterIPs[\(index)]", text, "not an IP address")
            }
            if address.family == family && clusterIP == nil { clusterIP = address }
        }
        guard let clusterIP else { return .success([:]) }

        var externalIPs: [IPAddress] = []
        for (index, text) in (service.spec.externalIPs ?? []).enumerated() {
            guard let address = IPAddress(text) else { return invalid("spec.externalIPs[\(index)]", text, "not an IP address") }
            if address.family == family { externalIPs.append(address) }
        }
        var loadBalancerVIPs: [IPAddress] = []
        if type == "LoadBalancer" {
            for (index, ingress) in (service.status?.loadBalancer?.ingress ?? []).enumerated() {
                guard let text = ingress.ip, !text.isEmpty else { continue }
                guard let address = IPAddress(text) else {
                    return invalid("status.loadBalancer.ingress[\(index)].ip", text, "not an IP address")
                }
                if address.family == family { loadBalancerVIPs.append(address) }
            }
        }
        var stickySeconds: Int?
        switch service.spec.sessionAffinity ?? "None" {
        case "None", "": break
        case "ClientIP":
            let timeout = service.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? defaultStickySeconds
            guard timeout > 0, timeout <= maxStickySeconds else {
                return invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "\(timeout)", "must be between 1 and \(maxStickySeconds)")
            }
            stickySeconds = timeout
        case let other: return invalid("spec.sessionAffinity", other, "must be None or ClientIP")
        }
        let externalPolicy = service.spec.externalTrafficPolicy ?? "Cluster"
        guard externalPolicy == "Cluster" || externalPolicy == "Local" || externalPolicy.isEmpty else {
            return invalid("spec.externalTrafficPolicy", externalPolicy, "must be Cluster or Local")
        }
        let internalPolicy = service.spec.internalTrafficPolicy ?? "Cluster"
        guard internalPolicy == "Cluster" || internalPolicy == "Local" || internalPolicy.isEmpty else {
            return invalid("spec.internalTrafficPolicy", internalPolicy, "must be Cluster or Local")
        }
        let healthCheckNodePort = service.spec.healthCheckNodePort ?? 0
        guard (0...65535).contains(healthCheckNodePort) else {
            return invalid("spec.healthCheckNodePort", "\(healthCheckNodePort)", "must be between 1 and 65535")
        }
        guard Names.isValidLabel(name.namespace) else { return invalid("metadata.namespace", name.namespace, "must be a DNS label") }
        guard Names.isValidLabel(name.name) else { return invalid("metadata.name", name.name, "must be a DNS label") }

        var result: [ServicePortName: ServicePort] = [:]
        for (index, port) in (service.spec.ports ?? []).enumerated() {
            let portName = port.name ?? ""
            guard portName.isEmpty || Names.isValidLabel(portName) else {
                return invalid("spec.ports[\(index)].name", portName, "must be a DNS label")
            }
            guard let proto = TransportProtocol(api: port.protocol) else {
                return invalid("spec.ports[\(index)].protocol", port.protocol ?? "", "must be TCP, UDP or SCTP")
            }
            guard (1...65535).contains(port.port) else {
                return invalid("spec.ports[\(index)].port", "\(port.port)", "must be between 1 and 65535")
            }
            let nodePort = port.nodePort ?? 0
            guard (0...65535).contains(nodePort) else {
                return invalid("spec.ports[\(index)].nodePort", "\(nodePort)", "must be between 1 and 65535")
            }
            let key = ServicePortName(name, port: portName, protocol: proto)
            guard result[key] == nil else {
                return invalid("spec.ports[\(index)].name", portName, "duplicates another port's name and protocol")
            }
            let accessible = nodePort > 0 || !externalIPs.isEmpty || !loadBalancerVIPs.isEmpty
            result[key] = ServicePort(
                clusterIP: clusterIP,
                port: port.port,
                protocol: proto,
                nodePort: type == "ClusterIP" ? 0 : nodePort,
                externalIPs: externalIPs,
                loadBalancerVIPs: loadBalancerVIPs,
                stickySeconds: stickySeconds,
                externalPolicyLocal: externalPolicy == "Local" && accessible,
                internalPolicyLocal: internalPolicy == "Local",
                healthCheckNodePort: externalPolicy == "Local" ? healthCheckNodePort : 0
            )
        }
        return .success(result)
    }
}

/// Kubernetes name rules the proxy relies on (chain names are built from them).
enum Names {
    /// RFC 1123 label: lower-case alphanumerics and `-`, at most 63, starting and ending alphanumeric.
    static func isValidLabel(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 63 else { return false }
        let bytes = Array(text.utf8)
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        guard alnum(bytes.first!), alnum(bytes.last!) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == 0x2D }
    }
}
