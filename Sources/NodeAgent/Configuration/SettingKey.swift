import CRI
import Foundation
import IPVS
import KubeAPI
import Kubelet
import Logging
import Proxy

/// A value that could not be accepted for a setting: names the key, where it came from and what is allowed.
struct SettingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The setting's name, as the flag spells it without dashes (`proxy-mode`).
    var key: String
    /// The text that was refused.
    var value: String
    /// Where the value came from: `--proxy-mode` or `/etc/node-agent/config.yaml:7`.
    var source: String
    /// What would have been accepted.
    var expected: String

    var description: String {
        "invalid value \"\(value)\" for \(key) (from \(source)): expected \(expected)"
    }
}

/// One setting: its name (the flag's, without dashes, which is also its key in the config file),
/// and how a text value is parsed into ``AgentSettings``.
struct SettingKey: Sendable {
    var name: String
    var apply: @Sendable (inout AgentSettings, String) -> Result<Void, Refusal>

    /// Why a value was refused: what the key accepts.
    struct Refusal: Error {
        var expected: String
    }

    /// Applies `value` to `settings`, or throws a ``SettingError`` naming the key and `source`.
    func apply(_ value: String, to settings: inout AgentSettings, source: String) throws(SettingError) {
        if case .failure(let refusal) = apply(&settings, value) {
            throw SettingError(key: name, value: value, source: source, expected: refusal.expected)
        }
    }

