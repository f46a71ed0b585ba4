public import Foundation

/// Runs a helper command for tests (`ip`, `ctr`, `nft`, `kubectl`, ...) and captures its output.
///
/// Test support only: the daemon's own runtime calls go through the CRI target's runner.
public enum Command {
    /// What a finished command printed and returned.
    public struct Output: Sendable, CustomStringConvertible {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
    }

    /// A command that exited non-zero when success was required.
    public struct Failure: Error, CustomStringConvertible {
        public var arguments: [String]
        public var output: Output
        public var description: String { "`\(arguments.joined(separator: " "))` failed with \(output)" }
    }

    /// Runs `arguments` (the first is looked up on PATH) and returns its output whatever the exit status.
    @discardableResult
    public static func output(_ arguments: [String], input: String? = nil, environment: [String: String]? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
        let stdout = Pipe()
        let stderr = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try? stdin.fileHandleForWriting.close()
        // Drain both pipes concurrently so a chatty command never blocks on a full pipe.
        nonisolated(unsafe) var errorData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errorData = stderr.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outputData = stdout.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus,
            stdout: String(decoding: outputData, as: UTF8.self),
            stderr: String(decoding: errorData, as: UTF8.self)
        )
    }

    /// Runs `arguments` and returns its standard output.
    /// - Throws: ``Failure`` when the command exits non-zero.
    @discardableResult
    public static func run(_ arguments: [String], input: String? = nil, environment: [String: String]? = nil) throws -> String {
        let result = try output(arguments, input: input, environment: environment)
        guard result.status == 0 else { throw Failure(arguments: arguments, output: result) }
        return result.stdout
    }
}

extension Process {
    /// A process for `executable` that the kernel kills (SIGKILL) if the test process dies first, so a crashed
    /// test run never leaves a daemon behind holding ports or output pipes (through util-linux's `setpriv`).
    /// Start it with ``runBound()``, not `run()`.
    public static func boundToTestProcess(_ executable: String, _ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
        return process
    }

    /// Starts a process made by ``boundToTestProcess(_:_:)`` from a thread that lives as long as the test process.
    ///
    /// The kernel sends the parent-death signal when the *thread* that forked the child ends, not the process:
    /// started from a pool thread that later retires, the daemon would be killed in the middle of a test.
    public func runBound() throws {
        try SpawnerThread.shared.perform { try self.run() }
    }
}

/// One thread that never ends, on which bound processes are forked (see ``Foundation/Process/runBound()``).
private final class SpawnerThread: @unchecked Sendable {
    static let shared = SpawnerThread()
    private let lock = NSLock()
    private var jobs: [() -> Void] = []
    private let available = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in
            while true {
                available.wait()
                let job = lock.withLock { jobs.removeFirst() }
                job()
            }
        }
        thread.name = "bound-process-spawner"
        thread.start()
    }

    func perform(_ body: @escaping () throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        var failure: (any Error)?
        lock.withLock {
            jobs.append {
                do { try body() } catch { failure = error }
                done.signal()
            }
        }
        available.signal()
        done.wait()
        if let failure { throw failure }
    }
}
