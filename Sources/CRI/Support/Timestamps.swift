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
    public static func format(_ date: Date) -> String { RFC3339.format(date, fractionDigits: 9) }
}
