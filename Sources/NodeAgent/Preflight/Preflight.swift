import CRI
import Foundation
import Proxy

/// `node-agent preflight`: checks the host a worker node needs, item by item, and with `--fix` makes it right.
///
/// Each check reports PASS, WARN or FAIL with the value found, the one expected and the command or file that
/// fixes it. Fixes change only what a check reported, write persistent files atomically, and are idempotent.
struct Preflight: Sendable {
    struct Options: Sendable {
        var proxyMode: ProxyMode = .ipvs
        var runtimeEndpoint: RuntimeEndpoint = .containerdDefault
        var runtimeCLI = "ctr"
        var cniConfDir = "/etc/cni/net.d"
        var cniBinDir = "/opt/cni/bin"
        var ports = [10248, 10250, 10256]
        /// Allow `--fix` to edit /etc/fstab.
        var fixSwap = false
    }

    static let modulesLoadFile = "/etc/modules-load.d/node-agent.conf"
    static let sysctlFile = "/etc/sysctl.d/90-node-agent.conf"
    static let requiredModules = ["overlay", "br_netfilter", "nf_conntrack"]
    static let ipvsModules = ["ip_vs", "ip_vs_rr", "ip_vs_lc", "ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq"]

    var host: PreflightHost
    var options: Options

    /// Runs every check.
    func check() -> [PreflightResult] {
        var results: [PreflightResult] = []
        results += moduleChecks()
        results += sysctlChecks()
        results += swapChecks()
        results += limitChecks()
        results += runtimeChecks()
        results += cniChecks()
        results += toolChecks()
        results += portChecks()
        results += clockChecks()
        return results
    }

    /// Runs the checks; with `fix`, applies the fixes of what did not pass and checks again.
    ///
    /// A fix can reveal the next one (loading br_netfilter makes its sysctls appear, at 0), so fixing repeats
    /// while a round changed something, at most three rounds.
    func run(fix: Bool) -> PreflightReport {
        var results = check()
        guard fix else { return PreflightReport(results: results) }
        var changes: [String] = []
        var applied = Set<String>()
        for _ in 0..<3 {
            let pending = results.filter { $0.status != .pass }.flatMap(\.fixes).sorted { Self.order($0) < Self.order($1) }
            var round: [String] = []
            for fix in pending where applied.insert("\(fix)").inserted {
                if case .disableFstabSwap = fix, !options.fixSwap { continue }
                round += apply(fix)
            }
            changes += round
            results = check()
            if round.isEmpty { break }
        }
        return PreflightReport(results: results, changes: changes)
    }

    private static func order(_ fix: PreflightFix) -> Int {
        switch fix {
        case .loadModule: 0
        case .setSysctl: 1
        case .ensureLine: 2
        case .swapOff: 3
        case .disableFstabSwap: 4
        }
    }

    // MARK: Kernel modules

    private func moduleChecks() -> [PreflightResult] {
        let loadedModules = host.read("/proc/modules").map { text in
            Set(text.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
        }
        let persisted = persistedModules()
        return (Self.requiredModules + Self.ipvsModules).map { name in
            let optional = Self.ipvsModules.contains(name)
            let id = "module/\(name)"
            let isModule = loadedModules?.contains(name) ?? false
            let builtIn = !isModule && (host.exists("/sys/module/\(name)") || moduleMarkerPresent(name))
            if builtIn {
                return PreflightResult(id: id, status: .pass, found: "built into the kernel", expected: "loaded")
            }
            if isModule {
                if persisted.contains(name) {
                    return PreflightResult(id: id, status: .pass, found: "loaded, and loaded at boot", expected: "loaded")
                }
                return PreflightResult(
                    id: id, status: .warn, found: "loaded, but not listed for boot", expected: "listed in \(Self.modulesLoadFile)",
                    remedy: "echo \(name) >> \(Self.modulesLoadFile)", fixes: [.ensureLine(file: Self.modulesLoadFile, line: name)]
                )
            }
            return PreflightResult(
                id: id, status: optional ? .warn : .fail, found: "not loaded",
                expected: "loaded",
                remedy: "modprobe \(name) && echo \(name) >> \(Self.modulesLoadFile)"
                    + (optional ? " (without IPVS the proxy falls back to the iptables mode)" : ""),
                fixes: [.loadModule(name), .ensureLine(file: Self.modulesLoadFile, line: name)]
            )
        }
    }

    /// Files a module leaves behind even when built in and absent from /sys/module.
    private func moduleMarkerPresent(_ name: String) -> Bool {
        switch name {
        case "overlay": host.read("/proc/filesystems")?.contains("overlay") ?? false
        case "br_netfilter": host.exists("/proc/sys/net/bridge/bridge-nf-call-iptables")
        case "nf_conntrack": host.exists("/proc/sys/net/netfilter/nf_conntrack_max")
        case "ip_vs": host.exists("/proc/net/ip_vs")
        default: false
        }
    }

    private func persistedModules() -> Set<String> {
        var names = Set<String>()
        for folder in ["/etc/modules-load.d", "/usr/lib/modules-load.d", "/run/modules-load.d"] {
            for file in host.list(folder) where file.hasSuffix(".conf") {
                names.formUnion(Self.configLines(host.read("\(folder)/\(file)") ?? ""))
            }
        }
        names.formUnion(Self.configLines(host.read("/etc/modules") ?? ""))
        return names
    }

    private static func configLines(_ text: String) -> [String] {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix(";") }
    }

