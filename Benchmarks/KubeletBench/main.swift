// KubeletBench: the kubelet's cost, end to end through the real pieces.
//
//  1. Pod start: 30 pods created at once in the API server double; for each, the time from its creation until the
//     API shows it Running (the node-agent daemon, real containerd, CNI bridge in an isolated node namespace),
//     p50 and p99 per pod and the time until all 30 run, side by side with 30 bare `ctr run -d` of the same image
//     started at once in the same run. Several runs; medians of the runs' figures. cpu/pod is the whole machine's busy
//     CPU time in each window (/proc/stat) divided by 30: for node-agent it includes the API server double and this
//     process, a few per cent. It moves far less with the machine's noise than the latencies do.
//  2. Idle cost: the daemon's RSS and CPU with 100 pods running and nothing changing (60 s of sampling).
//
//   for p in node-agent KubeletBench; do swift build -c release --product $p; done   (one --product per call: SwiftPM
//   builds only the last of several); swift build -c release --product node-agent-logger --static-swift-stdlib
//   sudo .build/release/KubeletBench [runs] [idle-pods]      (default 3 and 100; needs containerd and local/busybox:latest)
//   runs 0 measures only the idle cost, idle-pods 0 only the pod start; KUBELET_BENCH_SMAPS=1 adds the daemon's memory
//   per mapped object. MALLOC_* and GOMAXPROCS pass on to the daemon (GOMAXPROCS=2 gives ctr and the CNI plugins the
//   Go default on this machine, for comparing against the daemon's GOMAXPROCS=1 for them).
//
// Targets (issue 6): p99 pod start under 2 s on this machine; RSS under 60 MB with 100 pods.

import Foundation
import KubeAPI
import Logging
import NodeAgentTesting

let arguments = CommandLine.arguments
let runs = arguments.count > 1 ? Int(arguments[1]) ?? 3 : 3
let idlePods = arguments.count > 2 ? Int(arguments[2]) ?? 100 : 100
let podCount = 30
let image = "local/busybox:latest"
let tag = "nakubelet-bench"
let prefix = "nakubelet-bench-"
let nodeName = "nakubelet-bench-node"
let root = "/tmp/nakubelet-bench-\(getpid())"
let products = URL(fileURLWithPath: arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()

// MARK: Processes

struct Exit: Sendable {
    var status: Int32
    var output: String
}

/// Runs a command to completion without blocking the cooperative pool.
func run(_ command: [String]) async -> Exit {
    await withCheckedContinuation { continuation in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.terminationHandler = { process in
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            continuation.resume(returning: Exit(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self)))
        }
        do { try process.run() } catch { continuation.resume(returning: Exit(status: -1, output: "\(error)")) }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("KubeletBench: \(message)\n".utf8))
    exit(1)
}

func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }
func ms(_ value: Double) -> String { String(format: "%7.0f ms", value * 1000) }
func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
    return sorted[max(0, min(sorted.count - 1, rank))]
}
func median(_ values: [Double]) -> Double { percentile(values, 0.5) }

// MARK: Set-up

guard getuid() == 0 else { fail("run as root (containerd, network namespaces)") }
guard (await run(["ctr", "version"])).status == 0 else { fail("containerd is not answering; start it with scripts/containerd-up") }
guard (await run(["ctr", "-n", "k8s.io", "images", "ls", "-q"])).output.split(separator: "\n").contains(Substring(image)) else {
    fail("\(image) is not imported; run scripts/busybox-image")
}
let daemonBinary = products.appendingPathComponent("node-agent").path
guard FileManager.default.isExecutableFile(atPath: daemonBinary),
    FileManager.default.isExecutableFile(atPath: products.appendingPathComponent("node-agent-logger").path)
else { fail("build node-agent and node-agent-logger into \(products.path) first") }

_ = await run(["ip", "netns", "delete", tag])
guard (await run(["ip", "netns", "add", tag])).status == 0 else { fail("cannot create network namespace \(tag)") }
_ = await run(["ip", "netns", "exec", tag, "ip", "link", "set", "lo", "up"])
try FileManager.default.createDirectory(atPath: root + "/cni", withIntermediateDirectories: true)
try """
    {"cniVersion":"1.0.0","name":"nakubelet-bench","plugins":[{"type":"bridge","bridge":"nakbbench","isGateway":true,"ipMasq":false,
     "ipam":{"type":"host-local","ranges":[[{"subnet":"10.254.0.0/16"}]],"dataDir":"\(root)/ipam"}}]}
    """.write(toFile: root + "/cni/10-bench.conflist", atomically: true, encoding: .utf8)

