import Foundation

/// Settings of ``CLIContainerRuntime``, spelled like the kubelet flags they come from.
public struct CLIRuntimeConfiguration: Sendable {
    /// `--runtime-cli`: which client drives containerd (nil: ctr, or nerdctl when only nerdctl is on PATH).
    public var cli: RuntimeCLIKind?
    /// The client binary (default: its name, looked up on PATH).
    public var cliPath: String?
    /// `--container-runtime-endpoint`.
    public var endpoint: RuntimeEndpoint = .containerdDefault
    /// containerd namespace (Kubernetes uses `k8s.io`).
    public var namespace = "k8s.io"
    /// `--runtime-request-timeout` (default 2 m): the limit on every CLI and CNI call.
    public var requestTimeout: Duration = .seconds(120)
    /// Prefix of every sandbox/container ID (and netns name) this runtime creates; sweeps touch only these.
    public var idPrefix = "na-"
    /// Where sandbox records, namespaces and pod files live.
    public var stateDirectory = "/var/lib/node-agent/cri"
    /// Root of the CRI log files (`/var/log/pods`).
    public var podLogDirectory = "/var/log/pods"
    /// `--container-log-max-size` in bytes and `--container-log-max-files`.
    public var logMaxSize = 10 * 1024 * 1024
    public var logMaxFiles = 5
    /// How long a removed pod's logs stay before the maintenance pass deletes them.
    public var logRetention: Duration = .seconds(60)
    /// The binary log driver program; default: `node-agent-logger` beside the running executable, else on PATH.
    public var loggerPath: String?
    /// `--cni-conf-dir` and `--cni-bin-dir` (default /opt/cni/bin, then /usr/lib/cni).
    public var cniConfDirectory = "/etc/cni/net.d"
    public var cniBinDirectories = CNIPluginRunner.defaultBinDirectories(nil)
    /// The network namespace CNI plugins run in: nil for the host's (production); a test node namespace's name.
    public var cniPluginNamespace: String?
    /// `--cluster-dns`, `--cluster-domain`, and the node's resolv.conf for `dnsPolicy: Default`.
    public var clusterDNS = PodFiles.ClusterDNS(
        hostResolvConf: (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "")
    /// `--serialize-image-pulls` (true) and `--max-parallel-image-pulls` when false.
    public var serializeImagePulls = true
    public var maxParallelImagePulls = 5
    /// How often the monitor relists tasks to catch exits the events stream missed (nil: never).
    public var relistInterval: Duration? = .seconds(5)
    /// Whether the monitor streams `ctr events` (turned off only to test the relist alone).
    public var watchEvents = true

    public init() {}

    /// The logger program to use: the configured path, else `node-agent-logger` beside this executable, else PATH.
    public func resolvedLoggerPath() -> String? {
        if let loggerPath { return FileManager.default.isExecutableFile(atPath: loggerPath) ? loggerPath : nil }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let sibling = executable.deletingLastPathComponent().appendingPathComponent("node-agent-logger").path
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/node-agent-logger"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// ctr unless asked otherwise, or nerdctl when only nerdctl is installed.
    public func resolvedCLI() -> RuntimeCLIKind {
        if let cli { return cli }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        let has = { (name: String) in path.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") } }
        return !has("ctr") && has("nerdctl") ? .nerdctl : .ctr
    }
}
