import Foundation
import Testing

@testable import IPVS

/// The library against the real IPVS kernel in the guest, each test in its own network namespace (IPVS is per
/// namespace), cross-checked both ways with ipvsadm.
@Suite("IPVSGuest: the library against the real IPVS kernel", .enabled(if: inIPVSGuest, "runs inside scripts/ipvs-vm"))
struct IPVSGuestKernelTests {
    static let cardSchedulers: [Scheduler] = [.rr, .lc, .dh, .sh, .sed, .nq]

    /// A table exercising every scheduler of the card, persistence, flags, UDP, a firewall mark and IPv6.
    static func table() -> [(VirtualService, [RealServer])] {
        var table: [(VirtualService, [RealServer])] = []
        for (i, scheduler) in (cardSchedulers + [.wrr, .wlc, .lblc, .lblcr, .mh]).enumerated() {
            let service = VirtualService(.address(.tcp, IPAddress("10.96.0.\(i + 1)")!, port: 80), scheduler: scheduler)
            let servers = (1...3).map { RealServer(IPAddress("10.1.\(i).\($0)")!, port: 8080, weight: Int32($0)) }
            table.append((service, servers))
        }
        table.append(
            (
                VirtualService(.address(.tcp, IPAddress("10.96.1.1")!, port: 443), scheduler: .rr, flags: .persistent, timeout: 300, netmaskPrefixLength: 24),
                [RealServer(IPAddress("10.2.0.1")!, port: 443, weight: 5, upperThreshold: 100, lowerThreshold: 10)]
            ))
        table.append(
            (
                VirtualService(.address(.udp, IPAddress("10.96.1.2")!, port: 53), scheduler: .rr, flags: .onePacket),
                [RealServer(IPAddress("10.2.0.2")!, port: 53), RealServer(IPAddress("10.2.0.3")!, port: 53, weight: 0)]
            ))
        table.append(
            (
                VirtualService(.address(.tcp, IPAddress("10.96.1.3")!, port: 80), scheduler: .sh, flags: [.schedulerFallback, .schedulerPort]),
                [RealServer(IPAddress("10.2.0.4")!, port: 80, forwarding: .route)]
            ))
        table.append((VirtualService(.firewallMark(7, family: .inet), scheduler: .wrr), [RealServer(IPAddress("10.2.0.5")!, port: 0)]))
        table.append(
            (
                VirtualService(.address(.tcp, IPAddress("fd00::1")!, port: 80), scheduler: .rr, flags: .persistent, timeout: 60, netmaskPrefixLength: 64),
                [RealServer(IPAddress("fd00::2:1")!, port: 8080), RealServer(IPAddress("fd00::2:2")!, port: 8080, weight: 2)]
            ))
        return table
    }

    @Test("full CRUD with every scheduler, persistence and flags; ipvsadm -Sn prints exactly what the library programmed")
    func libraryToIpvsadm() throws {
        let ns = try TestNamespace("crud")
        try addRealServerRoutes(ns)
        let ipvs = try IPVSKernel(namespacePath: ns.path)
        let table = Self.table()
        for (service, servers) in table {
            try ipvs.addService(service)
            for server in servers { try ipvs.addRealServer(server, to: service.key) }
        }
        #expect(try ipvsadmSaved(in: ns) == Set(table.flatMap { ipvsadmRules($0.0, $0.1) }))

        // Read back through the library: services (get and list) and real servers equal what was set.
        let snapshot = try ipvs.snapshot()
        #expect(Set(snapshot.map(\.service)) == Set(table.map(\.0)))
        for (service, servers) in table {
            #expect(try ipvs.service(service.key).service == service)
            #expect(Set(try ipvs.realServers(of: service.key).map(\.server)) == Set(servers))
        }

        // Update: scheduler, flags, persistence; a real server's weight, forwarding and thresholds.
        var changed = table[0].0
        changed.schedulerName = "sed"
        changed.flags = .persistent
        changed.timeout = 120
        try ipvs.updateService(changed)
        var server = table[0].1[0]
        server.weight = 7
        server.upperThreshold = 50
        try ipvs.updateRealServer(server, in: changed.key)
        #expect(try ipvs.service(changed.key).service == changed)
        let saved = try ipvsadmSaved(in: ns)
        #expect(saved.contains("-A -t 10.96.0.1:80 -s sed -p 120"))
        #expect(saved.contains("-a -t 10.96.0.1:80 -r 10.1.0.1:8080 -m -w 7"))
        #expect(try ns.run("ipvsadm -L -n --thresholds -t 10.96.0.1:80").contains(#/10\.1\.0\.1:8080\s+50\s+0/#))

        // Delete a real server, then a service; ipvsadm sees them gone.
        try ipvs.deleteRealServer(server.key, from: changed.key)
        try ipvs.deleteService(table[1].0.key)
        let after = try ipvsadmSaved(in: ns)
        #expect(!after.contains { $0.contains("10.1.0.1:8080") })
        #expect(!after.contains { $0.contains("10.96.0.2:80") })
        try ipvs.flush()
        #expect(try ipvsadmSaved(in: ns).isEmpty)
        #expect(try ipvs.services().isEmpty)
    }