let quiet: Logger = {
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    return logger
}()
let double = try await APIServerDouble.start(logger: quiet)
try double.create(Namespace(metadata: ObjectMeta(name: "nakubelet")))
try double.writeKubeconfig(to: root + "/kubeconfig")
let client = try KubeClient(configuration: try double.clientConfiguration(), logger: quiet)

// Dies with the benchmark (setpriv --pdeathsig; setpriv execs, so the PID sampled below is the daemon's).
let daemon = Process.boundToTestProcess(daemonBinary, [
    "run", "--components", "kubelet", "--kubeconfig", root + "/kubeconfig", "--hostname-override", nodeName, "--node-ip", "10.254.0.1",
    "--root-dir", root + "/state", "--runtime-id-prefix", prefix, "--pod-logs-dir", root + "/logs", "--cni-conf-dir", root + "/cni",
    "--cni-plugin-netns", tag, "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "",
] + (ProcessInfo.processInfo.environment["KUBELET_BENCH_VERBOSE"] == "1" ? ["--v", "4"] : []))
daemon.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": root].merging(
    ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("MALLOC_") || $0.key == "GOMAXPROCS" }) { _, new in new }
FileManager.default.createFile(atPath: root + "/agent.log", contents: nil)
daemon.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/agent.log"))
daemon.standardOutput = FileHandle.nullDevice
try daemon.runBound()

