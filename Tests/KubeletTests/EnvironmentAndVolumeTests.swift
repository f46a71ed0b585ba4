import CRI
import Foundation
import KubeAPI
import Logging
import NodeAgentTesting
import Testing

@testable import Kubelet

@Suite("Environment and volumes (ConfigMaps and Secrets from the API server double)", .serialized)
struct EnvironmentAndVolumeTests {
    /// Runs `body` with a double holding a ConfigMap `settings` and a Secret `creds` in namespace `nakubelet`.
    private func withObjects(_ body: (APIServerDouble, ObjectCache) async throws -> Void) async throws {
        let double = try await APIServerDouble.start()
        let client = try KubeClient(configuration: try double.clientConfiguration(), logger: Logger(label: "c", factory: { _ in SwiftLogNoOpLogHandler() }))
        do {
            try double.create(Namespace(metadata: ObjectMeta(name: "nakubelet")))
            try double.create(ConfigMap(metadata: ObjectMeta(name: "settings", namespace: "nakubelet"), data: ["mode": "fast", "level": "3", "bad-key!": "x"]))
            try double.create(Secret(metadata: ObjectMeta(name: "creds", namespace: "nakubelet"), data: ["password": Data("s3cret".utf8)]))
            try await body(double, ObjectCache(client: client, ttl: .zero, clock: SystemKubeletClock()))
        } catch {
            try? await client.shutdown()
            await double.stop()
            throw error
        }
        try? await client.shutdown()
        await double.stop()
    }

    private func downward(_ pod: DesiredPod) -> DownwardAPI {
        DownwardAPI(
            pod: pod, nodeName: "node-a", podIPs: ["10.244.0.7"], hostIPs: ["192.0.2.10"], allocatableCPUMillis: 2000,
            allocatableMemoryBytes: 8 << 30, allocatableEphemeralBytes: 100 << 30)
    }

