public import Foundation
internal import AgentJSON

/// RFC 3339 timestamps with nanoseconds, as containerd and the CRI log format write them.
public enum RFC3339Nano {
    /// Parses `2026-11-27T07:09:37.577839466Z` or `...+00:00` (fraction optional, any number of digits; surrounding
    /// whitespace ignored).
    public static func parse(_ text: String) -> Date? {
        guard let first = text.firstIndex(where: { !$0.isWhitespace }), let last = text.lastIndex(where: { !$0.isWhitespace }) else {
            return nil
        }
        return RFC3339.parse(String(text[first...last]))
    }

    /// Formats `date` in UTC with nine fraction digits.
    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        let nanos = Int(((date.timeIntervalSince1970 - seconds) * 1e9).rounded(.down))
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let nanoText = String(nanos)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: max(0, 9 - nanoText.count)) + nanoText + "Z"
    }
}
