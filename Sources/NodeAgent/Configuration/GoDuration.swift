import Foundation

/// Parses and prints durations the way Go's `time.ParseDuration` spells them (`10s`, `1m30s`, `250ms`, `2h`),
/// which is how kubelet and kube-proxy flags and config files spell every duration.
enum GoDuration {
    /// Parses `text`; returns nil when it is not a valid, non-negative Go duration.
    static func parse(_ text: String) -> Duration? {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if rest == "0" { return .zero }
        guard !rest.isEmpty else { return nil }
        var total: Duration = .zero
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter || $0 == "µ" }
            guard !unit.isEmpty else { return nil }
            rest = rest.dropFirst(unit.count)
            let nanosecondsPerUnit: Double
            switch unit {
            case "ns": nanosecondsPerUnit = 1
            case "us", "µs": nanosecondsPerUnit = 1_000
            case "ms": nanosecondsPerUnit = 1_000_000
            case "s": nanosecondsPerUnit = 1_000_000_000
            case "m": nanosecondsPerUnit = 60_000_000_000
            case "h": nanosecondsPerUnit = 3_600_000_000_000
            default: return nil
            }
            total += .nanoseconds(Int64(value * nanosecondsPerUnit))
        }
        return total
    }

    /// Prints `duration` as Go would (`1m30s`, `250ms`, `0s`).
    static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if seconds == 0 && attoseconds == 0 { return "0s" }
        if seconds == 0 {
            let nanoseconds = attoseconds / 1_000_000_000
            if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
            if nanoseconds % 1_000 == 0 { return "\(nanoseconds / 1_000)us" }
            return "\(nanoseconds)ns"
        }
        var text = ""
        let hours = seconds / 3600
        let minutes = (seconds % 3600) / 60
        let secs = seconds % 60
        if hours > 0 { text += "\(hours)h" }
        if minutes > 0 || (hours > 0 && secs > 0) { text += "\(minutes)m" }
        let millis = attoseconds / 1_000_000_000_000_000
        if millis > 0 {
            var fraction = String(String(millis + 1000).dropFirst())
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "\(secs).\(fraction)s"
        } else if secs > 0 || text.isEmpty {
            text += "\(secs)s"
        }
        return text
    }
}
