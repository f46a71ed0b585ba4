public import CRI
import Foundation
import Synchronization

/// A stand-in for the `nerdctl` binary (not packaged for Debian 12), for the nerdctl backend's contract tests.
///
/// It keeps containers and images in memory and answers in nerdctl's documented machine formats (nerdctl's
/// docs/command-reference.md): `ps --format '{{json .}}'` (one JSON object per line, `Status` like `Up` or
/// `Exited (3) 1 second ago`, `Labels` as `k=v,k=v`), `inspect --mode dockercompat` and `image inspect --mode
/// dockercompat` (Docker-compatible JSON arrays), `events --format '{{json .}}'` (`Topic`, `Event` as JSON text
/// carrying containerd's 64-hex container ID). Errors go to stderr with exit status 1, like nerdctl's.
///
/// Processes are simulated from their argv: `exit N` ends at once with N; `trap 'exit 0' TERM` ends on TERM
/// with 0; `trap '' TERM` ignores TERM; anything else ends on TERM with 143; KILL ends with 137.
/// Use hostNetwork pods with it: they need no namespaces, CNI or root.
public final class NerdctlDouble: CommandRunning, Sendable {
    struct Container {
        var id: String
        var name: String
        var image: String
        var labels: [String: String]
        var args: [String]
        var status = "created"
        var exitCode: Int32 = 0
        var created = Date()
        var started: Date?
        var finished: Date?
        var pid: Int32 = 0
    }

    struct Image {
        var id: String
        var digest: String
        var entrypoint: [String]?
        var cmd: [String]
    }

    private struct State {
        var images: [String: Image] = [:]
        var pullable: Set<String> = []
        var containers: [String: Container] = [:]
        var listeners: [UUID: AsyncStream<String>.Continuation] = [:]
        var commands: [[String]] = []
        var nextPID: Int32 = 1000
    }

    private let state = Mutex(State())

    public init() {}

    /// Every argv run through the double, in order.
    public var commands: [[String]] { state.withLock { $0.commands } }

    /// Makes an image present, as `nerdctl load` would.
    public func addImage(_ reference: String, entrypoint: [String]? = nil, cmd: [String] = ["/bin/sh"]) {
        let digest = "sha256:" + Self.hex(64)
        state.withLock { $0.images[reference] = Image(id: "sha256:" + Self.hex(64), digest: digest, entrypoint: entrypoint, cmd: cmd) }
    }

    /// Lets `nerdctl pull` fetch `reference`.
    public func allowPull(_ reference: String) { state.withLock { _ = $0.pullable.insert(reference) } }

    /// Names of the containers the double holds.
    public var containerNames: [String] { state.withLock { $0.containers.values.map(\.name).sorted() } }

    static func hex(_ count: Int) -> String {
        String((0..<count).map { _ in "0123456789abcdef".randomElement()! })
    }

    public func run(_ invocation: CommandInvocation) async throws -> CommandResult {
        try respond(invocation)
    }

    public func stream(_ invocation: CommandInvocation, line: @Sendable (String) async -> Void) async throws -> CommandResult {
        let arguments = Self.stripGlobals(invocation.arguments)
        guard arguments.first == "events" else {
            let result = try respond(invocation)
            for text in result.stdout.split(separator: "\n") { await line(String(text)) }
            return CommandResult(status: result.status, stdout: "", stderr: result.stderr)
        }
        let (events, continuation) = AsyncStream.makeStream(of: String.self)
        let key = UUID()
        state.withLock {
            $0.commands.append([invocation.executable] + invocation.arguments)
            $0.listeners[key] = continuation
        }
        defer { _ = state.withLock { $0.listeners.removeValue(forKey: key) } }
        await withTaskCancellationHandler {
            for await event in events { await line(event) }
        } onCancel: {
            continuation.finish()
        }
        return CommandResult(status: 0, stdout: "", stderr: "")
    }

    static func stripGlobals(_ arguments: [String]) -> [String] {
        var rest = arguments[...]
        while let first = rest.first, first == "--address" || first == "--namespace" {
            rest = rest.dropFirst(2)
        }
        return Array(rest)
    }

    private func ok(_ stdout: String = "") -> CommandResult { CommandResult(status: 0, stdout: stdout, stderr: "") }
    private func fail(_ message: String) -> CommandResult { CommandResult(status: 1, stdout: "", stderr: "time=\"...\" level=fatal msg=\"\(message)\"\n") }

