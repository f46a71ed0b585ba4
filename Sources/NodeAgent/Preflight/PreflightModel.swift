import Foundation

/// The verdict of one preflight check.
enum PreflightStatus: String, Sendable, Codable, Comparable {
    case pass = "PASS"
    case warn = "WARN"
    case fail = "FAIL"

    private var rank: Int {
        switch self {
        case .pass: 0
        case .warn: 1
        case .fail: 2
        }
    }

    static func < (lhs: PreflightStatus, rhs: PreflightStatus) -> Bool { lhs.rank < rhs.rank }
}

/// A change `--fix` can make to bring a check to PASS. Each is idempotent.
enum PreflightFix: Sendable, Equatable, Codable {
    /// `modprobe NAME` now.
    case loadModule(String)
    /// Ensure `line` is present in the file (created atomically if absent).
    case ensureLine(file: String, line: String)
    /// Write `value` to `/proc/sys/<key as path>` now.
    case setSysctl(key: String, value: String)
    /// `swapoff -a` now.
    case swapOff
    /// Comment out the active swap entries of `/etc/fstab` (only with `--fix-swap`).
    case disableFstabSwap
}

/// One check's outcome: what was found, what is expected, and how to fix it.
struct PreflightResult: Sendable, Equatable, Codable {
    /// A stable identifier, e.g. `module/br_netfilter`, `sysctl/net.ipv4.ip_forward`.
    var id: String
    var status: PreflightStatus
    var found: String
    var expected: String
    /// Human advice: the command or file that fixes it; empty when nothing is to be done.
    var remedy: String
    /// What `--fix` would do; empty when `--fix` cannot help (the remedy says what a person must do).
    var fixes: [PreflightFix]

    init(id: String, status: PreflightStatus, found: String, expected: String, remedy: String = "", fixes: [PreflightFix] = []) {
        self.id = id
        self.status = status
        self.found = found
        self.expected = expected
        self.remedy = remedy
        self.fixes = fixes
    }
}

/// The whole report: every result, plus the changes `--fix` made.
struct PreflightReport: Sendable, Equatable, Codable {
    /// Version of the JSON schema; bumped only on incompatible changes.
    var schemaVersion = 1
    var results: [PreflightResult]
    var changes: [String] = []

    var summary: [String: Int] {
        var counts = ["PASS": 0, "WARN": 0, "FAIL": 0]
        for result in results { counts[result.status.rawValue, default: 0] += 1 }
        return counts
    }

    /// 0 when nothing FAILs, else 1.
    var exitCode: Int32 { results.contains { $0.status == .fail } ? 1 : 0 }

    enum CodingKeys: String, CodingKey {
        case schemaVersion, results, changes, summary
    }

    init(results: [PreflightResult], changes: [String] = []) {
        self.results = results
        self.changes = changes
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try container.decode(Int.self, forKey: .schemaVersion)
        results = try container.decode([PreflightResult].self, forKey: .results)
        changes = try container.decode([String].self, forKey: .changes)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(schemaVersion, forKey: .schemaVersion)
        try container.encode(results, forKey: .results)
        try container.encode(changes, forKey: .changes)
        try container.encode(summary, forKey: .summary)
    }

    /// The report for a person: one aligned line per check, then the remedy of each non-PASS, then the changes.
    func text() -> String {
        let width = min(48, results.map(\.id.count).max() ?? 0)
        var lines: [String] = []
        for result in results {
            let id = result.id.padding(toLength: max(width, result.id.count), withPad: " ", startingAt: 0)
            var line = "\(result.status.rawValue)  \(id)  \(result.found)"
            if result.status != .pass { line += " (expected \(result.expected))" }
            lines.append(line)
            if result.status != .pass && !result.remedy.isEmpty {
                lines.append("      fix: \(result.remedy)")
            }
        }
        if !changes.isEmpty {
            lines.append("")
            lines.append("changes made:")
            lines.append(contentsOf: changes.map { "  \($0)" })
        }
        let counts = summary
        lines.append("")
        lines.append("\(counts["PASS"]!) passed, \(counts["WARN"]!) warnings, \(counts["FAIL"]!) failed")
        return lines.joined(separator: "\n") + "\n"
    }
}
