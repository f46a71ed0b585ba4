import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The node's address when `--node-ip` is not given: the IPv4 address of the interface holding the default route
/// (as the kubelet picks it), else the first non-loopback IPv4 address.
public enum NodeAddress {
    public static func detect() -> [String] {
        let routeInterface = defaultRouteInterface()
        var result: [String] = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var candidates: [(name: String, address: String)] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            let name = String(cString: entry.pointee.ifa_name)
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            guard getnameinfo(address, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 else { continue }
            let text = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("127.") { continue }
            candidates.append((name, text))
        }
        if let routeInterface, let match = candidates.first(where: { $0.name == routeInterface }) {
            result.append(match.address)
        } else if let first = candidates.first {
            result.append(first.address)
        }
        return result
    }

    /// The interface of the IPv4 default route, from /proc/net/route.
    static func defaultRouteInterface() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/net/route", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: \.isWhitespace)
            if fields.count > 2, fields[1] == "00000000" { return String(fields[0]) }
        }
        return nil
    }
}
