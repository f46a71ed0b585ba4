import Testing

@testable import IPVS

/// Datagrams the real kernel (Debian 6.1, in the IPVS guest) sent, captured by `scripts/test-ipvs-guest --capture DIR`
/// (IPVSGuestCaptureTests) after programming: service TCP 10.96.0.1:80, sh, persistent + sh-fallback, timeout 300,
/// netmask 255.255.255.0; real server 10.1.0.5:8080 masq, weight 3, thresholds 100 / 10; timeouts 900 / 120 / 300.
enum CapturedKernelReplies {
    /// `IPVS_CMD_GET_SERVICE` dump: one NEW_SERVICE part, then NLMSG_DONE.
    static let services = hex(
        """
        40010000200002000500000092000000010100002c01010006000100020000000600020006000000140003000a600001
        000000000000000000000000060004000050000007000600736800000c0007000b000000ffffffff080008002c010000
        08000900ffffff005c000a000800010000000000080002000000000008000300000000000c0004000000000000000000
        0c0005000000000000000000080006000000000008000700000000000800080000000000080009000000000008000a00
        000000007c000c000c00010000000000000000000c00020000000000000000000c00030000000000000000000c000400
        00000000000000000c00050000000000000000000c00060000000000000000000c00070000000000000000000c000800
        00000000000000000c00090000000000000000000c000a00000000000000000014000000030002000500000092000000
        00000000
        """)
    /// `IPVS_CMD_GET_DEST` dump: one NEW_DEST part (with tunnel attributes and 64-bit stats), then NLMSG_DONE.
    static let destinations = hex(
        """
        640100002000020006000000920000000501000050010200140001000a01000500000000000000000000000006000200
        1f9000000800030000000000080004000300000005000d000000000006000e000000000006000f000000000008000500
        64000000080006000a00000008000700000000000800080000000000080009000000000006000b00020000005c000a00
        0800010000000000080002000000000008000300000000000c00040000000000000000000c0005000000000000000000
        080006000000000008000700000000000800080000000000080009000000000008000a00000000007c000c000c000100
        00000000000000000c00020000000000000000000c00030000000000000000000c00040000000000000000000c000500
        00000000000000000c00060000000000000000000c00070000000000000000000c00080000000000000000000c000900
        00000000000000000c000a0000000000000000001400000003000200060000009200000000000000
        """)
    /// `IPVS_CMD_GET_CONFIG` reply and its acknowledgement.
    static let timeouts = hex(
        """
        2c0000002000000007000000920000000c01000008000400840300000800050078000000080006002c01000024000000
        0200000107000000920000000000000014000000200005000700000092000000
        """)
    /// The capped NLMSG_ERROR the kernel sent for a duplicate `IPVS_CMD_NEW_SERVICE`.
    static let duplicate = hex(
        """
        24000000020000010800000092000000efffffff68000000200005000800000092000000
        """)
}

@Suite("Replies captured from the real kernel decode to what was programmed")
struct KernelReplyTests {
    @Test("a real service dump decodes: key, scheduler, flags without hashed, timeout, netmask, and ends with DONE")
    func services() throws {
        let messages = try Mnl.parseMessages(CapturedKernelReplies.services)
        #expect(messages.map(\.type) == [0x20, NetlinkConstants.done])
        let status = try IPVSCodec.decodeService(messages[0])
        #expect(
            status.service
                == VirtualService(
                    .address(.tcp, IPAddress("10.96.0.1")!, port: 80), scheduler: .sh, flags: [.persistent, .schedulerFallback], timeout: 300,
                    netmaskPrefixLength: 24))
        #expect(status.stats == IPVSStats())
    }

    @Test("a real real-server dump decodes: address, port, forwarding, weight, thresholds, counters")
    func destinations() throws {
        let messages = try Mnl.parseMessages(CapturedKernelReplies.destinations)
        #expect(messages.map(\.type) == [0x20, NetlinkConstants.done])
        let status = try IPVSCodec.decodeDestination(messages[0], serviceFamily: .inet)
        #expect(status.server == RealServer(IPAddress("10.1.0.5")!, port: 8080, weight: 3, forwarding: .masquerade, upperThreshold: 100, lowerThreshold: 10))
        #expect(status.activeConnections == 0 && status.inactiveConnections == 0 && status.persistentConnections == 0)
    }

    @Test("a real timeouts reply decodes, followed by its acknowledgement")
    func timeouts() throws {
        let messages = try Mnl.parseMessages(CapturedKernelReplies.timeouts)
        #expect(messages.map(\.type) == [0x20, NetlinkConstants.error])
        #expect(try IPVSCodec.decodeTimeouts(messages[0]) == IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300))
        #expect(try NetlinkConnection.decodeError(messages[1]).0 == 0)
    }

    @Test("the real duplicate-service error decodes to EEXIST and maps to alreadyExists")
    func duplicate() throws {
        let messages = try Mnl.parseMessages(CapturedKernelReplies.duplicate)
        let (code, text) = try NetlinkConnection.decodeError(messages[0])
        #expect(code == 17)
        #expect(text == nil)
        #expect(IPVSError(.kernel("IPVS_CMD_NEW_SERVICE", errno: code), operation: "add service", object: "TCP 10.96.0.1:80", serviceWrite: true).kind == .alreadyExists)
    }
}
