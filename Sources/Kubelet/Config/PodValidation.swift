import Foundation
import KubeAPI

/// The checks the API server's pod validation makes that matter on a node, plus what node-agent cannot run.
/// Used for static pod manifests (which no API server validated) and, at admission, for every pod.
enum PodValidation {
    struct Problem: Sendable, Hashable {
        var field: String
        var message: String
    }

    static func isDNSLabel(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 63, text.first?.isLetter == true || text.first?.isNumber == true,
            text.last?.isLetter == true || text.last?.isNumber == true
        else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }

    static func isDNSSubdomain(_ text: String) -> Bool {
        guard !text.isEmpty, text.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel(String($0)) }
    }

    /// Every problem found, in field order (empty when the pod is valid).
    static func validate(_ pod: Pod) -> [Problem] {
        var problems: [Problem] = []
        func problem(_ field: String, _ message: String) { problems.append(Problem(field: field, message: message)) }
        let name = pod.metadata.name ?? ""
        if name.isEmpty {
            problem("metadata.name", "Required value: name is required")
        } else if !isDNSSubdomain(name) {
            problem("metadata.name", "Invalid value: \"\(name)\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'")
        }
        if let namespace = pod.metadata.namespace, !namespace.isEmpty, !isDNSLabel(namespace) {
            problem("metadata.namespace", "Invalid value: \"\(namespace)\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'")
        }
        guard let spec = pod.spec else {
            problem("spec", "Required value")
            return problems
        }
        if spec.containers.isEmpty { problem("spec.containers", "Required value") }
        if let policy = spec.restartPolicy, !["Always", "OnFailure", "Never"].contains(policy) {
            problem("spec.restartPolicy", "Unsupported value: \"\(policy)\": supported values: \"Always\", \"OnFailure\", \"Never\"")
        }
        if let policy = spec.dnsPolicy, !["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"].contains(policy) {
            problem("spec.dnsPolicy", "Unsupported value: \"\(policy)\"")
        }
        if spec.dnsPolicy == "None", (spec.dnsConfig?.nameservers ?? []).isEmpty {
            problem("spec.dnsConfig", "Required value: must provide `dnsConfig` when `dnsPolicy` is None")
        }
        if let grace = spec.terminationGracePeriodSeconds, grace < 0 {
            problem("spec.terminationGracePeriodSeconds", "Invalid value: \(grace): must be greater than or equal to 0")
        }
        if let os = spec.os, os.name != "linux" {
            problem("spec.os.name", "Unsupported value: \"\(os.name)\": node-agent runs Linux pods only")
        }
        // Volumes.
        var volumeNames = Set<String>()
        for (index, volume) in (spec.volumes ?? []).enumerated() {
            let field = "spec.volumes[\(index)]"
            if !isDNSLabel(volume.name) { problem(field + ".name", "Invalid value: \"\(volume.name)\": must be a DNS label") }
            if !volumeNames.insert(volume.name).inserted { problem(field + ".name", "Duplicate value: \"\(volume.name)\"") }
            let sources = [
                volume.hostPath != nil, volume.emptyDir != nil, volume.secret != nil, volume.configMap != nil,
                volume.persistentVolumeClaim != nil, volume.projected != nil, volume.downwardAPI != nil,
            ].filter { $0 }.count
            if sources == 0 { problem(field, "Required value: must specify a volume type (one node-agent supports: emptyDir, hostPath, configMap, secret, downwardAPI, projected)") }
            if sources > 1 { problem(field, "Forbidden: may not specify more than 1 volume type") }
            if let hostPath = volume.hostPath, !hostPath.path.hasPrefix("/") {
                problem(field + ".hostPath.path", "Invalid value: \"\(hostPath.path)\": must be an absolute path")
            }
        }
        // Containers.
        var containerNames = Set<String>()
        let lists: [(String, [Container])] = [("spec.initContainers", spec.initContainerList), ("spec.containers", spec.containers)]
        for (listField, containers) in lists {
            for (index, container) in containers.enumerated() {
                let field = "\(listField)[\(index)]"
                validate(container, field: field, isInit: listField == "spec.initContainers", volumes: volumeNames, into: &problems)
                if !containerNames.insert(container.name).inserted { problem(field + ".name", "Duplicate value: \"\(container.name)\"") }
            }
        }
        return problems
    }

    private static func validate(_ container: Container, field: String, isInit: Bool, volumes: Set<String>, into problems: inout [Problem]) {
        func problem(_ suffix: String, _ message: String) { problems.append(Problem(field: field + suffix, message: message)) }
        if container.name.isEmpty {
            problem(".name", "Required value")
        } else if !isDNSLabel(container.name) {
            problem(".name", "Invalid value: \"\(container.name)\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'")
        }
        let image = container.image ?? ""
        if image.isEmpty {
            problem(".image", "Required value")
        } else if image != image.trimmingCharacters(in: .whitespaces) {
            problem(".image", "Invalid value: \"\(image)\": must not have leading or trailing whitespace")
        }
        if let policy = container.imagePullPolicy, !["Always", "IfNotPresent", "Never"].contains(policy) {
            problem(".imagePullPolicy", "Unsupported value: \"\(policy)\": supported values: \"Always\", \"IfNotPresent\", \"Never\"")
        }
        if isInit, let policy = container.restartPolicy {
            problem(".restartPolicy", "Unsupported value: \"\(policy)\": restartable init containers (sidecars) are not supported by node-agent")
        }
        var portNames = Set<String>()
        for (index, port) in (container.ports ?? []).enumerated() {
            let portField = ".ports[\(index)]"
            if !(1...65535).contains(port.containerPort) {
                problem(portField + ".containerPort", "Invalid value: \(port.containerPort): must be between 1 and 65535, inclusive")
            }
            if let hostPort = port.hostPort, !(0...65535).contains(hostPort) {
                problem(portField + ".hostPort", "Invalid value: \(hostPort): must be between 1 and 65535, inclusive")
            }
            if let proto = port.protocol, !["TCP", "UDP", "SCTP"].contains(proto) {
                problem(portField + ".protocol", "Unsupported value: \"\(proto)\": supported values: \"SCTP\", \"TCP\", \"UDP\"")
            }
            if let name = port.name {
                if name.count > 15 || !name.contains(where: \.isLetter) || !isDNSLabel(name) {
                    problem(portField + ".name", "Invalid value: \"\(name)\": must be no more than 15 characters, lowercase letters, digits and '-'")
                }
                if !portNames.insert(name).inserted { problem(portField + ".name", "Duplicate value: \"\(name)\"") }
            }
        }
        for (index, variable) in (container.env ?? []).enumerated() {
            let envField = ".env[\(index)]"
            if variable.name.isEmpty { problem(envField + ".name", "Required value") }
            if let source = variable.valueFrom {
                let count = [source.fieldRef != nil, source.resourceFieldRef != nil, source.configMapKeyRef != nil, source.secretKeyRef != nil].filter { $0 }.count
                if count != 1 { problem(envField + ".valueFrom", "Invalid value: may not have more than one field specified at a time") }
                if variable.value?.isEmpty == false { problem(envField + ".valueFrom", "Invalid value: may not be specified when `value` is not empty") }
            }
        }
        for (index, mount) in (container.volumeMounts ?? []).enumerated() {
            let mountField = ".volumeMounts[\(index)]"
            if !volumes.contains(mount.name) { problem(mountField + ".name", "Not found: \"\(mount.name)\"") }
            if mount.mountPath.isEmpty { problem(mountField + ".mountPath", "Required value") }
        }
        let limits = container.resources?.limits ?? [:]
        for (resource, request) in container.resources?.requests ?? [:] {
            if let limit = limits[resource], request.decimal > limit.decimal {
                problem(".resources.requests", "Invalid value: \"\(request)\": must be less than or equal to \(resource) limit of \(limit)")
            }
        }
        let probes: [(String, Probe?)] = [(".livenessProbe", container.livenessProbe), (".readinessProbe", container.readinessProbe), (".startupProbe", container.startupProbe)]
        for (probeField, probe) in probes {
            guard let probe else { continue }
            if isInit { problem(probeField, "Forbidden: may not be set for init containers") }
            validate(handlers: [probe.exec != nil, probe.httpGet != nil, probe.tcpSocket != nil, probe.grpc != nil], field: probeField, into: &problems, base: field)
            if probe.grpc != nil { problem(probeField + ".grpc", "Unsupported value: grpc probes are not supported by node-agent; use httpGet, tcpSocket or exec") }
            for (name, value, minimum) in [("periodSeconds", probe.periodSeconds, 1), ("timeoutSeconds", probe.timeoutSeconds, 1),
                ("successThreshold", probe.successThreshold, 1), ("failureThreshold", probe.failureThreshold, 1), ("initialDelaySeconds", probe.initialDelaySeconds, 0)] {
                if let value, value < minimum { problem("\(probeField).\(name)", "Invalid value: \(value): must be greater than or equal to \(minimum)") }
            }
            if probeField != ".readinessProbe", let threshold = probe.successThreshold, threshold != 1 {
                problem(probeField + ".successThreshold", "Invalid value: \(threshold): must be 1")
            }
            if let http = probe.httpGet { validatePort(http.port, container: container, field: probeField + ".httpGet.port", into: &problems, base: field) }
            if let tcp = probe.tcpSocket { validatePort(tcp.port, container: container, field: probeField + ".tcpSocket.port", into: &problems, base: field) }
        }
        for (hookField, handler) in [(".lifecycle.postStart", container.lifecycle?.postStart), (".lifecycle.preStop", container.lifecycle?.preStop)] {
            guard let handler else { continue }
            validate(handlers: [handler.exec != nil, handler.httpGet != nil, handler.tcpSocket != nil, handler.sleep != nil], field: hookField, into: &problems, base: field)
            if let http = handler.httpGet { validatePort(http.port, container: container, field: hookField + ".httpGet.port", into: &problems, base: field) }
        }
    }

    private static func validate(handlers: [Bool], field: String, into problems: inout [Problem], base: String) {
        let count = handlers.filter { $0 }.count
        if count == 0 { problems.append(Problem(field: base + field, message: "Required value: must specify a handler type")) }
        if count > 1 { problems.append(Problem(field: base + field, message: "Forbidden: may not specify more than 1 handler type")) }
    }

    private static func validatePort(_ port: IntOrString, container: Container, field: String, into problems: inout [Problem], base: String) {
        switch port {
        case .int(let number):
            if !(1...65535).contains(number) {
                problems.append(Problem(field: base + field, message: "Invalid value: \(number): must be between 1 and 65535, inclusive"))
            }
        case .string(let name):
            if Int(name) == nil, !(container.ports ?? []).contains(where: { $0.name == name }) {
                problems.append(Problem(field: base + field, message: "Invalid value: \"\(name)\": no container port named \"\(name)\""))
            }
        }
    }
}
