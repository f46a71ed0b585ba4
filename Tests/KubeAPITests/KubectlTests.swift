import Foundation
import KubeAPI
import NodeAgentTesting
import Testing

/// The machine's real kubectl (v1.32) as an independent client of the double: a failure here means the
/// double drifted from the real API.
@Suite("kubectl against the API server double")
struct KubectlTests {
    static let kubectl = "/usr/bin/kubectl"

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs kubectl to completion on a thread of its own (blocking reads must not starve the cooperative pool that
    /// serves the double).
    static func run(_ arguments: [String], kubeconfig: String, stdin: String? = nil) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try runBlocking(arguments, kubeconfig: kubeconfig, stdin: stdin) })
            }
        }
    }

    private static func runBlocking(_ arguments: [String], kubeconfig: String, stdin: String?) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: kubectl)
        process.arguments = ["--kubeconfig", kubeconfig, "--request-timeout=20s"] + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    func withKubectl(_ body: (APIServerDouble, KubeClient, String) async throws -> Void) async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.kubectl), "kubectl v1.32 is expected at \(Self.kubectl)")
        try await withDouble(.init(tls: .clientCertificates)) { double, client in
            let kubeconfig = NSTemporaryDirectory() + "nakube-kubectl-\(UUID().uuidString).yaml"
            try double.writeKubeconfig(to: kubeconfig)
            defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
            try await body(double, client, kubeconfig)
        }
    }

    static let podYAML = """
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          labels: {app: web}
        spec:
          containers:
          - name: main
            image: busybox:1.36
            ports: [{containerPort: 8080, name: http}]
        """

    @Test("kubectl create -f, get -o json, delete work over TLS with a client certificate")
    func createGetDelete() async throws {
        try await withKubectl { double, client, kubeconfig in
            let created = try await Self.run(["create", "--validate=false", "-f", "-"], kubeconfig: kubeconfig, stdin: Self.podYAML)
            #expect(created.status == 0, "\(created.stderr)")
            #expect(created.stdout.contains("pod/web created"))

            let ours = try await client.get(Pod.self, namespace: "default", name: "web")
            let json = try await Self.run(["get", "pod", "web", "-o", "json"], kubeconfig: kubeconfig)
            #expect(json.status == 0, "\(json.stderr)")
            let theirs = try JSONValue.parse(Array(json.stdout.utf8))
            #expect(theirs["metadata"]?["uid"]?.stringValue == ours.metadata.uid)
            #expect(theirs["spec"]?["containers"]?.arrayValue?.first?["ports"]?.arrayValue?.first?["containerPort"] == 8080)
            #expect(theirs["status"]?["phase"] == "Pending")

            let listed = try await Self.run(["get", "pods", "-l", "app=web", "-o", "name"], kubeconfig: kubeconfig)
            #expect(listed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "pod/web")

            let missing = try await Self.run(["get", "pod", "nope"], kubeconfig: kubeconfig)
            #expect(missing.status != 0)
            #expect(missing.stderr.contains("pods \"nope\" not found"), "\(missing.stderr)")

            let deleted = try await Self.run(["delete", "pod", "web"], kubeconfig: kubeconfig)
            #expect(deleted.status == 0, "\(deleted.stderr)")
            #expect(deleted.stdout.contains("pod \"web\" deleted"))
            #expect(double.object(Pod.resourceType, namespace: "default", name: "web") == nil)
        }
    }

    @Test("kubectl get -w sees a change made later by our client")
    func watchSeesLaterChange() async throws {
        try await withKubectl { _, client, kubeconfig in
            _ = try await client.create(makePod("w", node: "n1"))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.kubectl)
            process.arguments = [
                "--kubeconfig", kubeconfig, "get", "pod", "w", "--watch", "-o", "jsonpath={.metadata.name} {.status.phase}{\"\\n\"}",
            ]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = Pipe()
            let collected = OutputCollector(out.fileHandleForReading)
            try process.run()
            defer {
                if process.isRunning { process.terminate() }
                process.waitUntilExit()
            }
            try await eventually("kubectl printed the initial state") { collected.text.contains("w Pending") }
            _ = try await client.patchStatus(Pod.self, namespace: "default", name: "w", patch: .merge(["status": ["phase": "Running"]]))
            try await eventually("kubectl saw the change") { collected.text.contains("w Running") }
        }
    }

    @Test("kubectl create -f and apply -f validate through the server (no --validate=false), and get prints server-side tables")
    func createValidatedAndTables() async throws {
        try await withKubectl { _, client, kubeconfig in
            let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: v\nspec:\n  containers:\n  - name: main\n    image: busybox\n"
            let created = try await Self.run(["create", "-f", "-"], kubeconfig: kubeconfig, stdin: manifest)
            #expect(created.status == 0, "\(created.stderr)")
            #expect(created.stdout.contains("pod/v created"))
            let applied = try await Self.run(["apply", "-f", "-"], kubeconfig: kubeconfig, stdin: manifest.replacingOccurrences(of: "name: v\n", with: "name: v\n  labels: {a: b}\n"))
            #expect(applied.status == 0, "\(applied.stderr)")
            #expect(try await client.get(Pod.self, namespace: "default", name: "v").metadata.labels?["a"] == "b")
            let table = try await Self.run(["get", "pods", "-o", "wide"], kubeconfig: kubeconfig)
            #expect(table.stdout.hasPrefix("NAME   READY   STATUS    RESTARTS   AGE"), "\(table.stdout)")
            #expect(table.stdout.contains("v      0/1     Pending   0"))
        }
    }

    @Test("kubectl discovery lists the served resources, and label/patch/strategic merge go through")
    func discoveryAndPatch() async throws {
        try await withKubectl { _, client, kubeconfig in
            let resources = try await Self.run(["api-resources", "-o", "name"], kubeconfig: kubeconfig)
            #expect(resources.status == 0, "\(resources.stderr)")
            for name in ["pods", "nodes", "services", "leases.coordination.k8s.io", "endpointslices.discovery.k8s.io"] {
                #expect(resources.stdout.contains(name), "api-resources lacks \(name)")
            }
            _ = try await client.create(makePod("p"))
            #expect(try await Self.run(["label", "pod", "p", "tier=front"], kubeconfig: kubeconfig).status == 0)
            #expect(try await Self.run(["patch", "pod", "p", "-p", #"{"spec":{"containers":[{"name":"main","image":"busybox:1.37"}]}}"#], kubeconfig: kubeconfig).status == 0)
            let pod = try await client.get(Pod.self, namespace: "default", name: "p")
            #expect(pod.metadata.labels?["tier"] == "front")
            #expect(pod.spec?.containers.first?.image == "busybox:1.37")
            #expect(pod.metadata.generation == 2)
        }
    }
}

/// Reads a pipe in the background and keeps everything read.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    init(_ handle: FileHandle) {
        handle.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard let self, !chunk.isEmpty else { return }
            self.lock.lock()
            self.data.append(chunk)
            self.lock.unlock()
        }
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
