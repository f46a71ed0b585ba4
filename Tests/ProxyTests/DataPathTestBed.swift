import Foundation
import Iptables
import NodeAgentTesting
import Proxy
import Testing

/// Where the proxier under test gets its Services and EndpointSlices.
enum ProxySource: Sendable, CustomStringConvertible {
    /// The daemon (`node-agent run --components proxy --proxy-mode MODE`) against the API server double, objects
    /// written with the real kubectl: the real path.
    case daemon(ProxyMode)
    /// The daemon with no API server (no kubeconfig): Services and EndpointSlices from `--pod-manifest-path`.
    case standalone
    /// The `ProxyHarness` executable fed from a folder of JSON objects (only where the daemon has no knob the test
    /// needs: the conntrack negative control).
    case harness

    var description: String {
        switch self {
        case .daemon(let mode): "node-agent --proxy-mode=\(mode.rawValue)"
        case .standalone: "node-agent standalone"
        case .harness: "proxy-harness"
        }
    }
}

/// An isolated node with real backends and a client, and the proxier running inside the node namespace.
///
/// - The node namespace (`naproxyw-<id>-node`) owns bridge 10.250.0.1/24 and has no route off the machine; the
///   service CIDR 10.96.0.0/16 is routed onto the bridge so that locally generated connections have a path.
/// - Backends are namespaces on the bridge running `busybox httpd` (answering their own name) or the harness's
///   UDP echo; the client is another namespace.
/// - With ``ProxySource/daemon(_:)``, the API server double runs inside the node namespace
///   (``NamespacedAPIServer``), and so do the daemon and every `kubectl`. The daemon's status (10248), metrics
///   (10249) and proxy health (10256) ports are the defaults, free in a fresh namespace. The Node `node-a` is created first with InternalIP 10.250.0.1: NodePorts open there.
/// - With ``ProxySource/standalone``, the daemon runs with no kubeconfig and reads the manifest folder.
/// - With ``ProxySource/harness``, the `ProxyHarness` executable reads JSON objects from a folder.
final class DataPathTestBed: @unchecked Sendable {
    let topology: NodeTopology
    let id: String
    let source: ProxySource
    let manifests: URL
    let scratch: URL
    private(set) var client: NetworkNamespace!
    private(set) var backends: [String: (namespace: NetworkNamespace, ip: String)] = [:]
    private var processes: [Process] = []
    private(set) var proxy: Process?
    private let apiserver: NamespacedAPIServer
    private var proxyLog: URL

    static let nodeIP = "10.250.0.1"
    static let nodeName = "node-a"
    static let clusterCIDR = "10.244.0.0/16"

    init(_ source: ProxySource = .daemon(.iptables)) throws {
        guard SystemTests.enabled else { throw TestBedError(what: "NODE_AGENT_SYSTEM_TESTS=1 is required") }
        try SystemTests.requireRoot()
        for tool in ["ip", "nft", "curl", "busybox", "conntrack", "kubectl"] {
            guard (try? Command.output(["which", tool]))?.status == 0 else {
                throw TestBedError(what: "\(tool) is missing; run scripts/install-deps")
            }
        }
        self.source = source
        id = String(UInt32.random(in: 0...0xFFFF), radix: 16)
        topology = try NodeTopology(prefix: "naproxyw-\(id)")
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("naproxyw-\(id)")
        manifests = scratch.appendingPathComponent("manifests")
        proxyLog = scratch.appendingPathComponent("proxy.log")
        apiserver = NamespacedAPIServer(in: topology.node, directory: scratch)
        do {
            try topology.node.run(["ip", "route", "add", "10.96.0.0/16", "dev", topology.bridge])
            try FileManager.default.createDirectory(at: manifests, withIntermediateDirectories: true)
            client = try topology.addHost("client", address: "10.250.0.100")
            if case .daemon = source { processes.append(try apiserver.start(nodeName: Self.nodeName, nodeIP: Self.nodeIP)) }
        } catch {
            tearDown()
            throw error
        }
    }

