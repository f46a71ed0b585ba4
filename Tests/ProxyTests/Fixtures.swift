import Foundation
import Proxy

/// Builders for the objects the tests feed the proxier.
enum Fixtures {
    static func service(
        _ name: String,
        namespace: String = "default",
        type: String = "ClusterIP",
        clusterIP: String? = "10.96.0.10",
        clusterIPs: [String]? = nil,
        ports: [ServicePortObject] = [ServicePortObject(name: "http", protocol: "TCP", port: 80, targetPort: .int(8080))],
        externalIPs: [String]? = nil,
        affinity: Int? = nil,
        externalTrafficPolicy: String? = nil,
        internalTrafficPolicy: String? = nil,
        labels: [String: String]? = nil,
        selector: [String: String]? = nil,
        healthCheckNodePort: Int? = nil,
        loadBalancerIPs: [String] = []
    ) -> ServiceObject {
        ServiceObject(
            metadata: ObjectMeta(namespace: namespace, name: name, labels: labels),
            spec: .init(
                type: type,
                clusterIP: clusterIP,
                clusterIPs: clusterIPs,
                ports: ports,
                selector: selector,
                externalIPs: externalIPs,
                sessionAffinity: affinity == nil ? nil : "ClientIP",
                sessionAffinityConfig: affinity.map { .init(clientIP: .init(timeoutSeconds: $0)) },
                externalTrafficPolicy: externalTrafficPolicy,
                internalTrafficPolicy: internalTrafficPolicy,
                healthCheckNodePort: healthCheckNodePort
            ),
            status: loadBalancerIPs.isEmpty ? nil : .init(loadBalancer: .init(ingress: loadBalancerIPs.map { .init(ip: $0) }))
        )
    }

    struct EP {
        var ip: String
        var ready = true
        var serving: Bool? = nil
        var terminating: Bool? = nil
        var node: String? = nil
        var zones: [String]? = nil
    }

    static func slice(
        _ name: String,
        service: String,
        namespace: String = "default",
        addressType: String = "IPv4",
        ports: [EndpointPortObject] = [EndpointPortObject(name: "http", protocol: "TCP", port: 8080)],
        endpoints: [EP],
        trigger: Date? = nil
    ) -> EndpointSliceObject {
        EndpointSliceObject(
            metadata: ObjectMeta(
                namespace: namespace,
                name: name,
                labels: [EndpointSliceObject.serviceNameLabel: service],
                annotations: trigger.map { [EndpointSliceObject.lastChangeTriggerTimeAnnotation: $0.formatted(.iso8601)] }
            ),
            addressType: addressType,
            endpoints: endpoints.map {
                EndpointObject(
                    addresses: [$0.ip],
                    conditions: .init(ready: $0.ready, serving: $0.serving, terminating: $0.terminating),
                    nodeName: $0.node,
                    hints: $0.zones.map { .init(forZones: $0.map { .init(name: $0) }) }
                )
            },
            ports: ports
        )
    }

    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }
}
