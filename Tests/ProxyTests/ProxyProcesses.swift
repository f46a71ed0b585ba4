import Foundation
import NodeAgentTesting
import Proxy

/// Pieces shared by the tests that run a proxy as a process inside a node namespace: the host's data-path bed
/// (``DataPathTestBed``) and the IPVS guest's ``DaemonProxyDriver``.
enum ProxyProcesses {
    /// The path of the built product `name` (next to the test bundle; the guest sees the same path read-only).
    static func product(_ name: String) throws -> String {
        let path = SystemTests.productsDirectory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestBedError(what: "\(path) is missing; build with `swift build --build-tests`")
        }
        return path
    }

    /// Starts `arguments` (through `/usr/bin/env`), stdout and stderr appended to `log`, or discarded without one.
    /// Backends, the API server double and the proxy die with the test process, even when it is killed.
    static func start(_ arguments: [String], log: URL? = nil) throws -> Process {
        let process = Process.boundToTestProcess("/usr/bin/env", arguments)
        process.standardInput = FileHandle.nullDevice
        if let log {
            if !FileManager.default.fileExists(atPath: log.path) { _ = FileManager.default.createFile(atPath: log.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.runBound()
        return process
    }

    /// SIGKILLs `process` and reaps it (a proxy's kernel state stays, as after a crash).
    static func kill(_ process: Process) {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// A Service or EndpointSlice as a JSON manifest (kind and apiVersion set), as kubectl and the harness take it.
    static func manifest(_ object: some Encodable, kind: String) throws -> Data {
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(object)) as! [String: Any]
        json["kind"] = kind
        json["apiVersion"] = kind == "EndpointSlice" ? "discovery.k8s.io/v1" : "v1"
        return try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
    }

    /// Writes `manifest` as `<kind>-<name>.json` into `folder` through a temporary file in `scratch`: rename(2)
    /// replaces atomically, so a proxy polling the folder never reads half a file.
    static func write(_ manifest: Data, kind: String, name: String, into folder: URL, scratch: URL) throws {
        let temporary = scratch.appendingPathComponent(".\(kind)-\(name).json")
        try manifest.write(to: temporary)
        guard rename(temporary.path, folder.appendingPathComponent("\(kind)-\(name).json").path) == 0 else {
            throw TestBedError(what: "cannot write manifest \(kind)/\(name): errno \(errno)")
        }
    }

    /// Retries `condition` every 100 ms for up to `seconds`; throws with `what` when it never held.
    static func wait(_ what: String, seconds: Double, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw TestBedError(what: "not reached within \(seconds) s: \(what)")
    }

    /// The arguments that run `node-agent run --components proxy` in `namespace` against `kubeconfig`, as the
    /// Node `nodeName` (its Node object gives the NodePort address), with `--v 4` (each sync is logged).
    static func nodeAgentProxy(
        in namespace: NetworkNamespace, mode: ProxyMode, kubeconfig: URL, nodeName: String, clusterCIDR: String, rootDirectory: URL,
        minSyncPeriod: String = "100ms"
    ) throws -> [String] {
        [
            "ip", "netns", "exec", namespace.name, try product("node-agent"), "run",
            "--components", "proxy", "--proxy-mode", mode.rawValue, "--kubeconfig", kubeconfig.path,
            "--hostname-override", nodeName, "--cluster-cidr", clusterCIDR,
            "--iptables-min-sync-period", minSyncPeriod, "--iptables-sync-period", "30s",
            "--ipvs-min-sync-period", minSyncPeriod, "--ipvs-sync-period", "30s",
            "--root-dir", rootDirectory.path, "--v", "4",
        ]
    }

    /// The daemon's `/status` document, read inside `namespace` (its status port 10248 is the default there).
    static func daemonStatus(in namespace: NetworkNamespace) throws -> [String: Any] {
        let output = try namespace.run(["curl", "-s", "-m", "5", "http://127.0.0.1:10248/status"])
        return try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] ?? [:]
    }
}

/// The API server double (the `apiserver-double` executable, HTTPS with client certificates) running **inside**
/// a node namespace on its loopback, with the machine's real kubectl run in the same namespace against it.
///
/// The node namespaces of these tests have no route off the machine (and must not get one), so the double cannot
/// stay on the host's loopback; inside, the daemon reaches it at 127.0.0.1 exactly as a kubelet reaches a local
/// apiserver. ``start(nodeName:nodeIP:)`` also creates the Node object (InternalIP `nodeIP`: NodePorts open there).
final class NamespacedAPIServer {
    let namespace: NetworkNamespace
    /// Where the kubeconfig, kubectl's cache and the double's log live (writable; under /tmp in the guest).
    let directory: URL
    let kubeconfig: URL
    private(set) var process: Process?

    init(in namespace: NetworkNamespace, directory: URL) {
        self.namespace = namespace
        self.directory = directory
        kubeconfig = directory.appendingPathComponent("kubeconfig")
    }

    var logFile: URL { directory.appendingPathComponent("apiserver.log") }

    /// Starts the double, waits until kubectl gets an answer, and creates the Node `nodeName`.
    @discardableResult
    func start(nodeName: String, nodeIP: String) throws -> Process {
        let double = try ProxyProcesses.product("apiserver-double")
        let process = try ProxyProcesses.start(
            ["ip", "netns", "exec", namespace.name, double, "--tls", "--client-certs", "--kubeconfig-out", kubeconfig.path], log: logFile)
        self.process = process
        do {
            try ProxyProcesses.wait("the API server double answers kubectl", seconds: 60) {
                try FileManager.default.fileExists(atPath: kubeconfig.path) && kubectlOutput(["get", "namespaces"]).status == 0
            }
        } catch {
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            throw TestBedError(what: "\(error); the double's log:\n\(log.suffix(2000))")
        }
        try kubectl(
            ["create", "-f", "-"],
            input: """
                {"apiVersion":"v1","kind":"Node","metadata":{"name":"\(nodeName)","labels":{"kubernetes.io/hostname":"\(nodeName)"}},
                 "status":{"addresses":[{"type":"InternalIP","address":"\(nodeIP)"},{"type":"Hostname","address":"\(nodeName)"}]}}
                """)
        return process
    }

    /// Runs kubectl inside the namespace against the double; returns its output.
    func kubectlOutput(_ arguments: [String], input: String? = nil) throws -> Command.Output {
        try namespace.output(
            ["kubectl", "--kubeconfig", kubeconfig.path, "--cache-dir", directory.appendingPathComponent("kube-cache").path, "--request-timeout=20s"]
                + arguments, input: input)
    }

    /// Runs kubectl and requires success.
    @discardableResult
    func kubectl(_ arguments: [String], input: String? = nil) throws -> String {
        let output = try kubectlOutput(arguments, input: input)
        guard output.status == 0 else { throw TestBedError(what: "kubectl \(arguments.joined(separator: " ")) failed: \(output.stderr)") }
        return output.stdout
    }

    /// `kubectl apply -f -` of a manifest (``ProxyProcesses/manifest(_:kind:)``).
    func apply(_ manifest: Data) throws { try kubectl(["apply", "-f", "-"], input: String(decoding: manifest, as: UTF8.self)) }

    func delete(kind: String, name: String) throws { try kubectl(["delete", kind.lowercased(), name, "--wait=false"]) }

    func stop() {
        if let process { ProxyProcesses.kill(process) }
        process = nil
    }
}

/// A missing prerequisite or an unmet expectation of a test bed; the message says what.
struct TestBedError: Error, CustomStringConvertible {
    var what: String
    var description: String { what }
}
