import CAgentShims
import Foundation

/// The machine that preflight inspects and changes.
///
/// Every file path is taken relative to ``root`` (`/` for the real machine; tests pass a prepared folder with its
/// own `proc/sys`, `proc/modules`, `proc/swaps`, `etc/fstab`, ...). Commands (`modprobe`, `ctr`, `swapoff`, ...)
/// go through ``runCommand`` so tests can stand in for the kernel.
struct PreflightHost: Sendable {
    /// A command's result.
    struct CommandResult: Sendable {
        var status: Int32
        var output: String
    }

    var root: String
    var runCommand: @Sendable ([String]) -> CommandResult
    /// Whether a program is on PATH.
    var hasProgram: @Sendable (String) -> Bool
    /// True when the kernel clock is synchronised (adjtimex), nil when unknown.
    var clockSynchronized: @Sendable () -> Bool?
    /// The soft limit on open files of this process.
    var openFileLimit: @Sendable () -> UInt64

    /// The real machine (or another root with the real commands).
    static func real(root: String = "/") -> PreflightHost {
        PreflightHost(
            root: root,
            runCommand: { arguments in runProcess(arguments) },
            hasProgram: { name in findProgram(name) != nil },
            clockSynchronized: {
                switch cagent_clock_synchronized() {
                case 1: true
                case 0: false
                default: nil
                }
            },
            openFileLimit: {
                var limit = rlimit()
                getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
                return UInt64(limit.rlim_cur)
            }
        )
    }

    /// `path` (absolute, as on the real machine) under ``root``.
    func path(_ path: String) -> String {
        root == "/" ? path : (root.hasSuffix("/") ? String(root.dropLast()) : root) + path
    }

    func read(_ file: String) -> String? {
        try? String(contentsOfFile: path(file), encoding: .utf8)
    }

    func exists(_ file: String) -> Bool {
        FileManager.default.fileExists(atPath: path(file))
    }

    func list(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(folder))) ?? []).sorted()
    }

    /// Writes `contents` atomically (a temporary file renamed over the target), creating parent folders.
    func writeAtomically(_ file: String, contents: String) throws {
        let target = URL(fileURLWithPath: path(file))
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).node-agent-tmp")
        try Data(contents.utf8).write(to: temporary)
        guard rename(temporary.path, target.path) == 0 else {
            let error = errno
            try? FileManager.default.removeItem(at: temporary)
            throw POSIXError(POSIXErrorCode(rawValue: error) ?? .EIO)
        }
    }

    /// Writes a value to a `/proc/sys` file in place (these files cannot be renamed over).
    func writeInPlace(_ file: String, contents: String) throws {
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path(file)))
    }

    static func findProgram(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        let folders = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        return folders.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func runProcess(_ arguments: [String]) -> CommandResult {
        guard let program = findProgram(arguments[0]) else {
            return CommandResult(status: 127, output: "\(arguments[0]): not found on PATH")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return CommandResult(status: 126, output: "\(arguments[0]): \(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}
