/// One of this node's pods, as standalone mode knows it from its own pod workers.
public struct LocalPod: Sendable, Hashable {
    public struct Port: Sendable, Hashable {
        public var name: String?
        public var containerPort: Int
        /// `TCP` (default), `UDP`, `SCTP`.
        public var `protocol`: String?
        public init(name: String? = nil, containerPort: Int, protocol: String? = nil) {
            self.name = name
            self.containerPort = containerPort
            self.protocol = `protocol`
        }
    }

    public var namespace: String
    public var name: String
    public var labels: [String: String]
    /// The pod's IPs (`status.podIPs`); empty until the sandbox has an address.
    public var ips: [String]
    /// The pod's `Ready` condition.
    public var ready: Bool
    /// True once the pod is being deleted (terminating pods still serve until they stop being ready).
    public var terminating: Bool
    /// Every container port of the pod.
    public var ports: [Port]

    public init(namespace: String, name: String, labels: [String: String], ips: [String], ready: Bool, terminating: Bool = false, ports: [Port]) {
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.ips = ips
        self.ready = ready
        self.terminating = terminating
        self.ports = ports
    }
}

/// Standalone services: with no API server, Service manifests from `--pod-manifest-path` get their endpoints
/// from this node's own pods, as the EndpointSlice controller would compute them: pods in the Service's
/// namespace whose labels match its selector, with each Service port's `targetPort` resolved against the pod's
/// container ports (by number, or by name). The result feeds the proxier exactly like slices from the API.
public enum StandaloneEndpoints {
    /// The slices (one per Service and IP family, named `<service>-standalone-<family>`) for `services` from
    /// `pods` on node `nodeName`. Services without a selector get none (their endpoints are managed by hand).
    public static func slices(for services: [ServiceObject], pods: [LocalPod], nodeName: String) -> [EndpointSliceObject] {
        var result: [EndpointSliceObject] = []
        for service in services.sorted(by: { $0.namespacedName < $1.namespacedName }) {
            guard let selector = service.spec.selector, !selector.isEmpty else { continue }
            let namespace = service.metadata.namespace ?? "default"
            let members = pods
                .filter { pod in pod.namespace == namespace && selector.allSatisfy { key, value in pod.labels[key] == value } }
                .sorted { $0.name < $1.name }
            for family in IPFamily.allCases {
                var ports: [EndpointPortObject] = []
                var resolved: [[Int?]] = []  // per service port, per member pod
                for servicePort in service.spec.ports ?? [] {
                    let proto = servicePort.protocol ?? "TCP"
                    var perPod: [Int?] = []
                    for pod in members {
                        switch servicePort.targetPort ?? .int(servicePort.port) {
                        case .int(let number): perPod.append(number)
                        case .string(let name):
                            perPod.append(pod.ports.first { $0.name == name && ($0.protocol ?? "TCP") == proto }?.containerPort)
                        }
                    }
                    resolved.append(perPod)
                    // A slice carries one number per port: take the first pod's; pods that differ are left out below.
                    ports.append(EndpointPortObject(name: servicePort.name, protocol: proto, port: perPod.compactMap { $0 }.first))
                }
                var endpoints: [EndpointObject] = []
                for (index, pod) in members.enumerated() {
                    guard let address = pod.ips.first(where: { IPAddress($0)?.family == family }) else { continue }
                    // Every port must resolve to the slice's number for this pod to be listed.
                    let consistent = zip(resolved, ports).allSatisfy { perPod, port in perPod[index] != nil && perPod[index] == port.port }
                    guard consistent else { continue }
                    endpoints.append(
                        EndpointObject(
                            addresses: [address],
                            conditions: .init(ready: pod.ready && !pod.terminating, serving: pod.ready, terminating: pod.terminating),
                            nodeName: nodeName
                        )
                    )
                }
                guard !endpoints.isEmpty || family == .ipv4 else { continue }
                result.append(
                    EndpointSliceObject(
                        metadata: ObjectMeta(
                            namespace: namespace,
                            name: "\(service.metadata.name)-standalone-\(family == .ipv4 ? "ipv4" : "ipv6")",
                            labels: [EndpointSliceObject.serviceNameLabel: service.metadata.name]
                        ),
                        addressType: family.rawValue,
                        endpoints: endpoints,
                        ports: ports
                    )
                )
            }
        }
        return result
    }
}
