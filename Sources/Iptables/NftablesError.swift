/// A failure of libnftables: nft's own message, and for a rejected transaction the line and command at fault.
///
/// ```
/// nftables rejected the transaction at line 3 (add rule ip node-agent nosuch counter):
///   Could not process rule: No such file or directory
/// ```
public struct NftablesError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case rejected
        case unavailable
        case namespace
        case listing
    }

    private let code: Code
    /// nft's message (without the location prefix), e.g. `Could not process rule: No such file or directory`.
    public let message: String
    /// The 1-based line of the transaction's script that nft rejected, when nft named one.
    public let line: Int?
    /// The text of the rejected command, when known.
    public let command: String?
    /// Which operation failed: `run`, `check`, `list`, `open`.
    public let operation: String

    /// nft refused the commands (syntax, a missing object, a kernel error); nothing was applied.
    public static func rejected(_ operation: String, message: String, line: Int?, command: String?) -> NftablesError {
        NftablesError(code: .rejected, message: message, line: line, command: command, operation: operation)
    }
    /// libnftables could not be used at all (context creation, I/O).
    public static func unavailable(_ message: String) -> NftablesError {
        NftablesError(code: .unavailable, message: message, line: nil, command: nil, operation: "open")
    }
    /// The network namespace to run in could not be entered.
    public static func namespace(_ message: String) -> NftablesError {
        NftablesError(code: .namespace, message: message, line: nil, command: nil, operation: "open")
    }
    /// nft's JSON listing could not be parsed.
    public static func listing(_ message: String) -> NftablesError {
        NftablesError(code: .listing, message: message, line: nil, command: nil, operation: "list")
    }

    /// True when nft refused the commands (as opposed to libnftables being unusable).
    public var isRejection: Bool { code == .rejected }
    /// True when nft's message says an object does not exist (`No such file or directory`).
    public var isNotFound: Bool { message.contains("No such file or directory") }

    public var description: String {
        switch code {
        case .rejected:
            var text = "nftables rejected the \(operation == "check" ? "checked " : "")transaction"
            if let line { text += " at line \(line)" }
            if let command { text += " (\(command))" }
            return text + ": \(message)"
        case .unavailable:
            return "libnftables is unusable: \(message); check that nf_tables is available and the process has CAP_NET_ADMIN"
        case .namespace:
            return "cannot enter the network namespace: \(message)"
        case .listing:
            return "cannot parse nft's JSON listing: \(message)"
        }
    }
}

extension NftablesError {
    /// Parses libnftables' error buffer for a script run from `path`: every `PATH:LINE:COL-COL: Error: MESSAGE`
    /// becomes one error naming the transaction's command on that line. Falls back to the first `Error:` line.
    static func parse(errorBuffer: String, path: String, operation: String, transaction: Transaction?) -> NftablesError {
        let lines = errorBuffer.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        for text in lines {
            guard let range = text.range(of: ": Error: ") else { continue }
            let message = String(text[range.upperBound...])
            var location = String(text[..<range.lowerBound])
            if location.hasPrefix(path + ":") { location.removeFirst(path.count + 1) }
            let lineNumber = location.split(separator: ":").first.flatMap { Int($0) }
            var command: String?
            if let lineNumber, let transaction, lineNumber >= 1, lineNumber <= transaction.count {
                command = transaction.line(lineNumber - 1)
            }
            return .rejected(operation, message: message, line: lineNumber, command: command)
        }
        if let text = lines.first(where: { $0.hasPrefix("Error: ") }) {
            return .rejected(operation, message: String(text.dropFirst("Error: ".count)), line: nil, command: nil)
        }
        let trimmed = errorBuffer.trimmingWhitespace()
        return .rejected(operation, message: trimmed.isEmpty ? "nft failed without a message" : trimmed, line: nil, command: nil)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}

extension NftablesError {
    /// Exposes the error-buffer parser to tests.
    public static func parseForTesting(_ buffer: String, path: String, transaction: Transaction?) -> NftablesError {
        parse(errorBuffer: buffer, path: path, operation: "run", transaction: transaction)
    }
}
