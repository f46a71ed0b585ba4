import Foundation
import KubeAPI
import NodeAgentTesting
import Testing

/// The Proof of the kubelet, end to end: the API server double, real containerd, the `node-agent` binary, CNI in
/// an isolated node namespace, and the real kubectl creating, reading and deleting pods.
@Suite("Kubelet end to end: kubectl + API server double + node-agent + containerd", .serialized, .enabled(if: SystemTests.enabled))
struct KubeletEndToEndTests {
    static func webPod(_ name: String, node: String, grace: Int = 5) -> String {
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: \(name)
          namespace: nakubelet
          labels: {app: web}
        spec:
          nodeName: \(node)
          terminationGracePeriodSeconds: \(grace)
          containers:
          - name: httpd
            image: local/busybox:latest
            imagePullPolicy: Never
            command: ["sh", "-c", "mkdir -p /www && echo \\"hello from $POD_NAME ($POD_IP) on $NODE\\" > /www/index.html && exec httpd -f -p 8080 -h /www"]
            env:
            - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
            - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
            ports:
            - {name: http, containerPort: 8080}
            readinessProbe:
              httpGet: {path: /, port: http}
              periodSeconds: 1
        """
    }

    @Test("kubectl create → Running with the right status (podIP answers HTTP from the node namespace) → kubectl delete stops it within the grace and removes it")
    func podLifecycle() async throws {
        let fixture = try await DaemonFixture(tag: "e1")
        do {
            try await fixture.startDaemon()
            try fixture.create(Self.webPod("web", node: fixture.nodeName))
            try await fixture.eventually(60, "web Running and ready") {
                let pod = try fixture.pod("web")
                return pod?.status?.phase == "Running" && pod?.status?.conditions?.first { $0.type == "Ready" }?.status == "True"
            }
            let pod = try #require(try fixture.pod("web"))
            let status = try #require(pod.status)
            let podIP = try #require(status.podIP)
            #expect(podIP.hasPrefix("10.253.0."))
            #expect(status.podIPs == [IPAddressEntry(ip: podIP)])
            #expect(status.hostIP == DaemonFixture.nodeIP)
            #expect(status.qosClass == "BestEffort")
            #expect(status.startTime != nil)
            let conditions = Dictionary((status.conditions ?? []).map { ($0.type, $0.status) }, uniquingKeysWith: { a, _ in a })
            #expect(conditions == ["PodScheduled": "True", "PodReadyToStartContainers": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"])
            let container = try #require(status.containerStatuses?.first)
            #expect(container.name == "httpd")
            #expect(container.ready && container.started == true && container.restartCount == 0)
            #expect(container.state?.running?.startedAt != nil)
            let containerID = try #require(container.containerID)
            #expect(containerID.hasPrefix("containerd://\(fixture.prefix)"))
            #expect(try fixture.runningTaskIDs() == [String(containerID.dropFirst("containerd://".count))])
            #expect(container.imageID.hasPrefix("local/busybox@sha256:"))
            // The pod answers from the node namespace, with its env resolved from the downward API.
            let page = try fixture.curlFromNode("http://\(podIP):8080/")
            #expect(page.stdout == "hello from web (\(podIP)) on \(fixture.nodeName)\n")
            // Events reached the API.
            let events = try fixture.kubectl(["get", "events", "-n", "nakubelet", "-o", "json"]).stdout
            for reason in ["Scheduled", "Pulled", "Created", "Started"] { #expect(events.contains("\"reason\": \"\(reason)\"")) }

            // Deletion: httpd as PID 1 ignores TERM, so it is killed at the 5 s grace, then the pod leaves the API.
            let started = Date()
            let deletion = try fixture.kubectl(["delete", "pod", "-n", "nakubelet", "web", "--wait=false"])
            #expect(deletion.status == 0, "\(deletion)")
            try await fixture.eventually(30, "web removed from the API") { try fixture.pod("web") == nil }
            let took = Date().timeIntervalSince(started)
            #expect(took >= 4 && took < 20, "removed after \(took) s with a 5 s grace")
            try await fixture.eventually(20, "containers and namespaces cleaned up") {
                try fixture.containerIDs().isEmpty && fixture.podNetworkNamespaces().isEmpty
            }
            #expect(fixture.log().contains("grace period over, killing"))
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }

    @Test("a liveness probe that starts failing restarts the container: restartCount and lastState show it; a crash loop backs off 10, 20, 40 s (real time)")
    func livenessAndBackoff() async throws {
        let fixture = try await DaemonFixture(tag: "e2")
        do {
            try await fixture.startDaemon()
            try fixture.create(
                """
                apiVersion: v1
                kind: Pod
                metadata: {name: live, namespace: nakubelet}
                spec:
                  nodeName: \(fixture.nodeName)
                  terminationGracePeriodSeconds: 2
                  containers:
                  - name: app
                    image: local/busybox:latest
                    imagePullPolicy: Never
                    command: ["sh", "-c", "touch /tmp/healthy; sleep 4; rm /tmp/healthy; exec sleep 3600"]
                    livenessProbe:
                      exec: {command: ["cat", "/tmp/healthy"]}
                      periodSeconds: 1
                      failureThreshold: 2
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: crash, namespace: nakubelet}
                spec:
                  nodeName: \(fixture.nodeName)
                  containers:
                  - name: app
                    image: local/busybox:latest
                    imagePullPolicy: Never
                    command: ["sh", "-c", "exit 3"]
                """)
            // The crash loop: record when each restart happened.
            var restartTimes: [Int32: Date] = [:]
            let begin = Date()
            var firstLiveID: String?
            while restartTimes.count < 4 && Date().timeIntervalSince(begin) < 150 {
                if let count = try fixture.containerStatus("crash", "app")?.restartCount, count > 0, restartTimes[count] == nil {
                    restartTimes[count] = Date()
                }
                if firstLiveID == nil { firstLiveID = try fixture.containerStatus("live", "app")?.containerID }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(restartTimes.count >= 4, "restarts seen: \(restartTimes.keys.sorted())")
            let gaps = (2...4).compactMap { count -> Double? in
                guard let this = restartTimes[Int32(count)], let previous = restartTimes[Int32(count - 1)] else { return nil }
                return this.timeIntervalSince(previous)
            }
            // Each gap is the backoff plus the container's run and the restart (well under a second each).
            #expect(gaps.count == 3)
            for (gap, delay) in zip(gaps, [10.0, 20.0, 40.0]) {
                #expect(gap >= delay - 1 && gap <= delay + 4, "restart gaps \(gaps) should follow 10, 20, 40 s")
            }
            let crash = try #require(try fixture.containerStatus("crash", "app"))
            #expect(crash.lastState?.terminated?.exitCode == 3)
            #expect(crash.state?.waiting?.reason == "CrashLoopBackOff" || crash.state?.running != nil || crash.state?.terminated != nil)

            // The liveness failure restarted "live" (by now long after its probe began failing).
            let live = try #require(try fixture.containerStatus("live", "app"))
            #expect(live.restartCount >= 1)
            #expect(live.containerID != firstLiveID)
            let last = try #require(live.lastState?.terminated)
            #expect(last.exitCode == 137 || last.exitCode == 143, "a killed container: \(last)")
            let events = try fixture.kubectl(["get", "events", "-n", "nakubelet", "-o", "json"]).stdout
            #expect(events.contains("Liveness probe failed"))
            #expect(events.contains("failed liveness probe, will be restarted"))
            #expect(events.contains("Back-off restarting failed container app"))
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }

    @Test("readiness flips Ready both ways without restarts; a startup probe holds the others back")
    func readinessAndStartup() async throws {
        let fixture = try await DaemonFixture(tag: "e3")
        do {
            try await fixture.startDaemon()
            try fixture.create(
                """
                apiVersion: v1
                kind: Pod
                metadata: {name: ready, namespace: nakubelet}
                spec:
                  nodeName: \(fixture.nodeName)
                  terminationGracePeriodSeconds: 1
                  containers:
                  - name: app
                    image: local/busybox:latest
                    imagePullPolicy: Never
                    command: ["sh", "-c", "sleep 5; touch /tmp/started /tmp/ready; sleep 5; rm /tmp/ready; sleep 5; touch /tmp/ready; exec sleep 3600"]
                    startupProbe:
                      exec: {command: ["cat", "/tmp/started"]}
                      periodSeconds: 1
                      failureThreshold: 60
                    livenessProbe:
                      exec: {command: ["cat", "/tmp/started"]}
                      periodSeconds: 1
                      failureThreshold: 1
                    readinessProbe:
                      exec: {command: ["cat", "/tmp/ready"]}
                      periodSeconds: 1
                      failureThreshold: 1
                """)
            // Before the startup probe succeeds: running, not started, not ready, and the liveness probe (which
            // would fail and restart at once) is held back.
            try await fixture.eventually(30, "container running") { try fixture.containerStatus("ready", "app")?.state?.running != nil }
            let early = try #require(try fixture.containerStatus("ready", "app"))
            #expect(early.started == false && early.ready == false)
            try await fixture.eventually(30, "started and ready") { try fixture.containerStatus("ready", "app")?.ready == true }
            #expect(try fixture.containerStatus("ready", "app")?.started == true)
            #expect(try fixture.pod("ready")?.status?.conditions?.first { $0.type == "Ready" }?.status == "True")
            try await fixture.eventually(30, "unready") { try fixture.containerStatus("ready", "app")?.ready == false }
            #expect(try fixture.pod("ready")?.status?.conditions?.first { $0.type == "Ready" }?.status == "False")
            #expect(try fixture.pod("ready")?.status?.phase == "Running")
            try await fixture.eventually(30, "ready again") { try fixture.containerStatus("ready", "app")?.ready == true }
            let final = try #require(try fixture.containerStatus("ready", "app"))
            #expect(final.restartCount == 0)
            #expect(final.containerID == early.containerID)
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }

    @Test("init containers run in order on a shared emptyDir; configMap, secret, downwardAPI, memory emptyDir and hostPath volumes and env reach the app; a configMap change shows in place")
    func initContainersAndVolumes() async throws {
        let fixture = try await DaemonFixture(tag: "e4")
        do {
            try await fixture.startDaemon()
            let hostDirectory = fixture.root + "/host-data"
            try fixture.create(
                """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: settings, namespace: nakubelet}
                data: {greeting: hello, mode: fast}
                ---
                apiVersion: v1
                kind: Secret
                metadata: {name: creds, namespace: nakubelet}
                stringData: {password: s3cret}
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: init, namespace: nakubelet, labels: {app: init}}
                spec:
                  nodeName: \(fixture.nodeName)
                  terminationGracePeriodSeconds: 1
                  initContainers:
                  - name: first
                    image: local/busybox:latest
                    imagePullPolicy: Never
                    command: ["sh", "-c", "echo one >> /work/order"]
                    volumeMounts: [{name: work, mountPath: /work}]
                  - name: second
                    image: local/busybox:latest
                    imagePullPolicy: Never
                    command: ["sh", "-c", "echo two >> /work/order; echo $GREETING-$PASSWORD > /work/env"]
                    env:
                    - {name: GREETING, valueFrom: {configMapKeyRef: {name: settings, key: greeting}}}
                    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
                    volumeMounts: [{name: work, mountPath: /work}]
                  containers:
                  - name: app
                    image: local/busybox:latest
                    imagePullPolicy: Never
                    command: ["sh", "-c", "echo $CFG_mode > /work/envfrom; grep -c tmpfs /proc/mounts > /work/tmpfs; mount | grep ' /scratch ' > /work/scratch; echo app > /host/written; exec httpd -f -p 8080 -h /"]
                    envFrom: [{prefix: CFG_, configMapRef: {name: settings}}]
                    volumeMounts:
                    - {name: work, mountPath: /work}
                    - {name: config, mountPath: /config}
                    - {name: secret, mountPath: /secret}
                    - {name: info, mountPath: /info}
                    - {name: scratch, mountPath: /scratch}
                    - {name: host, mountPath: /host}
                  volumes:
                  - {name: work, emptyDir: {}}
                  - {name: scratch, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
                  - {name: config, configMap: {name: settings, items: [{key: mode, path: mode.txt}]}}
                  - {name: secret, secret: {secretName: creds, defaultMode: 0400}}
                  - {name: info, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: name, fieldRef: {fieldPath: metadata.name}}]}}
                  - {name: host, hostPath: {path: \(hostDirectory), type: DirectoryOrCreate}}
                """)
            try await fixture.eventually(60, "init Running") { try fixture.pod("init")?.status?.phase == "Running" }
            let pod = try #require(try fixture.pod("init"))
            let podIP = try #require(pod.status?.podIP)
            let inits = pod.status?.initContainerStatuses ?? []
            #expect(inits.map(\.name) == ["first", "second"])
            #expect(inits.allSatisfy { $0.state?.terminated?.exitCode == 0 && $0.state?.terminated?.reason == "Completed" })
            let firstDone = try #require(inits.first?.state?.terminated?.finishedAt)
            let secondStart = try #require(inits.last?.state?.terminated?.startedAt)
            #expect(firstDone <= secondStart)
            func get(_ path: String) throws -> String { try fixture.curlFromNode("http://\(podIP):8080\(path)").stdout }
            try await fixture.eventually(20, "app wrote its files") { try get("/work/scratch").contains("tmpfs") }
            #expect(try get("/work/order") == "one\ntwo\n")
            #expect(try get("/work/env") == "hello-s3cret\n")
            #expect(try get("/work/envfrom") == "fast\n")
            #expect(try get("/config/mode.txt") == "fast")
            #expect(try get("/secret/password") == "s3cret")
            #expect(try get("/info/labels") == "app=\"init\"")
            #expect(try get("/info/name") == "init")
            #expect(try get("/work/scratch").contains("size=8192k"))
            #expect(try String(contentsOfFile: hostDirectory + "/written", encoding: .utf8) == "app\n")
            // The ConfigMap changes: the mounted file follows without a restart.
            let patched = try fixture.kubectl(["patch", "configmap", "-n", "nakubelet", "settings", "--type", "merge", "-p", #"{"data":{"mode":"slow"}}"#])
            #expect(patched.status == 0, "\(patched)")
            try await fixture.eventually(60, "configMap volume updated in place") { try get("/config/mode.txt") == "slow" }
            #expect(try fixture.containerStatus("init", "app")?.restartCount == 0)
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }

    @Test("a failing init container fails the pod under restartPolicy Never (its termination message shown) and is retried under Always")
    func failingInitContainers() async throws {
        let fixture = try await DaemonFixture(tag: "e5")
        do {
            try await fixture.startDaemon()
            for (name, policy) in [("never", "Never"), ("always", "Always")] {
                try fixture.create(
                    """
                    apiVersion: v1
                    kind: Pod
                    metadata: {name: \(name), namespace: nakubelet}
                    spec:
                      nodeName: \(fixture.nodeName)
                      restartPolicy: \(policy)
                      initContainers:
                      - {name: setup, image: "local/busybox:latest", imagePullPolicy: Never, command: ["sh", "-c", "echo -n no database > /dev/termination-log; exit 7"]}
                      containers:
                      - {name: app, image: "local/busybox:latest", imagePullPolicy: Never, command: ["sleep", "3600"]}
                    """)
            }
            try await fixture.eventually(60, "never Failed") { try fixture.pod("never")?.status?.phase == "Failed" }
            let never = try #require(try fixture.pod("never")?.status)
            #expect(never.initContainerStatuses?.first?.state?.terminated?.exitCode == 7)
            #expect(never.initContainerStatuses?.first?.state?.terminated?.message == "no database")
            #expect(never.containerStatuses?.first?.state?.running == nil)
            try await fixture.eventually(60, "always retried twice") {
                (try fixture.pod("always")?.status?.initContainerStatuses?.first?.restartCount ?? 0) >= 2
            }
            let always = try #require(try fixture.pod("always")?.status)
            #expect(always.phase == "Pending")
            #expect(always.initContainerStatuses?.first?.lastState?.terminated?.exitCode == 7)
            #expect(always.containerStatuses?.first?.state?.waiting?.reason == "PodInitializing")
            #expect(try fixture.runningTaskIDs().isEmpty)
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }

    @Test("static pods run standalone with no API server (the examples/ web pod answers); with one their mirror pods appear, come back when deleted, and go with the manifest")
    func staticPods() async throws {
        let fixture = try await DaemonFixture(tag: "e6")
        do {
            let example = SystemTests.repositoryRoot.appendingPathComponent("examples/web.yaml").path
            try FileManager.default.copyItem(atPath: example, toPath: fixture.manifests + "/web.yaml")
            let name = "web-\(fixture.nodeName)"
            try await fixture.startDaemon(manifests: true, api: false)
            #expect(fixture.log().contains("no kubeconfig found: the kubelet runs standalone"))
            var podIP = ""
            try await fixture.eventually(60, "static pod Running and ready in /pods") {
                let pods = try fixture.podsEndpoint()["pods"] as? [[String: Any]] ?? []
                guard let pod = pods.first(where: { $0["name"] as? String == name }), pod["phase"] as? String == "Running", pod["ready"] as? Bool == true
                else { return false }
                podIP = pod["podIP"] as? String ?? ""
                return true
            }
            #expect(try fixture.podsEndpoint()["standalone"] as? Bool == true)
            #expect(try fixture.curlFromNode("http://\(podIP):8080/").stdout == "hello from \(name) (\(podIP)) on node \(fixture.nodeName)\n")
            let containers = try fixture.runningTaskIDs()
            #expect(containers.count == 1)

            // The same node joins an API server: the running static pod is adopted and gets a mirror pod.
            await fixture.stopDaemon()
            try await fixture.startDaemon(manifests: true)
            try await fixture.eventually(60, "mirror pod with the static pod's status") {
                let mirror = try fixture.pod(name, namespace: "default")
                return mirror?.status?.phase == "Running" && mirror?.status?.containerStatuses?.first?.ready == true
            }
            let mirror = try #require(try fixture.pod(name, namespace: "default"))
            let hash = try #require(mirror.metadata.annotations?["kubernetes.io/config.hash"])
            #expect(mirror.metadata.annotations?["kubernetes.io/config.mirror"] == hash)
            #expect(mirror.metadata.annotations?["kubernetes.io/config.source"] == "file")
            #expect(mirror.status?.containerStatuses?.first?.containerID == "containerd://\(containers[0])")
            #expect(try fixture.runningTaskIDs() == containers)

            // A deleted mirror pod is recreated; the static pod keeps running.
            let deleted = try fixture.kubectl(["delete", "pod", "-n", "default", name, "--wait=false"])
            #expect(deleted.status == 0, "\(deleted)")
            try await fixture.eventually(60, "mirror recreated") {
                try fixture.pod(name, namespace: "default").map { $0.metadata.uid != mirror.metadata.uid && $0.status?.phase == "Running" } ?? false
            }
            #expect(try fixture.runningTaskIDs() == containers)

            // The manifest goes: the pod stops and the mirror is deleted.
            try FileManager.default.removeItem(atPath: fixture.manifests + "/web.yaml")
            try await fixture.eventually(60, "mirror deleted") { try fixture.pod(name, namespace: "default") == nil }
            try await fixture.eventually(30, "static pod removed") { try fixture.containerIDs().isEmpty }
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }

    @Test("daemon killed with SIGKILL while 5 pods run and restarted: same container IDs, no duplicates, status correct within one sync; pods deleted meanwhile are cleaned up")
    func restartAdoption() async throws {
        let fixture = try await DaemonFixture(tag: "e7")
        do {
            try await fixture.startDaemon()
            for index in 1...5 { try fixture.create(Self.webPod("p\(index)", node: fixture.nodeName, grace: 2)) }
            try await fixture.eventually(90, "5 pods ready") {
                try (1...5).allSatisfy { try fixture.containerStatus("p\($0)", "httpd")?.ready == true }
            }
            var ids: [String: String] = [:]
            for index in 1...5 { ids["p\(index)"] = try fixture.containerStatus("p\(index)", "httpd")?.containerID }
            #expect(try fixture.runningTaskIDs().count == 5)
            await fixture.stopDaemon(SIGKILL)
            // While the daemon is down: p4 is deleted gracefully (it waits for the kubelet), p5 is force-deleted
            // (gone from the API at once: only the runtime still has it).
            #expect(try fixture.kubectl(["delete", "pod", "-n", "nakubelet", "p4", "--wait=false"]).status == 0)
            #expect(try fixture.kubectl(["delete", "pod", "-n", "nakubelet", "p5", "--grace-period=0", "--force"]).status == 0)
            #expect(try fixture.runningTaskIDs().count == 5)

            let restarted = Date()
            try await fixture.startDaemon()
            try await fixture.eventually(30, "p4 finished and p5 cleaned up") {
                try fixture.pod("p4") == nil && fixture.runningTaskIDs().count == 3 && fixture.containerIDs().count == 3
            }
            try await fixture.eventually(15, "adopted pods ready") {
                try (1...3).allSatisfy { try fixture.containerStatus("p\($0)", "httpd")?.ready == true }
            }
            #expect(Date().timeIntervalSince(restarted) < 25)
            for index in 1...3 {
                let status = try #require(try fixture.containerStatus("p\(index)", "httpd"))
                #expect(status.containerID == ids["p\(index)"], "p\(index) kept its container")
                #expect(status.restartCount == 0)
                #expect(try fixture.pod("p\(index)")?.status?.phase == "Running")
            }
            let running = Set(try fixture.runningTaskIDs())
            #expect(running == Set((1...3).compactMap { ids["p\($0)"].map { String($0.dropFirst("containerd://".count)) } }))
            #expect(fixture.podNetworkNamespaces().count == 3)
            #expect(fixture.log().contains("removed a pod that no source wants"))
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }

    @Test("bad input gets a clear reason naming the field and leaves every other pod untouched")
    func badInput() async throws {
        let fixture = try await DaemonFixture(tag: "e8")
        do {
            let manifests = [
                "yaml.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: [broken\n",
                "unknown.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: unknown}\nspec:\n  containers: [{name: c, image: local/busybox:latest, imagePullPolicyy: Never}]\n",
                "noimage.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: noimage}\nspec:\n  containers: [{name: c}]\n",
                "port.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: port}\nspec:\n  containers: [{name: c, image: local/busybox:latest, ports: [{containerPort: 70000}]}]\n",
            ]
            for (file, text) in manifests { try text.write(toFile: fixture.manifests + "/" + file, atomically: true, encoding: .utf8) }
            try await fixture.startDaemon(manifests: true)
            try fixture.create(Self.webPod("good", node: fixture.nodeName))
            try await fixture.eventually(60, "good ready") { try fixture.containerStatus("good", "httpd")?.ready == true }
            let goodID = try fixture.containerStatus("good", "httpd")?.containerID

            // Manifests: each refused with the file and the field, in /pods and as an event on the Node.
            let errors = try fixture.podsEndpoint()["manifestErrors"] as? [[String: Any]] ?? []
            let byFile = Dictionary(errors.map { (($0["path"] as? String ?? "").split(separator: "/").last.map(String.init) ?? "", $0) }, uniquingKeysWith: { a, _ in a })
            #expect((byFile["yaml.yaml"]?["message"] as? String)?.contains("invalid YAML") == true)
            #expect(byFile["unknown.yaml"]?["field"] as? String == "spec.containers[0].imagePullPolicyy")
            #expect(byFile["noimage.yaml"]?["field"] as? String == "spec.containers[0].image")
            #expect(byFile["port.yaml"]?["field"] as? String == "spec.containers[0].ports[0].containerPort")
            let nodeEvents = try fixture.kubectl(["get", "events", "-n", "default", "-o", "json"]).stdout
            #expect(nodeEvents.contains("FailedStaticPod") && nodeEvents.contains("imagePullPolicyy"))

            // Through kubectl: the API refuses a missing image and a port over 65535, naming the field.
            let noImage = try fixture.kubectl(["create", "--validate=false", "-f", "-"], input: """
                apiVersion: v1
                kind: Pod
                metadata: {name: noimage, namespace: nakubelet}
                spec: {nodeName: \(fixture.nodeName), containers: [{name: c}]}
                """)
            #expect(noImage.status != 0 && noImage.stderr.contains("spec.containers[0].image"))
            let badPort = try fixture.kubectl(["create", "--validate=false", "-f", "-"], input: """
                apiVersion: v1
                kind: Pod
                metadata: {name: port, namespace: nakubelet}
                spec: {nodeName: \(fixture.nodeName), containers: [{name: c, image: "local/busybox:latest", ports: [{containerPort: 70000}]}]}
                """)
            #expect(badPort.status != 0 && badPort.stderr.contains("containerPort"))

            // Accepted by the API but unrunnable: a missing ConfigMap volume, a missing ConfigMap key, an absent image.
            try fixture.create(
                """
                apiVersion: v1
                kind: Pod
                metadata: {name: novolume, namespace: nakubelet}
                spec:
                  nodeName: \(fixture.nodeName)
                  containers: [{name: c, image: "local/busybox:latest", imagePullPolicy: Never, command: [sleep, "3600"], volumeMounts: [{name: cfg, mountPath: /cfg}]}]
                  volumes: [{name: cfg, configMap: {name: missing}}]
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: noenv, namespace: nakubelet}
                spec:
                  nodeName: \(fixture.nodeName)
                  containers:
                  - name: c
                    image: local/busybox:latest
                    imagePullPolicy: Never
                    command: [sleep, "3600"]
                    env: [{name: X, valueFrom: {configMapKeyRef: {name: missing, key: k}}}]
                ---
                apiVersion: v1
                kind: Pod
                metadata: {name: absent, namespace: nakubelet}
                spec:
                  nodeName: \(fixture.nodeName)
                  containers: [{name: c, image: "local/nothing-here:1.0", imagePullPolicy: Never}]
                """)
            try await fixture.eventually(60, "waiting reasons") {
                try fixture.containerStatus("novolume", "c")?.state?.waiting?.reason == "ContainerCreating"
                    && fixture.containerStatus("noenv", "c")?.state?.waiting?.reason == "CreateContainerConfigError"
                    && fixture.containerStatus("absent", "c")?.state?.waiting?.reason == "ErrImageNeverPull"
            }
            #expect(try fixture.containerStatus("noenv", "c")?.state?.waiting?.message?.contains("configmap \"missing\" not found") == true)
            #expect(try fixture.containerStatus("absent", "c")?.state?.waiting?.message?.contains("local/nothing-here:1.0") == true)
            for name in ["novolume", "noenv", "absent"] { #expect(try fixture.pod(name)?.status?.phase == "Pending") }
            let events = try fixture.kubectl(["get", "events", "-n", "nakubelet", "-o", "json"]).stdout
            #expect(events.contains("FailedMount") && events.contains("configmap \\\"missing\\\" not found"))
            #expect(events.contains("ErrImageNeverPull"))

            // Once the ConfigMap exists the waiting pods start; the good pod never moved.
            try fixture.create(
                """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: missing, namespace: nakubelet}
                data: {k: v}
                """)
            try await fixture.eventually(60, "novolume and noenv running") {
                try fixture.pod("novolume")?.status?.phase == "Running" && fixture.pod("noenv")?.status?.phase == "Running"
            }
            let good = try #require(try fixture.containerStatus("good", "httpd"))
            #expect(good.containerID == goodID && good.restartCount == 0 && good.ready)
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }

    @Test("standalone, kubelet and proxy together: the examples/ web pod answers through its Service's cluster IP; without the pod the Service refuses at once")
    func standaloneService() async throws {
        let fixture = try await DaemonFixture(tag: "e9", api: false)
        do {
            for file in ["web.yaml", "web-service.yaml"] {
                let example = SystemTests.repositoryRoot.appendingPathComponent("examples/\(file)").path
                try FileManager.default.copyItem(atPath: example, toPath: fixture.manifests + "/" + file)
            }
            let name = "web-\(fixture.nodeName)"
            // The whole daemon runs in the node namespace (no route off the machine): the proxy's nf_tables table is
            // there, and so are the pods' bridge and the Service's cluster IP.
            try await fixture.startDaemon(manifests: true, api: false, components: "kubelet,proxy", inNodeNamespace: true)
            var podIP = ""
            try await fixture.eventually(60, "the static pod Running and ready in /pods") {
                let pods = try fixture.podsEndpoint()["pods"] as? [[String: Any]] ?? []
                guard let pod = pods.first(where: { $0["name"] as? String == name }), pod["phase"] as? String == "Running", pod["ready"] as? Bool == true
                else { return false }
                podIP = pod["podIP"] as? String ?? ""
                return true
            }
            // A node has a route for the service range (usually its default route); this one has no default route
            // on purpose, so the range goes to the pods' bridge, inside the namespace.
            try fixture.node.run(["ip", "route", "replace", "10.96.0.0/12", "dev", "nakbe9"])
            let expected = "hello from \(name) (\(podIP)) on node \(fixture.nodeName)\n"
            try await fixture.eventually(30, "the Service's cluster IP answering from the pod") {
                try fixture.curlFromNode("http://10.96.0.80/").stdout == expected
            }
            #expect(!fixture.log().contains("expected apiVersion v1 and kind Pod"), "the kubelet must not refuse the Service manifest")

            // The pod goes: the Service has no endpoint left and refuses new connections at once.
            try FileManager.default.removeItem(atPath: fixture.manifests + "/web.yaml")
            try await fixture.eventually(60, "the Service refusing without its pod") {
                let answer = try fixture.curlFromNode("http://10.96.0.80/")
                return answer.status == 7  // curl: connection refused
            }
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }
}
