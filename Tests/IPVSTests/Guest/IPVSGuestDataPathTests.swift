import Foundation
import Testing

@testable import IPVS

/// Real traffic through IPVS in the guest: a client namespace, three busybox httpd backends that answer their own
/// name, and a VIP on kube-ipvs0 in an isolated node namespace (a bridge for the backends, a veth for the client,
/// no route anywhere else), masquerade forwarding.
final class DataPathTopology {
    let node: TestNamespace
    let client: TestNamespace
    let backends: [TestNamespace]
    let ipvs: IPVSKernel
    private var servers: [Process] = []
    let vip = IPAddress("10.96.0.10")!
    var key: ServiceKey { .address(.tcp, vip, port: 80) }
    func backendAddress(_ i: Int) -> IPAddress { Self.backendAddress(i) }
    static func backendAddress(_ i: Int) -> IPAddress { IPAddress("10.250.0.1\(i + 1)")! }

    init(_ id: String, scheduler: Scheduler, flags: ServiceFlags = []) throws {
        node = try TestNamespace("\(id)-n")
        client = try TestNamespace("\(id)-c")
        backends = try (1...3).map { try TestNamespace("\(id)-b\($0)") }
        try node.run("sh -c 'sysctl -qw net.ipv4.ip_forward=1 && ip link add br0 type bridge && ip addr add 10.250.0.1/24 dev br0 && ip link set br0 up'")
        for (i, backend) in backends.enumerated() {
            try sh(
                "ip link add naipvs-v\(i) netns \(node.name) type veth peer name eth0 netns \(backend.name)"
                    + " && ip -n \(node.name) link set naipvs-v\(i) master br0 up"
                    + " && ip -n \(backend.name) addr add \(Self.backendAddress(i))/24 dev eth0 && ip -n \(backend.name) link set eth0 up"
                    + " && ip -n \(backend.name) route add default via 10.250.0.1")
            let root = "/tmp/\(backend.name)"
            try sh("mkdir -p \(root) && echo b\(i + 1) > \(root)/index.html")
            // In the foreground, with no pipe of ours: a daemonized httpd would keep a pipe fd it inherited open.
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            server.arguments = ["netns", "exec", backend.name, "busybox", "httpd", "-f", "-p", "8080", "-h", root]
            server.standardInput = FileHandle.nullDevice
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            try server.run()
            servers.append(server)
        }
        try sh(
            "ip link add naipvs-vc netns \(node.name) type veth peer name eth0 netns \(client.name)"
                + " && ip -n \(node.name) addr add 10.251.0.1/24 dev naipvs-vc && ip -n \(node.name) link set naipvs-vc up"
                + " && ip -n \(client.name) addr add 10.251.0.2/24 dev eth0 && ip -n \(client.name) link set eth0 up"
                + " && ip -n \(client.name) route add default via 10.251.0.1")
        let link = try DummyInterface(namespacePath: node.path)
        _ = try link.syncAddresses([vip])
        ipvs = try IPVSKernel(namespacePath: node.path)
        try ipvs.addService(VirtualService(key, scheduler: scheduler, flags: flags))
        for i in 0..<3 { try ipvs.addRealServer(RealServer(Self.backendAddress(i), port: 8080), to: key) }
        // Wait for the backends to listen.
        for i in 0..<3 {
            var ready = false
            for _ in 0..<50 where !ready {
                ready = (try? node.run("curl -s -m 2 http://\(Self.backendAddress(i)):8080/")) != nil
                if !ready { Thread.sleep(forTimeInterval: 0.2) }
            }
            if !ready { throw CommandFailed(command: "backend b\(i + 1) readiness", status: 1, output: "httpd never answered") }
        }
    }

    /// `count` requests from the client, each on its own connection; the backend names in order.
    func requests(_ count: Int) throws -> [String] {
        let urls = Array(repeating: "http://\(vip)/", count: count).joined(separator: " ")
        let output = try client.run("curl -s -m 10 -H 'Connection: close' \(urls)")
        return output.split(whereSeparator: \.isNewline).map(String.init)
    }

    deinit {
        for server in servers { server.terminate() }
        for namespace in [client, node] + backends { namespace.killProcesses() }
        for backend in backends { _ = try? sh("rm -rf /tmp/\(backend.name)") }
    }
}

func tally(_ names: [String]) -> [String: Int] { names.reduce(into: [:]) { $0[$1, default: 0] += 1 } }

@Suite("IPVSGuest: traffic through IPVS to real backends", .enabled(if: inIPVSGuest, "runs inside scripts/ipvs-vm"), .serialized)
struct IPVSGuestDataPathTests {
    @Test("rr spreads 30 requests 10/10/10 over three backends")
    func roundRobin() throws {
        let topology = try DataPathTopology("rr", scheduler: .rr)
        #expect(tally(try topology.requests(30)) == ["b1": 10, "b2": 10, "b3": 10])
    }

    @Test("sh keeps one client on one backend")
    func sourceHashing() throws {
        let topology = try DataPathTopology("sh", scheduler: .sh)
        let names = try topology.requests(12)
        #expect(names.count == 12)
        #expect(Set(names).count == 1)
    }

    @Test("weight 0 drains a backend: new connections go to the others only")
    func weightZeroDrains() throws {
        let topology = try DataPathTopology("drain", scheduler: .rr)
        try topology.ipvs.updateRealServer(RealServer(topology.backendAddress(2), port: 8080, weight: 0), in: topology.key)
        #expect(tally(try topology.requests(30)) == ["b1": 15, "b2": 15])
    }

    @Test("lc, sed and nq send new connections to idle backends while one holds a long-lived connection; counters show it")
    func leastLoaded() throws {
        let topology = try DataPathTopology("lc", scheduler: .lc)
        for scheduler in [Scheduler.lc, .sed, .nq] {
            try topology.ipvs.updateService(VirtualService(topology.key, scheduler: scheduler))
            // A connection that stays open (nc waits on its idle stdin) for up to 20 s.
            let hold = Process()
            hold.executableURL = URL(fileURLWithPath: "/bin/sh")
            hold.arguments = ["-c", "ip netns exec \(topology.client.name) sh -c 'sleep 20 | timeout 20 busybox nc \(topology.vip) 80'"]
            hold.standardError = FileHandle.nullDevice
            try hold.run()
            defer { hold.terminate() }
            var busy: RealServerStatus?
            for _ in 0..<50 where busy == nil {
                busy = try topology.ipvs.realServers(of: topology.key).first { $0.activeConnections >= 1 }
                if busy == nil { Thread.sleep(forTimeInterval: 0.2) }
            }
            let holder = try #require(busy, "\(scheduler): no real server shows the held connection as active")
            let busyName = "b\(Int(holder.server.address.bytes[3]) - 10)"
            let names = try topology.requests(6)
            #expect(names.count == 6, "\(scheduler)")
            #expect(!names.contains(busyName), "\(scheduler) sent a new connection to the busy backend \(busyName): \(names)")
            topology.client.killProcesses()
            hold.waitUntilExit()
            // Let the held connection leave the active state before the next scheduler.
            for _ in 0..<50 {
                if try topology.ipvs.realServers(of: topology.key).allSatisfy({ $0.activeConnections == 0 }) { break }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }
}