    // MARK: sysctls

    private func sysctlChecks() -> [PreflightResult] {
        var wanted: [(key: String, value: String, needs: String?)] = [
            ("net.ipv4.ip_forward", "1", nil),
            ("net.bridge.bridge-nf-call-iptables", "1", "br_netfilter"),
            ("net.bridge.bridge-nf-call-ip6tables", "1", "br_netfilter"),
        ]
        if options.proxyMode == .ipvs && host.exists("/proc/sys/net/ipv4/vs") {
            wanted += [
                ("net.ipv4.vs.conntrack", "1", "ip_vs"),
                ("net.ipv4.vs.expire_nodest_conn", "1", "ip_vs"),
                ("net.ipv4.vs.expire_quiescent_template", "1", "ip_vs"),
            ]
        }
        let persisted = persistedSysctls()
        return wanted.map { key, value, needs in
            let id = "sysctl/\(key)"
            let file = "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/")
            let line = "\(key) = \(value)"
            guard let current = host.read(file)?.trimmingCharacters(in: .whitespacesAndNewlines) else {
                let module = needs ?? "the module providing it"
                return PreflightResult(
                    id: id, status: .fail, found: "absent (\(module) not loaded)", expected: value,
                    remedy: "modprobe \(module) first, then sysctl -w \(key)=\(value) and add \"\(line)\" to \(Self.sysctlFile)",
                    fixes: needs.map { [.loadModule($0)] } ?? []
                )
            }
            if current != value {
                return PreflightResult(
                    id: id, status: .fail, found: current, expected: value,
                    remedy: "sysctl -w \(key)=\(value) and add \"\(line)\" to \(Self.sysctlFile)",
                    fixes: [.setSysctl(key: key, value: value), .ensureLine(file: Self.sysctlFile, line: line)]
                )
            }
            if persisted[key] != value {
                return PreflightResult(
                    id: id, status: .warn, found: "\(current) now, not set at boot", expected: "\(value), persisted in \(Self.sysctlFile)",
                    remedy: "add \"\(line)\" to \(Self.sysctlFile)", fixes: [.ensureLine(file: Self.sysctlFile, line: line)]
                )
            }
            return PreflightResult(id: id, status: .pass, found: current, expected: value)
        }
    }

    private func persistedSysctls() -> [String: String] {
        var values: [String: String] = [:]
        var files = ["/etc/sysctl.conf"]
        for folder in ["/usr/lib/sysctl.d", "/run/sysctl.d", "/etc/sysctl.d"] {
            files += host.list(folder).filter { $0.hasSuffix(".conf") }.map { "\(folder)/\($0)" }
        }
        for file in files {
            for line in Self.configLines(host.read(file) ?? "") {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2 { values[parts[0].replacingOccurrences(of: "/", with: ".")] = parts[1] }
            }
        }
        return values
    }

    // MARK: swap

    private func swapChecks() -> [PreflightResult] {
        let active = (host.read("/proc/swaps") ?? "").split(separator: "\n").dropFirst().filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        let fstab = Self.fstabSwapLines(host.read("/etc/fstab") ?? "")
        var results: [PreflightResult] = []
        if active.isEmpty {
            results.append(PreflightResult(id: "swap/active", status: .pass, found: "off", expected: "off"))
        } else {
            results.append(
                PreflightResult(
                    id: "swap/active", status: .fail, found: "\(active.count) swap device(s) on", expected: "off",
                    remedy: "swapoff -a", fixes: [.swapOff]
                )
            )
        }
        if fstab.isEmpty {
            results.append(PreflightResult(id: "swap/fstab", status: .pass, found: "no swap entry", expected: "no active swap entry in /etc/fstab"))
        } else {
            results.append(
                PreflightResult(
                    id: "swap/fstab", status: .warn, found: "\(fstab.count) active swap entr\(fstab.count == 1 ? "y" : "ies")",
                    expected: "no active swap entry in /etc/fstab",
                    remedy: "comment out the swap lines of /etc/fstab (node-agent preflight --fix --fix-swap does it)",
                    fixes: [.disableFstabSwap]
                )
            )
        }
        return results
    }

    /// The indices of fstab lines that mount swap and are not commented out.
    static func fstabSwapLines(_ text: String) -> [Int] {
        text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { index, line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#") else { return nil }
            let fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
            return fields.count >= 3 && fields[2] == "swap" ? index : nil
        }
    }

    // MARK: limits

    private func limitChecks() -> [PreflightResult] {
        var results: [PreflightResult] = []
        let nrOpen = host.read("/proc/sys/fs/nr_open").flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        if let nrOpen {
            results.append(
                PreflightResult(
                    id: "limits/fs.nr_open", status: nrOpen >= 1_048_576 ? .pass : .warn, found: "\(nrOpen)", expected: "at least 1048576",
                    remedy: "sysctl -w fs.nr_open=1048576 (the unit's LimitNOFILE=1048576 needs it)",
                    fixes: [.setSysctl(key: "fs.nr_open", value: "1048576"), .ensureLine(file: Self.sysctlFile, line: "fs.nr_open = 1048576")]
                )
            )
        }
        let open = host.openFileLimit()
        results.append(
            PreflightResult(
                id: "limits/open-files", status: open >= 65536 ? .pass : .warn, found: "\(open)", expected: "at least 65536 for the agent",
                remedy: "the systemd unit sets LimitNOFILE=1048576; in a shell, ulimit -n 1048576"
            )
        )
        if let pidMax = host.read("/proc/sys/kernel/pid_max").flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
            results.append(
                PreflightResult(
                    id: "limits/kernel.pid_max", status: pidMax >= 32768 ? .pass : .warn, found: "\(pidMax)", expected: "at least 32768",
                    remedy: "sysctl -w kernel.pid_max=4194304",
                    fixes: [.setSysctl(key: "kernel.pid_max", value: "4194304"), .ensureLine(file: Self.sysctlFile, line: "kernel.pid_max = 4194304")]
                )
            )
        }
        return results
    }

    // MARK: container runtime

    private func runtimeChecks() -> [PreflightResult] {
        var results: [PreflightResult] = []
        let socket = options.runtimeEndpoint.socketPath
        let address = ["--address", host.path(socket)]
        for program in ["ctr", "runc"] + (options.runtimeCLI == "nerdctl" ? ["nerdctl"] : []) {
            let present = host.hasProgram(program)
            results.append(
                PreflightResult(
                    id: "runtime/\(program)", status: present ? .pass : .fail, found: present ? "on PATH" : "missing", expected: "on PATH",
                    remedy: program == "nerdctl" ? "install nerdctl from its release archive" : "apt-get install -y \(program == "ctr" ? "containerd" : program)"
                )
            )
        }
        guard host.exists(socket) else {
            results.append(
                PreflightResult(
                    id: "runtime/containerd", status: .fail, found: "no socket at \(socket)", expected: "containerd answering",
                    remedy: "systemctl enable --now containerd (or start containerd)"
                )
            )
            return results
        }
        let version = host.runCommand(["ctr"] + address + ["version"])
        if version.status == 0 {
            let server = Self.serverVersion(version.output) ?? "answering"
            results.append(PreflightResult(id: "runtime/containerd", status: .pass, found: "containerd \(server)", expected: "containerd answering"))
            let namespace = host.runCommand(["ctr"] + address + ["-n", "k8s.io", "images", "ls", "-q"])
            results.append(
                PreflightResult(
                    id: "runtime/namespace-k8s.io", status: namespace.status == 0 ? .pass : .fail,
                    found: namespace.status == 0 ? "usable" : namespace.output.trimmingCharacters(in: .whitespacesAndNewlines),
                    expected: "usable", remedy: "check containerd's log; ctr -n k8s.io images ls must succeed"
                )
            )
        } else {
            results.append(
                PreflightResult(
                    id: "runtime/containerd", status: .fail,
                    found: "not answering: \(version.output.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200))",
                    expected: "containerd answering", remedy: "systemctl restart containerd and check journalctl -u containerd"
                )
            )
        }
        let hierarchy = host.exists("/sys/fs/cgroup/cgroup.controllers") ? "v2 (unified)" : (host.exists("/sys/fs/cgroup/memory") ? "v1" : "unknown")
        results.append(
            PreflightResult(
                id: "runtime/cgroups", status: hierarchy == "unknown" ? .warn : .pass, found: "\(hierarchy), driver cgroupfs",
                expected: "a mounted cgroup hierarchy", remedy: "mount cgroup2 on /sys/fs/cgroup"
            )
        )
        return results
    }

    static func serverVersion(_ output: String) -> String? {
        guard let server = output.range(of: "Server:") else { return nil }
        for line in output[server.upperBound...].split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("Version:") { return trimmed.dropFirst("Version:".count).trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    // MARK: CNI

    private func cniChecks() -> [PreflightResult] {
        let configs = host.list(options.cniConfDir).filter { $0.hasSuffix(".conflist") || $0.hasSuffix(".conf") || $0.hasSuffix(".json") }
        guard let first = configs.first else {
            return [
                PreflightResult(
                    id: "cni/config", status: .fail, found: "no network configuration in \(options.cniConfDir)",
                    expected: "a .conflist or .conf file", remedy: "install your network add-on, or write a bridge .conflist into \(options.cniConfDir)"
                )
            ]
        }
        let file = "\(options.cniConfDir)/\(first)"
        guard let data = host.read(file).map({ Data($0.utf8) }),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            return [PreflightResult(id: "cni/config", status: .fail, found: "\(file) is not valid JSON", expected: "a CNI network configuration", remedy: "fix \(file)")]
        }
        let plugins = ((json["plugins"] as? [[String: Any]]) ?? [json]).compactMap { $0["type"] as? String }
        var results = [
            PreflightResult(
                id: "cni/config", status: plugins.isEmpty ? .fail : .pass, found: "\(file) (\(json["name"] as? String ?? "unnamed"))",
                expected: "a network with plugins", remedy: "the configuration names no plugin type"
            )
        ]
        let folders = [options.cniBinDir, "/usr/lib/cni"]
        for plugin in plugins {
            let found = folders.first { host.exists("\($0)/\(plugin)") }
            results.append(
                PreflightResult(
                    id: "cni/plugin/\(plugin)", status: found == nil ? .fail : .pass, found: found.map { "\($0)/\(plugin)" } ?? "missing",
                    expected: "in \(options.cniBinDir)", remedy: "apt-get install -y containernetworking-plugins (or install \(plugin) into \(options.cniBinDir))"
                )
            )
        }
        return results
    }

    // MARK: tools and libraries

    private func toolChecks() -> [PreflightResult] {
        var results: [PreflightResult] = []
        let nft = host.runCommand(["nft", "--version"])
        results.append(
            PreflightResult(
                id: "tools/nft", status: nft.status == 0 ? .pass : .warn,
                found: nft.status == 0 ? nft.output.trimmingCharacters(in: .whitespacesAndNewlines) : "missing",
                expected: "nft for inspecting the rules", remedy: "apt-get install -y nftables"
            )
        )
        for library in ["libnl-genl-3.so.200", "libmnl.so.0", "libnftables.so.1"] {
            let handle = dlopen(library, RTLD_NOW | RTLD_NOLOAD) ?? dlopen(library, RTLD_LAZY)
            results.append(
                PreflightResult(
                    id: "library/\(library)", status: handle == nil ? .fail : .pass, found: handle == nil ? "cannot be loaded" : "loadable",
                    expected: "loadable", remedy: "apt-get install -y libnl-genl-3-200 libmnl0 libnftables1"
                )
            )
        }
        let ipvsadm = host.hasProgram("ipvsadm")
        results.append(
            PreflightResult(
                id: "tools/ipvsadm", status: ipvsadm ? .pass : .warn, found: ipvsadm ? "on PATH" : "missing",
                expected: "optional, for inspecting IPVS tables", remedy: "apt-get install -y ipvsadm"
            )
        )
        return results
    }

    // MARK: ports

    private func portChecks() -> [PreflightResult] {
        let listening = listeningPorts()
        return options.ports.map { port in
            PreflightResult(
                id: "port/\(port)", status: listening.contains(port) ? .fail : .pass, found: listening.contains(port) ? "in use" : "free",
                expected: "free", remedy: "find the listener with: ss -ltnp 'sport = :\(port)'"
            )
        }
    }

    /// TCP ports in LISTEN state, from /proc/net/tcp and tcp6.
    func listeningPorts() -> Set<Int> {
        var ports = Set<Int>()
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            for line in (host.read(file) ?? "").split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 3, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":") else { continue }
                if let port = Int(fields[1][fields[1].index(after: colon)...], radix: 16) { ports.insert(port) }
            }
        }
        return ports
    }

    // MARK: clock

    private func clockChecks() -> [PreflightResult] {
        switch host.clockSynchronized() {
        case .some(true):
            return [PreflightResult(id: "time/synchronised", status: .pass, found: "synchronised", expected: "synchronised")]
        case .some(false):
            return [
                PreflightResult(
                    id: "time/synchronised", status: .warn, found: "not synchronised", expected: "synchronised by NTP",
                    remedy: "apt-get install -y systemd-timesyncd (or chrony); certificates and leases need a correct clock"
                )
            ]
        case .none:
            return [PreflightResult(id: "time/synchronised", status: .warn, found: "unknown", expected: "synchronised by NTP", remedy: "check timedatectl")]
        }
    }

    // MARK: fixes

    /// Applies one fix; returns what changed (nothing when it was already so).
    private func apply(_ fix: PreflightFix) -> [String] {
        switch fix {
        case .loadModule(let name):
            let result = host.runCommand(["modprobe", name])
            return [result.status == 0 ? "loaded module \(name)" : "could not load module \(name): \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))"]
        case .ensureLine(let file, let line):
            let current = host.read(file) ?? ""
            guard !current.split(separator: "\n").contains(where: { $0.trimmingCharacters(in: .whitespaces) == line }) else { return [] }
            var contents = current.isEmpty ? "# Written by node-agent preflight --fix\n" : current
            if !contents.hasSuffix("\n") { contents += "\n" }
            do {
                try host.writeAtomically(file, contents: contents + line + "\n")
                return ["added \"\(line)\" to \(file)"]
            } catch {
                return ["could not write \(file): \(error)"]
            }
        case .setSysctl(let key, let value):
            let file = "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/")
            guard host.read(file)?.trimmingCharacters(in: .whitespacesAndNewlines) != value else { return [] }
            do {
                try host.writeInPlace(file, contents: value + "\n")
                return ["set \(key) = \(value)"]
            } catch {
                return ["could not set \(key): \(error)"]
            }
        case .swapOff:
            let result = host.runCommand(["swapoff", "-a"])
            return [result.status == 0 ? "turned swap off (swapoff -a)" : "swapoff -a failed: \(result.output)"]
        case .disableFstabSwap:
            guard let text = host.read("/etc/fstab") else { return [] }
            let swapLines = Set(Self.fstabSwapLines(text))
            guard !swapLines.isEmpty else { return [] }
            let rewritten = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map { index, line in
                swapLines.contains(index) ? "# disabled by node-agent preflight: \(line)" : String(line)
            }.joined(separator: "\n")
            do {
                try host.writeAtomically("/etc/fstab", contents: rewritten)
                return ["commented out \(swapLines.count) swap entr\(swapLines.count == 1 ? "y" : "ies") in /etc/fstab"]
            } catch {
                return ["could not write /etc/fstab: \(error)"]
            }
        }
    }
}
