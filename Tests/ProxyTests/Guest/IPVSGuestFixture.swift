import Foundation
import NodeAgentTesting
import Proxy
import Testing

/// True inside the IPVS guest that scripts/ipvs-vm boots; the `IPVSGuest*` suites run only there.
let insideIPVSGuest = ProcessInfo.processInfo.environment["NODE_AGENT_IPVS_GUEST"] == "1"

/// What drives the proxy under test: Services and EndpointSlices in, a process that can be killed and restarted.
/// The scenarios use only this protocol; ``DaemonProxyDriver`` is the one they run with.
protocol IPVSProxyDriver: AnyObject {
    /// Starts the proxy inside the node namespace (again, after ``kill()``).
    func start() throws
    /// SIGKILLs the proxy: its kernel state stays, as after a crash.
    func kill()
    func apply(_ service: ServiceObject) throws
    func apply(_ slice: EndpointSliceObject) throws
    func delete(service name: String) throws
    /// The proxy's log so far (for failure messages).
    var log: String { get }
    /// Whether the proxy has completed a sync since its last start.
    func hasSynced() throws -> Bool
    /// With the IPVS proxy stopped, runs the proxy once in iptables mode, which must remove what the IPVS mode
    /// left (and only that); returns when it has synced, and stops it again.
    func switchToIPTablesMode() throws
    /// Stops everything the driver started.
    func tearDown()
}

/// The daemon as a kubelet host runs it: the API server double (``NamespacedAPIServer``) and
/// `node-agent run --components proxy --proxy-mode ipvs --kubeconfig ...` inside the node namespace, Services and
/// EndpointSlices written with the real kubectl. The Node `node-a` (InternalIP 10.250.0.1, where NodePorts open)
/// exists before the daemon starts. Everything writable is under `scratch` (/tmp is a tmpfs in the guest; the
/// binaries come from the host's build folder, shared read-only).
///
/// The daemon has no flags for the IPVS graceful-termination bound (900 s) or the drain check interval (2 s); the
/// scenarios need neither: a drained backend goes well within their waits, and the bound is never reached.
final class DaemonProxyDriver: IPVSProxyDriver {
    static let nodeName = "node-a"
    let node: NetworkNamespace
    let scratch: URL
    let apiserver: NamespacedAPIServer
    let logFile: URL
    private var process: Process?

    init(node: NetworkNamespace, scratch: URL) throws {
        self.node = node
        self.scratch = scratch
        logFile = scratch.appendingPathComponent("proxy.log")
        apiserver = NamespacedAPIServer(in: node, directory: scratch)
        try apiserver.start(nodeName: Self.nodeName, nodeIP: IPVSGuestTopology.nodeIP)
    }

    func start() throws { try start(mode: .ipvs) }

    private func start(mode: ProxyMode) throws {
        process = try ProxyProcesses.start(
            ProxyProcesses.nodeAgentProxy(
                in: node, mode: mode, kubeconfig: apiserver.kubeconfig, nodeName: Self.nodeName, clusterCIDR: IPVSGuestTopology.clusterCIDR,
                rootDirectory: scratch.appendingPathComponent("root"), minSyncPeriod: "200ms"),
            log: logFile)
    }

    func kill() {
        guard let process else { return }
        ProxyProcesses.kill(process)
        self.process = nil
    }

    func apply(_ service: ServiceObject) throws { try apiserver.apply(ProxyProcesses.manifest(service, kind: "Service")) }
    func apply(_ slice: EndpointSliceObject) throws { try apiserver.apply(ProxyProcesses.manifest(slice, kind: "EndpointSlice")) }
    func delete(service name: String) throws { try apiserver.delete(kind: "Service", name: name) }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// The `proxy` section of the daemon's `/status`.
    func status() throws -> [String: Any] { try ProxyProcesses.daemonStatus(in: node)["proxy"] as? [String: Any] ?? [:] }

    /// The daemon's `/status` has a `proxy.lastSync` (the time of the proxier's last successful sync).
    func hasSynced() throws -> Bool {
        guard let lastSync = try status()["lastSync"] else { return false }
        return !(lastSync is NSNull)
    }

