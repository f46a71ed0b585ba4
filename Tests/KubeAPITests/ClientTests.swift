import Foundation
import KubeAPI
import NodeAgentTesting
import Testing

@Suite("client verbs against the API server double over HTTP")
struct ClientTests {
    @Test("create, get, list with selectors, update, patch and delete round-trip real objects")
    func crud() async throws {
        try await withDouble { double, client in
            let created = try await client.create(makePod("web", node: "n1", labels: ["app": "web"]))
            #expect(created.metadata.uid != nil)
            #expect(created.metadata.creationTimestamp != nil)
            #expect(created.metadata.generation == 1)
            #expect(created.status?.phase == "Pending")
            _ = try await client.create(makePod("db", node: "n2", labels: ["app": "db"]))

            let fetched = try await client.get(Pod.self, namespace: "default", name: "web")
            #expect(fetched.metadata.uid == created.metadata.uid)

            let onNode = try await client.list(Pod.self, namespace: "default", options: ListOptions(fieldSelector: "spec.nodeName=n1"))
            #expect(onNode.items.map(\.name) == ["web"])
            let notWeb = try await client.list(Pod.self, namespace: nil, options: ListOptions(labelSelector: "app notin (web)"))
            #expect(notWeb.items.map(\.name) == ["db"])

            var changed = fetched
            changed.metadata.labels?["tier"] = "front"
            let updated = try await client.update(changed)
            #expect(updated.metadata.labels?["tier"] == "front")
            #expect(Int(updated.resourceVersion!)! > Int(fetched.resourceVersion!)!)

            let patched = try await client.patch(
                Pod.self, namespace: "default", name: "web", patch: .merge(["metadata": ["annotations": ["a": "b"]]]))
            #expect(patched.metadata.annotations == ["a": "b"])
            #expect(patched.metadata.labels?["tier"] == "front")

            try await client.delete(Pod.self, namespace: "default", name: "web", options: DeleteOptions(gracePeriodSeconds: 0))
            await #expect(throws: KubeAPIError.self) { _ = try await client.get(Pod.self, namespace: "default", name: "web") }
            #expect(double.object(Pod.resourceType, namespace: "default", name: "web") == nil)
        }
    }

    @Test("a stale resourceVersion on update is a typed 409 Conflict; a taken name is AlreadyExists; missing is NotFound")
    func typedErrors() async throws {
        try await withDouble { _, client in
            var lease = Lease(metadata: ObjectMeta(name: "node-1", namespace: "kube-node-lease"),
                              spec: LeaseSpec(holderIdentity: "node-1", leaseDurationSeconds: 40, renewTime: .now()))
            lease = try await client.create(lease)
            var first = lease
            first.spec?.renewTime = .now()
            _ = try await client.update(first)
            var stale = lease
            stale.spec?.renewTime = .now()
            do {
                _ = try await client.update(stale)
                Issue.record("expected a conflict")
            } catch let error as KubeAPIError {
                #expect(error.isConflict)
                #expect(error.httpStatus == 409)
                #expect(error.reason == "Conflict")
                #expect(!error.isAlreadyExists)
            }
            do {
                _ = try await client.create(Lease(metadata: ObjectMeta(name: "node-1", namespace: "kube-node-lease")))
                Issue.record("expected AlreadyExists")
            } catch let error as KubeAPIError {
                #expect(error.isAlreadyExists)
                #expect(!error.isConflict)
            }
            do {
                _ = try await client.get(Lease.self, namespace: "kube-node-lease", name: "ghost")
                Issue.record("expected NotFound")
            } catch let error as KubeAPIError {
                #expect(error.isNotFound)
                #expect(error.status?.message?.contains("ghost") == true)
            }
        }
    }

    @Test("a malformed object is refused with 422 naming the field")
    func invalid() async throws {
        try await withDouble { _, client in
            var pod = makePod("bad")
            pod.spec?.containers[0].image = ""
            do {
                _ = try await client.create(pod)
                Issue.record("expected Invalid")
            } catch let error as KubeAPIError {
                #expect(error.isInvalid)
                #expect(error.status?.details?.causes?.first?.field == "spec.containers[0].image")
            }
            do {
                _ = try await client.create(makePod("Not_A_Name"))
                Issue.record("expected Invalid")
            } catch let error as KubeAPIError {
                #expect(error.isInvalid)
                #expect(error.message.contains("metadata.name"))
            }
        }
    }

