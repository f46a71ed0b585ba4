import Foundation
import Testing

@testable import NodeAgent

@Suite("Settings: defaults, config file, flags")
struct SettingsTests {
    @Test("defaults follow kubelet and kube-proxy")
    func defaults() throws {
        let settings = try AgentSettings.resolve(file: nil, flags: [])
        #expect(settings.components == [.kubelet, .proxy])
        #expect(settings.proxyMode == .ipvs)
        #expect(settings.ipvsScheduler == .rr)
        #expect(settings.ipvsSyncPeriod == .seconds(30))
        #expect(settings.iptablesMinSyncPeriod == .seconds(1))
        #expect(settings.healthzBindAddress == BindAddress(host: "127.0.0.1", port: 10248))
        #expect(settings.metricsBindAddress == BindAddress(host: "127.0.0.1", port: 10249))
        #expect(settings.containerRuntimeEndpoint.socketPath == "/run/containerd/containerd.sock")
        #expect(settings.cniConfDir == "/etc/cni/net.d")
        #expect(settings.cniBinDir == "/opt/cni/bin")
        #expect(settings.effectiveLogLevel == .info)
    }

    @Test("flags win over the config file, which wins over defaults")
    func precedence() throws {
        let file = try ConfigFile(
            path: "c.yaml",
            yaml: """
                proxy-mode: iptables
                ipvs-scheduler: lc
                cluster-cidr: [10.244.0.0/16, "fd00:10:244::/56"]
                components: proxy
                """
        )
        let settings = try AgentSettings.resolve(file: file, flags: [("ipvs-scheduler", "sh")])
        #expect(settings.proxyMode == .iptables)
        #expect(settings.ipvsScheduler == .sh)
        #expect(settings.clusterCIDRs == ["10.244.0.0/16", "fd00:10:244::/56"])
        #expect(settings.components == [.proxy])
    }

    @Test("an unknown config key is refused with its line and the closest known key")
    func unknownKey() {
        #expect {
            _ = try ConfigFile(path: "/etc/node-agent/config.yaml", yaml: "v: 2\nproxy-mod: ipvs\n")
        } throws: { error in
            let error = error as! ConfigFileError
            return error.line == 2 && error.description.contains("unknown key \"proxy-mod\"")
                && error.description.contains("did you mean \"proxy-mode\"") && error.description.contains("/etc/node-agent/config.yaml:2")
        }
    }

    @Test("a bad value names the key, the source and the allowed values", arguments: [
        ("proxy-mode", "userspace", "one of ipvs, iptables"),
        ("ipvs-scheduler", "fastest", "one of rr, lc, dh, sh, sed, nq, wrr, wlc, lblc, lblcr, mh"),
        ("ipvs-sync-period", "0s", "a positive duration"),
        ("iptables-min-sync-period", "soon", "a duration"),
        ("healthz-bind-address", "localhost", "host:port"),
        ("healthz-bind-address", "127.0.0.1:70000", "host:port"),
        ("node-ip", "10.0.0.300", "IP address"),
        ("cluster-cidr", "10.244.0.0/33", "CIDR"),
        ("components", "kubelet,scheduler", "kubelet, proxy"),
        ("container-runtime-endpoint", "tcp://1.2.3.4:5", "unix:///"),
        ("v", "11", "0 to 10"),
        ("log-level", "loud", "trace, debug, info"),
    ])
    func badValue(key: String, value: String, expected: String) {
        #expect {
            _ = try AgentSettings.resolve(file: nil, flags: [(key, value)])
        } throws: { error in
            let error = error as! SettingError
            return error.key == key && error.source == "--\(key)" && error.expected.contains(expected)
        }
    }

    @Test("a bad value in the file names the file and line")
    func badValueInFile() throws {
        let file = try ConfigFile(path: "c.yaml", yaml: "proxy-mode: ipvs\nipvs-scheduler: best\n")
        #expect(throws: SettingError(key: "ipvs-scheduler", value: "best", source: "c.yaml:2", expected: "one of rr, lc, dh, sh, sed, nq, wrr, wlc, lblc, lblcr, mh")) {
            _ = try AgentSettings.resolve(file: file, flags: [])
        }
    }

    @Test("malformed YAML and non-mapping documents are refused")
    func malformedFile() {
        #expect(throws: ConfigFileError.self) { _ = try ConfigFile(path: "c.yaml", yaml: "proxy-mode: [ipvs\n") }
        #expect(throws: ConfigFileError.self) { _ = try ConfigFile(path: "c.yaml", yaml: "- proxy-mode\n") }
        #expect(throws: ConfigFileError.self) { _ = try ConfigFile(path: "c.yaml", yaml: "v: 1\nv: 2\n") }
    }

    @Test("an empty file and an empty metrics address are accepted")
    func emptyValues() throws {
        let file = try ConfigFile(path: "c.yaml", yaml: "")
        let settings = try AgentSettings.resolve(file: file, flags: [("metrics-bind-address", "")])
        #expect(settings.metricsBindAddress == nil)
    }

    @Test("--v maps to levels and --log-level overrides it")
    func verbosity() throws {
        #expect(try AgentSettings.resolve(file: nil, flags: [("v", "4")]).effectiveLogLevel == .debug)
        #expect(try AgentSettings.resolve(file: nil, flags: [("v", "6")]).effectiveLogLevel == .trace)
        #expect(try AgentSettings.resolve(file: nil, flags: [("v", "6"), ("log-level", "warning")]).effectiveLogLevel == .warning)
    }

    @Test("Go durations parse and print as kubelet writes them")
    func durations() {
        #expect(GoDuration.parse("1m30s") == .seconds(90))
        #expect(GoDuration.parse("250ms") == .milliseconds(250))
        #expect(GoDuration.parse("2h") == .seconds(7200))
        #expect(GoDuration.parse("1.5s") == .milliseconds(1500))
        #expect(GoDuration.parse("0") == .zero)
        #expect(GoDuration.parse("10") == nil)
        #expect(GoDuration.parse("-1s") == nil)
        #expect(GoDuration.parse("5d") == nil)
        #expect(GoDuration.format(.seconds(90)) == "1m30s")
        #expect(GoDuration.format(.milliseconds(250)) == "250ms")
        #expect(GoDuration.format(.milliseconds(1500)) == "1.5s")
        #expect(GoDuration.format(.zero) == "0s")
        #expect(GoDuration.format(.seconds(3600)) == "1h")
    }

    @Test("every flag has a key and every key a flag")
    func flagsMatchKeys() throws {
        let command = try RunCommand.parse([])
        let flagKeys = Set(RunCommand.flagKeys)
        #expect(flagKeys == Set(SettingKey.all.map(\.name)))
        #expect(command.flagValues.isEmpty)
        let parsed = try RunCommand.parse(["--proxy-mode", "iptables", "--v", "3"])
        #expect(parsed.flagValues.map(\.key) == ["proxy-mode", "v"])
    }
}
