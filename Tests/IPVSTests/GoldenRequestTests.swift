import Testing

@testable import IPVS

/// Every request the library builds, byte for byte, written out by hand from `linux/ip_vs.h`, `linux/rtnetlink.h`
/// and libipvs's attribute order. Header: length, type, flags (REQUEST = 1), sequence 1, port id 0.
@Suite("IPVS and rtnetlink requests are encoded byte for byte as the kernel expects")
struct GoldenRequestTests {
    let family: UInt16 = 0x20
    let vip = IPAddress("10.0.0.1")!
    var tcpKey: ServiceKey { .address(.tcp, vip, port: 80) }

    func encode(_ request: NetlinkRequest) -> [UInt8] { Mnl.encode(request, sequence: 1, portID: 0) }

    func expectBytes(_ request: NetlinkRequest, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let actual = encode(request)
        #expect(hexString(actual) == hexString(hex(expected)), sourceLocation: sourceLocation)
    }

    @Test("add service: AF, protocol, 16-byte address, big-endian port, scheduler, {flags, mask}, timeout, IPv4 netmask")
    func newService() {
        expectBytes(
            IPVSCodec.request(family: family, for: .addService(VirtualService(tcpKey, scheduler: .rr))),
            """
            68000000 2000 0100 01000000 00000000 | 01 01 0000 | 5400 0180
            0600 0100 0200 0000 | 0600 0200 0600 0000 | 1400 0300 0a000001 00000000 00000000 00000000
            0600 0400 0050 0000 | 0700 0600 727200 00 | 0c00 0700 00000000 ffffffff | 0800 0800 00000000 | 0800 0900 ffffffff
            """)
    }

    @Test("update an IPv6 service: persistence, sh fallback and port flags, netmask as a host-order prefix length")
    func setServiceIPv6() {
        let service = VirtualService(
            .address(.tcp, IPAddress("fd00::1")!, port: 443), scheduler: .sh, flags: [.persistent, .schedulerFallback, .schedulerPort],
            timeout: 300, netmaskPrefixLength: 64)
        expectBytes(
            IPVSCodec.request(family: family, for: .updateService(service)),
            """
            68000000 2000 0100 01000000 00000000 | 02 01 0000 | 5400 0180
            0600 0100 0a00 0000 | 0600 0200 0600 0000 | 1400 0300 fd000000 00000000 00000000 00000001
            0600 0400 01bb 0000 | 0700 0600 736800 00 | 0c00 0700 19000000 ffffffff | 0800 0800 2c010000 | 0800 0900 40000000
            """)
    }

    @Test("a persistent IPv4 service with a /24 netmask sends the mask big-endian")
    func persistentNetmask() {
        let service = VirtualService(tcpKey, scheduler: .wlc, flags: [.persistent, .hashed], timeout: 60, netmaskPrefixLength: 24)
        expectBytes(
            IPVSCodec.request(family: family, for: .addService(service)),
            """
            68000000 2000 0100 01000000 00000000 | 01 01 0000 | 5400 0180
            0600 0100 0200 0000 | 0600 0200 0600 0000 | 1400 0300 0a000001 00000000 00000000 00000000
            0600 0400 0050 0000 | 0800 0600 776c6300 | 0c00 0700 01000000 ffffffff | 0800 0800 3c000000 | 0800 0900 ffffff00
            """)
    }

    @Test("delete a firewall-mark service: only AF and mark")
    func deleteFirewallMark() {
        expectBytes(
            IPVSCodec.request(family: family, for: .deleteService(.firewallMark(7, family: .inet))),
            "28000000 2000 0100 01000000 00000000 | 03 01 0000 | 1400 0180 | 0600 0100 0200 0000 | 0800 0500 07000000")
    }

    @Test("get one UDP service by key")
    func getService() {
        expectBytes(
            IPVSCodec.request(family: family, .getService, [IPVSCodec.serviceKey(.address(.udp, vip, port: 53))]),
            """
            44000000 2000 0100 01000000 00000000 | 04 01 0000 | 3000 0180
            0600 0100 0200 0000 | 0600 0200 1100 0000 | 1400 0300 0a000001 00000000 00000000 00000000 | 0600 0400 0035 0000
            """)
    }

    @Test("add a real server: address, port, forwarding, weight, thresholds, address family")
    func newDestination() {
        let server = RealServer(IPAddress("10.1.0.5")!, port: 8080, weight: 3, forwarding: .masquerade, upperThreshold: 100, lowerThreshold: 10)
        expectBytes(
            IPVSCodec.request(family: family, for: .addRealServer(server, service: tcpKey)),
            """
            8c000000 2000 0100 01000000 00000000 | 05 01 0000
            3000 0180 | 0600 0100 0200 0000 | 0600 0200 0600 0000 | 1400 0300 0a000001 00000000 00000000 00000000 | 0600 0400 0050 0000
            4800 0280 | 1400 0100 0a010005 00000000 00000000 00000000 | 0600 0200 1f90 0000 | 0800 0300 00000000 | 0800 0400 03000000
            0800 0500 64000000 | 0800 0600 0a000000 | 0600 0b00 0200 0000
            """)
    }

