import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Tiny UDP tools for the data-path tests, run inside test namespaces:
///
///     proxy-harness udp-echo --port PORT --reply TEXT      answers every datagram with TEXT
///     proxy-harness udp-probe --to IP:PORT --from-port P [--count N] [--timeout SECONDS]
///                                                       sends N datagrams from source port P, one at a time,
///                                                       printing each reply (or "timeout") on its own line
///
/// The probe keeps its source port so that every datagram belongs to one conntrack entry, as a DNS client's do.
enum UDPTools {
    static func run(_ arguments: [String]) -> Never {
        var options: [String: String] = [:]
        var index = 2
        while index + 1 < arguments.count {
            options[arguments[index]] = arguments[index + 1]
            index += 2
        }
        func required(_ key: String) -> String {
            guard let value = options[key] else { fail(key) }
            return value
        }
        func portOption(_ key: String) -> UInt16 {
            guard let value = UInt16(required(key)) else { fail(key) }
            return value
        }
        switch arguments[1] {
        case "udp-echo":
            echo(port: portOption("--port"), reply: options["--reply"] ?? "echo")
        case "udp-probe":
            let target = required("--to")
            guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else { fail("--to IP:PORT") }
            probe(
                host: String(target[..<colon]),
                port: port,
                fromPort: portOption("--from-port"),
                count: Int(options["--count"] ?? "1") ?? 1,
                timeout: Double(options["--timeout"] ?? "1") ?? 1
            )
        default:
            fail("unknown tool \(arguments[1])")
        }
    }

    static func fail(_ what: String) -> Never {
        FileHandle.standardError.write(Data("proxy-harness: bad or missing \(what)\n".utf8))
        exit(2)
    }

    static func socketBound(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { fail("socket: \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = INADDR_ANY
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else { fail("bind port \(port): errno \(errno)") }
        return fd
    }

    static func echo(port: UInt16, reply: String) -> Never {
        let fd = socketBound(port: port)
        var buffer = [UInt8](repeating: 0, count: 2048)
        let answer = Array(reply.utf8)
        while true {
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &length) }
            }
            guard count >= 0 else { continue }
            _ = withUnsafePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, answer, answer.count, 0, $0, length) }
            }
        }
    }

    static func probe(host: String, port: UInt16, fromPort: UInt16, count: Int, timeout: Double) -> Never {
        let fd = socketBound(port: fromPort)
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { fail("--to address") }
        var buffer = [UInt8](repeating: 0, count: 2048)
        for sequence in 0..<count {
            let message = Array("probe \(sequence)".utf8)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, message, message.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            let received = recv(fd, &buffer, buffer.count, 0)
            let line = (received > 0 ? String(decoding: buffer[0..<received], as: UTF8.self) : "timeout") + "\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        exit(0)
    }
}
