import Foundation
import Testing

@testable import IPVS

/// True inside the IPVS guest that scripts/ipvs-vm boots; the guest suites run only there.
let inIPVSGuest = ProcessInfo.processInfo.environment["NODE_AGENT_IPVS_GUEST"] == "1"

struct CommandFailed: Error, CustomStringConvertible {
    var command: String
    var status: Int32
    var output: String
    var description: String { "`\(command)` exited \(status): \(output)" }
}

/// Runs `command` with /bin/sh and returns stdout and stderr together; throws when it exits non-zero.
@discardableResult
func sh(_ command: String, input: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let stdin = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else { throw CommandFailed(command: command, status: process.terminationStatus, output: text) }
    return text
}

/// A network namespace named `naipvs-<suffix>`, deleted (with every process still in it) when released.
final class TestNamespace {
    let name: String
    var path: String { "/var/run/netns/\(name)" }

    init(_ suffix: String) throws {
        name = "naipvs-\(suffix)"
        try? sh("ip netns pids \(name) 2>/dev/null | xargs -r kill -9; ip netns del \(name) 2>/dev/null")
        try sh("ip netns add \(name) && ip -n \(name) link set lo up")
    }

    /// Runs `command` inside the namespace.
    @discardableResult
    func run(_ command: String, input: String? = nil) throws -> String {
        try sh("ip netns exec \(name) \(command)", input: input)
    }

    func killProcesses() { _ = try? sh("ip netns pids \(name) | xargs -r kill -9") }

    deinit {
        killProcesses()
        _ = try? sh("ip netns del \(name)")
    }
}

/// The rules `ipvsadm -S -n` prints for a service and its real servers (ipvsadm 1.31's FMT_RULE format).
///
/// `-S` does not print thresholds; `thresholds: true` adds `-x` / `-y` for feeding `ipvsadm -R`.
func ipvsadmRules(_ service: VirtualService, _ servers: [RealServer], thresholds: Bool = false) -> [String] {
    let name: String
    switch service.key {
    case .address(let proto, let address, let port):
        let flag = proto == .tcp ? "-t" : proto == .udp ? "-u" : "--sctp-service"
        name = address.family == .inet ? "\(flag) \(address):\(port)" : "\(flag) [\(address)]:\(port)"
    case .firewallMark(let mark, let family):
        name = family == .inet ? "-f \(mark)" : "-f \(mark) -6"
    }
    var line = "-A \(name) -s \(service.schedulerName)"
    let schedulerFlags = service.flags.intersection([.schedulerFallback, .schedulerPort, .scheduler3])
    if !schedulerFlags.isEmpty {
        let prefix = ["sh", "mh"].contains(service.schedulerName) ? service.schedulerName : nil
        var names: [String] = []
        if schedulerFlags.contains(.schedulerFallback) { names.append(prefix.map { "\($0)-fallback" } ?? "flag-1") }
        if schedulerFlags.contains(.schedulerPort) { names.append(prefix.map { "\($0)-port" } ?? "flag-2") }
        if schedulerFlags.contains(.scheduler3) { names.append("flag-3") }
        line += " -b " + names.joined(separator: ",")
    }
    if service.flags.contains(.persistent) {
        line += " -p \(service.timeout)"
        if service.key.family == .inet, service.netmaskPrefixLength != 32 {
            let mask: UInt32 = service.netmaskPrefixLength == 0 ? 0 : UInt32.max << (32 - UInt32(service.netmaskPrefixLength))
            line += " -M \(mask >> 24).\((mask >> 16) & 0xff).\((mask >> 8) & 0xff).\(mask & 0xff)"
        } else if service.key.family == .inet6, service.netmaskPrefixLength != 128 {
            line += " -M \(service.netmaskPrefixLength)"
        }
    }
    if service.flags.contains(.onePacket) { line += " -o" }
    var lines = [line]
    for server in servers {
        let forwarding: String
        switch server.forwarding {
        case .masquerade: forwarding = "-m"
        case .tunnel: forwarding = "-i"
        default: forwarding = "-g"
        }
        var rule = "-a \(name) -r \(server) \(forwarding) -w \(server.weight)"
        if thresholds, server.upperThreshold != 0 { rule += " -x \(server.upperThreshold)" }
        if thresholds, server.lowerThreshold != 0 { rule += " -y \(server.lowerThreshold)" }
        lines.append(rule)
    }
    return lines
}

/// The lines of `ipvsadm -S -n` in `namespace`, as a set.
func ipvsadmSaved(in namespace: TestNamespace) throws -> Set<String> {
    Set(try namespace.run("ipvsadm -S -n").split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
}

/// Gives masquerading real servers in 10.0.0.0/8 and fd00::/8 a route, as the kernel requires of a unicast destination.
func addRealServerRoutes(_ namespace: TestNamespace) throws {
    try namespace.run(
        "sh -c 'ip link add naipvs-d0 type dummy && ip link set naipvs-d0 up && ip addr add 10.255.255.1/32 dev naipvs-d0"
            + " && ip route add 10.0.0.0/8 dev naipvs-d0 && ip addr add fd00:ffff::1/128 dev naipvs-d0 nodad && ip route add fd00::/8 dev naipvs-d0'")
}
