import Testing

@testable import IPVS
@testable import NodeAgentTesting

@Suite("Netlink connection: acknowledgements, errors, dumps, batches, timeouts (scripted kernel)")
struct ConnectionTests {
    @Test("a kernel error comes back typed, with errno and the extended-ack message")
    func kernelErrorTyped() throws {
        let transport = ScriptedTransport { messages in
            messages.map { message in
                if message.type == GenericNetlink.controllerID { return Reply.family(id: 0x20, sequence: message.sequence) + Reply.error(0, to: message) }
                // EEXIST with NLM_F_ACK_TLVS and NLMSGERR_ATTR_MSG "exists"
                let tlv: [UInt8] = hex("0b00 0100 657869737473 00 00")
                let echoed = Reply.header(length: 16, type: message.type, flags: message.flags, sequence: message.sequence)
                return Reply.header(length: 16 + 4 + 16 + tlv.count, type: 2, flags: 0x300, sequence: message.sequence) + hostBytes(Int32(-17)) + echoed + tlv
            }
        }
        let ipvs = try IPVSKernel(connection: NetlinkConnection(transport: transport))
        let key = ServiceKey.address(.tcp, IPAddress("10.0.0.1")!, port: 80)
        do {
            try ipvs.addService(VirtualService(key, scheduler: .rr))
            Issue.record("no error")
        } catch {
            #expect(error.kind == .alreadyExists)
            #expect(error.errno == 17)
            #expect(error.description == "cannot add service TCP 10.0.0.1:80: it already exists (EEXIST): exists")
        }
    }

    @Test("errno maps to meaning by operation: ENOENT is an unknown scheduler for services, a missing real server otherwise")
    func errnoMapping() {
        let enoent = NetlinkError.kernel("x", errno: 2)
        #expect(IPVSError(enoent, operation: "add service", object: "s", serviceWrite: true).kind == .schedulerNotFound)
        #expect(IPVSError(enoent, operation: "delete real server", object: "s").kind == .notFound)
        #expect(IPVSError(.kernel("x", errno: 3), operation: "delete service", object: "s").kind == .notFound)
        #expect(IPVSError(.kernel("x", errno: 97), operation: "add service", object: "s").kind == .addressFamilyNotSupported)
        #expect(IPVSError(.kernel("x", errno: 1), operation: "add service", object: "s").kind == .permissionDenied)
        #expect(IPVSError(.kernel("x", errno: 22), operation: "add service", object: "s").kind == .invalidArgument)
        #expect(IPVSError(.system("recvfrom netlink", errno: 11), operation: "flush", object: "t").kind == .timeout)
        #expect(IPVSError(.malformed("x"), operation: "flush", object: "t").kind == .malformedReply)
    }

    @Test("no IPVS family in the kernel makes the client unavailable, saying so")
    func familyMissing() {
        let transport = ScriptedTransport { messages in messages.map { Reply.error(2, to: $0) } }
        do {
            _ = try IPVSKernel(connection: NetlinkConnection(transport: transport))
            Issue.record("no error")
        } catch {
            #expect(error.kind == .unavailable)
            #expect(error.description.contains("ip_vs"))
        }
    }

    @Test("a silent kernel is a timeout error, not a hang")
    func timeout() throws {
        let transport = ScriptedTransport { messages in
            messages.compactMap { message in
                message.type == GenericNetlink.controllerID ? Reply.family(id: 0x20, sequence: message.sequence) + Reply.error(0, to: message) : nil
            }
        }
        let ipvs = try IPVSKernel(connection: NetlinkConnection(transport: transport))
        #expect { try ipvs.flush() } throws: { ($0 as? IPVSError)?.kind == .timeout }
    }

