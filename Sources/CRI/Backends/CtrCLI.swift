public import Logging
import Foundation

/// containerd's own `ctr` client: always installed with containerd, and the backend verified here against a
/// live containerd. Every call passes `--address` and `--namespace k8s.io` and goes through the one runner.
///
/// ctr 1.6 prints JSON for `containers info` and `content get`; lists (`tasks ls`, `images ls`, `snapshots ls`)
/// are columns of single tokens, parsed by token (never by column offsets).
public struct CtrCLI: RuntimeCLI {
    public var kind: RuntimeCLIKind { .ctr }
    public let executable: String
    public let socket: String
    public let namespace: String
    public let timeout: Duration
    private let runner: any CommandRunning

    public init(
        executable: String = "ctr", socket: String = RuntimeEndpoint.containerdDefault.socketPath, namespace: String = "k8s.io",
        timeout: Duration = .seconds(120), runner: any CommandRunning = SubprocessCommandRunner()
    ) {
        self.executable = executable
        self.socket = socket
        self.namespace = namespace
        self.timeout = timeout
        self.runner = runner
    }

    private func invocation(_ arguments: [String], timeout: Duration? = nil) -> CommandInvocation {
        CommandInvocation(
            executable, ["--address", socket, "--namespace", namespace, "--connect-timeout", "5s"] + arguments,
            environment: CommandInvocation.helperEnvironment, timeout: timeout ?? self.timeout)
    }

    @discardableResult
    private func checked(_ arguments: [String], timeout: Duration? = nil) async throws -> String {
        try await runner.checked(invocation(arguments, timeout: timeout))
    }

    private static func isNotFound(_ result: CommandResult) -> Bool {
        result.stderr.contains("not found") || result.stderr.contains("no such")
    }

    @discardableResult
    public func ping() async throws -> String {
        Self.parseServerVersion(try await checked(["version"], timeout: min(timeout, .seconds(10)))) ?? "unknown"
    }