    func switchToIPTablesMode() throws {
        kill()
        try start(mode: .iptables)
        defer { kill() }
        var seen: [String: Any] = [:]
        do {
            try ProxyProcesses.wait("the daemon in iptables mode synced", seconds: 60) {
                seen = try status()
                return try seen["proxyMode"] as? String == "iptables" && hasSynced()
            }
        } catch {
            throw GuestFailure("\(error); last /status proxy: \(seen)")
        }
    }

    func tearDown() {
        kill()
        apiserver.stop()
    }
}

struct GuestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The guest scenario's network: an isolated node namespace (bridge 10.250.0.1/24, no other route) with three
/// busybox httpd backends answering their own name on 8080, and a client with several source addresses.
/// Every address lives in namespaces this fixture creates; QEMU has no network card anyway.
final class IPVSGuestTopology {
    static let nodeIP = "10.250.0.1"
    /// The "pod network": none of the test's hosts are in it, so every Service connection is masqueraded.
    static let clusterCIDR = "10.244.0.0/16"
    static let backendIPs = ["b1": "10.250.0.11", "b2": "10.250.0.12", "b3": "10.250.0.13"]
    static let clientIPs = ["10.250.0.100", "10.250.0.101", "10.250.0.102"]

    /// ProxyHarness also carries the traffic tools (`tcp-echo`, `tcp-hold`), whatever drives the proxy.
    static var harnessPath: String { SystemTests.productsDirectory.appendingPathComponent("ProxyHarness").path }

    let topology: NodeTopology
    let client: NetworkNamespace
    let scratch: URL
    private var servers: [Process] = []
    private(set) var driver: (any IPVSProxyDriver)!

    var node: NetworkNamespace { topology.node }

    init(_ id: String) throws {
        guard getuid() == 0 else { throw GuestFailure("the IPVS guest tests run as root inside scripts/ipvs-vm") }
        topology = try NodeTopology(prefix: "naipvsp-\(id)")
        scratch = URL(fileURLWithPath: "/tmp/naipvsp-\(id)")
        try? FileManager.default.removeItem(at: scratch)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        client = try topology.addHost("client", address: Self.clientIPs[0])
        for extra in Self.clientIPs.dropFirst() { try client.run(["ip", "addr", "add", "\(extra)/24", "dev", "eth0"]) }
        driver = try DaemonProxyDriver(node: topology.node, scratch: scratch)
        for name in Self.backendIPs.keys.sorted() {
            let host = try topology.addHost(name, address: Self.backendIPs[name]!)
            let root = scratch.appendingPathComponent("www-\(name)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            try Data(name.utf8).write(to: root.appendingPathComponent("index.html"))
            try Data(repeating: 0x61, count: 2 << 20).write(to: root.appendingPathComponent("big"))
            try spawn(["ip", "netns", "exec", host.name, "busybox", "httpd", "-f", "-p", "8080", "-h", root.path])
            // A line echo on 9090 for long-lived connections that must keep carrying data.
            try spawn(["ip", "netns", "exec", host.name, Self.harnessPath, "tcp-echo", "--port", "9090", "--reply", name])
        }
        for (name, ip) in Self.backendIPs {
            try eventually("backend \(name) listens", seconds: 20) {
                try node.output(["curl", "-s", "-m", "2", "http://\(ip):8080/"]).stdout == name
                    && node.output([Self.harnessPath, "tcp-hold", "--to", "\(ip):9090"]).stdout.hasPrefix(name)
            }
        }
    }

    @discardableResult
    func spawn(_ arguments: [String]) throws -> Process {
        let process = try ProxyProcesses.start(arguments)
        servers.append(process)
        return process
    }

    /// `count` requests to `url` from `source`, each on its own connection, in one curl process: the answers in
    /// order (`curl exit N` for a failed one). Status 7 is "refused", 28 a timeout.
    func requests(_ url: String, count: Int, from source: String = clientIPs[0], in namespace: NetworkNamespace? = nil) throws -> [String] {
        let namespace = namespace ?? client
        var arguments = ["curl", "-s", "-m", "5", "-H", "Connection: close", "-w", "\\n"]
        if namespace == client { arguments += ["--interface", source] }
        let output = try namespace.output(arguments + Array(repeating: url, count: count))
        let answers = output.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
        return output.status == 0 ? answers : answers + ["curl exit \(output.status)"]
    }

    /// curl's exit status for one request (0 answered, 7 refused, 28 timed out).
    func status(_ url: String, from namespace: NetworkNamespace? = nil) throws -> Int32 {
        try (namespace ?? client).output(["curl", "-s", "-o", "/dev/null", "-m", "5", url]).status
    }

    /// `ipvsadm -Ln` of the node, without counters: `TCP 10.96.0.10:80 rr` and `TCP 10.96.0.10:80 -> 10.250.0.11:8080 Masq 1`.
    func ipvsTable() throws -> Set<String> {
        var lines: Set<String> = []
        var service = ""
        for line in try node.run(["ipvsadm", "-Ln"]).split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if ["TCP", "UDP", "SCTP"].contains(words.first ?? "") {
                service = "\(words[0]) \(words[1])"
                lines.insert(words.joined(separator: " "))
            } else if words.first == "->", words.count >= 4, words[1] != "RemoteAddress:Port" {
                lines.insert("\(service) -> \(words[1]) \(words[2]) \(words[3])")
            }
        }
        return lines
    }