    @Test("the status subresource: PUT/PATCH to the object ignore status, /status ignores everything else")
    func statusSubresource() async throws {
        try await withDouble { _, client in
            let pod = try await client.create(makePod("s", node: "n1"))
            var withStatus = pod
            withStatus.status?.phase = "Running"
            withStatus.metadata.labels = ["ignored": "by-status"]
            let afterStatus = try await client.updateStatus(withStatus)
            #expect(afterStatus.status?.phase == "Running")
            #expect(afterStatus.metadata.labels == nil)

            var mainWrite = afterStatus
            mainWrite.status?.phase = "Failed"
            mainWrite.metadata.labels = ["kept": "yes"]
            let afterMain = try await client.update(mainWrite)
            #expect(afterMain.status?.phase == "Running")
            #expect(afterMain.metadata.labels == ["kept": "yes"])

            let patched = try await client.patchStatus(
                Pod.self, namespace: "default", name: "s",
                patch: .strategicMerge([
                    "metadata": ["uid": .string(pod.metadata.uid!)],
                    "status": ["conditions": [["type": "Ready", "status": "True"]], "podIP": "10.1.0.5"],
                ]))
            #expect(patched.status?.podIP == "10.1.0.5")
            #expect(patched.status?.conditions?.first?.type == "Ready")
            #expect(patched.status?.phase == "Running")
        }
    }