    /// The `Version:` under `Server:` in `ctr version` output.
    public static func parseServerVersion(_ text: String) -> String? {
        guard let server = text.range(of: "Server:") else { return nil }
        for line in text[server.upperBound...].split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("Version:") { return trimmed.dropFirst("Version:".count).trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    public func image(_ reference: String) async throws -> ImageStatus? {
        let output = try await checked(["images", "ls", "name==\(reference)"])
        for line in output.split(separator: "\n").dropFirst() {
            let tokens = line.split(whereSeparator: \.isWhitespace)
            guard tokens.first.map(String.init) == reference else { continue }
            if let digest = tokens.first(where: { Self.isDigest($0) }) {
                return ImageStatus(reference: reference, digest: String(digest))
            }
        }
        return nil
    }

    static func isDigest(_ token: Substring) -> Bool {
        token.hasPrefix("sha256:") && token.count == 71 && token.dropFirst(7).allSatisfy(\.isHexDigit)
    }

    public func imageEntrypoint(_ reference: String) async throws -> (entrypoint: [String], cmd: [String]) {
        guard let status = try await image(reference) else { return ([], []) }
        var digest = status.digest
        for _ in 0..<3 {
            let text = try await checked(["content", "get", digest])
            guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { break }
            if let manifests = object["manifests"] as? [[String: Any]] {
                let chosen =
                    manifests.first {
                        let platform = $0["platform"] as? [String: Any]
                        return platform?["os"] as? String == "linux" && platform?["architecture"] as? String == Self.architecture
                    } ?? manifests.first
                guard let next = chosen?["digest"] as? String else { break }
                digest = next
            } else if let config = object["config"] as? [String: Any], let next = config["digest"] as? String, object["layers"] != nil {
                digest = next
            } else {
                let config = object["config"] as? [String: Any] ?? [:]
                return (config["Entrypoint"] as? [String] ?? [], config["Cmd"] as? [String] ?? [])
            }
        }
        return ([], [])
    }

    static var architecture: String {
        #if arch(arm64)
        "arm64"
        #else
        "amd64"
        #endif
    }

    public func pull(_ reference: String, logger: Logger) async throws -> ImageStatus {
        let pull = invocation(["images", "pull", reference])
        let result = try await runner.stream(pull) { line in
            let text = line.trimmingCharacters(in: .whitespaces)
            if !text.isEmpty { logger.debug("pull progress", metadata: ["image": "\(reference)", "line": "\(text)"]) }
        }
        guard result.status == 0 else { throw CommandError.failed(pull, result) }
        guard let status = try await image(reference) else {
            throw CommandError.failed(pull, CommandResult(status: 0, stdout: "", stderr: "image absent after a successful pull"))
        }
        return status
    }

    /// The `ctr containers create` arguments for `spec`.
    public static func createArguments(_ spec: CLIContainerSpec) -> [String] {
        var arguments = ["containers", "create"] + flags(spec)
        arguments += [spec.image, spec.id]
        // `containers create` reorders flags: `--` keeps the process's own flags (`sh -c`) away from ctr.
        if !spec.processArgs.isEmpty { arguments += ["--"] + spec.processArgs }
        return arguments
    }

    /// The `ctr run --detach` arguments for `spec` (`run` takes everything after the ID literally).
    public static func runArguments(_ spec: CLIContainerSpec) -> [String] {
        var arguments = ["run", "--detach"]
        if let logURI = spec.logURI { arguments += ["--log-uri", logURI] } else { arguments.append("--null-io") }
        return arguments + flags(spec) + [spec.image, spec.id] + spec.processArgs
    }

    static func flags(_ spec: CLIContainerSpec) -> [String] {
        var arguments: [String] = []
        for key in spec.labels.keys.sorted() { arguments += ["--label", "\(key)=\(spec.labels[key]!)"] }
        for variable in spec.env { arguments += ["--env", "\(variable.name)=\(variable.value)"] }
        if let directory = spec.workingDirectory { arguments += ["--cwd", directory] }
        for mount in spec.mounts {
            arguments += ["--mount", "type=bind,src=\(mount.hostPath),dst=\(mount.containerPath),options=rbind:\(mount.readOnly ? "ro" : "rw")"]
        }
        if spec.hostNetwork {
            arguments.append("--net-host")
        }
        for type in spec.namespaces.keys.sorted() { arguments += ["--with-ns", "\(type):\(spec.namespaces[type]!)"] }
        if let memory = spec.resources.memoryLimitBytes { arguments += ["--memory-limit", String(memory)] }
        if let quota = spec.resources.cpuQuota { arguments += ["--cpu-quota", String(quota)] }
        if let period = spec.resources.cpuPeriod { arguments += ["--cpu-period", String(period)] }
        if let shares = spec.resources.cpuShares { arguments += ["--cpu-shares", String(shares)] }
        if spec.readOnlyRootFilesystem { arguments.append("--read-only") }
        if spec.privileged { arguments.append("--privileged") }
        return arguments
    }

    public func create(_ spec: CLIContainerSpec) async throws {
        try await checked(Self.createArguments(spec))
    }

    public func run(_ spec: CLIContainerSpec) async throws {
        try await checked(Self.runArguments(spec))
    }

    public func start(_ id: String, logURI: String?) async throws {
        var arguments = ["tasks", "start", "--detach"]
        if let logURI { arguments += ["--log-uri", logURI] } else { arguments.append("--null-io") }
        try await checked(arguments + [id])
    }

    public func containerIDs() async throws -> [String] {
        try await checked(["containers", "ls", "--quiet"]).split(separator: "\n").map { String($0) }.filter { !$0.isEmpty }
    }

    public func container(_ id: String) async throws -> CLIContainer? {
        let call = invocation(["containers", "info", id])
        let result = try await runner.run(call)
        if result.status != 0 {
            if Self.isNotFound(result) { return nil }
            throw CommandError.failed(call, result)
        }
        return try Self.parseContainerInfo(result.stdout)
    }

    /// Parses `ctr containers info` JSON.
    public static func parseContainerInfo(_ text: String) throws -> CLIContainer? {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], let id = object["ID"] as? String
        else { return nil }
        return CLIContainer(
            id: id, image: object["Image"] as? String ?? "", labels: object["Labels"] as? [String: String] ?? [:],
            createdAt: (object["CreatedAt"] as? String).flatMap(RFC3339Nano.parse) ?? Date(timeIntervalSince1970: 0))
    }

    public func tasks() async throws -> [String: CLITask] {
        Self.parseTasks(try await checked(["tasks", "ls"]))
    }

    /// Parses `ctr tasks ls`: a header, then `ID PID STATUS` per line.
    public static func parseTasks(_ text: String) -> [String: CLITask] {
        var tasks: [String: CLITask] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let tokens = line.split(whereSeparator: \.isWhitespace)
            guard tokens.count >= 3, let pid = Int32(tokens[1]) else { continue }
            let id = String(tokens[0])
            tasks[id] = CLITask(id: id, pid: pid, status: CLITask.Status(rawValue: String(tokens[2])) ?? .unknown)
        }
        return tasks
    }

