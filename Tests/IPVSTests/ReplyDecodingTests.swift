import Testing

@testable import IPVS

/// Replies written by hand from `linux/ip_vs.h` (the captured real-kernel replies are in KernelReplyTests).
@Suite("IPVS and rtnetlink replies decode byte for byte")
struct ReplyDecodingTests {
    func message(_ payload: String, type: UInt16 = 0x20) -> NetlinkMessage {
        NetlinkMessage(type: type, flags: 2, sequence: 1, portID: 0, payload: hex(payload))
    }

    @Test("a service with 64-bit stats, hashed flag stripped, IPv4 netmask from big-endian bytes")
    func service() throws {
        let status = try IPVSCodec.decodeService(
            message(
                """
                01 01 0000 | 8800 0180
                0600 0100 0200 0000 | 0600 0200 0600 0000 | 1400 0300 0a000001 00000000 00000000 00000000 | 0600 0400 0050 0000
                0700 0600 727200 00 | 0c00 0700 03000000 ffffffff | 0800 0800 2c010000 | 0800 0900 ffffff00
                3400 0c80 | 0c00 0100 0500000000000000 | 0c00 0200 0700000000000000 | 0c00 0400 e803000000000000 | 0c00 0600 0100000000000000
                """))
        #expect(status.service == VirtualService(.address(.tcp, IPAddress("10.0.0.1")!, port: 80), scheduler: .rr, flags: .persistent, timeout: 300, netmaskPrefixLength: 24))
        #expect(status.stats.connections == 5)
        #expect(status.stats.packetsIn == 7)
        #expect(status.stats.bytesIn == 1000)
        #expect(status.stats.connectionsPerSecond == 1)
    }

    @Test("an IPv6 firewall-mark service, netmask as a prefix length")
    func firewallMarkIPv6() throws {
        let status = try IPVSCodec.decodeService(
            message("01 01 0000 | 3000 0180 | 0600 0100 0a00 0000 | 0800 0500 09000000 | 0700 0600 6c6300 00 | 0c00 0700 00000000 ffffffff | 0800 0900 80000000"))
        #expect(status.service == VirtualService(.firewallMark(9, family: .inet6), scheduler: .lc))
    }

    @Test("a real server without IPVS_DEST_ATTR_ADDR_FAMILY takes its service's family (kernels before 3.18)")
    func destinationFamilyInferred() throws {
        let status = try IPVSCodec.decodeDestination(
            message(
                """
                05 01 0000 | 6400 0280
                1400 0100 fd000000 00000000 00000000 00000005 | 0600 0200 1f90 0000 | 0800 0300 03000000 | 0800 0400 02000000
                0800 0500 00000000 | 0800 0600 00000000 | 0800 0700 04000000 | 0800 0800 09000000 | 0800 0900 01000000
                0c00 0a80 | 0800 0100 02000000
                """), serviceFamily: .inet6)
        #expect(status.server == RealServer(IPAddress("fd00::5")!, port: 8080, weight: 2, forwarding: .route))
        #expect(status.activeConnections == 4)
        #expect(status.inactiveConnections == 9)
        #expect(status.persistentConnections == 1)
        #expect(status.stats.connections == 2)
    }

    @Test("a link reply gives index, NOARP flag and kind; an address reply its address when on that link")
    func routeReplies() throws {
        let link = try RouteCodec.decodeLink(
            message(
                "00 00 0100 07000000 82000000 00000000 | 0f00 0300 6b7562652d69707673 3000 00 | 1000 1280 0a00 0100 64756d6d 7900 0000",
                type: 16))
        #expect(link == RouteCodec.Link(index: 7, flags: 0x82, name: "kube-ipvs0", kind: "dummy"))
        let address = message("02 20 00 00 07000000 | 0800 0100 0a60000a | 0800 0200 0a60000a", type: 20)
        #expect(try RouteCodec.decodeAddress(address, index: 7) == IPAddress("10.96.0.10"))
        #expect(try RouteCodec.decodeAddress(address, index: 8) == nil)
    }

    @Test("a reply missing its identity is malformed, not a crash")
    func missingAttributes() {
        #expect(throws: NetlinkError.self) { try IPVSCodec.decodeService(message("01 01 0000 | 0c00 0180 | 0600 0100 0200 0000")) }
        #expect(throws: NetlinkError.self) { try IPVSCodec.decodeService(message("01 01 0000")) }
        #expect(throws: NetlinkError.self) { try IPVSCodec.decodeTimeouts(message("0d 01 0000 | 0800 0400 84030000")) }
    }
}
