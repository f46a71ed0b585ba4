import Foundation
import Iptables
import KubeAPI
import Logging
import NodeAgentTesting
import Proxy

// ProxyBench: the nftables proxier against kube-proxy's iptables mode (iptables-restore, iptables-nft), as issue 8
// asks, everything inside network namespaces this program creates (prefix `naproxy-bench`).
//
//   (a) full sync of N services x 10 endpoints: this proxier's first sync into an empty table vs. iptables-restore
//       loading the rule set kube-proxy's iptables mode generates for the same Services (KUBE-SERVICES,
//       KUBE-SVC-*, KUBE-SEP-* with statistic-mode random probabilities), N = 1,000 and 10,000;
//   (b) one endpoint change with N services loaded: from the EndpointSlice event to the transaction committed
//       in the kernel; and end to end through the API: the EndpointSlice written to the API server double over
//       HTTP, its watch event through the informer and the API source, the sync, the kernel commit;
//   (c) first-packet latency (TCP connect through the DNAT) to the last-listed Service with 10 vs 10,000 Services.
//
// Run as root, release build:  swift build -c release --product ProxyBench && sudo .build/release/ProxyBench
// Options: --runs N (full-sync repetitions, default 3), --sizes 1000,10000, --skip-latency, --skip-iptables, --skip-api

struct Options {
    var runs = 3
    var sizes = [1000, 10000]
    var changeRuns = 20
    var latency = true
    var iptables = true
    var api = true

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            switch flag {
            case "--runs": runs = Int(iterator.next() ?? "") ?? runs
            case "--sizes": sizes = (iterator.next() ?? "").split(separator: ",").compactMap { Int($0) }
            case "--change-runs": changeRuns = Int(iterator.next() ?? "") ?? changeRuns
            case "--skip-latency": latency = false
            case "--skip-iptables": iptables = false
            case "--skip-api": api = false
            default:
                FileHandle.standardError.write(Data("ProxyBench: unknown flag \(flag)\n".utf8))
                exit(2)
            }
        }
    }
}

let options = Options(CommandLine.arguments)
guard getuid() == 0 else {
    FileHandle.standardError.write(Data("ProxyBench needs root (network namespaces, nf_tables)\n".utf8))
    exit(1)
}

// MARK: - Inputs

let endpointsPerService = 10

func serviceIP(_ index: Int) -> String { "10.96.\(index / 256).\(index % 256)" }
func endpointIP(_ service: Int, _ endpoint: Int) -> String {
    let n = service * endpointsPerService + endpoint
    return "10.\(100 + n / 65536).\((n / 256) % 256).\(n % 256)"
}
func serviceName(_ index: Int) -> String { String(format: "svc-%05d", index) }

func services(_ count: Int) -> [ServiceObject] {
    (0..<count).map { index in
        ServiceObject(
            metadata: Proxy.ObjectMeta(namespace: "bench", name: serviceName(index)),
            spec: .init(type: "ClusterIP", clusterIP: serviceIP(index), ports: [ServicePortObject(name: "http", protocol: "TCP", port: 80, targetPort: .int(8080))])
        )
    }
}

func slice(_ index: Int, endpoints: [String]) -> EndpointSliceObject {
    EndpointSliceObject(
        metadata: Proxy.ObjectMeta(namespace: "bench", name: "\(serviceName(index))-1", labels: [EndpointSliceObject.serviceNameLabel: serviceName(index)]),
        addressType: "IPv4",
        endpoints: endpoints.map { EndpointObject(addresses: [$0], conditions: .init(ready: true)) },
        ports: [EndpointPortObject(name: "http", protocol: "TCP", port: 8080)]
    )
}

func slices(_ count: Int) -> [EndpointSliceObject] {
    (0..<count).map { index in slice(index, endpoints: (0..<endpointsPerService).map { endpointIP(index, $0) }) }
}

