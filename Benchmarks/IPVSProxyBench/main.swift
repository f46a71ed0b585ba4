// IPVSProxyBench: the IPVS proxier against `ipvsadm -R` of the same table, in the same IPVS kernel (issue 9).
// Runs inside the IPVS guest (scripts/ipvs-vm) as root; every measurement in a fresh network namespace
// `naipvsp-bench-*` (a dummy interface with a route to the backends, so masquerading real servers count as unicast),
// never touching the caller's IPVS table or ruleset. Nothing routes off the guest.
//
//   swift build -c release --product IPVSProxyBench
//   scripts/ipvs-vm -- .build/release/IPVSProxyBench [--services 10000] [--endpoints 10] [--runs 3] [--ipvsadm-runs 1]
//                                                    [--changes 101] [--resyncs 3]
//
// (a) initial sync of N Services × M endpoints through the proxier (virtual servers, real servers, N addresses on
//     kube-ipvs0, the filter table's elements) vs `ipvsadm -R` of the same virtual and real servers;
// (b) one endpoint change end to end: from the EndpointSlice event to the kernel, with the N Services loaded;
// (c) a full resync with nothing changed: the kernel read back, and the writes it sent counted (must be 0).
import BenchSupport
import Foundation
import IPVS
import Iptables
import Logging
import Proxy

struct Options {
    var services = 10_000
    var endpoints = 10
    var runs = 3
    var ipvsadmRuns = 1
    var changes = 101
    var resyncs = 3
}


/// Counts every write that reaches the kernel's IPVS table, independently of the proxier's own count.
final class CountingIPVS: IPVSInterface, @unchecked Sendable {
    let inner: IPVSKernel
    private let lock = NSLock()
    private var count = 0
    init(_ inner: IPVSKernel) { self.inner = inner }
    var writes: Int { lock.withLock { count } }
    private func add(_ n: Int) { lock.withLock { count += n } }
    func flush() throws(IPVSError) { add(1); try inner.flush() }
    func addService(_ service: VirtualService) throws(IPVSError) { add(1); try inner.addService(service) }
    func updateService(_ service: VirtualService) throws(IPVSError) { add(1); try inner.updateService(service) }
    func deleteService(_ key: ServiceKey) throws(IPVSError) { add(1); try inner.deleteService(key) }
    func service(_ key: ServiceKey) throws(IPVSError) -> ServiceStatus { try inner.service(key) }
    func services() throws(IPVSError) -> [ServiceStatus] { try inner.services() }
    func snapshot() throws(IPVSError) -> [ServiceStatus] { try inner.snapshot() }
    func addRealServer(_ server: RealServer, to service: ServiceKey) throws(IPVSError) { add(1); try inner.addRealServer(server, to: service) }
    func updateRealServer(_ server: RealServer, in service: ServiceKey) throws(IPVSError) { add(1); try inner.updateRealServer(server, in: service) }
    func deleteRealServer(_ server: RealServerKey, from service: ServiceKey) throws(IPVSError) { add(1); try inner.deleteRealServer(server, from: service) }
    func realServers(of service: ServiceKey) throws(IPVSError) -> [RealServerStatus] { try inner.realServers(of: service) }
    func timeouts() throws(IPVSError) -> IPVSTimeouts { try inner.timeouts() }
    func setTimeouts(_ timeouts: IPVSTimeouts) throws(IPVSError) { add(1); try inner.setTimeouts(timeouts) }
    func apply(_ operations: [IPVSOperation]) throws(IPVSError) -> [IPVSError?] {
        add(operations.count)
        return try inner.apply(operations)
    }
}

/// Counts address changes on kube-ipvs0.
final class CountingDummy: VirtualIPInterface, @unchecked Sendable {
    let inner: DummyInterface
    private let lock = NSLock()
    private var count = 0
    init(_ inner: DummyInterface) { self.inner = inner }
    var name: String { inner.name }
    var writes: Int { lock.withLock { count } }
    func ensureInterface() throws(IPVSError) -> Int32 { try inner.ensureInterface() }
    func addresses() throws(IPVSError) -> Set<IPVS.IPAddress> { try inner.addresses() }
    func addAddress(_ address: IPVS.IPAddress) throws(IPVSError) { lock.withLock { count += 1 }; try inner.addAddress(address) }
    func removeAddress(_ address: IPVS.IPAddress) throws(IPVSError) { lock.withLock { count += 1 }; try inner.removeAddress(address) }
    func syncAddresses(_ desired: Set<IPVS.IPAddress>) throws(IPVSError) -> AddressSyncResult {
        let result = try inner.syncAddresses(desired)
        lock.withLock { count += result.added.count + result.removed.count + result.failed.count }
        return result
    }
}