    static func product(_ name: String) throws -> String { try ProxyProcesses.product(name) }

    var harnessPath: String { SystemTests.productsDirectory.appendingPathComponent("ProxyHarness").path }

    /// Runs the machine's kubectl inside the node namespace against the double; returns its output.
    func kubectlOutput(_ arguments: [String], input: String? = nil) throws -> Command.Output {
        try apiserver.kubectlOutput(arguments, input: input)
    }

    /// Runs kubectl and requires success.
    @discardableResult
    func kubectl(_ arguments: [String], input: String? = nil) throws -> String { try apiserver.kubectl(arguments, input: input) }

    /// Adds backend `name` at `ip` running busybox httpd on 8080, answering `name`.
    func addHTTPBackend(_ name: String, ip: String) throws {
        let namespace = try topology.addHost(name, address: ip)
        let root = scratch.appendingPathComponent("www-\(name)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Data(name.utf8).write(to: root.appendingPathComponent("index.html"))
        // A large file for long-lived transfers.
        try Data(repeating: 0x61, count: 4 << 20).write(to: root.appendingPathComponent("big"))
        try start(["ip", "netns", "exec", namespace.name, "busybox", "httpd", "-f", "-p", "8080", "-h", root.path])
        backends[name] = (namespace, ip)
    }

    /// Adds backend `name` at `ip` answering UDP datagrams on `port` with `name`.
    func addUDPBackend(_ name: String, ip: String, port: Int) throws {
        let namespace = try topology.addHost(name, address: ip)
        try start(["ip", "netns", "exec", namespace.name, try Self.product("ProxyHarness"), "udp-echo", "--port", "\(port)", "--reply", name])
        backends[name] = (namespace, ip)
    }

    @discardableResult
    private func start(_ arguments: [String], log: URL? = nil) throws -> Process {
        let process = try ProxyProcesses.start(arguments, log: log)
        processes.append(process)
        return process
    }

    /// Starts the proxier in the node namespace (its `/healthz` on 10256 there).
    /// - Parameter conntrack: the harness only: the conntrack tool it runs (`/bin/true` disables cleanup).
    func startProxy(conntrack: String = "/usr/sbin/conntrack") throws {
        switch source {
        case .daemon(let mode):
            proxy = try start(
                ProxyProcesses.nodeAgentProxy(
                    in: topology.node, mode: mode, kubeconfig: apiserver.kubeconfig, nodeName: Self.nodeName, clusterCIDR: Self.clusterCIDR,
                    rootDirectory: scratch.appendingPathComponent("root")),
                log: proxyLog
            )
        case .standalone:
            // No kubeconfig anywhere (KUBECONFIG unset, HOME without ~/.kube): the daemon runs standalone.
            proxy = try start(
                [
                    "ip", "netns", "exec", topology.node.name, "env", "-u", "KUBECONFIG", "HOME=\(scratch.path)",
                    try Self.product("node-agent"), "run", "--components", "proxy", "--proxy-mode", "iptables",
                    "--pod-manifest-path", manifests.path, "--hostname-override", Self.nodeName, "--node-ip", Self.nodeIP,
                    "--cluster-cidr", Self.clusterCIDR, "--iptables-min-sync-period", "100ms",
                    "--root-dir", scratch.appendingPathComponent("root").path, "--v", "4",
                ],
                log: proxyLog
            )
        case .harness:
            proxy = try start(
                [
                    "ip", "netns", "exec", topology.node.name, try Self.product("ProxyHarness"),
                    "--manifests", manifests.path, "--node-name", Self.nodeName, "--node-ip", Self.nodeIP,
                    "--cluster-cidr", Self.clusterCIDR, "--healthz-bind-address", "0.0.0.0:10256",
                    "--min-sync-period", "0.1", "--sync-period", "30", "--poll-interval", "0.1", "--conntrack", conntrack, "-v",
                ],
                log: proxyLog
            )
        }
    }

    /// SIGKILLs the proxier (its rules stay in the kernel, as after a crash).
    func killProxy() {
        guard let proxy else { return }
        ProxyProcesses.kill(proxy)
        self.proxy = nil
    }

    var proxyLogText: String { (try? String(contentsOf: proxyLog, encoding: .utf8)) ?? "" }

    /// Writes `object` (a Service or EndpointSlice): `kubectl apply -f -` for the daemon, a file for the harness.
    func apply(_ object: some Encodable, kind: String, name: String) throws {
        let data = try ProxyProcesses.manifest(object, kind: kind)
        switch source {
        case .daemon: try apiserver.apply(data)
        case .harness, .standalone: try ProxyProcesses.write(data, kind: kind, name: name, into: manifests, scratch: scratch)
        }
    }

    func apply(_ service: ServiceObject) throws { try apply(service, kind: "Service", name: service.metadata.name) }
    func apply(_ slice: EndpointSliceObject) throws { try apply(slice, kind: "EndpointSlice", name: slice.metadata.name) }

    func remove(kind: String, name: String) throws {
        switch source {
        case .daemon: try apiserver.delete(kind: kind, name: name)
        case .harness, .standalone: try FileManager.default.removeItem(at: manifests.appendingPathComponent("\(kind)-\(name).json"))
        }
    }

    /// Every Service and EndpointSlice the API holds, read back with kubectl (the daemon's inputs, independently).
    func apiObjects() throws -> (services: [ServiceObject], slices: [EndpointSliceObject]) {
        struct List<Item: Decodable>: Decodable { var items: [Item] }
        let decoder = JSONDecoder()
        let services = try decoder.decode(List<ServiceObject>.self, from: Data(try kubectl(["get", "services", "-A", "-o", "json"]).utf8))
        let slices = try decoder.decode(List<EndpointSliceObject>.self, from: Data(try kubectl(["get", "endpointslices", "-A", "-o", "json"]).utf8))
        return (services.items, slices.items)
    }

    /// The daemon's `/status` document (from inside the node namespace).
    func status() throws -> [String: Any] {
        try ProxyProcesses.daemonStatus(in: topology.node)
    }

    /// `curl -m 3 URL` from `namespace`: the body on success, and curl's exit status (7 refused, 28 timeout).
    func curl(from namespace: NetworkNamespace, _ url: String, maxTime: Int = 3) throws -> (status: Int32, body: String) {
        let output = try namespace.output(["curl", "-s", "-m", "\(maxTime)", url])
        return (output.status, output.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The distinct answers of `count` requests.
    func answers(from namespace: NetworkNamespace, _ url: String, count: Int) throws -> [String: Int] {
        var seen: [String: Int] = [:]
        for _ in 0..<count {
            let (status, body) = try curl(from: namespace, url)
            seen[status == 0 ? body : "curl exit \(status)", default: 0] += 1
        }
        return seen
    }

    /// Retries `condition` every 100 ms for up to `seconds` (a sync takes well under one; the bound is generous
    /// for a loaded machine, and the test fails with the last observation).
    func eventually(_ what: String, seconds: Double = 15, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("not reached within \(seconds) s: \(what)\nproxy log tail:\n\(proxyLogText.split(separator: "\n").suffix(20).joined(separator: "\n"))")
        throw TestBedError(what: what)
    }

    /// The proxier's table read back from the kernel (libnftables' JSON, parsed).
    func kernelTable() throws -> TableListing? {
        try LibNftables(networkNamespace: topology.node.path).list(family: .ip, table: "node-agent")
    }

    func tearDown() {
        killProxy()
        for process in processes { ProxyProcesses.kill(process) }
        processes.removeAll()
        topology.tearDown()
        try? FileManager.default.removeItem(at: scratch)
    }

    deinit { tearDown() }
}
