import Foundation
import NodeAgentTesting
import Testing

@testable import NodeAgent

/// A unix datagram socket that receives what `sd_notify` sends, as systemd's notify socket does.
final class NotifySocket {
    let path: String
    private let fd: Int32

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("na-notify-\(UUID().uuidString.prefix(8)).sock").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The next datagram, or nil after the 20 s receive timeout.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
    }

    deinit {
        close(fd)
        unlink(path)
    }
}

@Suite("systemd integration")
struct SystemdTests {
    @Test("sd_notify messages arrive on a real unix datagram socket")
    func notifyMessages() throws {
        let socket = try NotifySocket()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.path])
        try notifier.ready(status: "serving")
        #expect(socket.receive() == "READY=1\nSTATUS=serving")
        try notifier.watchdog()
        #expect(socket.receive() == "WATCHDOG=1")
        try notifier.stopping(status: "bye")
        #expect(socket.receive() == "STOPPING=1\nSTATUS=bye")
    }

    @Test("without NOTIFY_SOCKET nothing is sent and nothing fails")
    func notUnderSystemd() throws {
        let notifier = SystemdNotifier(environment: [:])
        #expect(notifier.socketPath == nil)
        try notifier.ready(status: "x")
    }

    @Test("the watchdog interval is half of WATCHDOG_USEC, and only for the process it names")
    func watchdogInterval() {
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "60000000"], pid: 42).watchdogInterval == .seconds(30))
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "42"], pid: 42).watchdogInterval == .seconds(30))
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "7"], pid: 42).watchdogInterval == nil)
        #expect(SystemdNotifier(environment: [:], pid: 42).watchdogInterval == nil)
    }

    @Test("a sending error carries the socket and errno")
    func unreachableSocket() {
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/nonexistent/notify.sock"])
        #expect {
            try notifier.ready(status: "x")
        } throws: { error in
            (error as? SystemdNotifier.NotifyError)?.errno == ENOENT
        }
    }

    @Test("the daemon signals READY, serves /healthz, and on SIGTERM signals STOPPING and exits 0")
    func daemonLifecycle() async throws {
        let binary = SystemTests.productsDirectory.appendingPathComponent("node-agent").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the node-agent product first: \(binary)")
        let socket = try NotifySocket()
        // The kubelet half only: the proxy half would program this host's nf_tables (its own tests run it in a namespace).
        let process = Process.boundToTestProcess(
            binary, ["run", "--components", "kubelet", "--healthz-bind-address", "127.0.0.1:0", "--metrics-bind-address", "", "--hostname-override", "test-node"])
        process.environment = ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "2000000", "PATH": "/usr/bin:/bin"]
        process.standardError = FileHandle.nullDevice
        try process.runBound()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        // Watchdog pings may come first; READY=1 must follow once the status server listens.
        var ready = ""
        while let message = socket.receive() {
            if message.hasPrefix("READY=1") { ready = message; break }
            #expect(message == "WATCHDOG=1")
        }
        #expect(ready.hasPrefix("READY=1\nSTATUS=serving status on 127.0.0.1:"))
        let port = try #require(ready.split(separator: ":").last.flatMap { Int($0) })
        let health = try Command.run(["curl", "-s", "-m", "5", "http://127.0.0.1:\(port)/healthz"])
        #expect(health == "ok\n")
        let status = try Command.output([binary, "status", "--address", "127.0.0.1:\(port)"])
        #expect(status.status == 0, "\(status)")
        #expect(status.stdout.contains("on node test-node: healthy"))
        // The watchdog pings at half of WATCHDOG_USEC while liveness holds.
        #expect(socket.receive() == "WATCHDOG=1")

        let signalled = Date()
        kill(process.processIdentifier, SIGTERM)
        var sawStopping = false
        while let message = socket.receive() {
            if message.hasPrefix("STOPPING=1") { sawStopping = true; break }
        }
        #expect(sawStopping)
        while process.isRunning && Date().timeIntervalSince(signalled) < 10 { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "still running 10 s after SIGTERM")
        #expect(process.terminationStatus == 0)
    }

    @Test("bad flags and config values exit with status 2 and name the key")
    func badInputExitCode() throws {
        let binary = SystemTests.productsDirectory.appendingPathComponent("node-agent").path
        let bad = try Command.output([binary, "run", "--proxy-mode", "userspace"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("proxy-mode"))
        #expect(bad.stderr.contains("ipvs, iptables"))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("na-config-\(UUID().uuidString.prefix(8)).yaml")
        try "ipvs-schedular: rr\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let unknown = try Command.output([binary, "run", "--config", file.path])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("unknown key \"ipvs-schedular\""))
        #expect(try Command.output([binary, "version"]).status == 0)
    }

    @Test("the shipped unit passes systemd-analyze verify")
    func unitVerifies() throws {
        let root = SystemTests.repositoryRoot
        let unit = try String(contentsOf: root.appendingPathComponent("systemd/node-agent.service"), encoding: .utf8)
        #expect(unit.contains("Type=notify"))
        #expect(unit.contains("KillMode=process"))
        // verify insists that ExecStart's binary exists: point it at the one just built.
        let binary = SystemTests.productsDirectory.appendingPathComponent("node-agent").path
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("na-unit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = folder.appendingPathComponent("node-agent.service")
        try unit.replacingOccurrences(of: "/usr/local/bin/node-agent", with: binary).write(to: copy, atomically: true, encoding: .utf8)
        let result = try Command.output(["systemd-analyze", "verify", copy.path])
        #expect(result.status == 0, "\(result)")
        #expect(!result.stderr.contains("node-agent.service:"), "\(result.stderr)")
    }
}
