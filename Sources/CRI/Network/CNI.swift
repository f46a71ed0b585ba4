public import Foundation
public import Logging

/// A CNI network configuration list (`.conflist`), as the CNI spec defines it.
public struct CNINetworkList: Sendable {
    public var name: String
    public var cniVersion: String
    /// The plugin configurations in order, as JSON text (each gets `name`, `cniVersion`, `prevResult` on invocation).
    public var plugins: [String]
    /// Each plugin's `type`, the binary to run.
    public var pluginTypes: [String]
    /// The file it came from.
    public var source: String

    /// Parses a `.conflist` (or a single-plugin `.conf`, wrapped into a list of one).
    /// - Throws: ``ContainerRuntimeError`` `.cniConfigMissing` naming the file and the field at fault.
    public init(data: Data, source: String) throws {
        func bad(_ field: String, _ why: String) -> ContainerRuntimeError {
            ContainerRuntimeError(.cniConfigMissing, object: "CNI config \(source)", field: field, why)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw bad("(file)", "not a JSON object; fix or remove the file")
        }
        guard let name = object["name"] as? String, !name.isEmpty else { throw bad("name", "missing network name") }
        self.name = name
        self.cniVersion = object["cniVersion"] as? String ?? "0.4.0"
        self.source = source
        let rawPlugins: [[String: Any]]
        if let list = object["plugins"] as? [[String: Any]] {
            rawPlugins = list
        } else if object["type"] is String {
            rawPlugins = [object]
        } else {
            throw bad("plugins", "a .conflist needs a non-empty \"plugins\" array")
        }
        guard !rawPlugins.isEmpty else { throw bad("plugins", "the plugin list is empty") }
        for (index, plugin) in rawPlugins.enumerated() where !(plugin["type"] is String) {
            throw bad("plugins[\(index)].type", "each plugin needs a \"type\" naming its binary")
        }
        self.plugins = try rawPlugins.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
        self.pluginTypes = rawPlugins.map { $0["type"] as? String ?? "" }
    }

    /// The first `.conflist` in `directory` by name (then `.conf`/`.json` when no list exists), like kubelet.
    /// - Throws: `.cniConfigMissing` when the folder holds none.
    public static func load(directory: String) throws -> CNINetworkList {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let lists = files.filter { $0.hasSuffix(".conflist") }.sorted()
        let singles = files.filter { $0.hasSuffix(".conf") || $0.hasSuffix(".json") }.sorted()
        guard let file = lists.first ?? singles.first else {
            throw ContainerRuntimeError(
                .cniConfigMissing, object: "CNI config folder \(directory)", field: "--cni-conf-dir",
                "no .conflist found; install a CNI network configuration there or point --cni-conf-dir at one")
        }
        let path = directory.hasSuffix("/") ? directory + file : directory + "/" + file
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ContainerRuntimeError(.cniConfigMissing, object: "CNI config \(path)", "cannot read the file")
        }
        return try CNINetworkList(data: data, source: path)
    }
}

/// The parts of a CNI result the runtime uses.
public struct CNIResult: Sendable, Hashable {
    /// The raw result JSON, passed back as `prevResult` on CHECK and DEL.
    public var json: String
    /// Assigned addresses (without prefix length), in result order, those on `eth0` first.
    public var ips: [String]

    /// Parses a CNI result (spec 0.3.0 and later: `interfaces`, `ips[].address`).
    public init(json: String, interfaceName: String = "eth0") throws {
        self.json = json
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw ContainerRuntimeError(.cniFailed, object: "CNI result", "the plugin printed no JSON result: \(json.prefix(200))")
        }
        let interfaces = object["interfaces"] as? [[String: Any]] ?? []
        var primary: [String] = []
        var other: [String] = []
        for entry in object["ips"] as? [[String: Any]] ?? [] {
            guard let address = entry["address"] as? String else { continue }
            let ip = String(address.split(separator: "/").first ?? "")
            if let index = entry["interface"] as? Int, index < interfaces.count, interfaces[index]["name"] as? String == interfaceName {
                primary.append(ip)
            } else {
                other.append(ip)
            }
        }
        self.ips = (primary + other).filter { $0 != "127.0.0.1" && $0 != "::1" }
    }
}

/// Runs CNI plugins per the CNI spec: ADD through the chain with `prevResult`, DEL in reverse, CHECK.
///
/// `pluginNamespace` is the network namespace the plugins themselves run in: nil in production (the host's), or a
/// test's isolated node namespace (entered with `nsenter --net`), which is where the bridge they make then lives.
public struct CNIPluginRunner: Sendable {
    public var binDirectories: [String]
    public var pluginNamespace: String?
    public var timeout: Duration
    private let runner: any CommandRunning

    public init(binDirectories: [String], pluginNamespace: String? = nil, timeout: Duration = .seconds(120), runner: any CommandRunning = SubprocessCommandRunner()) {
        self.binDirectories = binDirectories
        self.pluginNamespace = pluginNamespace
        self.timeout = timeout
        self.runner = runner
    }

    /// `--cni-bin-dir` resolution: the given folders (`:`-separated); the default `/opt/cni/bin` falls back to
    /// Debian's `/usr/lib/cni`.
    public static func defaultBinDirectories(_ configured: String?) -> [String] {
        let directories = (configured ?? "/opt/cni/bin").split(separator: ":").map(String.init)
        return directories == ["/opt/cni/bin"] ? ["/opt/cni/bin", "/usr/lib/cni"] : directories
    }

