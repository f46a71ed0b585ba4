import Foundation
import Synchronization
import Testing

@testable import IPVS

/// Records the kernel's own replies for the host's golden tests (Tests/IPVSTests/KernelReplyTests.swift holds them).
@Suite("IPVSGuest: kernel replies captured for the golden tests", .enabled(if: inIPVSGuest, "runs inside scripts/ipvs-vm"))
struct IPVSGuestCaptureTests {
    @Test("the kernel's replies decode to what was programmed, and are written out when a capture folder is given")
    func capture() throws {
        let ns = try TestNamespace("capture")
        try addRealServerRoutes(ns)
        let ipvs = try IPVSKernel(namespacePath: ns.path)
        let key = ServiceKey.address(.tcp, IPAddress("10.96.0.1")!, port: 80)
        try ipvs.addService(VirtualService(key, scheduler: .sh, flags: [.persistent, .schedulerFallback], timeout: 300, netmaskPrefixLength: 24))
        try ipvs.addRealServer(RealServer(IPAddress("10.1.0.5")!, port: 8080, weight: 3, upperThreshold: 100, lowerThreshold: 10), to: key)
        try ipvs.setTimeouts(IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300))

        let captured = Mutex<[[UInt8]]>([])
        ipvs.onReceive { datagram in captured.withLock { $0.append(datagram) } }
        func take(_ body: () throws -> Void) throws -> [UInt8] {
            captured.withLock { $0.removeAll() }
            try body()
            return captured.withLock { $0.flatMap { $0 } }
        }
        var listedKeys: [ServiceKey] = []
        var listedPorts: [UInt16] = []
        var readTimeouts: IPVSTimeouts?
        var duplicateError: IPVSError?
        let services = try take { () throws in listedKeys = try ipvs.services().map(\.service.key) }
        let destinations = try take { () throws in listedPorts = try ipvs.realServers(of: key).map(\.server.port) }
        let timeouts = try take { () throws in readTimeouts = try ipvs.timeouts() }
        let duplicate = try take { () throws in
            do { try ipvs.addService(VirtualService(key, scheduler: .rr)) } catch let error as IPVSError { duplicateError = error }
        }
        #expect(listedKeys == [key])
        #expect(listedPorts == [8080])
        #expect(readTimeouts == IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300))
        #expect(duplicateError?.kind == .alreadyExists)

        if let folder = ProcessInfo.processInfo.environment["NODE_AGENT_IPVS_VM_OUT"], ProcessInfo.processInfo.environment["NODE_AGENT_IPVS_CAPTURE"] == "1" {
            for (name, bytes) in [("services", services), ("destinations", destinations), ("timeouts", timeouts), ("duplicate", duplicate)] {
                try hexString(bytes).write(toFile: "\(folder)/\(name).hex", atomically: true, encoding: .utf8)
            }
        }
    }
}
