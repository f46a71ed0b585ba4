import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Tiny TCP tools for the data-path tests, run inside test namespaces, for connections that must live long and
/// prove they still carry data (a drained backend, a proxy restarted under them):
///
///     proxy-harness tcp-echo --port PORT --reply TEXT     answers every line of every connection with TEXT
///     proxy-harness tcp-hold --to IP:PORT [--count N] [--interval SECONDS] [--reset]
///                                                       one connection: sends N lines, one per interval, and prints
///                                                       each answer; exits 0 only when every line was answered.
///                                                       --reset closes with RST (SO_LINGER 0) instead of FIN, so
///                                                       IPVS forgets the connection in seconds, not TIME_WAIT's minutes.
enum TCPTools {
    static func run(_ arguments: [String]) -> Never {
        var options: [String: String] = [:]
        var flags: Set<String> = []
        var index = 2
        while index < arguments.count {
            if arguments[index] == "--reset" {
                flags.insert("--reset")
                index += 1
            } else if index + 1 < arguments.count {
                options[arguments[index]] = arguments[index + 1]
                index += 2
            } else {
                fail(arguments[index])
            }
        }
        switch arguments[1] {
        case "tcp-echo":
            guard let port = options["--port"].flatMap(UInt16.init) else { fail("--port") }
            echo(port: port, reply: options["--reply"] ?? "echo")
        case "tcp-hold":
            guard let target = options["--to"], let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else {
                fail("--to IP:PORT")
            }
            hold(
                host: String(target[..<colon]), port: port, count: Int(options["--count"] ?? "1") ?? 1,
                interval: Double(options["--interval"] ?? "0.5") ?? 0.5, reset: flags.contains("--reset"))
        default:
            fail("tool \(arguments[1])")
        }
    }

    static func fail(_ what: String) -> Never {
        FileHandle.standardError.write(Data("proxy-harness: bad or missing \(what)\n".utf8))
        exit(2)
    }

    static func echo(port: UInt16, reply: String) -> Never {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { fail("socket: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = INADDR_ANY
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { fail("bind/listen port \(port): errno \(errno)") }
        let answer = Array((reply + "\n").utf8)
        while true {
            let connection = accept(fd, nil, nil)
            guard connection >= 0 else { continue }
            let thread = Thread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = read(connection, &buffer, buffer.count)
                    guard count > 0 else { break }
                    let lines = buffer[0..<count].filter { $0 == 0x0A }.count
                    for _ in 0..<max(lines, 1) { _ = write(connection, answer, answer.count) }
                }
                close(connection)
            }
            thread.start()
        }
    }

    static func hold(host: String, port: UInt16, count: Int, interval: Double, reset: Bool) -> Never {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { fail("socket: errno \(errno)") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { fail("--to address") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        guard connected == 0 else {
            say("error: connect: errno \(errno)")
            exit(1)
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        for sequence in 0..<count {
            if sequence > 0 { usleep(useconds_t(interval * 1_000_000)) }
            let message = Array("ping \(sequence)\n".utf8)
            guard write(fd, message, message.count) == message.count else {
                say("error: write \(sequence): errno \(errno)")
                exit(1)
            }
            let received = read(fd, &buffer, buffer.count)
            guard received > 0 else {
                say("error: no answer to \(sequence): \(received == 0 ? "closed" : "errno \(errno)")")
                exit(1)
            }
            say(String(decoding: buffer[0..<received], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if reset {
            var linger = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        }
        close(fd)
        say("ok \(count)")
        exit(0)
    }
}
