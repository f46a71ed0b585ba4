import Foundation
import KubeAPI
import Testing

@testable import Kubelet

@Suite("Static pod manifests: decoding, validation, defaults")
struct ManifestTests {
    private func decode(_ text: String, path: String = "/etc/pods/web.yaml") throws(KubeletError) -> [Pod] {
        try PodManifest.decode(Data(text.utf8), path: path)
    }

    private func refusal(_ text: String) -> KubeletError? {
        do {
            _ = try decode(text)
            return nil
        } catch {
            return error
        }
    }

    static let web = """
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          labels: {app: web}
        spec:
          containers:
          - name: httpd
            image: local/busybox:latest
            imagePullPolicy: Never
            ports: [{containerPort: 8080}]
            volumeMounts: [{name: data, mountPath: /data}]
          volumes:
          - name: data
            emptyDir: {}
          - name: config
            configMap: {name: settings, defaultMode: 0644}
        """

    @Test("a YAML pod decodes with the API's defaults; its static identity is name-node, a stable UID and config annotations")
    func yaml() throws {
        let pods = try decode(Self.web)
        #expect(pods.count == 1)
        #expect(pods[0].spec?.volumes?[1].configMap?.defaultMode == 0o644)
        let seen = Date(timeIntervalSince1970: 1_700_000_000)
        let pod = PodManifest.staticPod(pods[0], path: "/etc/pods/web.yaml", nodeName: "Node-A", seen: seen)
        #expect(pod.metadata.name == "web-node-a")
        #expect(pod.metadata.namespace == "default")
        #expect(pod.spec?.nodeName == "Node-A")
        #expect(pod.spec?.restartPolicy == "Always")
        #expect(pod.spec?.containers[0].terminationMessagePath == "/dev/termination-log")
        #expect(pod.spec?.containers[0].ports?[0].protocol == "TCP")
        let uid = try #require(pod.metadata.uid)
        #expect(uid.count == 32 && uid.allSatisfy(\.isHexDigit))
        #expect(pod.metadata.annotations?[PodManifest.hashAnnotation] == uid)
        #expect(pod.metadata.annotations?[PodManifest.sourceAnnotation] == "file")
        // Same manifest, same UID; another file or node, another UID.
        #expect(PodManifest.staticPod(pods[0], path: "/etc/pods/web.yaml", nodeName: "Node-A", seen: seen.addingTimeInterval(5)).metadata.uid == uid)
        #expect(PodManifest.staticPod(pods[0], path: "/etc/pods/other.yaml", nodeName: "Node-A", seen: seen).metadata.uid != uid)
        #expect(PodManifest.staticPod(pods[0], path: "/etc/pods/web.yaml", nodeName: "node-b", seen: seen).metadata.uid != uid)
    }

    @Test("a JSON pod and a List of pods decode")
    func jsonAndList() throws {
        let json = #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"c","image":"x"}]}}"#
        #expect(try decode(json).first?.metadata.name == "j")
        let list = """
            apiVersion: v1
            kind: List
            items:
            - {apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: x}]}}
            - {apiVersion: v1, kind: Pod, metadata: {name: b}, spec: {containers: [{name: c, image: x}]}}
            """
        #expect(try decode(list).map { $0.metadata.name } == ["a", "b"])
    }

    @Test("invalid YAML is refused naming the file")
    func invalidYAML() {
        let error = refusal("apiVersion: v1\nkind: Pod\nmetadata: {name: [oops\n")
        #expect(error?.kind == .invalidPod)
        #expect(error?.object == "manifest /etc/pods/web.yaml")
        #expect(error?.message.contains("invalid YAML") == true)
    }

    @Test("an unknown field is refused naming its path")
    func unknownField() {
        let error = refusal(Self.web.replacingOccurrences(of: "imagePullPolicy: Never", with: "imagePullPolicy: Never\n    imagePulPolicy: Never"))
        #expect(error?.field == "spec.containers[0].imagePulPolicy")
        #expect(error?.message == "unknown field \"spec.containers[0].imagePulPolicy\"")
    }

    @Test("a missing image, a port over 65535, a wrong kind are refused naming the field")
    func invalidFields() {
        let noImage = refusal(Self.web.replacingOccurrences(of: "    image: local/busybox:latest\n", with: ""))
        #expect(noImage?.field == "spec.containers[0].image")
        #expect(noImage?.message == "Required value")
        let port = refusal(Self.web.replacingOccurrences(of: "containerPort: 8080", with: "containerPort: 70000"))
        #expect(port?.field == "spec.containers[0].ports[0].containerPort")
        #expect(port?.message.contains("must be between 1 and 65535") == true)
        let kind = refusal("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
        #expect(kind?.field == "kind")
        let mount = refusal(Self.web.replacingOccurrences(of: "name: data, mountPath", with: "name: nosuch, mountPath"))
        #expect(mount?.field == "spec.containers[0].volumeMounts[0].name")
    }

    @Test("a file may hold several documents; the proxy's Services and EndpointSlices in it are skipped, other kinds refused")
    func documents() throws {
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.96.0.80, ports: [{port: 80}]}\n"
        let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1}\naddressType: IPv4\nendpoints: []\n"
        let pods = try PodManifest.decode(Data((Self.web + "\n---\n" + service + "---\n" + slice).utf8), path: "/m/web.yaml")
        #expect(pods.count == 1)
        #expect(try PodManifest.decode(Data(service.utf8), path: "/m/svc.yaml").isEmpty)
        #expect(try PodManifest.decode(Data(("---\n" + Self.web + "\n---\n").utf8), path: "/m/web.yaml").count == 1)
        let mixed = refusal(Self.web + "\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
        #expect(mixed?.field == "documents[1].kind")
    }

    @Test("a folder scan skips dot-files, reports bad files and keeps the good ones")
    func scan() throws {
        let directory = NSTemporaryDirectory() + "nakubelet-manifests-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.web.write(toFile: directory + "/web.yaml", atomically: true, encoding: .utf8)
        try "not: [valid".write(toFile: directory + "/broken.yaml", atomically: true, encoding: .utf8)
        try Self.web.write(toFile: directory + "/.hidden.yaml", atomically: true, encoding: .utf8)
        let scan = ManifestDirectory.scan(directory, nodeName: "node-a", now: Date())
        #expect(scan.pods.map(\.name) == ["web-node-a"])
        #expect(scan.pods.first?.manifestPath == directory + "/web.yaml")
        #expect(scan.errors.map(\.path) == [directory + "/broken.yaml"])
        let missing = ManifestDirectory.scan(directory + "/nope", nodeName: "node-a", now: Date())
        #expect(missing.pods.isEmpty && missing.errors.count == 1)
    }
}