    /// Every key `node-agent run` knows, in the order `--help` lists them.
    static let all: [SettingKey] = [
        list("components", expected: "a comma-separated list of \(Component.allCases.map(\.rawValue).joined(separator: ", "))") { settings, items in
            var components = Set<Component>()
            for item in items {
                guard let component = Component(rawValue: item) else { return false }
                components.insert(component)
            }
            guard !components.isEmpty else { return false }
            settings.components = components
            return true
        },
        path("kubeconfig") { $0.kubeconfig = $1 },
        string("hostname-override") { $0.hostnameOverride = $1 },
        list("node-ip", expected: "one IP address, or an IPv4 and an IPv6 address separated by a comma") { settings, items in
            guard items.allSatisfy(IPAddressText.isValid) else { return false }
            settings.nodeIPs = items
            return true
        },
        path("pod-manifest-path") { $0.podManifestPath = $1 },
        path("root-dir") { $0.rootDirectory = $1 },
        list("node-labels", expected: "key=value pairs separated by commas, e.g. pool=blue,zone=a") { settings, items in
            var labels: [String: String] = [:]
            for item in items {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 2, LabelText.isValidKey(parts[0]), LabelText.isValidValue(parts[1]) else { return false }
                labels[parts[0]] = parts[1]
            }
            settings.nodeLabels = labels
            return true
        },
        list("register-with-taints", expected: "key[=value]:Effect pairs separated by commas, Effect one of NoSchedule, PreferNoSchedule, NoExecute") { settings, items in
            var taints: [Taint] = []
            for item in items {
                guard let colon = item.lastIndex(of: ":") else { return false }
                let effect = String(item[item.index(after: colon)...])
                let keyValue = item[..<colon].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard ["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(effect), LabelText.isValidKey(keyValue[0]),
                    keyValue.count == 1 || LabelText.isValidValue(keyValue[1])
                else { return false }
                taints.append(Taint(key: keyValue[0], value: keyValue.count == 2 ? keyValue[1] : nil, effect: effect))
            }
            settings.registerWithTaints = taints
            return true
        },
        SettingKey(name: "register-node") { settings, value in
            guard let flag = Bool(value.lowercased()) else { return .failure(Refusal(expected: "true or false")) }
            settings.registerNode = flag
            return .success(())
        },
        integer("max-pods", range: 1...10_000) { $0.maxPods = $1 },
        duration("node-status-update-frequency", positive: true) { $0.nodeStatusUpdateFrequency = $1 },
        integer("node-lease-duration-seconds", range: 1...3600) { $0.nodeLeaseDurationSeconds = $1 },
        reservation("system-reserved") { $0.systemReserved = $1 },
        reservation("kube-reserved") { $0.kubeReserved = $1 },
        SettingKey(name: "eviction-hard") { settings, value in
            do {
                settings.evictionHard = try EvictionThresholds(parsing: value)
                return .success(())
            } catch {
                return .failure(Refusal(expected: "signal<quantity or signal<percent% pairs, e.g. memory.available<100Mi,nodefs.available<10%"))
            }
        },
        choice("proxy-mode", ProxyMode.self) { $0.proxyMode = $1 },
        choice("ipvs-scheduler", Scheduler.self) { $0.ipvsScheduler = $1 },
        duration("ipvs-sync-period", positive: true) { $0.ipvsSyncPeriod = $1 },
        duration("ipvs-min-sync-period") { $0.ipvsMinSyncPeriod = $1 },
        duration("ipvs-tcp-timeout") { $0.ipvsTCPTimeout = $1 },
        duration("ipvs-tcpfin-timeout") { $0.ipvsTCPFinTimeout = $1 },
        duration("ipvs-udp-timeout") { $0.ipvsUDPTimeout = $1 },
        SettingKey(name: "ipvs-strict-arp") { settings, value in
            guard let flag = Bool(value.lowercased()) else { return .failure(Refusal(expected: "true or false")) }
            settings.ipvsStrictARP = flag
            return .success(())
        },
        list("ipvs-exclude-cidrs", expected: "CIDRs separated by commas such as 10.0.0.0/8,fd00::/64") { settings, items in
            guard items.allSatisfy(IPAddressText.isValidCIDR) else { return false }
            settings.ipvsExcludeCIDRs = items
            return true
        },
        duration("iptables-sync-period", positive: true) { $0.iptablesSyncPeriod = $1 },
        duration("iptables-min-sync-period") { $0.iptablesMinSyncPeriod = $1 },
        list("cluster-cidr", expected: "one CIDR such as 10.244.0.0/16, or an IPv4 and an IPv6 CIDR separated by a comma") { settings, items in
            guard items.allSatisfy(IPAddressText.isValidCIDR) else { return false }
            settings.clusterCIDRs = items
            return true
        },
        list("nodeport-addresses", expected: "primary, or CIDRs separated by commas such as 10.0.0.0/8,fd00::/64") { settings, items in
            if items == ["primary"] {
                settings.nodePortAddresses = []
                return true
            }
            guard items.allSatisfy(IPAddressText.isValidCIDR) else { return false }
            settings.nodePortAddresses = items
            return true
        },
        SettingKey(name: "masquerade-all") { settings, value in
            guard let flag = Bool(value.lowercased()) else { return .failure(Refusal(expected: "true or false")) }
            settings.masqueradeAll = flag
            return .success(())
        },
        bind("proxy-healthz-bind-address", optional: true) { $0.proxyHealthzBindAddress = $1 },
        bind("healthz-bind-address", optional: false) { $0.healthzBindAddress = $1! },
        bind("metrics-bind-address", optional: true) { $0.metricsBindAddress = $1 },
        SettingKey(name: "container-runtime-endpoint") { settings, value in
            guard let endpoint = RuntimeEndpoint(parsing: value) else {
                return .failure(Refusal(expected: "unix:///path/to/socket, e.g. unix:///run/containerd/containerd.sock"))
            }
            settings.containerRuntimeEndpoint = endpoint
            return .success(())
        },
        path("cni-conf-dir") { $0.cniConfDir = $1 },
        path("cni-bin-dir") { $0.cniBinDir = $1 },
        choice("runtime-cli", RuntimeCLIKind.self) { $0.runtimeCLI = $1 },
        duration("runtime-request-timeout", positive: true) { $0.runtimeRequestTimeout = $1 },
        list("cluster-dns", expected: "one or more IP addresses separated by commas, e.g. 10.96.0.10") { settings, items in
            guard items.allSatisfy(IPAddressText.isValid) else { return false }
            settings.clusterDNS = items
            return true
        },
        SettingKey(name: "cluster-domain") { settings, value in
            let labels = value.split(separator: ".", omittingEmptySubsequences: false)
            guard !value.isEmpty, labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 && $0.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") } })
            else { return .failure(Refusal(expected: "a DNS domain such as cluster.local")) }
            settings.clusterDomain = value
            return .success(())
        },
        SettingKey(name: "serialize-image-pulls") { settings, value in
            guard let flag = Bool(value.lowercased()) else { return .failure(Refusal(expected: "true or false")) }
            settings.serializeImagePulls = flag
            return .success(())
        },
        SettingKey(name: "max-parallel-image-pulls") { settings, value in
            guard let count = Int(value), count >= 1 else { return .failure(Refusal(expected: "a whole number of at least 1")) }
            settings.maxParallelImagePulls = count
            return .success(())
        },
        SettingKey(name: "container-log-max-size") { settings, value in
            guard let bytes = ByteSize.parse(value), bytes >= 1024 else { return .failure(Refusal(expected: "a size of at least 1Ki, such as 10Mi or 500Ki")) }
            settings.containerLogMaxSize = bytes
            return .success(())
        },
        SettingKey(name: "container-log-max-files") { settings, value in
            guard let count = Int(value), count >= 2 else { return .failure(Refusal(expected: "a whole number of at least 2")) }
            settings.containerLogMaxFiles = count
            return .success(())
        },
        SettingKey(name: "cni-plugin-netns") { settings, value in
            guard !value.isEmpty, !value.contains("/"), value != ".", value != ".." else {
                return .failure(Refusal(expected: "the name of a network namespace under /var/run/netns (testing only)"))
            }
            settings.cniPluginNetns = value
            return .success(())
        },
        SettingKey(name: "runtime-id-prefix") { settings, value in
            guard (2...20).contains(value.count), value.last == "-", value.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") })
            else { return .failure(Refusal(expected: "2 to 20 lowercase letters, digits or '-', ending in '-' (testing only)")) }
            settings.runtimeIDPrefix = value
            return .success(())
        },
        path("pod-logs-dir") { $0.podLogsDir = $1 },
        SettingKey(name: "v") { settings, value in
            guard let level = Int(value), (0...10).contains(level) else {
                return .failure(Refusal(expected: "a verbosity from 0 to 10"))
            }
            settings.verbosity = level
            return .success(())
        },
        SettingKey(name: "log-level") { settings, value in
            guard let level = Logger.Level(rawValue: value.lowercased()) else {
                return .failure(Refusal(expected: "one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
            settings.logLevel = level
            return .success(())
        },
    ]

    /// Looks a key up by name.
    static func named(_ name: String) -> SettingKey? { all.first { $0.name == name } }

    // MARK: Builders for the common kinds of value

    private static func string(_ name: String, _ set: @escaping @Sendable (inout AgentSettings, String) -> Void) -> SettingKey {
        SettingKey(name: name) { settings, value in
            guard !value.isEmpty else { return .failure(Refusal(expected: "a non-empty string")) }
            set(&settings, value)
            return .success(())
        }
    }

    private static func path(_ name: String, _ set: @escaping @Sendable (inout AgentSettings, String) -> Void) -> SettingKey {
        SettingKey(name: name) { settings, value in
            guard !value.isEmpty, !value.contains("\0") else { return .failure(Refusal(expected: "a file or folder path")) }
            set(&settings, value)
            return .success(())
        }
    }

    private static func choice<Choice: RawRepresentable & CaseIterable & Sendable>(
        _ name: String, _: Choice.Type, _ set: @escaping @Sendable (inout AgentSettings, Choice) -> Void
    ) -> SettingKey where Choice.RawValue == String {
        SettingKey(name: name) { settings, value in
            guard let choice = Choice(rawValue: value) else {
                return .failure(Refusal(expected: "one of \(Choice.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
            set(&settings, choice)
            return .success(())
        }
    }

    private static func duration(
        _ name: String, positive: Bool = false, _ set: @escaping @Sendable (inout AgentSettings, Duration) -> Void
    ) -> SettingKey {
        SettingKey(name: name) { settings, value in
            guard let duration = GoDuration.parse(value), !positive || duration > .zero else {
                return .failure(Refusal(expected: positive ? "a positive duration such as 30s or 1m" : "a duration such as 1s, 500ms or 0s"))
            }
            set(&settings, duration)
            return .success(())
        }
    }

    private static func integer(
        _ name: String, range: ClosedRange<Int>, _ set: @escaping @Sendable (inout AgentSettings, Int) -> Void
    ) -> SettingKey {
        SettingKey(name: name) { settings, value in
            guard let number = Int(value), range.contains(number) else {
                return .failure(Refusal(expected: "a whole number from \(range.lowerBound) to \(range.upperBound)"))
            }
            set(&settings, number)
            return .success(())
        }
    }

    /// `cpu=100m,memory=100Mi,ephemeral-storage=1Gi,pid=1000` as amounts (cores, bytes, count).
    private static func reservation(
        _ name: String, _ set: @escaping @Sendable (inout AgentSettings, [String: Decimal]) -> Void
    ) -> SettingKey {
        list(name, expected: "resource=quantity pairs for cpu, memory, ephemeral-storage, pid, e.g. cpu=100m,memory=256Mi") { settings, items in
            var amounts: [String: Decimal] = [:]
            for item in items {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, ["cpu", "memory", "ephemeral-storage", "pid"].contains(parts[0]),
                    let quantity = try? Quantity(parts[1]), quantity.decimal >= 0
                else { return false }
                amounts[parts[0]] = quantity.decimal
            }
            set(&settings, amounts)
            return true
        }
    }

    private static func bind(
        _ name: String, optional: Bool, _ set: @escaping @Sendable (inout AgentSettings, BindAddress?) -> Void
    ) -> SettingKey {
        SettingKey(name: name) { settings, value in
            if optional && (value.isEmpty || value == "0") {
                set(&settings, nil)
                return .success(())
            }
            guard let address = BindAddress(parsing: value), IPAddressText.isValid(address.host) || address.host == "localhost" else {
                return .failure(Refusal(expected: "host:port such as 127.0.0.1:10248 or [::1]:10248" + (optional ? ", or \"\" to disable" : "")))
            }
            set(&settings, address)
            return .success(())
        }
    }

    private static func list(
        _ name: String, expected: String, _ set: @escaping @Sendable (inout AgentSettings, [String]) -> Bool
    ) -> SettingKey {
        SettingKey(name: name) { settings, value in
            let items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !items.isEmpty, set(&settings, items) else { return .failure(Refusal(expected: expected)) }
            return .success(())
        }
    }
}

/// Sizes written as the kubelet writes them: `10Mi`, `500Ki`, `1Gi`, `1048576`.
enum ByteSize {
    static func parse(_ text: String) -> Int? {
        let units: [(String, Int)] = [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("K", 1000), ("M", 1_000_000), ("G", 1_000_000_000)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let number = Int(text.dropLast(suffix.count)), number >= 0 else { return nil }
            return number.multipliedReportingOverflow(by: factor).overflow ? nil : number * factor
        }
        return Int(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}

/// Kubernetes label syntax: `[prefix/]name` with a DNS-subdomain prefix and a 63-character name.
enum LabelText {
    static func isValidKey(_ key: String) -> Bool {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let name = parts.last, isValidValue(String(name)), !name.isEmpty else { return false }
        if parts.count == 2 {
            let prefix = parts[0]
            guard !prefix.isEmpty, prefix.count <= 253,
                prefix.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }) else { return false }
        }
        return true
    }

    /// Empty, or up to 63 of `[A-Za-z0-9-_.]` starting and ending alphanumeric.
    static func isValidValue(_ value: String) -> Bool {
        guard value.count <= 63, value.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || "-_.".contains($0) }) else { return false }
        guard let first = value.first, let last = value.last else { return true }
        return first.isLetter || first.isNumber ? last.isLetter || last.isNumber : false
    }
}

/// Validation of IP address and CIDR text, by the C library's own parser.
enum IPAddressText {
    static func isValid(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    static func isValidCIDR(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]) else { return false }
        let address = String(parts[0])
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, address, &v4) == 1 { return (0...32).contains(bits) }
        if inet_pton(AF_INET6, address, &v6) == 1 { return (0...128).contains(bits) }
        return false
    }
}
