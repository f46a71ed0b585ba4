import Foundation
import Iptables
import NodeAgentTesting
import Proxy
import Testing

/// An isolated node with real backends and a client, and the proxier running inside the node namespace.
///
/// - The node namespace (`naproxy-<id>-node`) owns bridge 10.250.0.1/24 and has no route off the machine; the
///   service CIDR 10.96.0.0/16 is routed onto the bridge so that locally generated connections have a path.
/// - Backends are namespaces on the bridge running `busybox httpd` (answering their own name) or the harness's
///   UDP echo; the client is another namespace.
/// - The proxier is the `ProxyHarness` executable run with `ip netns exec` in the node namespace, so every
///   nft, sysctl and conntrack call lands there. It reads Services and EndpointSlices as Kubernetes JSON from a
///   folder: ``apply(_:)`` writes one. When the API server double exists, the daemon in proxy mode and kubectl
///   replace the harness and the folder; the scenarios stay the same.
final class DataPathTestBed: @unchecked Sendable {
    let topology: NodeTopology
    let id: String
    let manifests: URL
    let scratch: URL
    private(set) var client: NetworkNamespace!
    private(set) var backends: [String: (namespace: NetworkNamespace, ip: String)] = [:]
    private var processes: [Process] = []
    private(set) var proxy: Process?
    private var proxyLog: URL

    static let nodeIP = "10.250.0.1"
    static let clusterCIDR = "10.244.0.0/16"

    init() throws {
        guard SystemTests.enabled else { throw TestBedError(what: "NODE_AGENT_SYSTEM_TESTS=1 is required") }
        try SystemTests.requireRoot()
        for tool in ["ip", "nft", "curl", "busybox", "conntrack"] {
            guard (try? Command.output(["which", tool]))?.status == 0 else {
                throw TestBedError(what: "\(tool) is missing; run scripts/install-deps")
            }
        }
        id = String(UInt32.random(in: 0...0xFFFF), radix: 16)
        topology = try NodeTopology(prefix: "naproxy-\(id)")
        try topology.node.run(["ip", "route", "add", "10.96.0.0/16", "dev", topology.bridge])
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("naproxy-\(id)")
        manifests = scratch.appendingPathComponent("manifests")
        proxyLog = scratch.appendingPathComponent("proxy.log")
        try FileManager.default.createDirectory(at: manifests, withIntermediateDirectories: true)
        client = try topology.addHost("client", address: "10.250.0.100")
    }

    var harnessPath: String {
        let path = SystemTests.productsDirectory.appendingPathComponent("ProxyHarness").path
        return path
    }

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
        try start(["ip", "netns", "exec", namespace.name, harnessPath, "udp-echo", "--port", "\(port)", "--reply", name])
        backends[name] = (namespace, ip)
    }

    @discardableResult
    private func start(_ arguments: [String], log: URL? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        if let log {
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        processes.append(process)
        return process
    }

    /// Starts the proxier in the node namespace (its `/healthz` on 10256 there).
    func startProxy(conntrack: String = "/usr/sbin/conntrack") throws {
        guard FileManager.default.isExecutableFile(atPath: harnessPath) else {
            throw TestBedError(what: "\(harnessPath) is missing; build with `swift build --build-tests`")
        }
        proxy = try start(
            [
                "ip", "netns", "exec", topology.node.name, harnessPath,
                "--manifests", manifests.path, "--node-name", "node-a", "--node-ip", Self.nodeIP,
                "--cluster-cidr", Self.clusterCIDR, "--healthz-bind-address", "0.0.0.0:10256",
                "--min-sync-period", "0.1", "--sync-period", "30", "--poll-interval", "0.1", "--conntrack", conntrack, "-v",
            ],
            log: proxyLog
        )
    }

    /// SIGKILLs the proxier (its rules stay in the kernel, as after a crash).
    func killProxy() {
        guard let proxy else { return }
        kill(proxy.processIdentifier, SIGKILL)
        proxy.waitUntilExit()
        self.proxy = nil
    }

    var proxyLogText: String { (try? String(contentsOf: proxyLog, encoding: .utf8)) ?? "" }

    /// Writes `object` (a Service or EndpointSlice) into the folder the proxier watches.
    func apply(_ object: some Encodable, kind: String, name: String) throws {
        let encoder = JSONEncoder()
        var json = try JSONSerialization.jsonObject(with: encoder.encode(object)) as! [String: Any]
        json["kind"] = kind
        json["apiVersion"] = kind == "Service" ? "v1" : "discovery.k8s.io/v1"
        let data = try JSONSerialization.data(withJSONObject: json)
        let temporary = scratch.appendingPathComponent(".\(kind)-\(name).json")
        try data.write(to: temporary)
        // rename(2) replaces atomically: the proxier never reads half a file.
        guard rename(temporary.path, manifests.appendingPathComponent("\(kind)-\(name).json").path) == 0 else {
            throw TestBedError(what: "cannot write manifest \(kind)/\(name): errno \(errno)")
        }
    }

    func apply(_ service: ServiceObject) throws { try apply(service, kind: "Service", name: service.metadata.name) }
    func apply(_ slice: EndpointSliceObject) throws { try apply(slice, kind: "EndpointSlice", name: slice.metadata.name) }
    func remove(kind: String, name: String) throws {
        try FileManager.default.removeItem(at: manifests.appendingPathComponent("\(kind)-\(name).json"))
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
    func eventually(_ what: String, seconds: Double = 10, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("not reached within \(seconds) s: \(what)\nproxy log tail:\n\(proxyLogText.split(separator: "\n").suffix(15).joined(separator: "\n"))")
        throw TestBedError(what: what)
    }

    /// The proxier's table read back from the kernel (libnftables' JSON, parsed).
    func kernelTable() throws -> TableListing? {
        try LibNftables(networkNamespace: topology.node.path).list(family: .ip, table: "node-agent")
    }

    func tearDown() {
        killProxy()
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        processes.removeAll()
        topology.tearDown()
        try? FileManager.default.removeItem(at: scratch)
    }

    deinit { tearDown() }
}

/// A missing prerequisite or an unmet expectation of the test bed; the message says what.
struct TestBedError: Error, CustomStringConvertible {
    var what: String
    var description: String { what }
}
