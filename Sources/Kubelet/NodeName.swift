#if canImport(Glibc)
import Glibc
#endif

/// The name this node registers under: `--hostname-override` if given, else the machine's hostname,
/// lowercased and trimmed as the kubelet does.
public enum NodeName {
    /// Resolves the node name; `override` wins when it is non-empty.
    public static func resolve(override: String?) -> String {
        if let override, !override.trimmingWhitespace.isEmpty {
            return override.trimmingWhitespace.lowercased()
        }
        return machineHostname().trimmingWhitespace.lowercased()
    }

    /// The kernel's hostname (uname nodename).
    public static func machineHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view.removeFirst() }
        while let last = view.last, last.isWhitespace { view.removeLast() }
        return String(view)
    }
}