    /// What identifies one attachment.
    public struct Attachment: Sendable, Hashable {
        public var containerID: String
        public var netnsPath: String
        public var interfaceName: String
        public var pod: PodIdentity

        public init(containerID: String, netnsPath: String, interfaceName: String = "eth0", pod: PodIdentity) {
            self.containerID = containerID
            self.netnsPath = netnsPath
            self.interfaceName = interfaceName
            self.pod = pod
        }
    }

    /// ADD through every plugin; on a failure the plugins already run are undone with DEL.
    /// - Throws: `.cniFailed` naming the plugin, with its error message.
    public func add(_ network: CNINetworkList, _ attachment: Attachment, logger: Logger) async throws -> CNIResult {
        var previous: String?
        for index in network.plugins.indices {
            do {
                previous = try await invoke("ADD", index, network, attachment, previous: previous)
            } catch {
                logger.warning(
                    "CNI ADD failed, undoing", metadata: ["network": "\(network.name)", "plugin": "\(network.pluginTypes[index])", "error": "\(error)"])
                try? await delete(network, attachment, previous: previous, logger: logger)
                throw error
            }
        }
        guard let previous else { throw ContainerRuntimeError(.cniFailed, object: "CNI network \(network.name)", "no plugin returned a result") }
        return try CNIResult(json: previous, interfaceName: attachment.interfaceName)
    }

    /// DEL through the plugins in reverse order. Idempotent: plugins treat missing resources as success.
    public func delete(_ network: CNINetworkList, _ attachment: Attachment, previous: String?, logger: Logger) async throws {
        var firstError: (any Error)?
        for index in network.plugins.indices.reversed() {
            do {
                _ = try await invoke("DEL", index, network, attachment, previous: previous)
            } catch {
                logger.warning("CNI DEL failed", metadata: ["network": "\(network.name)", "plugin": "\(network.pluginTypes[index])", "error": "\(error)"])
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
    }

    /// CHECK through every plugin with the cached result (CNI 0.4.0 and later).
    public func check(_ network: CNINetworkList, _ attachment: Attachment, previous: String) async throws {
        guard !network.cniVersion.hasPrefix("0.1"), !network.cniVersion.hasPrefix("0.2"), !network.cniVersion.hasPrefix("0.3") else { return }
        for index in network.plugins.indices {
            _ = try await invoke("CHECK", index, network, attachment, previous: previous)
        }
    }

    private func pluginPath(_ type: String) throws -> String {
        for directory in binDirectories {
            let path = directory.hasSuffix("/") ? directory + type : directory + "/" + type
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw ContainerRuntimeError(
            .cniFailed, object: "CNI plugin \"\(type)\"", field: "--cni-bin-dir",
            "not found in \(binDirectories.joined(separator: ", ")); install containernetworking-plugins or fix --cni-bin-dir")
    }

    /// Runs one plugin; returns its stdout (the result for ADD).
    private func invoke(
        _ command: String, _ index: Int, _ network: CNINetworkList, _ attachment: Attachment, previous: String?
    ) async throws -> String {
        let type = network.pluginTypes[index]
        let path = try pluginPath(type)
        var config = (try? JSONSerialization.jsonObject(with: Data(network.plugins[index].utf8)) as? [String: Any]) ?? [:]
        config["name"] = network.name
        config["cniVersion"] = network.cniVersion
        if let previous, let object = try? JSONSerialization.jsonObject(with: Data(previous.utf8)) { config["prevResult"] = object }
        // Unsorted: JSONSerialization sorts keys with a locale-aware compare that loads ICU's collator (megabytes that
        // stay resident), and plugins do not care about member order.
        let input = String(decoding: try JSONSerialization.data(withJSONObject: config), as: UTF8.self)
        let environment = CommandInvocation.helperEnvironment.merging([
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": attachment.containerID,
            "CNI_NETNS": attachment.netnsPath,
            "CNI_IFNAME": attachment.interfaceName,
            "CNI_PATH": binDirectories.joined(separator: ":"),
            "CNI_ARGS":
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=\(attachment.pod.namespace);K8S_POD_NAME=\(attachment.pod.name);K8S_POD_INFRA_CONTAINER_ID=\(attachment.containerID);K8S_POD_UID=\(attachment.pod.uid)",
        ]) { _, cni in cni }
        let invocation: CommandInvocation
        if let pluginNamespace {
            // nsenter joins only the network namespace (lighter than `ip netns exec`, which also remounts /sys).
            invocation = CommandInvocation(
                "nsenter", ["--net=\(PodNamespaces.netnsPath(pluginNamespace))", path], environment: environment, input: input, timeout: timeout)
        } else {
            invocation = CommandInvocation(path, [], environment: environment, input: input, timeout: timeout)
        }
        let result: CommandResult
        do {
            result = try await runner.run(invocation)
        } catch let error as CommandError {
            throw ContainerRuntimeError(.cniFailed, object: "CNI plugin \"\(type)\" (\(command))", "could not run the plugin", underlying: error)
        }
        guard result.status == 0 else {
            // Per the spec a failing plugin prints {"code":..., "msg":..., "details":...} on stdout.
            var message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            if let object = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] {
                let msg = object["msg"] as? String ?? ""
                let details = object["details"] as? String ?? ""
                message = [msg, details, message].filter { !$0.isEmpty }.joined(separator: ": ")
            }
            throw ContainerRuntimeError(
                .cniFailed, object: "CNI plugin \"\(type)\" (\(command)) for pod \(attachment.pod)",
                "\(message.isEmpty ? "exit status \(result.status)" : message); check the network config \(network.source)")
        }
        return result.stdout
    }
}
