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
    public static func boundToTestProcess(_ executable: String, _ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
        return process
    }
}