/// Counts nf_tables commands sent.
final class CountingNftables: Nftables, @unchecked Sendable {
    let inner: LibNftables
    private let lock = NSLock()
    private var count = 0
    init(_ inner: LibNftables) { self.inner = inner }
    var writes: Int { lock.withLock { count } }
    func run(_ transaction: Transaction) throws { lock.withLock { count += transaction.count }; try inner.run(transaction) }
    func check(_ transaction: Transaction) throws { try inner.check(transaction) }
    func list(family: Family, table name: String) throws -> TableListing? { try inner.list(family: family, table: name) }
    func listObjects(family: Family, table name: String) throws -> TableListing? { try inner.listObjects(family: family, table: name) }
}

struct NoConntrack: ConntrackCleaner {
    func clearUDP(destination ip: Proxy.IPAddress) throws {}
    func clearUDP(nodePort port: Int, family: IPFamily) throws {}
    func clearUDP(destination ip: Proxy.IPAddress, endpoint: Proxy.IPAddress) throws {}
    func clearUDP(nodePort port: Int, endpoint: Proxy.IPAddress) throws {}
}

let options = {
    var options = Options()
    Bench.parseIntegers(CommandLine.arguments, into: &options, ["--services": \.services, "--endpoints": \.endpoints, "--runs": \.runs, "--ipvsadm-runs": \.ipvsadmRuns, "--changes": \.changes, "--resyncs": \.resyncs])
    return options
}()
guard getuid() == 0 else { Bench.fail("needs root (network namespaces, IPVS); run it inside scripts/ipvs-vm") }
let clock = ContinuousClock()

func serviceIP(_ i: Int) -> String { "10.96.\(i / 250).\(i % 250 + 1)" }
func endpointIP(_ i: Int, _ k: Int) -> String {
    let n = i * options.endpoints + k
    return "10.\(100 + n / 62500).\((n / 250) % 250).\(n % 250 + 1)"
}
func serviceName(_ i: Int) -> String { String(format: "svc-%05d", i) }
func service(_ i: Int) -> ServiceObject {
    ServiceObject(
        metadata: ObjectMeta(namespace: "bench", name: serviceName(i)),
        spec: .init(type: "ClusterIP", clusterIP: serviceIP(i), ports: [ServicePortObject(name: "http", protocol: "TCP", port: 80, targetPort: .int(8080))]))
}
func slice(_ i: Int, _ endpoints: [String]) -> EndpointSliceObject {
    EndpointSliceObject(
        metadata: ObjectMeta(namespace: "bench", name: "\(serviceName(i))-1", labels: [EndpointSliceObject.serviceNameLabel: serviceName(i)]),
        addressType: "IPv4",
        endpoints: endpoints.map { EndpointObject(addresses: [$0], conditions: .init(ready: true)) },
        ports: [EndpointPortObject(name: "http", protocol: "TCP", port: 8080)])
}

var namespaces: [String] = []
@MainActor func freshNamespace(_ name: String) -> String {
    let namespace = "naipvsp-bench-\(name)"
    Bench.shell("ip netns del \(namespace) 2>/dev/null; ip netns add \(namespace)")
    namespaces.append(namespace)
    Bench.shell(
        "ip -n \(namespace) link add naipvsp-d0 type dummy && ip -n \(namespace) link set naipvsp-d0 up"
            + " && ip -n \(namespace) addr add 10.255.255.1/32 dev naipvsp-d0 && ip -n \(namespace) route add 10.0.0.0/8 dev naipvsp-d0")
    return namespace
}
/// Empties a measured namespace's IPVS table before the next measurement: the kernel keeps every namespace's virtual
/// servers in one global hash table of 256 buckets, so a table left behind would slow the next run's lookups.
@MainActor func emptyAndDelete(_ namespace: String) {
    Bench.shell("ip netns exec \(namespace) ipvsadm -C; ip netns del \(namespace)")
    namespaces.removeAll { $0 == namespace }
}
@MainActor func cleanup() { for namespace in namespaces { Bench.shell("ip netns del \(namespace) 2>/dev/null || true") } }

