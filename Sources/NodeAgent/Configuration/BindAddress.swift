/// A `host:port` to listen on, as `--healthz-bind-address` and `--metrics-bind-address` take it.
/// IPv6 hosts are written in brackets (`[::1]:10248`). Port 0 asks the kernel for a free port.
struct BindAddress: Sendable, Hashable, CustomStringConvertible {
    var host: String
    var port: Int

    /// Parses `host:port` or `[v6]:port`; nil when the port is missing or out of range.
    init?(parsing text: String) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { return nil }
        self.host = String(host)
        self.port = port
    }

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
