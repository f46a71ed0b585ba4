import Foundation
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// One command the runtime layer wants run: an executable (looked up on PATH unless absolute), its arguments,
/// extra environment, optional standard input, and how long it may take.
public struct CommandInvocation: Sendable, Hashable, CustomStringConvertible {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]
    public var input: String?
    public var timeout: Duration

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil, timeout: Duration) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.input = input
        self.timeout = timeout
    }

    /// The command line as a user would type it (environment shown as `K=V` prefixes).
    public var description: String {
        let env = environment.keys.sorted().map { "\($0)=\(environment[$0]!)" }
        return (env + [executable] + arguments).joined(separator: " ")
    }
}

extension CommandInvocation {
    /// The environment for the runtime's helper programs (ctr, nerdctl, the CNI plugins): `GOMAXPROCS=1`.
    ///
    /// They are short-lived Go programs. With one scheduler thread per core they run their garbage collector and
    /// idle-spinning threads in parallel, which on a 2-core node cost 27 ms of CPU per `ctr run -d` against 18 ms with
    /// one (perf stat, medians of 15; the unloaded start took no longer). When 30 pods start at once that CPU is what
    /// they queue for. A GOMAXPROCS set in node-agent's own environment is passed on instead.
    public static let helperEnvironment: [String: String] =
        ProcessInfo.processInfo.environment["GOMAXPROCS"] == nil ? ["GOMAXPROCS": "1"] : [:]
}