/// The iptables-restore input kube-proxy's iptables mode writes for the same Services (nat table).
func kubeProxyIptablesRules(_ count: Int) -> String {
    var chains: [String] = [":KUBE-SERVICES - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-NODEPORTS - [0:0]"]
    var rules: [String] = [
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
    ]
    for index in 0..<count {
        let name = "bench/\(serviceName(index)):http"
        let svc = "KUBE-SVC-" + String(format: "%016X", index &* 2_654_435_761)
        chains.append(":\(svc) - [0:0]")
        rules.append("-A KUBE-SERVICES -m comment --comment \"\(name) cluster IP\" -m tcp -p tcp -d \(serviceIP(index))/32 --dport 80 -j \(svc)")
        rules.append("-A \(svc) -m comment --comment \"\(name) cluster IP\" -m tcp -p tcp -d \(serviceIP(index))/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ")
        for endpoint in 0..<endpointsPerService {
            let ip = endpointIP(index, endpoint)
            let sep = "KUBE-SEP-" + String(format: "%016X", (index * endpointsPerService + endpoint) &* 40_503)
            chains.append(":\(sep) - [0:0]")
            let remaining = endpointsPerService - endpoint
            let probability = remaining > 1 ? " -m statistic --mode random --probability \(String(format: "%.10f", 1.0 / Double(remaining)))" : ""
            rules.append("-A \(svc) -m comment --comment \"\(name) -> \(ip):8080\"\(probability) -j \(sep)")
            rules.append("-A \(sep) -m comment --comment \(name) -s \(ip)/32 -j KUBE-MARK-MASQ")
            rules.append("-A \(sep) -m comment --comment \(name) -m tcp -p tcp -j DNAT --to-destination \(ip):8080")
        }
    }
    rules.append("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    return (["*nat"] + chains + rules + ["COMMIT", ""]).joined(separator: "\n")
}

// MARK: - Helpers

struct NoConntrack: ConntrackCleaner {
    func clearUDP(destination ip: IPAddress) throws {}
    func clearUDP(nodePort port: Int, family: IPFamily) throws {}
    func clearUDP(destination ip: IPAddress, endpoint: IPAddress) throws {}
    func clearUDP(nodePort port: Int, endpoint: IPAddress) throws {}
}

struct NoSysctl: SysctlWriter {
    func read(_ name: String) -> String? { nil }
    func write(_ name: String, _ value: String) throws {}
}

let quiet: Logger = {
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    return logger
}()

func makeProxier(_ nftables: any Nftables) -> NftablesProxier {
    NftablesProxier(
        configuration: NftablesProxierConfiguration(
            nodeName: "bench-node",
            nodePortAddresses: [IPAddress("10.250.0.1")!],
            clusterCIDR: IPPrefix("10.244.0.0/16"),
            syncPeriod: .seconds(3600),
            minSyncPeriod: .zero,
            manageSysctls: false
        ),
        nftables: nftables,
        conntrack: NoConntrack(),
        sysctl: NoSysctl(),
        health: ProxyHealth(timeout: .seconds(7200)),
        logger: quiet
    )
}

func feed(_ proxier: NftablesProxier, count: Int) {
    for service in services(count) { proxier.serviceChanged(previous: nil, current: service) }
    for slice in slices(count) { proxier.endpointSliceChanged(previous: nil, current: slice) }
    proxier.servicesSynced()
    proxier.endpointSlicesSynced()
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func format(_ value: Double, _ unit: String = "s") -> String {
    switch unit {
    case "ms": String(format: "%.2f ms", value * 1000)
    case "us": String(format: "%.0f µs", value * 1e6)
    default: String(format: "%.3f s", value)
    }
}

let clock = ContinuousClock()
func runSync(_ body: @escaping @Sendable () async -> SyncOutcome) -> SyncOutcome {
    let box = ResultBox()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

final class ResultBox: @unchecked Sendable { var value: SyncOutcome? }

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

if let dump = ProcessInfo.processInfo.environment["PROXYBENCH_DUMP"] {
    // Writes the full-sync transaction for N services (PROXYBENCH_DUMP=N:PATH), for profiling nft itself.
    let parts = dump.split(separator: ":", maxSplits: 1)
    let fake = FakeNftables()
    let proxier = makeProxier(fake)
    feed(proxier, count: Int(parts[0])!)
    _ = runSync { await proxier.syncNow() }
    try Data(fake.transactions[0].script().utf8).write(to: URL(fileURLWithPath: String(parts[1])))
    exit(0)
}

say("ProxyBench — nftables proxier vs. kube-proxy iptables mode (iptables-restore, \(((try? Command.run(["iptables", "--version"])) ?? "iptables ?").trimmingCharacters(in: .whitespacesAndNewlines)))")
say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, kernel \(((try? Command.run(["uname", "-r"])) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)); \(endpointsPerService) endpoints per Service; medians")
say("")

// MARK: - (a) full sync and (b) one endpoint change

struct SizeResult {
    var size: Int
    var ours: [Double] = []
    var anchor: [Double] = []
    var change: [Double] = []
    var changeCommands = 0
    /// A one-element transaction straight to the kernel, and a sync with nothing to do (where (b)'s time goes).
    var kernelOnly = Double.nan
    var idleSync = Double.nan
    /// A full sync of the loaded table (the periodic resync: every chain and map flushed and refilled).
    var resync = Double.nan
    /// (b) through the API: write to kernel, and its part from the write's return to the kernel.
    var throughAPI: [Double] = []
}

var results: [SizeResult] = []
let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("naproxy-bench-\(getpid())")
try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: scratch) }

for size in options.sizes {
    var result = SizeResult(size: size)
    let namespace = try NetworkNamespace.create("naproxy-bench-\(getpid())")
    defer { namespace.delete() }
    let nft = try LibNftables(networkNamespace: namespace.path)

    for run in 0..<options.runs {
        try? namespace.run(["nft", "delete", "table", "ip", "node-agent"])
        let proxier = makeProxier(nft)
        feed(proxier, count: size)
        let start = clock.now
        let outcome = runSync { await proxier.syncNow() }
        let elapsed = seconds(clock.now - start)
        guard case .applied(full: true, _) = outcome else {
            say("full sync failed: \(outcome)")
            exit(1)
        }
        result.ours.append(elapsed)
        FileHandle.standardError.write(Data("  [\(size)] nftables full sync run \(run + 1): \(format(elapsed))\n".utf8))

        // (b) on the last run's loaded table: one endpoint of the last Service changes, event to kernel.
        if run == options.runs - 1 {
            let last = size - 1
            let base = (0..<endpointsPerService).map { endpointIP(last, $0) }
            proxier.requestFullSync()
            let resyncStart = clock.now
            guard case .applied(full: true, _) = runSync({ await proxier.syncNow() }) else {
                say("full resync failed")
                exit(1)
            }
            result.resync = seconds(clock.now - resyncStart)
            FileHandle.standardError.write(Data("  [\(size)] nftables full resync of the loaded table: \(format(result.resync))\n".utf8))
            do {
                // Where (b)'s time goes: the kernel transaction alone, and a sync with nothing to do.
                var direct: [Double] = []
                for round in 0..<10 {
                    // The same shape as an endpoint replacement: two element deletions, two additions.
                    var tx = Transaction(family: .ip, table: "node-agent")
                    let map = RulesetNames.endpoints(.tcp, slot: last)
                    let (old, new) = round % 2 == 0 ? ("10.77.0.1", "10.77.0.2") : ("10.77.0.2", "10.77.0.1")
                    if ProcessInfo.processInfo.environment["PROXYBENCH_ADDS_ONLY"] != nil {
                        tx.addElement(map, Element(key: "\(4_000_000_000 + round)", value: "\(new) . 80"))
                        tx.addElement("hairpin-endpoints", Element(key: "10.78.0.\(round) . 10.78.0.\(round)"))
                    } else {
                        if round > 0 {
                            tx.deleteElement(map, key: "4000000000")
                            tx.deleteElement("hairpin-endpoints", key: "\(old) . \(old)")
                        }
                        tx.addElement(map, Element(key: "4000000000", value: "\(new) . 80"))
                        tx.addElement("hairpin-endpoints", Element(key: "\(new) . \(new)"))
                    }
                    let start = clock.now
                    try nft.run(tx)
                    direct.append(seconds(clock.now - start))
                }
                var idle: [Double] = []
                for _ in 0..<10 {
                    let start = clock.now
                    _ = runSync { await proxier.syncNow() }
                    idle.append(seconds(clock.now - start))
                }
                result.kernelOnly = median(direct)
                result.idleSync = median(idle)
            }
            for change in 0..<options.changeRuns {
                var endpoints = base
                endpoints[change % endpointsPerService] = "10.99.\(change / 256).\(change % 256)"
                let event = slice(last, endpoints: endpoints)
                let start = clock.now
                proxier.endpointSliceChanged(previous: nil, current: event)
                let outcome = runSync { await proxier.syncNow() }
                result.change.append(seconds(clock.now - start))
                if case .applied(full: false, let commands) = outcome { result.changeCommands = commands } else {
                    say("incremental sync failed: \(outcome)")
                    exit(1)
                }
            }
        }
    }
    try? namespace.run(["nft", "delete", "table", "ip", "node-agent"])

    if options.api {
        result.throughAPI = try throughTheAPI(size: size, namespace: namespace, changes: options.changeRuns)
        try? namespace.run(["nft", "delete", "table", "ip", "node-agent"])
    }

    if options.iptables {
        let rules = scratch.appendingPathComponent("iptables-\(size).txt")
        try Data(kubeProxyIptablesRules(size).utf8).write(to: rules)
        for run in 0..<options.runs {
            _ = try? namespace.output(["iptables", "-t", "nat", "-F"])
            _ = try? namespace.output(["iptables", "-t", "nat", "-X"])
            let start = clock.now
            let output = try namespace.output(["iptables-restore", rules.path])
            let elapsed = seconds(clock.now - start)
            guard output.status == 0 else {
                say("iptables-restore failed: \(output.stderr)")
                exit(1)
            }
            result.anchor.append(elapsed)
            FileHandle.standardError.write(Data("  [\(size)] iptables-restore run \(run + 1): \(format(elapsed))\n".utf8))
        }
    }
    results.append(result)
}

say("(a) full sync, N services x \(endpointsPerService) endpoints        nftables proxier   iptables-restore   ratio   target")
for result in results {
    let ours = median(result.ours)
    let anchor = median(result.anchor)
    say(
        String(format: "    N = %6d                                   %15@   %16@   %5.2f   <= 0.50", result.size, format(ours) as NSString, (result.anchor.isEmpty ? "-" : format(anchor)) as NSString, result.anchor.isEmpty ? Double.nan : ours / anchor)
    )
}
say("    full resync of the loaded table (periodic): \(results.map { "N = \($0.size): \(format($0.resync))" }.joined(separator: ", "))")
say("")
say("(b) one endpoint change, event to kernel          median       p90     commands   target              [kernel transaction alone | idle sync]")
for result in results {
    say(
        String(
            format: "    N = %6d                                %9@ %9@   %8d   < 10 ms at 10,000   [%@ | %@]", result.size, format(median(result.change), "ms") as NSString,
            format(percentile(result.change, 0.9), "ms") as NSString, result.changeCommands, format(result.kernelOnly, "ms") as NSString, format(result.idleSync, "ms") as NSString
        )
    )
}
if options.api {
    say("(b) through the API: EndpointSlice PATCH to the API server double -> watch -> informer -> proxier -> kernel")
    say("                                                  median       p90   target")
    for result in results {
        say(String(format: "    N = %6d                                %9@ %9@   < 10 ms at 10,000", result.size,
            format(median(result.throughAPI), "ms") as NSString, format(percentile(result.throughAPI, 0.9), "ms") as NSString))
    }
}
say("")

// MARK: - (c) first-packet latency

if options.latency {
    func latency(services count: Int) throws -> [Double] {
        let id = String(getpid() % 10000)
        let topology = try NodeTopology(prefix: "naproxy-bl\(id)")
        defer { topology.tearDown() }
        try topology.node.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        let backend = try topology.addHost("be", address: "10.250.0.11")
        let client = try topology.addHost("cl", address: "10.250.0.100")
        let root = scratch.appendingPathComponent("www")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Data("ok".utf8).write(to: root.appendingPathComponent("index.html"))
        let httpd = Process()
        httpd.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        httpd.arguments = ["ip", "netns", "exec", backend.name, "busybox", "httpd", "-f", "-p", "8080", "-h", root.path]
        try httpd.run()
        defer {
            kill(httpd.processIdentifier, SIGKILL)
            httpd.waitUntilExit()
        }
        let nft = try LibNftables(networkNamespace: topology.node.path)
        let proxier = makeProxier(nft)
        // Every Service but the last has unreachable endpoints; the last-listed one points at the real backend.
        for service in services(count) { proxier.serviceChanged(previous: nil, current: service) }
        for (index, slice) in slices(count).enumerated() {
            proxier.endpointSliceChanged(previous: nil, current: index == count - 1 ? slice_(index) : slice)
        }
        proxier.servicesSynced()
        proxier.endpointSlicesSynced()
        guard case .applied = runSync({ await proxier.syncNow() }) else { throw BenchError(what: "sync failed") }
        let url = "http://\(serviceIP(count - 1)):80/"
        // Warm up ARP and caches, then measure connect time (SYN through the DNAT and back) 300 times.
        for _ in 0..<5 { _ = try client.output(["curl", "-s", "-o", "/dev/null", "-m", "2", url]) }
        var samples: [Double] = []
        for _ in 0..<300 {
            let output = try client.output(["curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{time_connect}", url])
            if output.status == 0, let value = Double(output.stdout) { samples.append(value) }
        }
        try? topology.node.run(["nft", "delete", "table", "ip", "node-agent"])
        return samples
    }
    func slice_(_ index: Int) -> EndpointSliceObject { slice(index, endpoints: ["10.250.0.11"]) }

    let small = try latency(services: 10)
    let large = try latency(services: 10000)
    say("(c) first-packet latency (TCP connect) to the last-listed Service   10 Services   10,000 Services   ratio   target")
    say(
        String(
            format: "    median of %d / %d connects                                 %11@   %15@   %5.2f   within 10%%",
            small.count, large.count, format(median(small), "us") as NSString, format(median(large), "us") as NSString, median(large) / median(small)
        )
    )
}

struct BenchError: Error { var what: String }

// MARK: - (b) through the API

/// Passes transactions to the kernel and reports when one containing `marker` has been committed.
final class CommitWatch: Nftables, @unchecked Sendable {
    let inner: any Nftables
    private let lock = NSLock()
    private var marker: String?
    private var committed: ContinuousClock.Instant?
    private(set) var runs = 0

    init(_ inner: any Nftables) { self.inner = inner }

    func expect(_ marker: String) {
        lock.lock()
        self.marker = marker
        committed = nil
        lock.unlock()
    }

    /// When the transaction holding the marker was committed, once it has been.
    var commit: ContinuousClock.Instant? {
        lock.lock()
        defer { lock.unlock() }
        return committed
    }

    func run(_ transaction: Transaction) throws {
        try inner.run(transaction)
        let now = ContinuousClock.now
        lock.lock()
        runs += 1
        let marker = self.marker
        lock.unlock()
        guard let marker, transaction.script().contains(marker) else { return }
        lock.lock()
        if committed == nil { committed = now }
        lock.unlock()
    }

    func check(_ transaction: Transaction) throws { try inner.check(transaction) }
    func list(family: Family, table name: String) throws -> TableListing? { try inner.list(family: family, table: name) }
    func listObjects(family: Family, table name: String) throws -> TableListing? { try inner.listObjects(family: family, table: name) }
}

/// N Services in the API server double (in process, HTTP on loopback); the proxier fed by the API source over a
/// real KubeClient; then `changes` times one endpoint of the last Service replaced with a PATCH through the client,
/// timed from the PATCH being sent to the kernel committing the transaction that holds the new endpoint.
func throughTheAPI(size: Int, namespace: NetworkNamespace, changes: Int) throws -> [Double] {
    final class Box: @unchecked Sendable { var value: Result<[Double], any Error> = .success([]) }
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    Task {
        do {
            var doubleConfiguration = APIServerDouble.Configuration()
            doubleConfiguration.historyLimit = 100_000
            let double = try await APIServerDouble.start(doubleConfiguration, logger: quiet)
            for index in 0..<size {
                var spec = ServiceSpec()
                spec.type = "ClusterIP"
                spec.clusterIP = serviceIP(index)
                spec.ports = [KubeAPI.ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: .int(8080))]
                try double.create(KubeService(metadata: KubeAPI.ObjectMeta(name: serviceName(index), namespace: "default"), spec: spec))
                try double.create(apiSlice(index, endpoints: (0..<endpointsPerService).map { endpointIP(index, $0) }))
            }
            let client = try KubeClient(configuration: try double.clientConfiguration(), logger: quiet)
            let watch = CommitWatch(try LibNftables(networkNamespace: namespace.path))
            let proxier = makeProxier(watch)
            let source = ProxyAPISource(client: client, nodeName: "bench-node", proxier: proxier, logger: quiet)
            var samples: [Double] = []
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await proxier.run() }
                group.addTask { try await source.run() }
                while watch.runs == 0 { try await Task.sleep(for: .milliseconds(50)) }
                let last = size - 1
                for change in 0..<changes {
                    var endpoints = (0..<endpointsPerService).map { endpointIP(last, $0) }
                    let fresh = "10.98.\(change / 256).\(change % 256)"
                    endpoints[change % endpointsPerService] = fresh
                    watch.expect(fresh + " . 8080")
                    let start = clock.now
                    _ = try await client.patch(
                        KubeAPI.EndpointSlice.self, namespace: "default", name: "\(serviceName(last))-1",
                        patch: .merge(["endpoints": .array(endpoints.map { ["addresses": [.string($0)], "conditions": ["ready": true]] })]))
                    while watch.commit == nil { try await Task.sleep(for: .microseconds(200)) }
                    samples.append(seconds(watch.commit! - start))
                }
                group.cancelAll()
            }
            try await client.shutdown()
            await double.stop()
            box.value = .success(samples)
        } catch {
            box.value = .failure(error)
        }
        done.signal()
    }
    done.wait()
    let samples = try box.value.get()
    FileHandle.standardError.write(Data("  [\(size)] through the API: \(samples.map { format($0, "ms") }.joined(separator: ", "))\n".utf8))
    return samples
}

func apiSlice(_ index: Int, endpoints: [String]) -> KubeAPI.EndpointSlice {
    KubeAPI.EndpointSlice(
        metadata: KubeAPI.ObjectMeta(name: "\(serviceName(index))-1", namespace: "default", labels: [EndpointSliceObject.serviceNameLabel: serviceName(index)]),
        addressType: "IPv4",
        endpoints: endpoints.map { KubeAPI.Endpoint(addresses: [$0], conditions: EndpointConditions(ready: true)) },
        ports: [EndpointPort(name: "http", protocol: "TCP", port: 8080)]
    )
}
