public import KubeAPI
public import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where NodePorts are accepted: kube-proxy's `--nodeport-addresses` and its node-IP detection.
public enum NodePortAddresses {
    /// The addresses that accept NodePorts. With no CIDRs (kube-proxy's `primary`, the default) the node's
    /// primary IPs; with CIDRs, every local address inside one of them (resolved at start).
    public static func select(cidrs: [IPPrefix], primary: [IPAddress], local: [IPAddress]) -> [IPAddress] {
        guard !cidrs.isEmpty else { return primary.sorted() }
        return local.filter { address in cidrs.contains { $0.contains(address) } }.sorted()
    }

    /// This network namespace's interface addresses, IPv4 and IPv6 (getifaddrs), link-local IPv6 left out.
    public static func localAddresses() -> [IPAddress] {
        var result: Set<IPAddress> = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr else { continue }
            let family = Int32(address.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            let status: Int32
            if family == AF_INET {
                status = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    var raw = pointer.pointee.sin_addr
                    return inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count)) == nil ? -1 : 0
                }
            } else {
                status = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    var raw = pointer.pointee.sin6_addr
                    return inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count)) == nil ? -1 : 0
                }
            }
            guard status == 0, let ip = IPAddress(String(cString: buffer)) else { continue }
            if ip.family == .ipv6 && ip.bytes[0] == 0xFE && ip.bytes[1] & 0xC0 == 0x80 { continue }
            result.insert(ip)
        }
        return result.sorted()
    }

    /// The node's IPs from its Node object (``NodeObject/hostIPs``), as kube-proxy's `getNodeIPs` finds them:
    /// GET the Node, retrying `attempts` times with the wait doubling from `firstDelay` while it does not exist
    /// yet or lists no address. Empty when it never does (the caller then falls back and says so).
    public static func fromNode(
        client: any KubeClientProtocol,
        nodeName: String,
        attempts: Int = 6,
        firstDelay: Duration = .seconds(1),
        logger: Logger
    ) async -> [IPAddress] {
        var delay = firstDelay
        for attempt in 1...max(1, attempts) {
            do {
                let node = try await client.get(KubeAPI.Node.self, namespace: nil, name: nodeName)
                let ips = NodeObject(node).hostIPs
                if !ips.isEmpty { return ips }
                logger.info("the Node lists no InternalIP or ExternalIP yet", metadata: ["node": "\(nodeName)", "attempt": "\(attempt)"])
            } catch {
                logger.info("cannot read the Node for its IPs yet", metadata: ["node": "\(nodeName)", "attempt": "\(attempt)", "error": "\(error)"])
            }
            if attempt == attempts || Task.isCancelled { break }
            try? await Task.sleep(for: delay)
            delay *= 2
        }
        return []
    }
}
