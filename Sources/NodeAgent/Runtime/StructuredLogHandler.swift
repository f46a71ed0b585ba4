import Foundation
import Logging
import Synchronization

/// Writes one line per record: `<RFC 3339 UTC time> <level> [<component>] <message> key=value ...`.
///
/// The component is the logger's label. Metadata is sorted by key; values with spaces, quotes or `=`
/// are quoted, so each line splits back into fields with a shell-like reader. Lines are written to the
/// stream with one `write(2)` each, so concurrent loggers never interleave within a line.
struct StructuredLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: Output

    /// Where lines go: a file descriptor (stderr for the daemon) or a closure (for tests).
    enum Output: Sendable {
        case fileDescriptor(Int32)
        case closure(@Sendable (String) -> Void)
    }

    init(label: String, level: Logger.Level, output: Output = .fileDescriptor(STDERR_FILENO), metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = level
        self.output = output
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = Self.format(
            time: Date(), level: event.level, component: label, message: event.message.description, metadata: merged
        )
        switch output {
        case .fileDescriptor(let fd):
            var bytes = Array((line + "\n").utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
            bytes.removeAll()
        case .closure(let sink):
            sink(line)
        }
    }

    /// Formats one record; separate from I/O so the format is tested on its own.
    static func format(time: Date, level: Logger.Level, component: String, message: String, metadata: Logger.Metadata) -> String {
        var line = "\(timestamp(time)) \(level.rawValue) [\(component)] \(message)"
        for key in metadata.keys.sorted() {
            line += " \(key)=\(quote(render(metadata[key]!)))"
        }
        return line
    }

    private static func render(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let string): return string
        case .stringConvertible(let convertible): return convertible.description
        case .array(let array): return "[" + array.map(render).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            return "{" + dictionary.keys.sorted().map { "\($0):\(render(dictionary[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    private static func quote(_ text: String) -> String {
        let needsQuotes = text.isEmpty || text.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" || $0 == "\t" }
        guard needsQuotes else { return text }
        var escaped = "\""
        for character in text {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }

    private static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        let micros = Int((date.timeIntervalSince1970 - Double(seconds)) * 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let micro = String(micros)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 6 - micro.count) + micro + "Z"
    }
}
