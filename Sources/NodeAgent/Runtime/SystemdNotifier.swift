import Foundation

/// Speaks systemd's notify protocol (`sd_notify(3)`) without libsystemd: one datagram per message to the
/// unix socket named by `NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`).
///
/// When the daemon is not started by systemd the variable is absent and every call does nothing.
struct SystemdNotifier: Sendable {
    /// The socket address text from `NOTIFY_SOCKET`, or nil when not under systemd.
    let socketPath: String?
    /// Half of `WATCHDOG_USEC` when systemd asked this process for keep-alives.
    let watchdogInterval: Duration?

    /// A notify failure: the socket could not be reached. The daemon logs it and carries on.
    struct NotifyError: Error, CustomStringConvertible {
        var socket: String
        var errno: Int32
        var description: String { "sd_notify to \(socket) failed: \(String(cString: strerror(errno)))" }
    }

    init(environment: [String: String] = ProcessInfo.processInfo.environment, pid: Int32 = getpid()) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        if let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0,
            environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == pid }) ?? true
        {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    /// Sends `READY=1` plus a status line.
    func ready(status: String) throws { try send("READY=1\nSTATUS=\(status)") }
    /// Sends `STATUS=...`.
    func status(_ text: String) throws { try send("STATUS=\(text)") }
    /// Sends `STOPPING=1` plus a status line.
    func stopping(status: String) throws { try send("STOPPING=1\nSTATUS=\(status)") }
    /// Sends the watchdog keep-alive `WATCHDOG=1`.
    func watchdog() throws { try send("WATCHDOG=1") }

    /// Sends one raw message (newline-separated assignments). Does nothing when not under systemd.
    /// - Throws: ``NotifyError`` carrying errno when the datagram cannot be sent.
    func send(_ message: String) throws {
        guard let socketPath else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NotifyError(socket: socketPath, errno: errno) }
        defer { close(fd) }

        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(socketPath.utf8)
        if pathBytes.first == UInt8(ascii: "@") { pathBytes[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else { throw NotifyError(socket: socketPath, errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + (pathBytes.first == 0 ? 0 : 1))
        let payload = Array(message.utf8)
        while true {
            let sent = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                    payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddrPointer, length) }
                }
            }
            if sent >= 0 { return }
            if errno == EINTR { continue }
            throw NotifyError(socket: socketPath, errno: errno)
        }
    }
}