final class OutcomeBox: @unchecked Sendable {
    var value: SyncOutcome?
    let done = DispatchSemaphore(value: 0)
}

/// Runs a proxier sync from this synchronous program.
func blocking(_ body: @escaping @Sendable () async -> SyncOutcome) -> SyncOutcome {
    let box = OutcomeBox()
    Task {
        box.value = await body()
        box.done.signal()
    }
    box.done.wait()
    return box.value!
}

var quiet = Logger(label: "bench")
quiet.logLevel = .critical
let totalServers = options.services * options.endpoints
Bench.say("IPVSProxyBench: \(options.services) Services × \(options.endpoints) endpoints (\(options.services + totalServers) IPVS objects, \(options.services) addresses on kube-ipvs0)")
Bench.say("kernel \(Bench.shell("uname -r").trimmingCharacters(in: .whitespacesAndNewlines)); proxier runs \(options.runs), ipvsadm -R runs \(options.ipvsadmRuns)")

var proxierTimes: [Double] = []
var ipvsadmTimes: [Double] = []
var changeTimes: [Double] = []
var changeWrites: [Int] = []
var resyncTimes: [Double] = []
var resyncWrites: [(outcome: Int, ipvs: Int, addresses: Int, nft: Int)] = []
var settleWrites = 0

var rules = ""
rules.reserveCapacity(totalServers * 60)
for i in 0..<options.services {
    rules += "-A -t \(serviceIP(i)):80 -s rr\n"
    for k in 0..<options.endpoints { rules += "-a -t \(serviceIP(i)):80 -r \(endpointIP(i, k)):8080 -m -w 1\n" }
}