    @Test("env: values with $(VAR) expansion, fieldRef, resourceFieldRef, configMap and secret keys, envFrom with prefix")
    func environment() async throws {
        try await withObjects { _, objects in
            var container = Container(name: "app", image: "x")
            container.resources = ResourceRequirements(limits: ["memory": "64Mi"], requests: ["cpu": "250m"])
            var fromMap = EnvFromSource()
            fromMap.configMapRef = OptionalReference(name: "settings")
            fromMap.prefix = "CFG_"
            container.envFrom = [fromMap]
            func source(_ build: (inout EnvVarSource) -> Void) -> EnvVarSource {
                var source = EnvVarSource()
                build(&source)
                return source
            }
            var cpu = ResourceFieldSelector(resource: "requests.cpu")
            cpu.divisor = "1m"
            container.env = [
                EnvVar(name: "GREETING", value: "hi"),
                EnvVar(name: "MESSAGE", value: "$(GREETING) from $(POD) $$(ESCAPED) $(UNDEFINED)"),
                EnvVar(name: "POD", valueFrom: source { $0.fieldRef = ObjectFieldSelector(fieldPath: "metadata.name") }),
                EnvVar(name: "APP", valueFrom: source { $0.fieldRef = ObjectFieldSelector(fieldPath: "metadata.labels['app']") }),
                EnvVar(name: "IP", valueFrom: source { $0.fieldRef = ObjectFieldSelector(fieldPath: "status.podIP") }),
                EnvVar(name: "MEM", valueFrom: source { $0.resourceFieldRef = ResourceFieldSelector(resource: "limits.memory") }),
                EnvVar(name: "CPU_LIMIT", valueFrom: source { $0.resourceFieldRef = ResourceFieldSelector(resource: "limits.cpu") }),
                EnvVar(name: "CPU_REQ", valueFrom: source { $0.resourceFieldRef = cpu }),
                EnvVar(name: "MODE", valueFrom: source { $0.configMapKeyRef = KeySelector(name: "settings", key: "mode") }),
                EnvVar(name: "PASSWORD", valueFrom: source { $0.secretKeyRef = KeySelector(name: "creds", key: "password") }),
                EnvVar(name: "OPTIONAL", valueFrom: source { $0.configMapKeyRef = KeySelector(name: "missing", key: "k", optional: true) }),
            ]
            var pod = Fixtures.pod(containers: [container])
            pod.pod.metadata.labels = ["app": "web"]
            let resolved = try await EnvironmentResolver(downward: downward(pod), objects: objects).resolve(container, field: "spec.containers[0]")
            let env = Dictionary(resolved.env.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
            #expect(env["MESSAGE"] == "hi from $(POD) $(ESCAPED) $(UNDEFINED)")
            #expect(env["POD"] == "web" && env["APP"] == "web" && env["IP"] == "10.244.0.7")
            #expect(env["MEM"] == "67108864")
            #expect(env["CPU_LIMIT"] == "2")
            #expect(env["CPU_REQ"] == "250")
            #expect(env["MODE"] == "fast" && env["PASSWORD"] == "s3cret")
            #expect(env["CFG_mode"] == "fast" && env["CFG_level"] == "3")
            #expect(env["OPTIONAL"] == nil)
            #expect(resolved.skippedKeys == ["CFG_bad-key!"])
        }
    }

    @Test("env: a missing ConfigMap key or Secret is a CreateContainerConfigError naming the field")
    func missing() async throws {
        try await withObjects { _, objects in
            var container = Container(name: "app", image: "x")
            var source = EnvVarSource()
            source.configMapKeyRef = KeySelector(name: "settings", key: "nope")
            container.env = [EnvVar(name: "X", valueFrom: source)]
            let pod = Fixtures.pod(containers: [container])
            do {
                _ = try await EnvironmentResolver(downward: downward(pod), objects: objects).resolve(container, field: "spec.containers[0]")
                Issue.record("expected a failure")
            } catch let error as KubeletError {
                #expect(error.kind == .createContainerConfigError)
                #expect(error.field == "spec.containers[0].env[0].valueFrom.configMapKeyRef")
                #expect(error.message == "couldn't find key nope in ConfigMap nakubelet/settings")
            }
        }
    }

    @Test("configMap and secret volumes: items and modes, rewritten in place when the object changes; a missing one is FailedMount")
    func apiVolumes() async throws {
        try await withObjects { double, objects in
            let root = NSTemporaryDirectory() + "nakubelet-volumes-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: root) }
            let manager = VolumeManager(podsDirectory: root, objects: objects, logger: Logger(label: "v", factory: { _ in SwiftLogNoOpLogHandler() }))
            var config = Volume(name: "config")
            var source = ConfigMapVolumeSource(name: "settings")
            source.items = [KeyToPath(key: "mode", path: "conf/mode.txt", mode: 0o600)]
            config.configMap = source
            var secret = Volume(name: "secret")
            var secretSource = SecretVolumeSource(secretName: "creds")
            secretSource.defaultMode = 0o400
            secret.secret = secretSource
            var labels = Volume(name: "info")
            var downwardSource = DownwardAPIVolumeSource()
            var file = DownwardAPIVolumeFile(path: "labels")
            file.fieldRef = ObjectFieldSelector(fieldPath: "metadata.labels")
            downwardSource.items = [file]
            labels.downwardAPI = downwardSource
            var pod = Fixtures.pod()
            pod.pod.metadata.labels = ["b": "2", "a": "1"]
            pod.pod.spec?.volumes = [config, secret, labels]
            let volumes = try await manager.setUp(pod, downward: downward(pod))
            let configPath = try #require(volumes["config"]).path
            #expect(try String(contentsOfFile: configPath + "/conf/mode.txt", encoding: .utf8) == "fast")
            #expect(try FileManager.default.attributesOfItem(atPath: configPath + "/conf/mode.txt")[.posixPermissions] as? Int == 0o600)
            #expect(volumes["config"]?.forceReadOnly == true)
            let secretPath = try #require(volumes["secret"]).path
            #expect(try String(contentsOfFile: secretPath + "/password", encoding: .utf8) == "s3cret")
            #expect(try FileManager.default.attributesOfItem(atPath: secretPath + "/..data/password")[.posixPermissions] as? Int == 0o400)
            #expect(try String(contentsOfFile: try #require(volumes["info"]).path + "/labels", encoding: .utf8) == "a=\"1\"\nb=\"2\"")
            // The ConfigMap changes: the same folder shows the new value (an atomic ..data swap).
            try double.mergePatch(ConfigMap.resourceType, namespace: "nakubelet", name: "settings", ["data": ["mode": "slow"]])
            _ = try await manager.setUp(pod, downward: downward(pod))
            #expect(try String(contentsOfFile: configPath + "/conf/mode.txt", encoding: .utf8) == "slow")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: configPath + "/conf") == "..data/conf")
            // A missing ConfigMap.
            var missing = Volume(name: "gone")
            missing.configMap = ConfigMapVolumeSource(name: "nope")
            pod.pod.spec?.volumes = [missing]
            do {
                _ = try await manager.setUp(pod, downward: downward(pod))
                Issue.record("expected FailedMount")
            } catch let error as KubeletError {
                #expect(error.kind == .failedMount)
                #expect(error.field == "spec.volumes[0].configMap.name")
                #expect(error.message == "configmap \"nope\" not found")
            }
            manager.tearDown(uid: pod.uid)
            #expect(!FileManager.default.fileExists(atPath: root + "/" + pod.uid))
        }
    }

    @Test("hostPath type checks: DirectoryOrCreate creates, Directory and File refuse the wrong kind, unknown types are refused")
    func hostPath() throws {
        let root = NSTemporaryDirectory() + "nakubelet-hostpath-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fail: (String) -> KubeletError = { KubeletError(.failedMount, object: "volume", $0) }
        try HostPathCheck.check(root + "/made", type: "DirectoryOrCreate", fail: fail)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: root + "/made", isDirectory: &isDirectory) && isDirectory.boolValue)
        try HostPathCheck.check(root + "/made/file", type: "FileOrCreate", fail: fail)
        #expect(throws: KubeletError.self) { try HostPathCheck.check(root + "/made/file", type: "Directory", fail: fail) }
        #expect(throws: KubeletError.self) { try HostPathCheck.check(root + "/made", type: "File", fail: fail) }
        #expect(throws: KubeletError.self) { try HostPathCheck.check(root + "/absent", type: "Directory", fail: fail) }
        #expect(throws: KubeletError.self) { try HostPathCheck.check(root + "/made", type: "Sideways", fail: fail) }
        #expect(throws: KubeletError.self) { try HostPathCheck.check(root + "/made", type: "Socket", fail: fail) }
        try HostPathCheck.check("/dev/null", type: "CharDevice", fail: fail)
    }

    @Test("container config: mounts with subPath and read-only API volumes, $(VAR) in command, resources, labels")
    func containerConfig() throws {
        var container = Container(name: "app", image: "local/busybox:latest", command: ["sh", "-c"], args: ["echo $(GREETING)"])
        container.volumeMounts = [VolumeMount(name: "data", mountPath: "/data"), VolumeMount(name: "config", mountPath: "/etc/app", readOnly: false)]
        container.volumeMounts?[0].subPath = "sub"
        container.resources = ResourceRequirements(limits: ["cpu": "500m", "memory": "128Mi"])
        let pod = Fixtures.pod(containers: [container])
        let root = NSTemporaryDirectory() + "nakubelet-config-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let config = try ContainerConfigBuilder.build(
            container, kind: .app, index: 0, attempt: 2, pod: pod, env: [ContainerConfig.EnvVar(name: "GREETING", value: "hi")],
            volumes: [
                "data": PreparedVolume(path: root, forceReadOnly: false, isHostPath: false),
                "config": PreparedVolume(path: "/cfg", forceReadOnly: true, isHostPath: false),
            ],
            terminationMessageFile: root + "/msg")
        #expect(config.args == ["echo hi"])
        #expect(config.attempt == 2)
        #expect(config.mounts.contains(ContainerMount(hostPath: root + "/sub", containerPath: "/data", readOnly: false)))
        #expect(config.mounts.contains(ContainerMount(hostPath: "/cfg", containerPath: "/etc/app", readOnly: true)))
        #expect(config.mounts.contains(ContainerMount(hostPath: root + "/msg", containerPath: "/dev/termination-log", readOnly: false)))
        #expect(FileManager.default.fileExists(atPath: root + "/sub"))
        #expect(config.resources == ContainerResources(memoryLimitBytes: 128 << 20, cpuQuota: 50_000, cpuPeriod: 100_000, cpuShares: 512))
        #expect(config.labels[KubeletLabels.containerHash] == container.specHash)
    }
}