    @Test("update a real server to direct routing with weight 0")
    func setDestination() {
        let server = RealServer(IPAddress("10.1.0.5")!, port: 8080, weight: 0, forwarding: .route)
        expectBytes(
            IPVSCodec.request(family: family, for: .updateRealServer(server, service: tcpKey)),
            """
            8c000000 2000 0100 01000000 00000000 | 06 01 0000
            3000 0180 | 0600 0100 0200 0000 | 0600 0200 0600 0000 | 1400 0300 0a000001 00000000 00000000 00000000 | 0600 0400 0050 0000
            4800 0280 | 1400 0100 0a010005 00000000 00000000 00000000 | 0600 0200 1f90 0000 | 0800 0300 03000000 | 0800 0400 00000000
            0800 0500 00000000 | 0800 0600 00000000 | 0600 0b00 0200 0000
            """)
    }

    @Test("delete an IPv6 real server: address, port, family")
    func deleteDestination() {
        let key = ServiceKey.address(.tcp, IPAddress("fd00::1")!, port: 80)
        expectBytes(
            IPVSCodec.request(family: family, for: .deleteRealServer(RealServerKey(address: IPAddress("fd00::5")!, port: 80), service: key)),
            """
            6c000000 2000 0100 01000000 00000000 | 07 01 0000
            3000 0180 | 0600 0100 0a00 0000 | 0600 0200 0600 0000 | 1400 0300 fd000000 00000000 00000000 00000001 | 0600 0400 0050 0000
            2800 0280 | 1400 0100 fd000000 00000000 00000000 00000005 | 0600 0200 0050 0000 | 0600 0b00 0a00 0000
            """)
    }

    @Test("set timeouts: tcp, tcpfin, udp as u32 seconds")
    func setTimeouts() {
        expectBytes(
            IPVSCodec.setTimeouts(family: family, IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 300)),
            "2c000000 2000 0100 01000000 00000000 | 0c 01 0000 | 0800 0400 84030000 | 0800 0500 78000000 | 0800 0600 2c010000")
    }

    @Test("get timeouts, flush: a bare generic netlink header")
    func bareCommands() {
        expectBytes(IPVSCodec.request(family: family, .getConfig), "14000000 2000 0100 01000000 00000000 | 0d 01 0000")
        expectBytes(IPVSCodec.request(family: family, .flush), "14000000 2000 0100 01000000 00000000 | 11 01 0000")
    }

    @Test("resolve the IPVS family through the generic netlink controller")
    func resolveFamily() {
        expectBytes(GenericNetlink.familyRequest("IPVS"), "20000000 1000 0100 01000000 00000000 | 03 01 0000 | 0900 0200 49505653 00 000000")
    }

    @Test("create kube-ipvs0 as a dummy link, exclusively")
    func createDummy() {
        expectBytes(
            RouteCodec.createDummy("kube-ipvs0"),
            """
            40000000 1000 0106 01000000 00000000 | 00 00 0000 00000000 00000000 00000000
            0f00 0300 6b7562652d69707673 3000 00 | 1000 1280 0a00 0100 64756d6d 7900 0000
            """)
    }

    @Test("look a link up by name")
    func getLink() {
        expectBytes(
            RouteCodec.getLink("kube-ipvs0"),
            "30000000 1200 0100 01000000 00000000 | 00000000 00000000 00000000 00000000 | 0f00 0300 6b7562652d69707673 3000 00")
    }

    @Test("add an IPv4 /32 and delete an IPv6 /128 (no DAD) on interface 5")
    func addresses() {
        expectBytes(
            RouteCodec.address(IPAddress("10.96.0.10")!, index: 5, add: true),
            "28000000 1400 0106 01000000 00000000 | 02 20 00 00 05000000 | 0800 0200 0a60000a | 0800 0100 0a60000a")
        expectBytes(
            RouteCodec.address(IPAddress("fd00::10")!, index: 5, add: false),
            """
            40000000 1500 0100 01000000 00000000 | 0a 80 02 00 05000000
            1400 0200 fd000000 00000000 00000000 00000010 | 1400 0100 fd000000 00000000 00000000 00000010
            """)
    }

    @Test("dumps carry NLM_F_DUMP, single requests NLM_F_ACK, as sent over the connection")
    func flagsOnTheWire() throws {
        let respond: ([NetlinkMessage]) -> [[UInt8]] = { messages in
            messages.flatMap { message -> [[UInt8]] in
                if message.flags & NetlinkConstants.dump != 0 { return [Reply.done(sequence: message.sequence)] }
                if message.type == GenericNetlink.controllerID {
                    return [Reply.family(id: 0x20, sequence: message.sequence) + Reply.error(0, to: message)]
                }
                return [Reply.error(0, to: message)]
            }
        }
        let transport = ScriptedTransport(respond: respond)
        let routeTransport = ScriptedTransport(respond: respond)
        let ipvs = try IPVSKernel(connection: NetlinkConnection(transport: transport))
        #expect(try ipvs.services().isEmpty)
        try ipvs.flush()
        let routes = DummyInterface(name: "kube-ipvs0", connection: NetlinkConnection(transport: routeTransport, firstSequence: 100))
        _ = try? routes.addresses()
        #expect(hexString(transport.sent[0]) == hexString(hex("20000000 1000 0500 01000000 92100000 | 03 01 0000 | 0900 0200 49505653 00 000000")))
        #expect(hexString(transport.sent[1]) == hexString(hex("14000000 2000 0103 02000000 92100000 | 04 01 0000")))
        #expect(hexString(transport.sent[2]) == hexString(hex("14000000 2000 0500 03000000 92100000 | 11 01 0000")))
        #expect(hexString(routeTransport.sent[0]) == hexString(hex("30000000 1200 0500 64000000 92100000 | 00000000 00000000 00000000 00000000 | 0f00 0300 6b7562652d69707673 3000 00")))
    }
}