for run in 1...max(options.runs, options.ipvsadmRuns) {
    if run <= options.runs {
        let namespace = freshNamespace("p\(run)")
        let path = "/var/run/netns/\(namespace)"
        let ipvs: CountingIPVS
        let dummy: CountingDummy
        let nft: CountingNftables
        do {
            ipvs = CountingIPVS(try IPVSKernel(namespacePath: path, receiveTimeout: .seconds(300)))
            dummy = CountingDummy(try DummyInterface(namespacePath: path, receiveTimeout: .seconds(300)))
            nft = CountingNftables(try LibNftables(networkNamespace: path))
        } catch { Bench.fail("\(error)") }
        let proxier = IPVSProxier.make(
            configuration: IPVSProxierConfiguration(
                nodeName: "bench-node", syncPeriod: .seconds(36000), clusterCIDR: IPPrefix("10.244.0.0/16"),
                nodePortAddresses: [Proxy.IPAddress("10.255.255.1")!], manageSysctls: false),
            ipvs: ipvs, dummy: dummy, nftables: nft, conntrack: NoConntrack(), health: ProxyHealth(timeout: .seconds(72000)), logger: quiet)
        for i in 0..<options.services { proxier.serviceChanged(previous: nil, current: service(i)) }
        for i in 0..<options.services { proxier.endpointSliceChanged(previous: nil, current: slice(i, (0..<options.endpoints).map { endpointIP(i, $0) })) }
        proxier.servicesSynced()
        proxier.endpointSlicesSynced()
        let start = clock.now
        let outcome = blocking { await proxier.syncNow() }
        let elapsed = Bench.seconds(clock.now - start)
        guard case .applied(full: true, _) = outcome else { Bench.fail("initial sync: \(outcome)") }
        do {
            let listed = try ipvs.services()
            guard listed.count == options.services else { Bench.fail("\(listed.count) virtual servers in the kernel, expected \(options.services)") }
            guard try ipvs.realServers(of: listed[listed.count / 2].service.key).count == options.endpoints else { Bench.fail("a sample virtual server lacks real servers") }
            guard try dummy.addresses().count == options.services else { Bench.fail("kube-ipvs0 lacks addresses") }
        } catch { Bench.fail("verification: \(error)") }
        proxierTimes.append(elapsed)
        Bench.note(String(format: "run %d: proxier initial sync %.2f s (%d IPVS writes, %d address writes, %d nft commands)", run, elapsed, ipvs.writes, dummy.writes, nft.writes))

        if run == options.runs {
            // (b) one endpoint change, event to kernel, on the loaded table.
            let target = options.services - 1
            for change in 0..<options.changes {
                var endpoints = (0..<options.endpoints).map { endpointIP(target, $0) }
                endpoints[change % options.endpoints] = "10.99.\(change / 250).\(change % 250 + 1)"
                let event = slice(target, endpoints)
                let start = clock.now
                proxier.endpointSliceChanged(previous: nil, current: event)
                let outcome = blocking { await proxier.syncNow() }
                changeTimes.append(Bench.seconds(clock.now - start))
                guard case .applied(full: false, let writes) = outcome else { Bench.fail("endpoint change: \(outcome)") }
                changeWrites.append(writes)
            }
            // (c) full resyncs with nothing changed. The endpoint changes of (b) left stale hairpin elements that
            // incremental syncs leave to the next full sync on purpose (each element deletion costs an RCU grace
            // period on the change path): one full sync removes them first, and is reported apart.
            do {
                let before = nft.writes
                proxier.requestFullSync()
                guard case .applied(full: true, _) = blocking({ await proxier.syncNow() }) else { Bench.fail("settling full sync failed") }
                settleWrites = nft.writes - before
            }
            for _ in 0..<options.resyncs {
                let before = (ipvs.writes, dummy.writes, nft.writes)
                proxier.requestFullSync()
                let start = clock.now
                let outcome = blocking { await proxier.syncNow() }
                resyncTimes.append(Bench.seconds(clock.now - start))
                guard case .applied(full: true, let writes) = outcome else { Bench.fail("idle resync: \(outcome)") }
                resyncWrites.append((writes, ipvs.writes - before.0, dummy.writes - before.1, nft.writes - before.2))
            }
        }
        emptyAndDelete(namespace)
    }
    if run <= options.ipvsadmRuns {
        let namespace = freshNamespace("a\(run)")
        let start = clock.now
        Bench.shell("ip netns exec \(namespace) ipvsadm -R", input: rules)
        let elapsed = Bench.seconds(clock.now - start)
        let count = Bench.shell("ip netns exec \(namespace) ipvsadm -Sn | grep -c '^-A'").trimmingCharacters(in: .whitespacesAndNewlines)
        guard Int(count) == options.services else { Bench.fail("ipvsadm -R programmed \(count) services") }
        ipvsadmTimes.append(elapsed)
        Bench.note(String(format: "run %d: ipvsadm -R %.2f s", run, elapsed))
        emptyAndDelete(namespace)
    }
}
cleanup()

let ours = Bench.median(proxierTimes)
let anchor = Bench.median(ipvsadmTimes)
Bench.say("")
Bench.say("                                              IPVS proxier     ipvsadm -R     ratio     target")
Bench.say(String(format: "(a) initial sync, %5d svc × %2d endpoints   %9.2f s    %9.2f s    %.3f×    ≤ 1.2×", options.services, options.endpoints, ours, anchor, ours / anchor))
Bench.say("    (proxier: median of \(proxierTimes.count); it also binds \(options.services) addresses and fills the filter table; ipvsadm -R: median of \(ipvsadmTimes.count))")
Bench.say(String(format: "(b) one endpoint change, event to kernel    median %.3f ms, p90 %.3f ms, max %.3f ms (%d changes, %d writes each)    target < 5 ms",
    Bench.median(changeTimes) * 1000, Bench.percentile(changeTimes, 0.9) * 1000, (changeTimes.max() ?? .nan) * 1000, changeTimes.count, changeWrites.first ?? -1))
let writes = resyncWrites.map { $0.outcome + $0.ipvs + $0.addresses + $0.nft }
Bench.say(String(format: "(c) full resync, nothing changed            median %.2f s; writes: %@    target 0 writes",
    Bench.median(resyncTimes), resyncWrites.map { "ipvs \($0.ipvs) / addresses \($0.addresses) / nft \($0.nft) (proxier says \($0.outcome))" }.joined(separator: "; ")))
Bench.say("    (before them, one full sync removed the stale hairpin elements (b) left for it: \(settleWrites) nft command(s))")
if writes.contains(where: { $0 != 0 }) { Bench.fail("an idle full resync wrote to the kernel") }