    public func kill(_ id: String, signal: String) async throws {
        let call = invocation(["tasks", "kill", "--signal", signal, id])
        let result = try await runner.run(call)
        if result.status != 0 && !Self.isNotFound(result) && !result.stderr.contains("process already finished") {
            throw CommandError.failed(call, result)
        }
    }

    public func deleteTask(_ id: String) async throws -> Int32? {
        let call = invocation(["tasks", "delete", id])
        let result = try await runner.run(call)
        if result.status != 0 {
            if Self.isNotFound(result) { return nil }
            throw CommandError.failed(call, result)
        }
        return Self.exitCode(fromDeleteWarning: result.stderr) ?? 0
    }

    /// ctr prints `task <id> exit with non-zero exit code <n>` when it deletes a task that failed.
    static func exitCode(fromDeleteWarning text: String) -> Int32? {
        guard let range = text.range(of: "non-zero exit code ") else { return nil }
        return Int32(text[range.upperBound...].prefix { $0.isNumber })
    }

    public func deleteContainer(_ id: String) async throws {
        let call = invocation(["containers", "delete", id])
        let result = try await runner.run(call)
        if result.status != 0 && !Self.isNotFound(result) { throw CommandError.failed(call, result) }
    }

    public func setLabels(_ id: String, _ labels: [String: String]) async throws {
        try await checked(["containers", "label", id] + labels.keys.sorted().map { "\($0)=\(labels[$0]!)" })
    }

    public func exec(_ id: String, execID: String, command: [String], user: UInt32?, timeout: Duration) async throws -> ExecResult {
        var arguments = ["tasks", "exec", "--exec-id", execID]
        if let user { arguments += ["--user", String(user)] }
        let call = invocation(arguments + [id] + command, timeout: timeout)
        do {
            let result = try await runner.run(call)
            if result.status != 0 && result.stderr.contains("ctr:") && Self.isNotFound(result) { throw CommandError.failed(call, result) }
            return ExecResult(exitCode: result.status, stdout: result.stdout, stderr: result.stderr)
        } catch let error as CommandError where error.isTimeout {
            // The ctr client is gone but the process inside the container is not: kill it too.
            _ = try? await runner.run(invocation(["tasks", "kill", "--exec-id", execID, "--signal", "SIGKILL", id], timeout: .seconds(10)))
            throw error
        }
    }

    public func exitEvents(_ handler: @Sendable (CLIExitEvent) async -> Void) async throws {
        let call = CommandInvocation(
            executable, ["--address", socket, "events", "topic==\"/tasks/exit\",namespace==\"\(namespace)\""],
            environment: CommandInvocation.helperEnvironment, timeout: .seconds(1 << 40))
        let result = try await runner.stream(call) { line in
            if let event = Self.parseExitEvent(line) { await handler(event) }
        }
        if result.status != 0 && !Task.isCancelled { throw CommandError.failed(call, result) }
    }

    /// Parses one `ctr events` line: `<time> <namespace> /tasks/exit {json}`; ignores exec process exits.
    public static func parseExitEvent(_ line: String) -> CLIExitEvent? {
        guard line.contains("/tasks/exit"), let brace = line.firstIndex(of: "{"),
            let object = try? JSONSerialization.jsonObject(with: Data(line[brace...].utf8)) as? [String: Any],
            let container = object["container_id"] as? String
        else { return nil }
        if let process = object["id"] as? String, process != container { return nil }
        let status = (object["exit_status"] as? NSNumber)?.int32Value ?? 0
        let exitedAt = (object["exited_at"] as? String).flatMap(RFC3339Nano.parse) ?? Date()
        return CLIExitEvent(containerID: container, exitCode: status, exitedAt: exitedAt)
    }

    public func snapshotKeys() async throws -> [String] {
        try await checked(["snapshots", "ls"]).split(separator: "\n").dropFirst().compactMap {
            $0.split(whereSeparator: \.isWhitespace).first.map(String.init)
        }
    }
}