    @Test("a UID precondition on PATCH and DELETE refuses a recreated object with 409")
    func uidPreconditions() async throws {
        try await withDouble { _, client in
            _ = try await client.create(makePod("u", node: "n1"))
            try await client.delete(Pod.self, namespace: "default", name: "u", options: DeleteOptions(gracePeriodSeconds: 0))
            let again = try await client.create(makePod("u", node: "n1"))
            await #expect { 
                _ = try await client.patchStatus(
                    Pod.self, namespace: "default", name: "u", patch: .merge(["metadata": ["uid": "old-uid"], "status": ["phase": "Running"]]))
            } throws: { ($0 as? KubeAPIError)?.isConflict == true }
            await #expect {
                try await client.delete(
                    Pod.self, namespace: "default", name: "u", options: DeleteOptions(gracePeriodSeconds: 0, preconditions: Preconditions(uid: "old-uid")))
            } throws: { ($0 as? KubeAPIError)?.isConflict == true }
            try await client.delete(
                Pod.self, namespace: "default", name: "u",
                options: DeleteOptions(gracePeriodSeconds: 0, preconditions: Preconditions(uid: again.metadata.uid)))
        }
    }

    @Test("deleting a bound pod is graceful: deletionTimestamp first, gone after the grace-0 delete")
    func gracefulPodDelete() async throws {
        try await withDouble { _, client in
            _ = try await client.create(makePod("g", node: "n1"))
            try await client.delete(Pod.self, namespace: "default", name: "g")
            let terminating = try await client.get(Pod.self, namespace: "default", name: "g")
            #expect(terminating.metadata.deletionTimestamp != nil)
            #expect(terminating.metadata.deletionGracePeriodSeconds == 30)
            try await client.delete(Pod.self, namespace: "default", name: "g", options: DeleteOptions(gracePeriodSeconds: 0))
            await #expect(throws: KubeAPIError.self) { _ = try await client.get(Pod.self, namespace: "default", name: "g") }
        }
    }

    @Test("limit and continue page through a list; listAll follows every page")
    func paging() async throws {
        try await withDouble { _, client in
            for index in 0..<7 {
                _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "cm-\(index)", namespace: "default"), data: ["i": "\(index)"]))
            }
            let first = try await client.list(ConfigMap.self, namespace: "default", options: ListOptions(limit: 3))
            #expect(first.items.count == 3)
            #expect(first.metadata.continue != nil)
            #expect(first.metadata.remainingItemCount == 4)
            let all = try await client.listAll(ConfigMap.self, namespace: "default", options: ListOptions(limit: 3))
            #expect(all.items.map(\.name) == (0..<7).map { "cm-\($0)" })
        }
    }

    @Test("secrets carry bytes, services get a cluster IP, endpoint slices and events round-trip")
    func otherKinds() async throws {
        try await withDouble { _, client in
            let secret = try await client.create(
                Secret(metadata: ObjectMeta(name: "s", namespace: "default"), data: ["key": Data([0, 1, 2, 255])]))
            #expect(try await client.get(Secret.self, namespace: "default", name: "s").data?["key"] == Data([0, 1, 2, 255]))
            #expect(secret.type == "Opaque")

            var serviceSpec = ServiceSpec()
            serviceSpec.ports = [ServicePort(name: "http", port: 80, targetPort: "http")]
            serviceSpec.selector = ["app": "web"]
            let service = try await client.create(KubeService(metadata: ObjectMeta(name: "web", namespace: "default"), spec: serviceSpec))
            #expect(service.spec?.clusterIP?.hasPrefix("10.96.") == true)
            #expect(service.spec?.ports?.first?.protocol == "TCP")
            #expect(service.spec?.ports?.first?.targetPort == .string("http"))

            let slice = try await client.create(
                EndpointSlice(
                    metadata: ObjectMeta(name: "web-abc", namespace: "default", labels: ["kubernetes.io/service-name": "web"]),
                    endpoints: [Endpoint(addresses: ["10.1.0.5"], conditions: EndpointConditions(ready: true), nodeName: "n1")],
                    ports: [EndpointPort(name: "http", protocol: "TCP", port: 8080)]))
            #expect(slice.endpoints.first?.addresses == ["10.1.0.5"])

            var event = Event(
                metadata: ObjectMeta(name: "web.1", namespace: "default"), involvedObject: ObjectReference(kind: "Pod", namespace: "default", name: "web"),
                reason: "Started", message: "Started container", type: "Normal")
            event.eventTime = .now()
            event.count = 1
            let stored = try await client.create(event)
            #expect(stored.reason == "Started")
            let node = try await client.create(Node(metadata: ObjectMeta(name: "n1")))
            let nodePatched = try await client.patchStatus(
                Node.self, namespace: nil, name: node.name,
                patch: .strategicMerge(["status": ["conditions": [["type": "Ready", "status": "True", "reason": "KubeletReady"]]]]))
            #expect(nodePatched.status?.conditions?.first?.reason == "KubeletReady")
        }
    }

    @Test("429 with Retry-After is retried by the client; 500 surfaces as a retriable error")
    func retryAfter() async throws {
        try await withDouble { double, client in
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "c", namespace: "default")))
            double.failNext(1, status: 429, retryAfterSeconds: 1)
            _ = try await client.get(ConfigMap.self, namespace: "default", name: "c")
            #expect(double.requestCount("GET", "configmaps") == 2)
            double.failNext(1, status: 500)
            do {
                _ = try await client.get(ConfigMap.self, namespace: "default", name: "c")
                Issue.record("expected a server error")
            } catch let error as KubeAPIError {
                #expect(error.isServerError)
                #expect(error.isRetriable)
            }
        }
    }

    @Test("a bearer token is sent, and a rotated token file is re-read")
    func tokens() async throws {
        var configuration = APIServerDouble.Configuration()
        configuration.bearerToken = "secret-1"
        let double = try await APIServerDouble.start(configuration)
        defer { Task { await double.stop() } }
        let tokenFile = NSTemporaryDirectory() + "nakube-token-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: tokenFile, contents: Data("wrong\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: tokenFile) }
        var clientConfiguration = ClientConfiguration(server: double.url)
        clientConfiguration.credentials = .tokenFile(tokenFile)
        let client = try KubeClient(configuration: clientConfiguration, logger: testLogger())
        do {
            _ = try await client.list(Namespace.self)
            Issue.record("expected Unauthorized")
        } catch let error as KubeAPIError {
            #expect(error.isUnauthorized)
        }
        try await Task.sleep(for: .milliseconds(1100))  // a new mtime even on coarse-timestamp filesystems
        try Data("secret-1\n".utf8).write(to: URL(fileURLWithPath: tokenFile))
        #expect(try await client.list(Namespace.self).items.count == 4)
        try await client.shutdown()
        await double.stop()
    }

    @Test("an unreachable server is a transport error, not a hang")
    func unreachable() async throws {
        var configuration = ClientConfiguration(server: URL(string: "http://127.0.0.1:1")!)
        configuration.requestTimeout = .seconds(5)
        let client = try KubeClient(configuration: configuration, logger: testLogger())
        do {
            _ = try await client.list(Pod.self)
            Issue.record("expected a transport error")
        } catch let error as KubeAPIError {
            #expect(error.isTransport)
            #expect(error.isRetriable)
        }
        try await client.shutdown()
    }
}
