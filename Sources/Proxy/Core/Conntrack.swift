public import Foundation
public import Logging

/// Removes stale conntrack entries, so UDP clients are not stuck on a vanished endpoint (kube-proxy #71514):
/// UDP has no connection end, and an entry keeps sending a client's datagrams to the old DNAT target for as
/// long as the client keeps talking.
public protocol ConntrackCleaner: Sendable {
    /// Deletes UDP entries whose original destination is `ip` (a Service IP that went away or had no endpoints).
    func clearUDP(destination ip: IPAddress) throws
    /// Deletes UDP entries to NodePort `port` (the node's own addresses).
    func clearUDP(nodePort port: Int, family: IPFamily) throws
    /// Deletes UDP entries from Service IP `ip` that were DNATed to `endpoint`.
    func clearUDP(destination ip: IPAddress, endpoint: IPAddress) throws
    /// Deletes UDP entries to NodePort `port` that were DNATed to `endpoint`.
    func clearUDP(nodePort port: Int, endpoint: IPAddress) throws
}

/// The `conntrack` tool (conntrack-tools) as ``ConntrackCleaner``. It acts in the network namespace of this
/// process: the daemon's, or the test's node namespace when the proxier runs there.
public struct ConntrackTool: ConntrackCleaner {
    /// A failing `conntrack` run.
    public struct Failure: Error, CustomStringConvertible {
        public var arguments: [String]
        public var status: Int32
        public var stderr: String
        public var description: String {
            "`conntrack \(arguments.joined(separator: " "))` failed with exit status \(status): \(stderr); is conntrack-tools installed and nf_conntrack loaded?"
        }
    }

    public var executable: String
    public var logger: Logger

    public init(executable: String = "/usr/sbin/conntrack", logger: Logger) {
        self.executable = executable
        self.logger = logger
    }

    public func clearUDP(destination ip: IPAddress) throws {
        try delete(["-f", Self.family(ip.family), "-p", "udp", "--orig-dst", ip.text])
    }

    public func clearUDP(nodePort port: Int, family: IPFamily) throws {
        try delete(["-f", Self.family(family), "-p", "udp", "--dport", "\(port)"])
    }

    public func clearUDP(destination ip: IPAddress, endpoint: IPAddress) throws {
        try delete(["-f", Self.family(ip.family), "-p", "udp", "--orig-dst", ip.text, "--dst-nat", endpoint.text])
    }

    public func clearUDP(nodePort port: Int, endpoint: IPAddress) throws {
        try delete(["-f", Self.family(endpoint.family), "-p", "udp", "--dport", "\(port)", "--dst-nat", endpoint.text])
    }

    private static func family(_ family: IPFamily) -> String { family == .ipv4 ? "ipv4" : "ipv6" }

    private func delete(_ filter: [String]) throws {
        let arguments = ["-D"] + filter
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stderr = String(decoding: data, as: UTF8.self)
        // conntrack exits 1 when nothing matched ("0 flow entries have been deleted"): that is success here.
        if process.terminationStatus == 0 || stderr.contains("0 flow entries") {
            logger.debug("conntrack entries cleared", metadata: ["filter": "\(filter.joined(separator: " "))", "result": "\(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"])
            return
        }
        throw Failure(arguments: arguments, status: process.terminationStatus, stderr: stderr.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Writes kernel settings under `/proc/sys`.
public protocol SysctlWriter: Sendable {
    /// The current value of `name` (`net/ipv4/ip_forward`), nil when absent.
    func read(_ name: String) -> String?
    func write(_ name: String, _ value: String) throws
}

/// ``SysctlWriter`` over `/proc/sys` of this process's network namespace.
public struct ProcSysctl: SysctlWriter {
    public init() {}

    public func read(_ name: String) -> String? {
        (try? String(contentsOfFile: "/proc/sys/\(name)", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func write(_ name: String, _ value: String) throws {
        try Data((value + "\n").utf8).write(to: URL(fileURLWithPath: "/proc/sys/\(name)"))
    }
}