    @Test("what ipvsadm -A/-a programs, the library lists exactly")
    func ipvsadmToLibrary() throws {
        let ns = try TestNamespace("restore")
        try addRealServerRoutes(ns)
        let table = Self.table()
        try ns.run("ipvsadm -R", input: table.flatMap { ipvsadmRules($0.0, $0.1, thresholds: true) }.joined(separator: "\n") + "\n")
        let ipvs = try IPVSKernel(namespacePath: ns.path)
        let snapshot = try ipvs.snapshot()
        #expect(Set(snapshot.map(\.service)) == Set(table.map(\.0)))
        for (service, servers) in table {
            let listed = snapshot.first { $0.service.key == service.key }
            #expect(Set(listed?.realServers.map(\.server) ?? []) == Set(servers), "real servers of \(service.key)")
        }
    }

    @Test("a batch programs everything and reports each failure in place, the rest applied")
    func batch() throws {
        let ns = try TestNamespace("batch")
        try addRealServerRoutes(ns)
        let ipvs = try IPVSKernel(namespacePath: ns.path)
        var operations: [IPVSOperation] = []
        for i in 0..<300 {
            let key = ServiceKey.address(.tcp, IPAddress("10.97.\(i / 250).\(i % 250 + 1)")!, port: 80)
            operations.append(.addService(VirtualService(key, scheduler: .rr)))
            for k in 0..<5 { operations.append(.addRealServer(RealServer(IPAddress("10.3.\(i / 250).\(i % 250 + 1)")!, port: UInt16(8000 + k)), service: key)) }
        }
        let duplicate = operations[0]
        operations.insert(duplicate, at: 700)
        let results = try ipvs.apply(operations)
        #expect(results.count == operations.count)
        #expect(results.enumerated().filter { $0.element != nil }.map(\.offset) == [700])
        #expect(results[700]?.kind == .alreadyExists)
        let listed = try ipvs.services()
        #expect(listed.count == 300)
        #expect(try ipvs.realServers(of: listed[150].service.key).count == 5)
        #expect(try ns.run("ipvsadm -S -n").split(whereSeparator: \.isNewline).count == 300 * 6)
    }

    @Test("errors are typed: duplicate add, missing service or real server, unknown scheduler, bad address family")
    func errors() throws {
        let ns = try TestNamespace("errors")
        try addRealServerRoutes(ns)
        let ipvs = try IPVSKernel(namespacePath: ns.path)
        let key = ServiceKey.address(.tcp, IPAddress("10.96.5.1")!, port: 80)
        try ipvs.addService(VirtualService(key, scheduler: .rr))
        func kind(_ body: () throws -> Void) -> IPVSError.Kind? {
            do { try body() } catch let error as IPVSError { return error.kind } catch { return nil }
            return nil
        }
        #expect(kind { try ipvs.addService(VirtualService(key, scheduler: .rr)) } == .alreadyExists)
        let missing = ServiceKey.address(.tcp, IPAddress("10.96.5.2")!, port: 80)
        #expect(kind { try ipvs.deleteService(missing) } == .notFound)
        #expect(kind { try ipvs.updateService(VirtualService(missing, scheduler: .rr)) } == .notFound)
        #expect(kind { _ = try ipvs.service(missing) } == .notFound)
        #expect(kind { try ipvs.addRealServer(RealServer(IPAddress("10.4.0.1")!, port: 80), to: missing) } == .notFound)
        #expect(kind { try ipvs.deleteRealServer(RealServerKey(address: IPAddress("10.4.0.1")!, port: 80), from: key) } == .notFound)
        try ipvs.addRealServer(RealServer(IPAddress("10.4.0.1")!, port: 80), to: key)
        #expect(kind { try ipvs.addRealServer(RealServer(IPAddress("10.4.0.1")!, port: 80), to: key) } == .alreadyExists)
        do {
            try ipvs.addService(VirtualService(.address(.tcp, IPAddress("10.96.5.3")!, port: 80), scheduler: "nosuch"))
            Issue.record("an unknown scheduler was accepted")
        } catch {
            #expect(error.kind == .schedulerNotFound)
            #expect(error.description.contains("TCP 10.96.5.3:80"))
        }
        // An IPv6 masquerading real server on an IPv4 service: the kernel only mixes families for tunnels.
        #expect(kind { try ipvs.addRealServer(RealServer(IPAddress("fd00::9")!, port: 80), to: key) } == .invalidArgument)

        // A request with an address family the kernel does not know (99), below the typed API.
        let socket = try MnlSocket(bus: NETLINK_GENERIC_VALUE, namespacePath: ns.path, receiveTimeout: .seconds(5))
        let connection = NetlinkConnection(transport: socket)
        let family = try GenericNetlink.resolve("IPVS", over: connection)
        var attributes = IPVSCodec.keyAttributes(.address(.tcp, IPAddress("10.96.5.4")!, port: 80))
        attributes[0] = .u16(1, 99)
        attributes += [.string(6, "rr"), .bytes(7, [UInt8](repeating: 0, count: 8)), .u32(8, 0), .u32(9, 0xffff_ffff)]
        do {
            try connection.perform(IPVSCodec.request(family: family, .newService, [.nested(1, attributes)]), operation: "IPVS_CMD_NEW_SERVICE")
            Issue.record("address family 99 was accepted")
        } catch {
            #expect(IPVSError(error, operation: "add service", object: "af 99", serviceWrite: true).kind == .addressFamilyNotSupported)
        }
        // The connection is still usable after the errors.
        #expect(try ipvs.services().count == 1)
    }

