import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// TCP and HTTP probes (and httpGet hooks) over plain sockets, each run on a thread of its own with deadlines
/// enforced by `poll(2)`, so a stuck server never blocks the cooperative thread pool. When a network namespace is
/// given (tests: the isolated node namespace where pod IPs live) the thread enters it first with `setns(2)`; only
/// that thread ever does.
///
/// All unsafe socket calls of the kubelet live in this file. Hand-written because the probe is a few bytes each
/// way and must be able to start inside another network namespace, which no HTTP client here can.
enum NetworkProbe {
    enum Result: Sendable, Hashable {
        case success(String)
        case failure(String)

        var isSuccess: Bool { if case .success = self { true } else { false } }
        var message: String {
            switch self {
            case .success(let text), .failure(let text): text
            }
        }
    }

    struct HTTPRequest: Sendable {
        var host: String
        var port: Int
        var path: String
        var headers: [(String, String)]
        var timeout: Duration
        var userAgent: String
    }

    /// Connects to `host:port`; success when the connection is accepted within `timeout`.
    static func tcp(host: String, port: Int, timeout: Duration, namespace: String?) async -> Result {
        await onThread(namespace: namespace) {
            let deadline = Deadline(timeout)
            switch connect(host: host, port: port, deadline: deadline) {
            case .failure(let message): return .failure(message)
            case .success(let socket):
                close(socket)
                return .success("")
            }
        }
    }

    /// Sends `GET path` and reads the status line; 200–399 is success (the body, up to 10 KiB, is the message).
    static func http(_ request: HTTPRequest, namespace: String?) async -> Result {
        await onThread(namespace: namespace) {
            let deadline = Deadline(request.timeout)
            let socket: Int32
            switch connect(host: request.host, port: request.port, deadline: deadline) {
            case .failure(let message): return .failure(message)
            case .success(let connected): socket = connected
            }
            defer { close(socket) }
            var headers: [(String, String)] = [
                ("Host", request.host.contains(":") ? "[\(request.host)]:\(request.port)" : "\(request.host):\(request.port)"),
                ("User-Agent", request.userAgent), ("Accept", "*/*"), ("Connection", "close"),
            ]
            for (name, value) in request.headers {
                if let index = headers.firstIndex(where: { $0.0.lowercased() == name.lowercased() }) {
                    headers[index] = (name, value)
                } else {
                    headers.append((name, value))
                }
            }
            let path = request.path.isEmpty ? "/" : (request.path.hasPrefix("/") ? request.path : "/" + request.path)
            var text = "GET \(path) HTTP/1.1\r\n"
            for (name, value) in headers { text += "\(name): \(value)\r\n" }
            text += "\r\n"
            if let failure = send(socket, Array(text.utf8), deadline: deadline) { return .failure(failure) }
            var response: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while response.count < 10 * 1024 + 4096 {
                guard wait(socket, events: Int16(POLLIN), deadline: deadline) else {
                    return response.isEmpty ? .failure("Get \"http://\(request.host):\(request.port)\(path)\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)") : parse(response)
                }
                let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                if count < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return .failure("reading the response: \(String(cString: strerror(errno)))")
                }
                if count == 0 { break }
                response += buffer[0..<count]
                if case .success = parse(response), response.count > 10 * 1024 { break }
            }
            return parse(response)
        }
    }

    private static func parse(_ bytes: [UInt8]) -> Result {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let line = text.split(separator: "\r\n", maxSplits: 1, omittingEmptySubsequences: false).first else {
            return .failure("empty response")
        }
        let fields = line.split(separator: " ", maxSplits: 2)
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/"), let code = Int(fields[1]) else {
            return .failure("malformed HTTP response: \(line.prefix(80))")
        }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...].prefix(10 * 1024)) } ?? ""
        if (200..<400).contains(code) { return .success(body) }
        return .failure("HTTP probe failed with statuscode: \(code)")
    }

    // MARK: Threads and namespaces

    private typealias SetnsFunction = @convention(c) (Int32, Int32) -> Int32
    private static let setnsFunction: SetnsFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return nil }
        return unsafeBitCast(symbol, to: SetnsFunction.self)
    }()
    private static let cloneNewNet: Int32 = 0x4000_0000

    /// Runs `body` on a new thread, inside `namespace` (a name under /var/run/netns, or a path) when given.
    private static func onThread(namespace: String?, _ body: @escaping @Sendable () -> Result) async -> Result {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                if let namespace {
                    let path = namespace.hasPrefix("/") ? namespace : "/var/run/netns/\(namespace)"
                    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
                    guard descriptor >= 0 else {
                        continuation.resume(returning: .failure("cannot open network namespace \(path): \(String(cString: strerror(errno)))"))
                        return
                    }
                    defer { close(descriptor) }
                    guard let setns = setnsFunction, setns(descriptor, cloneNewNet) == 0 else {
                        continuation.resume(returning: .failure("cannot enter network namespace \(path): \(String(cString: strerror(errno)))"))
                        return
                    }
                }
                continuation.resume(returning: body())
            }
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }

    // MARK: Sockets

    private struct Deadline {
        let end: Double
        init(_ timeout: Duration) { end = Self.now() + timeout.timeInterval }
        static func now() -> Double {
            var spec = timespec()
            clock_gettime(CLOCK_MONOTONIC, &spec)
            return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
        }
        var remainingMilliseconds: Int32 { Int32(max(0, min(Double(Int32.max), (end - Self.now()) * 1000))) }
    }

    private enum Connected {
        case success(Int32)
        case failure(String)
    }

    private static func connect(host: String, port: Int, deadline: Deadline) -> Connected {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure("dial tcp: lookup \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        let info = first.pointee
        let socket = Glibc.socket(info.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { return .failure("socket: \(String(cString: strerror(errno)))") }
        let address = "\(host.contains(":") ? "[\(host)]" : host):\(port)"
        if Glibc.connect(socket, info.ai_addr, info.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else {
                let code = errno
                close(socket)
                return .failure("dial tcp \(address): connect: \(String(cString: strerror(code)))")
            }
            guard wait(socket, events: Int16(POLLOUT), deadline: deadline) else {
                close(socket)
                return .failure("dial tcp \(address): i/o timeout")
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 {
                close(socket)
                return .failure("dial tcp \(address): connect: \(String(cString: strerror(error)))")
            }
        }
        return .success(socket)
    }

    private static func wait(_ socket: Int32, events: Int16, deadline: Deadline) -> Bool {
        while true {
            let remaining = deadline.remainingMilliseconds
            if remaining <= 0 { return false }
            var descriptor = pollfd(fd: socket, events: events, revents: 0)
            let result = poll(&descriptor, 1, remaining)
            if result > 0 { return true }
            if result == 0 { return false }
            if errno != EINTR { return false }
        }
    }

    private static func send(_ socket: Int32, _ bytes: [UInt8], deadline: Deadline) -> String? {
        var offset = 0
        while offset < bytes.count {
            guard wait(socket, events: Int16(POLLOUT), deadline: deadline) else { return "writing the request timed out" }
            let count = bytes[offset...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return "writing the request: \(String(cString: strerror(errno)))"
            }
            offset += count
        }
        return nil
    }
}