    @Test("a batch packs many messages per datagram, asks an ack only of each datagram's last, and places each failure")
    func batch() throws {
        var failOn: Set<UInt32> = []
        let transport = ScriptedTransport { messages in
            var replies: [UInt8] = []
            for message in messages {
                if message.type == GenericNetlink.controllerID {
                    replies += Reply.family(id: 0x20, sequence: message.sequence) + Reply.error(0, to: message)
                } else if failOn.contains(message.sequence) {
                    replies += Reply.error(17, to: message)
                } else if message.flags & NetlinkConstants.ack != 0 {
                    replies += Reply.error(0, to: message)
                }
            }
            return replies.isEmpty ? [] : [replies]
        }
        let connection = NetlinkConnection(transport: transport)
        let ipvs = try IPVSKernel(connection: connection)
        let operations = (0..<1000).map { i in
            IPVSOperation.addService(VirtualService(.address(.tcp, IPAddress("10.0.\(i / 250).\(i % 250)")!, port: 80), scheduler: .rr))
        }
        // Sequence 1 resolved the family; the batch starts at 2, so operation 10 is sequence 12.
        failOn = [12, 802]
        let results = try ipvs.apply(operations)
        #expect(results.enumerated().compactMap { $0.element == nil ? nil : $0.offset } == [10, 800])
        #expect(results[10]?.kind == .alreadyExists)
        #expect(results[10]?.object == "TCP 10.0.0.10:80")
        let datagrams = transport.sent.dropFirst()
        #expect(datagrams.count > 1 && datagrams.count < 20)
        #expect(datagrams.allSatisfy { $0.count <= NetlinkConnection.batchBytes })
        for datagram in datagrams {
            let messages = try Mnl.parseMessages(datagram)
            #expect(messages.dropLast().allSatisfy { $0.flags & NetlinkConstants.ack == 0 })
            #expect(messages.last!.flags & NetlinkConstants.ack != 0)
        }
        #expect(datagrams.map { try! Mnl.parseMessages($0).count }.reduce(0, +) == 1000)
    }

    @Test("a dump collects the parts of several datagrams until NLMSG_DONE, and reports an error carried by DONE")
    func multipartDump() throws {
        let service = VirtualService(.address(.tcp, IPAddress("10.0.0.1")!, port: 80), scheduler: .rr)
        let payload = [4, 1, 0, 0] + flatten(IPVSCodec.service(service))
        var failDump = false
        let transport = ScriptedTransport { messages in
            messages.flatMap { message -> [[UInt8]] in
                if message.type == GenericNetlink.controllerID { return [Reply.family(id: 0x20, sequence: message.sequence) + Reply.error(0, to: message)] }
                if failDump { return [Reply.header(length: 20, type: 3, flags: 2, sequence: message.sequence) + hostBytes(Int32(-12))] }
                let part = Reply.message(type: 0x20, sequence: message.sequence, payload: payload, multi: true)
                return [part + part, part, Reply.done(sequence: message.sequence)]
            }
        }
        let ipvs = try IPVSKernel(connection: NetlinkConnection(transport: transport))
        let listed = try ipvs.services()
        #expect(listed.count == 3)
        #expect(listed.allSatisfy { $0.service == service })
        failDump = true
        #expect { try ipvs.services() } throws: { ($0 as? IPVSError)?.errno == 12 }
    }

    @Test("a truncated message or attribute is reported as malformed, never read past its end")
    func malformed() {
        #expect(throws: NetlinkError.self) { try Mnl.parseMessages(hex("ff000000 2000 0000 01000000 00000000 0000")) }
        #expect(throws: NetlinkError.self) { try NetlinkAttributes(parsing: hex("0800 0100 0000 0000 2000 0200 00")[...]) }
    }
}

/// The bytes of one attribute, as it would sit in a message.
func flatten(_ attribute: NetlinkAttribute) -> [UInt8] {
    let request = NetlinkRequest(type: 0, header: [], attributes: [attribute])
    return Array(Mnl.encode(request, sequence: 0, portID: 0).dropFirst(16))
}
