import ArgumentParser
import CRI
import Foundation
import Kubelet
import Proxy

/// `node-agent preflight`: check (and with `--fix`, prepare) the host for a worker node.
struct PreflightCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preflight",
        abstract: "Check the host for a worker node, item by item; with --fix, make it right and persistent.",
        discussion: """
            Checks kernel modules, sysctls, swap, limits, containerd, CNI, tools and ports, each PASS, WARN or FAIL \
            with the value found, the one expected and the command or file that fixes it. Exit status 0 when nothing \
            FAILs, 1 otherwise. --fix changes only what it reports, writes persistent files atomically \
            (/etc/modules-load.d/node-agent.conf, /etc/sysctl.d/90-node-agent.conf), prints every change and is \
            idempotent; /etc/fstab is changed only with --fix-swap.
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Flag(help: "Apply the fixes of what does not pass, then check again.")
    var fix = false

    @Flag(name: .customLong("fix-swap"), help: "Also comment out swap entries in /etc/fstab (with --fix).")
    var fixSwap = false

    @Option(name: .shortAndLong, help: "Output format: text or json.")
    var output: Format = .text

    @Option(help: ArgumentHelp("Check the files under this folder instead of / (for tests and images).", valueName: "dir"))
    var root = "/"

    @Option(name: .customLong("proxy-mode"), help: "The proxy mode the node will run (ipvs checks the IPVS sysctls).")
    var proxyMode: String = ProxyMode.ipvs.rawValue

    @Option(name: .customLong("container-runtime-endpoint"), help: "containerd's socket.")
    var containerRuntimeEndpoint = RuntimeEndpoint.containerdDefault.description

    @Option(name: .customLong("cni-conf-dir"), help: "CNI network configurations.")
    var cniConfDir = "/etc/cni/net.d"

    @Option(name: .customLong("cni-bin-dir"), help: "CNI plugin binaries.")
    var cniBinDir = "/opt/cni/bin"

    @Option(help: ArgumentHelp("Also check this kubeconfig: readable, server reachable, client certificate, access to the Node, clock skew.", valueName: "file"))
    var kubeconfig: String?

    @Option(name: .customLong("hostname-override"), help: ArgumentHelp("The node name whose access is checked.", valueName: "name"))
    var hostnameOverride: String?

    func validate() throws {
        guard ProxyMode(rawValue: proxyMode) != nil else {
            throw ValidationError("invalid value \"\(proxyMode)\" for proxy-mode: expected one of ipvs, iptables")
        }
        guard RuntimeEndpoint(parsing: containerRuntimeEndpoint) != nil else {
            throw ValidationError("invalid value \"\(containerRuntimeEndpoint)\" for container-runtime-endpoint: expected unix:///path/to/socket")
        }
        if fixSwap && !fix { throw ValidationError("--fix-swap needs --fix") }
    }

    func run() async throws {
        var options = Preflight.Options()
        options.proxyMode = ProxyMode(rawValue: proxyMode)!
        options.runtimeEndpoint = RuntimeEndpoint(parsing: containerRuntimeEndpoint)!
        options.cniConfDir = cniConfDir
        options.cniBinDir = cniBinDir
        options.fixSwap = fixSwap
        var report = Preflight(host: .real(root: root), options: options).run(fix: fix)
        if let kubeconfig {
            report.results += await KubeconfigPreflight(path: kubeconfig, nodeName: NodeName.resolve(override: hostnameOverride)).check()
        }
        switch output {
        case .text:
            print(report.text(), terminator: "")
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        }
        throw ExitCode(report.exitCode)
    }
}
