import Foundation
import Testing

@testable import IPVS
import NodeAgentTesting

@Suite("FakeIPVS and FakeDummyInterface answer like the kernel")
struct FakeTests {
    let key = ServiceKey.address(.tcp, IPAddress("10.0.0.1")!, port: 80)
    let server = RealServer(IPAddress("10.1.0.1")!, port: 8080)

    func kind(_ body: () throws -> Void) -> IPVSError.Kind? {
        do { try body() } catch let error as IPVSError { return error.kind } catch { return nil }
        return nil
    }

    @Test("duplicates are EEXIST, missing objects ESRCH / ENOENT, unknown schedulers ENOENT")
    func kernelErrors() throws {
        let ipvs = FakeIPVS()
        try ipvs.addService(VirtualService(key, scheduler: .rr))
        #expect(kind { try ipvs.addService(VirtualService(key, scheduler: .rr)) } == .alreadyExists)
        #expect(kind { try ipvs.addService(VirtualService(.firewallMark(1, family: .inet), scheduler: "nosuch")) } == .schedulerNotFound)
        #expect(kind { try ipvs.deleteService(.firewallMark(1, family: .inet)) } == .notFound)
        try ipvs.addRealServer(server, to: key)
        #expect(kind { try ipvs.addRealServer(server, to: key) } == .alreadyExists)
        #expect(kind { try ipvs.deleteRealServer(RealServerKey(address: IPAddress("10.9.9.9")!, port: 1), from: key) } == .notFound)
        #expect(kind { try ipvs.addRealServer(RealServer(IPAddress("fd00::1")!, port: 80), to: key) } == .invalidArgument)
    }

    @Test("a batch applies every change, reports failures in place, and counters feed graceful termination")
    func batchAndCounters() throws {
        let ipvs = FakeIPVS()
        let results = try ipvs.apply([.addService(VirtualService(key, scheduler: .rr)), .addService(VirtualService(key, scheduler: .rr)), .addRealServer(server, service: key)])
        #expect(results.map { $0?.kind } == [nil, .alreadyExists, nil])
        ipvs.setConnections(active: 3, inactive: 1, of: server.key, in: key)
        #expect(try ipvs.realServers(of: key).map(\.activeConnections) == [3])
        #expect(try ipvs.snapshot().first?.realServers.count == 1)
        #expect(try ipvs.services().first?.realServers.isEmpty == true)
        #expect(ipvs.operations.count == 3)
        try ipvs.setTimeouts(IPVSTimeouts(tcp: 0, tcpFin: 30, udp: 0))
        #expect(try ipvs.timeouts() == IPVSTimeouts(tcp: 900, tcpFin: 30, udp: 300))
    }

    @Test("the fake kube-ipvs0 needs creating first, refuses duplicates and syncs in one pass")
    func dummy() throws {
        let link = FakeDummyInterface()
        let a = IPAddress("10.96.0.1")!
        let b = IPAddress("10.96.0.2")!
        #expect(kind { _ = try link.addresses() } == .notFound)
        try link.ensureInterface()
        try link.addAddress(a)
        #expect(kind { try link.addAddress(a) } == .alreadyExists)
        #expect(try link.syncAddresses([b]) == AddressSyncResult(added: [b], removed: [a]))
        #expect(kind { try FakeDummyInterface(canCreate: false).ensureInterface() } == .unavailable)
    }
}

@Suite("IPVS availability")
struct AvailabilityTests {
    @Test("on a kernel without ip_vs, isAvailable says why in one line and nothing crashes",
          .enabled(if: !inIPVSGuest && !FileManager.default.fileExists(atPath: "/sys/module/ip_vs"), "this kernel has ip_vs"))
    func unavailableHere() {
        let availability = IPVSKernel.isAvailable()
        guard case .unavailable(let reason) = availability else {
            Issue.record("IPVS reported available on a kernel without ip_vs")
            return
        }
        #expect(!reason.isEmpty)
        #expect(!reason.contains("\n"))
        #expect(reason.contains("ip_vs") || reason.contains("IPVS"))
        print("isAvailable() here: \(availability)")
    }

    @Test("without a modprobe, or when modprobe fails, the reason names the step that failed")
    func reasons() {
        let noFamily = ModuleLoader(isLoaded: { _ in false }, load: nil)
        if case .unavailable(let reason) = IPVSKernel.isAvailable(modules: noFamily), !FileManager.default.fileExists(atPath: "/sys/module/ip_vs") {
            #expect(reason.contains("no modprobe"))
        }
        let failing = ModuleLoader(isLoaded: { _ in false }, load: { name in "modprobe: FATAL: Module \(name) not found" })
        if case .unavailable(let reason) = IPVSKernel.isAvailable(schedulers: ["rr"], modules: failing) {
            #expect(reason.contains("modprobe ip_vs") && reason.contains("not found"))
        } else {
            Issue.record("a failing modprobe was reported available")
        }
    }
}
