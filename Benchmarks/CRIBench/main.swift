// CRIBench: time from "create sandbox" to "container running" for the busybox image through the ctr backend
// (netns + CNI bridge inside an isolated node namespace + create + start), side by side with a bare
// `ctr run -d` of the same image in the same run. Medians over N runs and the ratio (target: at most 1.3x).
//
//   swift build -c release --product node-agent-logger --static-swift-stdlib && swift build -c release --product CRIBench
//   sudo .build/release/CRIBench [runs]        (default 15; needs containerd and local/busybox:latest)

import CRI
import Foundation
import Logging

let runs = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 15 : 15
let image = "local/busybox:latest"
let node = "nacri-bench"
let root = "/tmp/nacri-bench-\(getpid())"
let runner = SubprocessCommandRunner()

@discardableResult
func sh(_ arguments: [String], input: String? = nil) async throws -> String {
    try await runner.checked(CommandInvocation(arguments[0], Array(arguments.dropFirst()), input: input, timeout: .seconds(60)))
}

func median(_ values: [Duration]) -> Duration {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

func milliseconds(_ duration: Duration) -> String {
    String(format: "%.1f ms", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
}

let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
_ = try? await sh(["ip", "netns", "delete", node])
try await sh(["ip", "netns", "add", node])
try FileManager.default.createDirectory(atPath: root + "/net.d", withIntermediateDirectories: true)
try """
    {"cniVersion":"1.0.0","name":"nacri-bench","plugins":[{"type":"bridge","bridge":"nacri0","isGateway":true,"ipMasq":false,
     "ipam":{"type":"host-local","ranges":[[{"subnet":"10.252.0.0/24"}]],"dataDir":"\(root)/ipam"}}]}
    """.write(toFile: root + "/net.d/10-bench.conflist", atomically: true, encoding: .utf8)

var configuration = CLIRuntimeConfiguration()
configuration.cli = .ctr
configuration.idPrefix = "nacri-b"
configuration.stateDirectory = root + "/state"
configuration.podLogDirectory = root + "/logs"
configuration.logRetention = .zero
configuration.cniConfDirectory = root + "/net.d"
configuration.cniPluginNamespace = node
configuration.loggerPath = executable.appendingPathComponent("node-agent-logger").path
var logger = Logger(label: "cri-bench")
logger.logLevel = .warning
let runtime = CLIContainerRuntime(configuration: configuration, logger: logger)
try await runtime.recover()
_ = try await runtime.ensureImage(image, policy: .never)

let clock = ContinuousClock()
var ours: [Duration] = []
var bare: [Duration] = []
var phases: [String: [Duration]] = [:]
for index in 0..<runs {
    // Bare ctr run -d of the same image (joins nothing, logs nowhere).
    let bareID = "nacri-bare-\(index)"
    bare.append(try await clock.measure { try await sh(["ctr", "-n", "k8s.io", "run", "-d", image, bareID, "sleep", "1000"]) })
    _ = try? await sh(["ctr", "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", bareID])
    try await Task.sleep(for: .milliseconds(200))
    _ = try? await sh(["ctr", "-n", "k8s.io", "tasks", "delete", bareID])
    _ = try? await sh(["ctr", "-n", "k8s.io", "containers", "delete", bareID])

    // Ours: sandbox (netns, UTS/IPC, CNI ADD, files) + create + start.
    let start = clock.now
    let sandbox = try await runtime.runPodSandbox(PodSandboxConfig(pod: PodIdentity(uid: "u\(index)", name: "bench\(index)", namespace: "nacri")))
    let sandboxDone = clock.now
    let id = try await runtime.createContainer(in: sandbox.id, config: ContainerConfig(name: "c", image: image, command: ["sleep", "1000"]))
    let created = clock.now
    try await runtime.startContainer(id)
    let end = clock.now
    ours.append(end - start)
    phases["sandbox", default: []].append(sandboxDone - start)
    phases["create", default: []].append(created - sandboxDone)
    phases["start", default: []].append(end - created)
    try await runtime.stopPodSandbox(sandbox.id, gracePeriod: .zero)
    try await runtime.removePodSandbox(sandbox.id)
}
_ = try? await sh(["ip", "netns", "delete", node])
try? FileManager.default.removeItem(atPath: root)

let oursMedian = median(ours)
let bareMedian = median(bare)
let ratio = Double(oursMedian.components.attoseconds / 1_000_000 + oursMedian.components.seconds * 1_000_000_000_000)
    / Double(bareMedian.components.attoseconds / 1_000_000 + bareMedian.components.seconds * 1_000_000_000_000)
print("CRIBench: busybox, \(runs) runs, medians")
print("  node-agent sandbox+create+start : \(milliseconds(oursMedian))   (sandbox \(milliseconds(median(phases["sandbox"]!))), create \(milliseconds(median(phases["create"]!))), start \(milliseconds(median(phases["start"]!))))")
print("  bare `ctr run -d`               : \(milliseconds(bareMedian))")
print(String(format: "  ratio                           : %.2fx (target <= 1.30x)", ratio))