/// Removes everything the benchmark made.
func cleanUp() async {
    if daemon.isRunning {
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
    }
    let containers = (await run(["ctr", "-n", "k8s.io", "containers", "ls", "-q"])).output.split(separator: "\n").map(String.init)
        .filter { $0.hasPrefix(prefix) || $0.hasPrefix("nakubelet-bare-") }
    for id in containers { _ = await run(["ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id]) }
    try? await Task.sleep(for: .milliseconds(500))
    for id in containers {
        _ = await run(["ctr", "-n", "k8s.io", "tasks", "delete", "-f", id])
        _ = await run(["ctr", "-n", "k8s.io", "containers", "delete", id])
    }
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? [] where name.hasPrefix(prefix) {
        _ = await run(["ip", "netns", "delete", name])
    }
    let mounts = String(decoding: FileHandle(forReadingAtPath: "/proc/self/mounts")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
    for line in mounts.split(separator: "\n") {
        let fields = line.split(separator: " ")
        if fields.count > 1, fields[1].hasPrefix(root) { _ = await run(["umount", "-l", String(fields[1])]) }
    }
    _ = await run(["ip", "netns", "delete", tag])
    try? await client.shutdown()
    await double.stop()
    // The daemon's log of the last run stays for a look.
    try? FileManager.default.removeItem(atPath: "/tmp/nakubelet-bench-last.log")
    try? FileManager.default.moveItem(atPath: root + "/agent.log", toPath: "/tmp/nakubelet-bench-last.log")
    try? FileManager.default.removeItem(atPath: root)
}

func pod(_ name: String) -> Pod {
    var container = Container(name: "app", image: image, command: ["sleep", "3600"])
    container.imagePullPolicy = "Never"
    var spec = PodSpec(containers: [container])
    spec.nodeName = nodeName
    spec.terminationGracePeriodSeconds = 1
    return Pod(metadata: ObjectMeta(name: name, namespace: "nakubelet"), spec: spec)
}

/// The machine's busy CPU time so far, all processes and both kernel and user time (from /proc/stat), in seconds.
/// Taken around each phase, it gives CPU per pod start, which a 2-core machine's noise moves much less than latency.
func machineBusySeconds() -> Double {
    let stat = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
    let fields = (stat.split(separator: "\n").first ?? "").split(separator: " ").dropFirst().compactMap { Double($0) }
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    guard fields.count >= 8 else { return 0 }
    let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]
    return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The memory cgroups the kernel holds, live and dying (the `memory` row of /proc/cgroups; nil without cgroup v1's
/// memory controller). A removed container's cgroup lingers while page cache is charged to it, and every container
/// start and stop gets slower as they pile up: per-pod CPU grows run after run, for bare ctr as much as for us.
func memoryCgroups() -> Int? {
    let text = (try? String(contentsOfFile: "/proc/cgroups", encoding: .utf8)) ?? ""
    let row = text.split(separator: "\n").first { $0.hasPrefix("memory\t") }?.split(separator: "\t")
    return row.flatMap { $0.count > 2 ? Int($0[2]) : nil }
}

/// Creates `count` pods at once and returns each one's time from creation until the API shows it Running, the time
/// until the last one runs, and the machine's CPU time in that window.
func startPods(_ names: [String]) async throws -> (perPod: [Double], all: Double, cpu: Double) {
    let informer = Informer(Pod.self, client: client, configuration: InformerConfiguration(namespace: "nakubelet"), logger: quiet)
    let informerTask = Task { try await informer.run() }
    defer { informerTask.cancel() }
    await informer.waitForSync()
    let events = informer.events()
    let clock = ContinuousClock()
    let begin = clock.now
    let busyBefore = machineBusySeconds()
    let created = try await withThrowingTaskGroup(of: (String, ContinuousClock.Instant).self) { group in
        for name in names {
            group.addTask {
                let at = clock.now
                _ = try await client.create(pod(name))
                return (name, at)
            }
        }
        var created: [String: ContinuousClock.Instant] = [:]
        for try await (name, at) in group { created[name] = at }
        return created
    }
    var running: [String: ContinuousClock.Instant] = [:]
    let wanted = Set(names)
    for await event in events {
        let object = event.object
        guard let name = object.metadata.name, wanted.contains(name), running[name] == nil, object.status?.phase == "Running" else { continue }
        running[name] = clock.now
        if running.count == wanted.count { break }
        if clock.now - begin > .seconds(600) { fail("pods did not all run within 10 minutes; see \(root)/agent.log") }
    }
    let cpu = machineBusySeconds() - busyBefore
    let perPod = names.map { seconds(running[$0]! - created[$0]!) }
    return (perPod, seconds(running.values.max()! - begin), cpu)
}

func deletePods(_ names: [String]) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for name in names { group.addTask { try await client.delete(Pod.self, namespace: "nakubelet", name: name) } }
        try await group.waitForAll()
    }
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(300)
    while clock.now < deadline {
        let left = try await client.list(Pod.self, namespace: "nakubelet").items.filter { names.contains($0.metadata.name ?? "") }
        if left.isEmpty { return }
        try await Task.sleep(for: .milliseconds(250))
    }
    fail("pods were not deleted within 5 minutes")
}

/// Waits until the daemon removed every container of its pods (it deletes the API object first, then cleans up).
func waitForRuntimeEmpty() async {
    let deadline = ContinuousClock.now + .seconds(120)
    while ContinuousClock.now < deadline {
        let left = (await run(["ctr", "-n", "k8s.io", "containers", "ls", "-q"])).output.split(separator: "\n").filter { $0.hasPrefix(prefix) }
        if left.isEmpty { return }
        try? await Task.sleep(for: .milliseconds(250))
    }
}

/// 30 bare `ctr run -d` at once: each one's time until ctr returns (the container runs), the time until all do, and
/// the machine's CPU time in that window.
func bareRuns(_ round: Int) async -> (perContainer: [Double], all: Double, cpu: Double) {
    let clock = ContinuousClock()
    let begin = clock.now
    let busyBefore = machineBusySeconds()
    let times = await withTaskGroup(of: Double.self) { group in
        for index in 0..<podCount {
            group.addTask {
                let start = clock.now
                let result = await run(["ctr", "-n", "k8s.io", "run", "-d", image, "nakubelet-bare-\(round)-\(index)", "sleep", "3600"])
                if result.status != 0 { fail("ctr run failed: \(result.output)") }
                return seconds(clock.now - start)
            }
        }
        var times: [Double] = []
        for await time in group { times.append(time) }
        return times
    }
    let all = seconds(clock.now - begin)
    let cpu = machineBusySeconds() - busyBefore
    for index in 0..<podCount { _ = await run(["ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", "nakubelet-bare-\(round)-\(index)"]) }
    try? await Task.sleep(for: .milliseconds(500))
    for index in 0..<podCount {
        _ = await run(["ctr", "-n", "k8s.io", "tasks", "delete", "-f", "nakubelet-bare-\(round)-\(index)"])
        _ = await run(["ctr", "-n", "k8s.io", "containers", "delete", "nakubelet-bare-\(round)-\(index)"])
    }
    return (times, all, cpu)
}

/// The daemon's resident memory (VmRSS, bytes) and its CPU ticks (utime + stime).
func sample(_ pid: Int32) -> (rss: Double, ticks: Double) {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let rssLine = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    let rss = (Double(rssLine.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "0") ?? 0) * 1024
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
    let ticks = fields.count > 12 ? (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0) : 0
    return (rss, ticks)
}

/// The daemon's memory per mapped object (from /proc/PID/smaps): Rss, Shared_Clean, Private_Clean, Private_Dirty in kB,
/// the largest first; anonymous mappings are one row, the heap another. Printed with KUBELET_BENCH_SMAPS=1.
func smapsBreakdown(_ pid: Int32, rows: Int = 14) -> String {
    // Read to the end: /proc files report size 0, and a sized read would stop early.
    let text = String(decoding: FileHandle(forReadingAtPath: "/proc/\(pid)/smaps")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
    var totals: [String: [String: Int]] = [:]
    var current = "[anon]"
    for line in text.split(separator: "\n") {
        let fields = line.split(whereSeparator: \.isWhitespace)
        guard let first = fields.first else { continue }
        if first.contains("-"), fields.count >= 5, first.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
            current = fields.count > 5 ? String(fields[5].split(separator: "/").last ?? fields[5]) : "[anon]"
            totals[current, default: [:]]["n", default: 0] += 1
        } else if first.hasSuffix(":"), fields.count >= 2, let value = Int(fields[1]) {
            totals[current, default: [:]][String(first.dropLast()), default: 0] += value
        }
    }
    let keys = ["Rss", "Shared_Clean", "Private_Clean", "Private_Dirty"]
    var lines = ["  " + "mapping".padding(toLength: 36, withPad: " ", startingAt: 0) + "  maps      Rss  Sh_Clean  Pr_Clean  Pr_Dirty  (kB)"]
    for (name, values) in totals.sorted(by: { ($0.value["Rss"] ?? 0) > ($1.value["Rss"] ?? 0) }).prefix(rows) {
        let numbers = keys.map { String(values[$0] ?? 0) }.map { String(repeating: " ", count: max(0, 8 - $0.count)) + $0 }
        lines.append("  " + String(name.prefix(36)).padding(toLength: 36, withPad: " ", startingAt: 0) + String(format: "%6d", values["n"] ?? 0)
            + " " + numbers.joined(separator: "  "))
    }
    return lines.joined(separator: "\n")
}

// MARK: Runs

do {
    // Wait for the daemon to be up (its status server logs its address).
    let up = ContinuousClock.now + .seconds(30)
    while !((try? String(contentsOfFile: root + "/agent.log", encoding: .utf8)) ?? "").contains("pods from the API server synced") {
        if ContinuousClock.now > up || !daemon.isRunning { fail("the daemon did not start; see \(root)/agent.log") }
        try await Task.sleep(for: .milliseconds(100))
    }
    print("KubeletBench: \(podCount) pods at once, \(runs) runs (node-agent \(daemonBinary))")
    let cgroupsBefore = memoryCgroups()
    func column(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
    func right(_ text: String, _ width: Int) -> String { text.count >= width ? text : String(repeating: " ", count: width - text.count) + text }
    print(column("run", 8) + column("node-agent: created → Running", 31) + right("p50", 10) + right("p99", 11) + right("all", 11)
        + right("cpu/pod", 11) + "   " + column("bare ctr run -d", 16) + right("p50", 10) + right("p99", 11) + right("all", 11) + right("cpu/pod", 11))
    var ours: [(p50: Double, p99: Double, all: Double, cpu: Double)] = []
    var bare: [(p50: Double, p99: Double, all: Double, cpu: Double)] = []
    for round in stride(from: 1, through: runs, by: 1) {
        let names = (0..<podCount).map { "bench-\(round)-\($0)" }
        let result = try await startPods(names)
        try await deletePods(names)
        await waitForRuntimeEmpty()
        let anchor = await bareRuns(round)
        ours.append((percentile(result.perPod, 0.5), percentile(result.perPod, 0.99), result.all, result.cpu / Double(podCount)))
        bare.append((percentile(anchor.perContainer, 0.5), percentile(anchor.perContainer, 0.99), anchor.all, anchor.cpu / Double(podCount)))
        print(column("\(round)", 39) + " \(ms(ours.last!.p50))  \(ms(ours.last!.p99))  \(ms(ours.last!.all))  \(ms(ours.last!.cpu))   "
            + column("", 16) + " \(ms(bare.last!.p50))  \(ms(bare.last!.p99))  \(ms(bare.last!.all))  \(ms(bare.last!.cpu))")
    }
    if runs > 0 {
    if let cgroupsBefore, let cgroupsAfter = memoryCgroups() {
        print("memory cgroups (live and dying): \(cgroupsBefore) before the runs, \(cgroupsAfter) after; dying ones make every start dearer"
            + " (`sync; echo 1 > /proc/sys/vm/drop_caches` lets the kernel free them)")
    }
    let p50 = median(ours.map(\.p50)), p99 = median(ours.map(\.p99)), all = median(ours.map(\.all)), cpu = median(ours.map(\.cpu))
    let bp50 = median(bare.map(\.p50)), bp99 = median(bare.map(\.p99)), ball = median(bare.map(\.all)), bcpu = median(bare.map(\.cpu))
    print(column("median", 39) + " \(ms(p50))  \(ms(p99))  \(ms(all))  \(ms(cpu))   " + column("", 16)
        + " \(ms(bp50))  \(ms(bp99))  \(ms(ball))  \(ms(bcpu))")
    print(String(format: "ratio node-agent / bare ctr: p50 %.2fx, p99 %.2fx, all %.2fx, cpu/pod %.2fx", p50 / bp50, p99 / bp99, all / ball, cpu / bcpu)
        + "   (target: p99 pod start under 2 s: \(p99 < 2 ? "met" : "NOT met"))")
    }

    // Idle cost with many pods.
    if idlePods > 0 {
        let names = (0..<idlePods).map { "idle-\($0)" }
        let started = try await startPods(names)
        print("\nidle: \(idlePods) pods running after \(String(format: "%.1f", started.all)) s (p50 \(ms(percentile(started.perPod, 0.5))), p99 \(ms(percentile(started.perPod, 0.99))))")
        try await Task.sleep(for: .seconds(15))
        let pid = daemon.processIdentifier
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        let window = 60.0
        let first = sample(pid)
        var rssSamples = [first.rss]
        for _ in 0..<Int(window / 5) {
            try await Task.sleep(for: .seconds(5))
            rssSamples.append(sample(pid).rss)
        }
        let last = sample(pid)
        let rollup = (try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8)) ?? ""
        let detail = rollup.split(separator: "\n").filter { $0.hasPrefix("Private_Dirty") || $0.hasPrefix("Shared_Clean") || $0.hasPrefix("Anonymous") }
            .map { $0.split(whereSeparator: \.isWhitespace).joined(separator: " ") }.joined(separator: ", ")
        let threads = ((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "").split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        print("idle: \(detail); \(threads.split(whereSeparator: \.isWhitespace).joined(separator: " "))")
        if ProcessInfo.processInfo.environment["KUBELET_BENCH_SMAPS"] == "1" { print(smapsBreakdown(pid)) }
        let cpu = (last.ticks - first.ticks) / ticksPerSecond / window * 100
        print(String(format: "idle: daemon RSS %.1f MB (max %.1f MB over %.0f s), CPU %.2f%% of one core", median(rssSamples) / 1_048_576,
            rssSamples.max()! / 1_048_576, window, cpu) + "   (target: RSS under 60 MB: \(median(rssSamples) < 60 * 1_048_576 ? "met" : "NOT met"))")
        try await deletePods(names)
        await waitForRuntimeEmpty()
    }
} catch {
    print("KubeletBench failed: \(error); see \(root)/agent.log")
    await cleanUp()
    exit(1)
}
await cleanUp()
