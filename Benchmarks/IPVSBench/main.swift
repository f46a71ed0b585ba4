// IPVSBench: program N services × M real servers through the library and through `ipvsadm -R` in the same kernel,
// then time one real-server change alone. Runs inside the IPVS guest (scripts/ipvs-vm) as root, in its own network
// namespace `naipvs-bench`, never touching the caller's IPVS table.
//
//   swift build -c release --product IPVSBench
//   scripts/ipvs-vm -- .build/release/IPVSBench [--services 10000] [--servers 10] [--runs 5] [--ipvsadm-runs 1] [--changes 201]
import BenchSupport
import Foundation
import IPVS

struct Options {
    var services = 10_000
    var servers = 10
    var runs = 5
    /// ipvsadm -R of the full table takes minutes under emulation (a socket and a family lookup per rule), so fewer.
    var ipvsadmRuns = 1
    var changes = 201
}

let options = {
    var options = Options()
    Bench.parseIntegers(CommandLine.arguments, into: &options, ["--services": \.services, "--servers": \.servers, "--runs": \.runs, "--ipvsadm-runs": \.ipvsadmRuns, "--changes": \.changes])
    return options
}()
let clock = ContinuousClock()

/// Every measurement gets a fresh network namespace, so a fresh IPVS table: a flushed table leaves its real servers
/// in the kernel's destination trash for a minute, and every later add searches that trash (seen here: the same
/// 110,000 adds took 7 s in a fresh namespace and 188 s after a flush, for the library and ipvsadm -R alike).
/// The namespace has a dummy interface owning an address and a route to the real servers, so masquerading real
/// servers count as unicast (the kernel refuses them with EINVAL otherwise). Nothing here routes off the guest.
var namespaces: [String] = []
@MainActor func freshNamespace(_ name: String) -> (name: String, ipvs: IPVSKernel) {
    let namespace = "naipvs-bench-\(name)"
    Bench.shell("ip netns del \(namespace) 2>/dev/null; ip netns add \(namespace)")
    namespaces.append(namespace)
    Bench.shell(
        "ip -n \(namespace) link add naipvs-d0 type dummy && ip -n \(namespace) link set naipvs-d0 up"
            + " && ip -n \(namespace) addr add 10.255.255.1/32 dev naipvs-d0 && ip -n \(namespace) route add 10.0.0.0/8 dev naipvs-d0")
    do { return (namespace, try IPVSKernel(namespacePath: "/var/run/netns/\(namespace)", receiveTimeout: .seconds(120))) } catch { Bench.fail("\(error)") }
}
defer { for namespace in namespaces { Bench.shell("ip netns del \(namespace)") } }

func vip(_ i: Int) -> IPAddress { IPAddress("10.100.\(i / 250).\(i % 250 + 1)")! }
func backend(_ i: Int) -> IPAddress { IPAddress("10.200.\(i / 250).\(i % 250 + 1)")! }

var operations: [IPVSOperation] = []
var rules = ""
operations.reserveCapacity(options.services * (options.servers + 1))
for i in 0..<options.services {
    let key = ServiceKey.address(.tcp, vip(i), port: 80)
    operations.append(.addService(VirtualService(key, scheduler: .rr)))
    rules += "-A -t \(vip(i)):80 -s rr\n"
    for k in 0..<options.servers {
        operations.append(.addRealServer(RealServer(backend(i), port: UInt16(8000 + k), weight: 1, forwarding: .masquerade), service: key))
        rules += "-a -t \(vip(i)):80 -r \(backend(i)):\(8000 + k) -m -w 1\n"
    }
}
let expectedServers = options.services * options.servers

func verify(_ who: String, _ ipvs: IPVSKernel) {
    do {
        let services = try ipvs.services()
        guard services.count == options.services else { Bench.fail("\(who): \(services.count) services in the kernel, expected \(options.services)") }
        let sample = try ipvs.realServers(of: services[services.count / 2].service.key)
        guard sample.count == options.servers else { Bench.fail("\(who): \(sample.count) real servers on a sample service, expected \(options.servers)") }
    } catch { Bench.fail("\(who): verification failed: \(error)") }
}

print("IPVSBench: \(options.services) services × \(options.servers) real servers (\(operations.count) changes); library runs \(options.runs), ipvsadm -R runs \(options.ipvsadmRuns)")
var libraryTimes: [Double] = []
var ipvsadmTimes: [Double] = []
var last: (name: String, ipvs: IPVSKernel)?
for run in 1...max(options.runs, options.ipvsadmRuns) {
    if run <= options.runs {
        let target = freshNamespace("lib\(run)")
        var failures: [IPVSError?] = []
        let library = clock.measure {
            do { failures = try target.ipvs.apply(operations) } catch { Bench.fail("apply: \(error)") }
        }
        if let first = failures.lazy.compactMap({ $0 }).first { Bench.fail("library: \(failures.compactMap { $0 }.count) changes failed, first: \(first)") }
        verify("library", target.ipvs)
        libraryTimes.append(Bench.seconds(library))
        print(String(format: "run %d: library %.2f s", run, Bench.seconds(library)))
        last = target
    }
    if run <= options.ipvsadmRuns {
        let target = freshNamespace("adm\(run)")
        let ipvsadm = clock.measure { Bench.shell("ip netns exec \(target.name) ipvsadm -R", input: rules) }
        verify("ipvsadm -R", target.ipvs)
        ipvsadmTimes.append(Bench.seconds(ipvsadm))
        print(String(format: "run %d: ipvsadm -R %.2f s", run, Bench.seconds(ipvsadm)))
    }
}

// One real-server change, timed alone, with the full table loaded (the library's last table).
guard let (namespace, ipvs) = last else { Bench.fail("no library run") }
let key = ServiceKey.address(.tcp, vip(options.services / 2), port: 80)
var changeTimes: [Double] = []
for n in 0..<options.changes {
    let server = RealServer(backend(options.services / 2), port: 8000, weight: Int32(n % 7 + 2), forwarding: .masquerade)
    let elapsed = clock.measure {
        do { try ipvs.updateRealServer(server, in: key) } catch { Bench.fail("single change: \(error)") }
    }
    changeTimes.append(Bench.seconds(elapsed))
}
let ipvsadmSingle = clock.measure { Bench.shell("ip netns exec \(namespace) ipvsadm -e -t \(vip(options.services / 2)):80 -r \(backend(options.services / 2)):8000 -m -w 9") }

let libraryMedian = Bench.median(libraryTimes)
let ipvsadmMedian = Bench.median(ipvsadmTimes)
print("")
print("                              library      ipvsadm -R   ratio (library / ipvsadm)")
print(String(format: "bulk %6d svc × %2d rs      %8.2f s   %8.2f s     %.3f×   (target ≤ 1.0×)",
    options.services, options.servers, libraryMedian, ipvsadmMedian, libraryMedian / ipvsadmMedian))
print("                              (library: median of \(options.runs) runs; ipvsadm -R: median of \(options.ipvsadmRuns))")
print(String(format: "single real-server change    %8.3f ms  %8.3f ms    (library: median of %d; ipvsadm -e: one process, for reference; target < 1 ms)",
    Bench.median(changeTimes) * 1000, Bench.seconds(ipvsadmSingle) * 1000, options.changes))
print(String(format: "per change (bulk)            %8.1f µs  %8.1f µs", libraryMedian / Double(operations.count) * 1e6, ipvsadmMedian / Double(operations.count) * 1e6))
_ = expectedServers
