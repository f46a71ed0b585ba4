import CRI
import Foundation
import KubeAPI

/// Turns a container of the pod spec, its resolved environment and the pod's prepared volumes into what the
/// runtime creates: command and args with `$(VAR)` expanded, bind mounts (subPath, read-only API volumes, the
/// termination message file), resources, security settings and the kubelet's labels.
enum ContainerConfigBuilder {
    static func build(
        _ container: Container, kind: ContainerKind, index: Int, attempt: Int, pod: DesiredPod, env: [ContainerConfig.EnvVar],
        volumes: [String: PreparedVolume], terminationMessageFile: String?
    ) throws(KubeletError) -> ContainerConfig {
        let object = "container \"\(container.name)\" of pod \(pod.fullName)"
        let base = kind == .app ? "spec.containers[\(index)]" : "spec.initContainers[\(index)]"
        let values = Dictionary(env.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
        let expand = { (text: String) in EnvironmentResolver.expand(text) { values[$0] } }
        var mounts: [ContainerMount] = []
        for (mountIndex, mount) in (container.volumeMounts ?? []).enumerated() {
            let field = "\(base).volumeMounts[\(mountIndex)]"
            guard let volume = volumes[mount.name] else {
                throw KubeletError(.createContainerConfigError, object: object, field: field + ".name", "no volume named \"\(mount.name)\" in spec.volumes")
            }
            guard mount.mountPath.hasPrefix("/") else {
                throw KubeletError(.createContainerConfigError, object: object, field: field + ".mountPath", "must be an absolute path")
            }
            var hostPath = volume.path
            let subPath = mount.subPathExpr.map(expand) ?? mount.subPath
            if let subPath, !subPath.isEmpty {
                guard VolumeManager.isSafeRelativePath(subPath) else {
                    throw KubeletError(.createContainerConfigError, object: object, field: field + ".subPath", "must be a relative path without '..'")
                }
                hostPath += "/" + subPath
                if !FileManager.default.fileExists(atPath: hostPath) {
                    do {
                        try FileManager.default.createDirectory(atPath: hostPath, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                    } catch {
                        throw KubeletError(.createContainerConfigError, object: object, field: field + ".subPath", "cannot create \(hostPath): \(error)")
                    }
                }
            }
            mounts.append(ContainerMount(hostPath: hostPath, containerPath: mount.mountPath, readOnly: (mount.readOnly ?? false) || volume.forceReadOnly))
        }
        if let terminationMessageFile {
            let target = container.terminationMessagePath ?? "/dev/termination-log"
            if target.hasPrefix("/"), !mounts.contains(where: { $0.containerPath == target }) {
                mounts.append(ContainerMount(hostPath: terminationMessageFile, containerPath: target, readOnly: false))
            }
        }
        let limits = container.resources?.limits ?? [:]
        let requests = container.resources?.requests ?? [:]
        let resources = ContainerResources.kubernetes(
            cpuRequestMillis: (requests["cpu"] ?? limits["cpu"])?.milliValue, cpuLimitMillis: limits["cpu"]?.milliValue,
            memoryLimitBytes: limits["memory"]?.value)
        let security = container.securityContext
        let podSecurity = pod.spec.securityContext
        func id(_ value: Int64?, field: String) throws(KubeletError) -> UInt32? {
            guard let value else { return nil }
            guard let id = UInt32(exactly: value) else {
                throw KubeletError(.createContainerConfigError, object: object, field: field, "must be between 0 and 4294967295")
            }
            return id
        }
        let user = try id(security?.runAsUser ?? podSecurity?.runAsUser, field: "\(base).securityContext.runAsUser")
        let group = try id(security?.runAsGroup ?? podSecurity?.runAsGroup, field: "\(base).securityContext.runAsGroup")
        if (security?.runAsNonRoot ?? podSecurity?.runAsNonRoot) == true, user == 0 {
            throw KubeletError(
                .createContainerConfigError, object: object, field: "\(base).securityContext.runAsNonRoot",
                "container has runAsNonRoot and image will run as root")
        }
        var labels = [KubeletLabels.containerHash: container.specHash, KubeletLabels.containerKind: kind.rawValue]
        if let terminationMessageFile { labels[KubeletLabels.terminationMessagePath] = terminationMessageFile }
        return ContainerConfig(
            name: container.name, attempt: attempt, image: container.image ?? "", command: (container.command ?? []).map(expand),
            args: (container.args ?? []).map(expand), env: env, workingDirectory: container.workingDir?.isEmpty == false ? container.workingDir : nil,
            mounts: mounts, resources: resources, user: user, group: group, readOnlyRootFilesystem: security?.readOnlyRootFilesystem ?? false,
            privileged: security?.privileged ?? false, stopSignal: nil, labels: labels)
    }

    /// The sandbox the pod's containers share: its hostname, networking mode, DNS and hosts entries.
    static func sandboxConfig(_ pod: DesiredPod, attempt: Int) -> PodSandboxConfig {
        let spec = pod.spec
        var hostname = spec.hostname?.isEmpty == false ? spec.hostname! : pod.name
        if hostname.count > 63 { hostname = String(hostname.prefix(63)).trimmingCharacters(in: CharacterSet(charactersIn: "-.")) }
        let policy = PodDNS.Policy(rawValue: spec.dnsPolicy ?? "ClusterFirst") ?? .clusterFirst
        var dns = PodDNS(policy: policy)
        if let config = spec.dnsConfig {
            dns.nameservers = config.nameservers ?? []
            dns.searches = config.searches ?? []
            dns.options = (config.options ?? []).compactMap { option in
                guard let name = option.name else { return nil }
                return option.value.map { "\(name):\($0)" } ?? name
            }
        }
        let aliases = (spec.hostAliases ?? []).compactMap { alias -> PodSandboxConfig.HostAlias? in
            guard let ip = alias.ip else { return nil }
            return PodSandboxConfig.HostAlias(ip: ip, hostnames: alias.hostnames ?? [])
        }
        return PodSandboxConfig(
            pod: pod.identity, attempt: attempt, hostname: hostname, hostNetwork: spec.isHostNetwork, dns: dns, hostAliases: aliases,
            labels: [KubeletLabels.podSource: pod.source.rawValue, KubeletLabels.sandboxAttempt: String(attempt)])
    }
}
