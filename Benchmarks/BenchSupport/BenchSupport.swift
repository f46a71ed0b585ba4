// BenchSupport: what every benchmark executable needs and would otherwise copy: option parsing, statistics,
// output that is not buffered away when a run is killed, and a shell runner.
import Foundation

/// Helpers shared by the benchmark executables under `Benchmarks/`.
public enum Bench {
    /// The running benchmark's name, for messages.
    public static var name: String { URL(fileURLWithPath: CommandLine.arguments.first ?? "bench").lastPathComponent }

    /// Prints `message` to standard error under the benchmark's name and exits with status 1.
    public static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("\(name): \(message)\n".utf8))
        exit(1)
    }

    /// Writes one line to standard output at once (no stdio buffering), so a long run shows its progress.
    public static func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    /// Writes one line to standard error: progress notes kept apart from the figures.
    public static func note(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

    /// Parses `--name value` pairs whose values are positive integers into the fields of `options`.
    ///
    /// An unknown name or a value that is not a positive number ends the benchmark with a message listing the
    /// known options.
    public static func parseIntegers<Options>(
        _ arguments: [String], into options: inout Options, _ fields: KeyValuePairs<String, WritableKeyPath<Options, Int>>
    ) {
        let known = fields.map(\.key).joined(separator: " ")
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let field = fields.first(where: { $0.key == flag })?.value else { fail("unknown option \(flag); known: \(known)") }
            guard let text = iterator.next(), let value = Int(text), value > 0 else { fail("\(flag) needs a positive number") }
            options[keyPath: field] = value
        }
    }

    /// A duration in seconds.
    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The median of `values` (NaN when empty).
    public static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// The `p` quantile of `values` by the nearest-rank method (NaN when empty).
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    /// Runs `command` with `/bin/sh -c`, feeding it `input`, and returns its output (standard error included).
    ///
    /// A failing command ends the benchmark with its output.
    @discardableResult
    public static func shell(_ command: String, input: String? = nil) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        if input != nil { process.standardInput = stdin }
        do { try process.run() } catch { fail("cannot run \(command): \(error)") }
        if let input {
            // Written from another thread: a large input would fill the pipe before the child starts reading.
            let writer = Thread {
                stdin.fileHandleForWriting.write(Data(input.utf8))
                try? stdin.fileHandleForWriting.close()
            }
            writer.start()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        if process.terminationStatus != 0 { fail("`\(command)` failed (\(process.terminationStatus)): \(text)") }
        return text
    }
}
