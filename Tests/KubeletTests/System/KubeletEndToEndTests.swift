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
}