    @Test("timeouts read and write through the kernel, 0 leaves a value unchanged")
    func timeouts() throws {
        let ns = try TestNamespace("timeouts")
        let ipvs = try IPVSKernel(namespacePath: ns.path)
        try ipvs.setTimeouts(IPVSTimeouts(tcp: 1000, tcpFin: 30, udp: 60))
        #expect(try ipvs.timeouts() == IPVSTimeouts(tcp: 1000, tcpFin: 30, udp: 60))
        try ipvs.setTimeouts(IPVSTimeouts(tcp: 0, tcpFin: 0, udp: 90))
        #expect(try ipvs.timeouts() == IPVSTimeouts(tcp: 1000, tcpFin: 30, udp: 90))
        #expect(try ns.run("ipvsadm -L --timeout").contains("1000 30 90"))
    }

    @Test("isAvailable reports IPVS available in the guest for every scheduler of the card")
    func availability() throws {
        #expect(IPVSKernel.isAvailable(schedulers: Self.cardSchedulers.map(\.rawValue)) == .available)
    }

    @Test("kube-ipvs0: created as a NOARP dummy, addresses added, listed, synced and removed as ip(8) sees them")
    func dummyInterface() throws {
        let ns = try TestNamespace("dummy")
        let link = try DummyInterface(namespacePath: ns.path)
        let index = try link.ensureInterface()
        #expect(try link.ensureInterface() == index)
        let details = try ns.run("ip -d link show kube-ipvs0")
        #expect(details.contains("dummy"))
        #expect(details.contains("NOARP"))
        let a = IPAddress("10.96.0.10")!
        let b = IPAddress("10.96.0.11")!
        let c = IPAddress("fd00:96::10")!
        try link.addAddress(a)
        do {
            try link.addAddress(a)
            Issue.record("a duplicate address was accepted")
        } catch { #expect(error.kind == .alreadyExists) }
        #expect(try link.addresses() == [a])
        let result = try link.syncAddresses([b, c])
        #expect(result == AddressSyncResult(added: [b, c], removed: [a]))
        #expect(try link.addresses() == [b, c])
        let shown = try ns.run("ip -o addr show dev kube-ipvs0")
        #expect(shown.contains("10.96.0.11/32"))
        #expect(shown.contains("fd00:96::10/128"))
        #expect(!shown.contains("10.96.0.10/"))
        try link.removeAddress(b)
        do {
            try link.removeAddress(b)
            Issue.record("removing a missing address succeeded")
        } catch { #expect(error.kind == .notFound) }
        #expect(try link.syncAddresses([c]) == AddressSyncResult())

        // A non-dummy interface of that name is reported, not used.
        let other = try TestNamespace("dummy-veth")
        try other.run("ip link add kube-ipvs0 type veth peer name naipvs-peer")
        do {
            try DummyInterface(namespacePath: other.path).ensureInterface()
            Issue.record("a veth named kube-ipvs0 was accepted")
        } catch {
            #expect(error.kind == .invalidArgument)
            #expect(error.description.contains("veth"))
        }
    }
}

let NETLINK_GENERIC_VALUE: Int32 = 16
