public import Logging
import Foundation
import Synchronization

/// nerdctl, containerd's Docker-compatible client: used with `--runtime-cli=nerdctl`, or when nerdctl is on PATH
/// and ctr is not. Parses only nerdctl's documented machine formats: `--format '{{json .}}'` lines for `ps`,
/// dockercompat JSON for `inspect` and `image inspect`, JSON lines for `events`.
///
/// nerdctl names containers; it picks its own 64-hex IDs. The runtime's IDs become nerdctl container names, and
/// events (which carry containerd IDs) are mapped back through `inspect`.
///
/// Not verified against a live nerdctl here (it is not packaged for Debian 12): its contract tests replay the
/// documented formats through a double.
public struct NerdctlCLI: RuntimeCLI {
    public var kind: RuntimeCLIKind { .nerdctl }
    public let executable: String
    public let socket: String
    public let namespace: String
    public let timeout: Duration
    private let runner: any CommandRunning
    private let names = NameCache()

    public init(
        executable: String = "nerdctl", socket: String = RuntimeEndpoint.containerdDefault.socketPath, namespace: String = "k8s.io",
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
            executable, ["--address", socket, "--namespace", namespace] + arguments, environment: CommandInvocation.helperEnvironment,
            timeout: timeout ?? self.timeout)
    }

    @discardableResult
    private func checked(_ arguments: [String], timeout: Duration? = nil) async throws -> String {
        try await runner.checked(invocation(arguments, timeout: timeout))
    }

    private static func isNotFound(_ result: CommandResult) -> Bool {
        result.stderr.contains("not found") || result.stderr.contains("no such")
    }

    private static func jsonArray(_ text: String) -> [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]] ?? []
    }

    @discardableResult
    public func ping() async throws -> String {
        Self.parseServerVersion(try await checked(["version", "--format", "{{json .}}"], timeout: min(timeout, .seconds(10)))) ?? "unknown"
    }

    /// containerd's version from `nerdctl version --format '{{json .}}'` (`Server.Components[name=containerd].Version`).
    public static func parseServerVersion(_ text: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let components = (object["Server"] as? [String: Any])?["Components"] as? [[String: Any]]
        else { return nil }
        return components.first { ($0["Name"] as? String) == "containerd" }?["Version"] as? String
    }

    public func image(_ reference: String) async throws -> ImageStatus? {
        let call = invocation(["image", "inspect", "--mode", "dockercompat", reference])
        let result = try await runner.run(call)
        if result.status != 0 {
            if Self.isNotFound(result) { return nil }
            throw CommandError.failed(call, result)
        }
        guard let object = Self.jsonArray(result.stdout).first else { return nil }
        let repoDigest = (object["RepoDigests"] as? [String])?.first
        let digest = repoDigest.flatMap { $0.split(separator: "@").last.map(String.init) } ?? object["Id"] as? String ?? ""
        return ImageStatus(reference: reference, digest: digest)
    }

    public func imageEntrypoint(_ reference: String) async throws -> (entrypoint: [String], cmd: [String]) {
        let text = try await checked(["image", "inspect", "--mode", "dockercompat", reference])
        let config = Self.jsonArray(text).first?["Config"] as? [String: Any] ?? [:]
        return (config["Entrypoint"] as? [String] ?? [], config["Cmd"] as? [String] ?? [])
    }

    public func pull(_ reference: String, logger: Logger) async throws -> ImageStatus {
        let pull = invocation(["pull", "--quiet", reference])
        let result = try await runner.stream(pull) { line in
            logger.debug("pull progress", metadata: ["image": "\(reference)", "line": "\(line)"])
        }
        guard result.status == 0 else { throw CommandError.failed(pull, result) }
        guard let status = try await image(reference) else {
            throw CommandError.failed(pull, CommandResult(status: 0, stdout: "", stderr: "image absent after a successful pull"))
        }
        return status
    }

    /// The `nerdctl create` arguments for `spec`.
    public static func createArguments(_ spec: CLIContainerSpec, command: [String] = ["create"]) -> [String] {
        var arguments = command + ["--name", spec.id]
        for key in spec.labels.keys.sorted() { arguments += ["--label", "\(key)=\(spec.labels[key]!)"] }
        for variable in spec.env { arguments += ["--env", "\(variable.name)=\(variable.value)"] }
        if let directory = spec.workingDirectory { arguments += ["--workdir", directory] }
        for mount in spec.mounts {
            arguments += ["--volume", "\(mount.hostPath):\(mount.containerPath):\(mount.readOnly ? "ro" : "rw")"]
        }
        if spec.hostNetwork {
            arguments += ["--network", "host"]
        } else if let netns = spec.namespaces["network"] {
            arguments += ["--network", "ns:\(netns)"]
        } else {
            arguments += ["--network", "none"]
        }
        if let hostname = spec.hostname, !spec.hostNetwork { arguments += ["--hostname", hostname] }
        if let memory = spec.resources.memoryLimitBytes { arguments += ["--memory", String(memory)] }
        if let quota = spec.resources.cpuQuota { arguments += ["--cpu-quota", String(quota)] }
        if let period = spec.resources.cpuPeriod { arguments += ["--cpu-period", String(period)] }
        if let shares = spec.resources.cpuShares { arguments += ["--cpu-shares", String(shares)] }
        if let user = spec.user { arguments += ["--user", spec.group.map { "\(user):\($0)" } ?? String(user)] }
        if spec.readOnlyRootFilesystem { arguments.append("--read-only") }
        if spec.privileged { arguments.append("--privileged") }
        if let logURI = spec.logURI { arguments += ["--log-driver", logURI] }
        if let first = spec.processArgs.first { arguments += ["--entrypoint", first] }
        arguments.append(spec.image)
        arguments += spec.processArgs.dropFirst()
        return arguments
    }

    public func create(_ spec: CLIContainerSpec) async throws {
        try await checked(Self.createArguments(spec))
    }

    public func run(_ spec: CLIContainerSpec) async throws {
        try await checked(Self.createArguments(spec, command: ["run", "--detach"]))
    }

    public func start(_ id: String, logURI: String?) async throws {
        try await checked(["start", id])
    }

    /// `nerdctl ps -a --format '{{json .}}'`, one object per line.
    private func psLines() async throws -> [[String: Any]] {
        let text = try await checked(["ps", "--all", "--no-trunc", "--format", "{{json .}}"])
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    public func containerIDs() async throws -> [String] {
        try await psLines().compactMap { $0["Names"] as? String }
    }

    private func inspect(_ id: String) async throws -> [String: Any]? {
        let call = invocation(["container", "inspect", "--mode", "dockercompat", id])
        let result = try await runner.run(call)
        if result.status != 0 {
            if Self.isNotFound(result) { return nil }
            throw CommandError.failed(call, result)
        }
        return Self.jsonArray(result.stdout).first
    }

    public func container(_ id: String) async throws -> CLIContainer? {
        guard let object = try await inspect(id) else { return nil }
        let config = object["Config"] as? [String: Any] ?? [:]
        let name = (object["Name"] as? String).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } ?? id
        if let full = object["Id"] as? String { names.withLock { $0[full] = name } }
        return CLIContainer(
            id: name, image: object["Image"] as? String ?? config["Image"] as? String ?? "", labels: config["Labels"] as? [String: String] ?? [:],
            createdAt: (object["Created"] as? String).flatMap(RFC3339Nano.parse) ?? Date(timeIntervalSince1970: 0))
    }

    public func tasks() async throws -> [String: CLITask] {
        var tasks: [String: CLITask] = [:]
        for line in try await psLines() {
            guard let name = line["Names"] as? String, let status = line["Status"] as? String else { continue }
            if let full = line["ID"] as? String { names.withLock { $0[full] = name } }
            let lower = status.lowercased()
            if lower.hasPrefix("up") {
                tasks[name] = CLITask(id: name, pid: 0, status: .running)
            } else if lower.hasPrefix("exited") {
                // "Exited (3) 2 seconds ago": the code is between the parentheses.
                let code = status.split(separator: "(").dropFirst().first?.prefix { $0 != ")" }
                tasks[name] = CLITask(id: name, pid: 0, status: .stopped, exitCode: code.flatMap { Int32($0) })
            }
        }
        return tasks
    }

    public func kill(_ id: String, signal: String) async throws {
        let call = invocation(["kill", "--signal", signal, id])
        let result = try await runner.run(call)
        if result.status != 0 && !Self.isNotFound(result) && !result.stderr.contains("not running") { throw CommandError.failed(call, result) }
    }

    public func deleteTask(_ id: String) async throws -> Int32? {
        // nerdctl keeps the task until `rm`; the exit code comes from inspect.
        guard let object = try await inspect(id), let state = object["State"] as? [String: Any] else { return nil }
        guard (state["Status"] as? String) == "exited" else { return nil }
        return (state["ExitCode"] as? NSNumber)?.int32Value
    }

    public func deleteContainer(_ id: String) async throws {
        let call = invocation(["rm", "--force", id])
        let result = try await runner.run(call)
        if result.status != 0 && !Self.isNotFound(result) { throw CommandError.failed(call, result) }
    }

    public func setLabels(_ id: String, _ labels: [String: String]) async throws {
        // nerdctl cannot relabel a container; the exit is read back from `inspect` instead.
    }

    public func exec(_ id: String, execID: String, command: [String], user: UInt32?, timeout: Duration) async throws -> ExecResult {
        var arguments = ["exec"]
        if let user { arguments += ["--user", String(user)] }
        let result = try await runner.run(invocation(arguments + [id] + command, timeout: timeout))
        return ExecResult(exitCode: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    public func exitEvents(_ handler: @Sendable (CLIExitEvent) async -> Void) async throws {
        let call = invocation(["events", "--format", "{{json .}}"], timeout: .seconds(1 << 40))
        let result = try await runner.stream(call) { line in
            guard let event = Self.parseEvent(line) else { return }
            var name = names.withLock { $0[event.containerID] }
            if name == nil, let object = try? await inspect(event.containerID), let found = object["Name"] as? String {
                name = found.hasPrefix("/") ? String(found.dropFirst()) : found
                names.withLock { $0[event.containerID] = name }
            }
            await handler(CLIExitEvent(containerID: name ?? event.containerID, exitCode: event.exitCode, exitedAt: event.exitedAt))
        }
        if result.status != 0 && !Task.isCancelled { throw CommandError.failed(call, result) }
    }

    /// Parses one `nerdctl events --format '{{json .}}'` line: `{"Topic":"/tasks/exit","Event":"{...}"}`.
    public static func parseEvent(_ line: String) -> CLIExitEvent? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            object["Topic"] as? String == "/tasks/exit", let eventText = object["Event"] as? String,
            let event = try? JSONSerialization.jsonObject(with: Data(eventText.utf8)) as? [String: Any],
            let container = event["container_id"] as? String
        else { return nil }
        if let process = event["id"] as? String, process != container { return nil }
        return CLIExitEvent(
            containerID: container, exitCode: (event["exit_status"] as? NSNumber)?.int32Value ?? 0,
            exitedAt: (event["exited_at"] as? String).flatMap(RFC3339Nano.parse) ?? Date())
    }

    public func snapshotKeys() async throws -> [String] { [] }
}

/// nerdctl's 64-hex container IDs to the names the runtime uses.
final class NameCache: Sendable {
    private let storage = Mutex<[String: String]>([:])
    func withLock<T>(_ body: (inout [String: String]) -> T) -> T { storage.withLock { body(&$0) } }
}