    /// Active + inactive connections of each real server of `service` (`TCP 10.96.0.10:80`), from `ipvsadm -Ln`.
    func connections(_ service: String) throws -> [String: (active: Int, inactive: Int)] {
        var result: [String: (Int, Int)] = [:]
        var current = ""
        for line in try node.run(["ipvsadm", "-Ln"]).split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            if ["TCP", "UDP", "SCTP"].contains(words.first ?? "") { current = "\(words[0]) \(words[1])" }
            if current == service, words.first == "->", words.count >= 6, let active = Int(words[4]), let inactive = Int(words[5]) {
                result[words[1]] = (active, inactive)
            }
        }
        return result
    }

    /// Retries `condition` every 200 ms for up to `seconds` (a loose bound: software emulation is slow).
    func eventually(_ what: @autoclosure () -> String, seconds: Double = 30, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        var lastError: (any Error)?
        while Date() < deadline {
            do {
                if try condition() { return }
            } catch { lastError = error }
            Thread.sleep(forTimeInterval: 0.2)
        }
        let tail = (driver?.log ?? "").split(separator: "\n").suffix(20).joined(separator: "\n")
        throw GuestFailure("not reached within \(seconds) s: \(what())\(lastError.map { " (last error: \($0))" } ?? "")\nproxy log tail:\n\(tail)")
    }

    func tearDown() {
        driver?.tearDown()
        for process in servers { ProxyProcesses.kill(process) }
        servers.removeAll()
        for namespace in [client, topology.node] { _ = try? Command.output(["sh", "-c", "ip netns pids \(namespace.name) | xargs -r kill -9"]) }
        topology.tearDown()
        try? FileManager.default.removeItem(at: scratch)
    }

    deinit { tearDown() }
}

/// Builders for the scenario's objects.
enum GuestObjects {
    static func service(
        _ name: String, clusterIP: String, port: Int = 80, targetPort: Int = 8080, scheduler: String? = nil, affinity: Int? = nil,
        nodePort: Int? = nil
    ) -> ServiceObject {
        var service = ServiceObject(
            metadata: ObjectMeta(namespace: "default", name: name),
            spec: .init(
                type: nodePort == nil ? "ClusterIP" : "NodePort", clusterIP: clusterIP,
                ports: [ServicePortObject(name: "http", protocol: "TCP", port: port, targetPort: .int(targetPort), nodePort: nodePort)],
                sessionAffinity: affinity == nil ? nil : "ClientIP",
                sessionAffinityConfig: affinity.map { .init(clientIP: .init(timeoutSeconds: $0)) }))
        if let scheduler { service.metadata.annotations = [IPVSProxierConfiguration.schedulerAnnotation: scheduler] }
        return service
    }

    static func slice(_ service: String, _ backends: [String], port: Int = 8080) -> EndpointSliceObject {
        EndpointSliceObject(
            metadata: ObjectMeta(namespace: "default", name: "\(service)-1", labels: [EndpointSliceObject.serviceNameLabel: service]),
            addressType: "IPv4",
            endpoints: backends.map { EndpointObject(addresses: [IPVSGuestTopology.backendIPs[$0]!], conditions: .init(ready: true), nodeName: "node-a") },
            ports: [EndpointPortObject(name: "http", protocol: "TCP", port: port)])
    }
}