    private func json(_ object: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    private func respond(_ invocation: CommandInvocation) throws -> CommandResult {
        let executable = (invocation.executable as NSString).lastPathComponent
        state.withLock { $0.commands.append([invocation.executable] + invocation.arguments) }
        guard executable == "nerdctl" else { throw CommandErrorForDouble.notFound(invocation) }
        let arguments = Self.stripGlobals(invocation.arguments)
        guard let command = arguments.first else { return fail("no command") }
        let rest = Array(arguments.dropFirst())
        switch command {
        case "version":
            return ok(json(["Client": ["Version": "v2.0.0"], "Server": ["Components": [["Name": "containerd", "Version": "v1.7.0"]]]]) + "\n")
        case "image":
            guard rest.first == "inspect", let reference = rest.last else { return fail("unknown image command") }
            guard let image = state.withLock({ $0.images[reference] }) else { return fail("no such image: \(reference)") }
            let repository = reference.split(separator: ":").dropLast().joined(separator: ":")
            return ok(
                json([[
                    "Id": image.id, "RepoTags": [reference], "RepoDigests": ["\(repository)@\(image.digest)"],
                    "Config": ["Entrypoint": image.entrypoint as Any? ?? NSNull(), "Cmd": image.cmd, "Env": ["PATH=/bin"]],
                ]]) + "\n")
        case "pull":
            guard let reference = rest.last else { return fail("pull needs a reference") }
            guard state.withLock({ $0.pullable.contains(reference) }) else {
                return fail("failed to resolve reference \"\(reference)\": failed to do request: connection refused")
            }
            addImage(reference)
            return ok()
        case "create", "run":
            return create(rest, start: command == "run")
        case "start":
            guard let name = rest.last else { return fail("start needs a container") }
            return start(name)
        case "ps":
            return ok(ps())
        case "container", "inspect":
            guard let key = rest.last else { return fail("inspect needs a container") }
            return inspect(key)
        case "kill":
            var signal = "KILL"
            if let index = rest.firstIndex(of: "--signal"), index + 1 < rest.count { signal = rest[index + 1] }
            guard let name = rest.last else { return fail("kill needs a container") }
            return kill(name, signal: signal)
        case "rm":
            guard let name = rest.last else { return fail("rm needs a container") }
            let removed = state.withLock { state -> Bool in
                guard let key = state.containers.first(where: { $0.value.name == name || $0.key == name })?.key else { return false }
                state.containers[key] = nil
                return true
            }
            return removed ? ok(name + "\n") : fail("no such container: \(name)")
        case "exec":
            var rest = rest[...]
            if rest.first == "--user" { rest = rest.dropFirst(2) }
            guard let name = rest.first else { return fail("exec needs a container") }
            let argv = Array(rest.dropFirst())
            guard let container = find(name), container.status == "running" else { return fail("container \(name) is not running") }
            _ = container
            if argv.count == 3, argv[1] == "-c", let code = Int32(argv[2].replacingOccurrences(of: "exit ", with: "")) {
                return CommandResult(status: code, stdout: "", stderr: "")
            }
            if argv.first == "echo" { return ok(argv.dropFirst().joined(separator: " ") + "\n") }
            return ok()
        default:
            return fail("unknown command \"\(command)\" for \"nerdctl\"")
        }
    }

    private func find(_ key: String) -> Container? {
        state.withLock { state in state.containers.values.first { $0.name == key || $0.id == key } }
    }

    private static let valued: Set<String> = [
        "--name", "--label", "--env", "--workdir", "--volume", "--network", "--hostname", "--memory", "--cpu-quota", "--cpu-period",
        "--cpu-shares", "--user", "--log-driver", "--entrypoint",
    ]

    private func create(_ arguments: [String], start: Bool) -> CommandResult {
        var name: String?
        var labels: [String: String] = [:]
        var entrypoint: String?
        var index = 0
        while index < arguments.count, arguments[index].hasPrefix("--") {
            let flag = arguments[index]
            if Self.valued.contains(flag) {
                guard index + 1 < arguments.count else { return fail("flag needs an argument: \(flag)") }
                let value = arguments[index + 1]
                switch flag {
                case "--name": name = value
                case "--label":
                    let parts = value.split(separator: "=", maxSplits: 1)
                    labels[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
                case "--entrypoint": entrypoint = value
                case "--network" where !(value == "host" || value == "none" || value.hasPrefix("ns:")):
                    return fail("network \"\(value)\" not found")
                default: break
                }
                index += 2
            } else if ["--read-only", "--privileged", "--detach"].contains(flag) {
                index += 1
            } else {
                return fail("unknown flag: \(flag)")
            }
        }
        guard index < arguments.count else { return fail("requires at least 1 argument") }
        let reference = arguments[index]
        guard let image = state.withLock({ $0.images[reference] }) else { return fail("no such image: \(reference)") }
        let rest = Array(arguments[(index + 1)...])
        let args = entrypoint.map { [$0] + rest } ?? (rest.isEmpty ? (image.entrypoint ?? []) + image.cmd : (image.entrypoint ?? []) + rest)
        let container = Container(id: Self.hex(64), name: name ?? Self.hex(12), image: reference, labels: labels, args: args)
        let duplicate = state.withLock { state -> Bool in
            if state.containers.values.contains(where: { $0.name == container.name }) { return true }
            state.containers[container.id] = container
            return false
        }
        if duplicate { return fail("name \"\(container.name)\" is already used") }
        if start { _ = self.start(container.name) }
        return ok(container.id + "\n")
    }

    private func start(_ name: String) -> CommandResult {
        let (result, exited): (CommandResult, Container?) = state.withLock { state in
            guard let key = state.containers.first(where: { $0.value.name == name || $0.key == name })?.key,
                var container = state.containers[key]
            else { return (fail("no such container: \(name)"), nil) }
            guard container.status == "created" else { return (fail("container \(name) is already \(container.status)"), nil) }
            container.status = "running"
            container.started = Date()
            state.nextPID += 1
            container.pid = state.nextPID
            state.containers[key] = container
            let script = container.args.last ?? ""
            if script.hasPrefix("exit "), let code = Int32(script.dropFirst(5)) {
                return (ok(), Self.end(&state, key: key, code: code))
            }
            return (ok(), nil)
        }
        if let exited { emitExit(exited) }
        return result
    }

    private static func end(_ state: inout State, key: String, code: Int32) -> Container? {
        guard var container = state.containers[key], container.status == "running" else { return nil }
        container.status = "exited"
        container.exitCode = code
        container.finished = Date()
        state.containers[key] = container
        return container
    }

    private func kill(_ name: String, signal: String) -> CommandResult {
        let (result, exited): (CommandResult, Container?) = state.withLock { state in
            guard let key = state.containers.first(where: { $0.value.name == name || $0.key == name })?.key, let container = state.containers[key]
            else { return (fail("no such container: \(name)"), nil) }
            guard container.status == "running" else { return (fail("cannot kill container \(name): container is not running"), nil) }
            let script = container.args.joined(separator: " ")
            switch signal.replacingOccurrences(of: "SIG", with: "") {
            case "KILL", "9":
                return (ok(name + "\n"), Self.end(&state, key: key, code: 137))
            case "TERM", "15":
                if script.contains("trap '' TERM") { return (ok(name + "\n"), nil) }
                return (ok(name + "\n"), Self.end(&state, key: key, code: script.contains("trap 'exit 0' TERM") ? 0 : 143))
            default:
                return (ok(name + "\n"), nil)
            }
        }
        if let exited { emitExit(exited) }
        return result
    }

    private func emitExit(_ container: Container) {
        let event: [String: Any] = [
            "container_id": container.id, "id": container.id, "pid": container.pid, "exit_status": container.exitCode,
            "exited_at": RFC3339Nano.format(container.finished ?? Date()),
        ]
        let line = json([
            "Timestamp": RFC3339Nano.format(Date()), "ID": "", "Namespace": "k8s.io", "Topic": "/tasks/exit", "Status": "unknown",
            "Event": json(event),
        ])
        for listener in state.withLock({ Array($0.listeners.values) }) { listener.yield(line) }
    }

    private func statusText(_ container: Container) -> String {
        switch container.status {
        case "running": return "Up"
        case "exited": return "Exited (\(container.exitCode)) 1 second ago"
        default: return "Created"
        }
    }

    private func ps() -> String {
        state.withLock { state in
            state.containers.values.sorted { $0.created < $1.created }.map { container in
                json([
                    "Command": "\"\(container.args.joined(separator: " "))\"", "CreatedAt": RFC3339Nano.format(container.created),
                    "ID": container.id, "Image": container.image, "Platform": "linux/amd64", "Names": container.name, "Ports": "",
                    "Status": statusText(container), "Runtime": "io.containerd.runc.v2", "Size": "",
                    "Labels": container.labels.keys.sorted().map { "\($0)=\(container.labels[$0]!)" }.joined(separator: ","),
                ]) + "\n"
            }.joined()
        }
    }

    private func inspect(_ key: String) -> CommandResult {
        guard let container = find(key) else { return fail("no such container: \(key)") }
        return ok(
            json([[
                "Id": container.id, "Created": RFC3339Nano.format(container.created), "Path": container.args.first ?? "",
                "Args": Array(container.args.dropFirst()), "Image": container.image, "Name": container.name,
                "State": [
                    "Status": container.status, "Running": container.status == "running", "Pid": container.pid, "ExitCode": container.exitCode,
                    "StartedAt": container.started.map(RFC3339Nano.format) ?? "", "FinishedAt": container.finished.map(RFC3339Nano.format) ?? "",
                ],
                "Config": ["Labels": container.labels, "Image": container.image],
            ]]) + "\n")
    }
}

/// The double's "executable not found", shaped like the real runner's error.
enum CommandErrorForDouble {
    static func notFound(_ invocation: CommandInvocation) -> CommandError {
        CommandError.failed(invocation, CommandResult(status: 127, stdout: "", stderr: "\(invocation.executable): not found in the nerdctl double"))
    }
}