/// What a finished command printed and returned.
public struct CommandResult: Sendable, Hashable {
    /// The exit status; for a process ended by a signal, 128 + the signal number (as shells report it).
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// A command that could not be run, ran too long, printed too much, or exited non-zero.
///
/// Carries the command line, the exit status and what the command wrote to stderr, so a user sees exactly what
/// the runtime tried and why it failed.
public struct CommandError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case notFound
        case launchFailed(String)
        case timedOut(Duration)
        case outputTooLarge(Int)
        case failed
    }

    private let code: Code
    /// The command line that failed.
    public let command: String
    /// The exit status (nil when the command never ran or was killed for the timeout).
    public let status: Int32?
    /// What the command wrote to standard error, trimmed.
    public let stderr: String

    /// The executable is not installed or not on PATH.
    public var isNotFound: Bool { code == .notFound }
    /// The command was killed because it ran past its timeout.
    public var isTimeout: Bool { if case .timedOut = code { true } else { false } }

    static func notFound(_ invocation: CommandInvocation) -> CommandError {
        CommandError(code: .notFound, command: invocation.description, status: nil, stderr: "")
    }
    static func launchFailed(_ invocation: CommandInvocation, _ reason: String) -> CommandError {
        CommandError(code: .launchFailed(reason), command: invocation.description, status: nil, stderr: "")
    }
    static func outputTooLarge(_ invocation: CommandInvocation, status: Int32, limit: Int) -> CommandError {
        CommandError(code: .outputTooLarge(limit), command: invocation.description, status: status, stderr: "")
    }
    static func timedOut(_ invocation: CommandInvocation) -> CommandError {
        CommandError(code: .timedOut(invocation.timeout), command: invocation.description, status: nil, stderr: "")
    }
    /// A command that exited non-zero.
    public static func failed(_ invocation: CommandInvocation, _ result: CommandResult) -> CommandError {
        CommandError(
            code: .failed, command: invocation.description, status: result.status,
            stderr: result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public var description: String {
        switch code {
        case .notFound:
            return "`\(command)`: executable not found; install it or put it on PATH"
        case .launchFailed(let reason):
            return "`\(command)` could not be started: \(reason)"
        case .timedOut(let timeout):
            return "`\(command)` did not finish within \(timeout) and was killed; raise --runtime-request-timeout or check the daemon it talks to"
        case .outputTooLarge(let limit):
            return "`\(command)` printed more than \(limit) bytes, which is more than any runtime or CNI call should; run it by hand to see why"
        case .failed:
            return "`\(command)` exited with status \(status ?? -1): \(stderr.isEmpty ? "(no stderr)" : stderr)"
        }
    }
}

/// Runs commands for the runtime layer. The real one spawns processes; contract tests put a double in its place.
public protocol CommandRunning: Sendable {
    /// Runs `invocation` to completion and returns its output whatever its exit status.
    /// - Throws: ``CommandError`` when the command cannot be started or runs past its timeout.
    func run(_ invocation: CommandInvocation) async throws -> CommandResult

    /// Runs a long-lived command and calls `line` for each line of its standard output until it ends or the task
    /// is cancelled (then the process is killed). Returns the final result (stdout empty, stderr collected).
    func stream(_ invocation: CommandInvocation, line: @Sendable (String) async -> Void) async throws -> CommandResult
}

extension CommandRunning {
    /// Runs `invocation` and returns its standard output.
    /// - Throws: ``CommandError`` when it cannot run, times out, or exits non-zero.
    @discardableResult
    public func checked(_ invocation: CommandInvocation) async throws -> String {
        let result = try await run(invocation)
        guard result.status == 0 else { throw CommandError.failed(invocation, result) }
        return result.stdout
    }
}

/// The one runner over swift-subprocess: both output streams drained concurrently, a timeout that kills the
/// process (SIGTERM, then SIGKILL after a second), and a typed ``CommandError``.
public struct SubprocessCommandRunner: CommandRunning {
    /// Largest output accepted from one command, checked once it is collected; far above anything ctr or a CNI plugin
    /// prints.
    public var outputLimit: Int

    public init(outputLimit: Int = 64 << 20) {
        self.outputLimit = outputLimit
        // A child that exits before reading its stdin (a CNI plugin failing early) must surface as EPIPE on the
        // write, not kill the daemon with SIGPIPE.
        _ = Self.ignoreSIGPIPE
    }

    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    public func run(_ invocation: CommandInvocation) async throws -> CommandResult {
        let configuration = Self.configuration(for: invocation)
        return try await Self.withTimeout(invocation) {
            do {
                let result: ExecutionResult<Void, CollectedText, CollectedText>
                if let input = invocation.input {
                    result = try await Subprocess.run(configuration, input: .string(input), output: CollectedText(), error: CollectedText())
                } else {
                    result = try await Subprocess.run(configuration, input: .none, output: CollectedText(), error: CollectedText())
                }
                try checkLimit(invocation, result.terminationStatus, result.standardOutput, result.standardError)
                return CommandResult(
                    status: Self.status(result.terminationStatus),
                    stdout: result.standardOutput,
                    stderr: result.standardError)
            } catch let error as SubprocessError {
                throw Self.translate(error, invocation)
            }
        }
    }

    public func stream(_ invocation: CommandInvocation, line: @Sendable (String) async -> Void) async throws -> CommandResult {
        let configuration = Self.configuration(for: invocation)
        do {
            let result = try await Subprocess.run(
                configuration, input: .none, output: .sequence, error: CollectedText()
            ) { execution in
                var buffer: [UInt8] = []
                for try await chunk in execution.standardOutput {
                    chunk.withUnsafeBytes { buffer.append(contentsOf: $0) }
                    while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        let text = String(decoding: buffer[..<newline], as: UTF8.self)
                        buffer.removeSubrange(...newline)
                        await line(text)
                    }
                }
                if !buffer.isEmpty { await line(String(decoding: buffer, as: UTF8.self)) }
            }
            try checkLimit(invocation, result.terminationStatus, result.standardError)
            return CommandResult(status: Self.status(result.terminationStatus), stdout: "", stderr: result.standardError)
        } catch let error as SubprocessError {
            throw Self.translate(error, invocation)
        }
    }

    /// Refuses a finished command's output when any stream is over ``outputLimit``, naming the command.
    private func checkLimit(_ invocation: CommandInvocation, _ termination: TerminationStatus, _ outputs: String...) throws {
        if outputs.contains(where: { $0.utf8.count > outputLimit }) {
            throw CommandError.outputTooLarge(invocation, status: Self.status(termination), limit: outputLimit)
        }
    }

    private static func configuration(for invocation: CommandInvocation) -> Configuration {
        let executable: Executable =
            invocation.executable.hasPrefix("/") ? .path(FilePath(invocation.executable)) : .name(invocation.executable)
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(1))]
        var updates: [Environment.Key: String?] = [:]
        for (key, value) in invocation.environment { updates[Environment.Key(stringLiteral: key)] = value }
        return Configuration(
            executable: executable, arguments: Arguments(invocation.arguments),
            environment: updates.isEmpty ? .inherit : .inherit.updating(updates), platformOptions: options)
    }

    /// A stream collected as UTF-8 text, grown as it arrives. swift-subprocess's `.string(limit:)` reserves the
    /// whole limit up front for each stream of each call: with a 64 MB limit, every ctr call mapped 128 MB, and
    /// a hundred calls at once reserved over 12 GB of address space, which fails under strict overcommit.
    struct CollectedText: OutputProtocol, ErrorOutputProtocol {
        typealias OutputType = String
        var maxSize: Int { .max }

        func output(from span: RawSpan) throws -> String {
            span.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        }
    }

    private static func status(_ status: TerminationStatus) -> Int32 {
        switch status {
        case .exited(let code): return Int32(code)
        case .signaled(let signal): return 128 + Int32(signal)
        }
    }

    private static func translate(_ error: SubprocessError, _ invocation: CommandInvocation) -> CommandError {
        if error.code == .executableNotFound { return .notFound(invocation) }
        return .launchFailed(invocation, "\(error)")
    }

    /// Runs `body` and cancels it (which tears the process down) when `invocation.timeout` passes first.
    static func withTimeout<T: Sendable>(_ invocation: CommandInvocation, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: invocation.timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw CommandError.timedOut(invocation)
            }
            return value
        }
    }
}
