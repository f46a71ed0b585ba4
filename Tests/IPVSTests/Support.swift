@testable import IPVS

/// Bytes from a hex string; whitespace and `|` separators are ignored.
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { $0.isHexDigit }
    precondition(digits.count % 2 == 0, "odd number of hex digits")
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// Lower-case hex of `bytes`, for readable failures.
func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

/// A netlink transport that records every datagram sent and answers from a script, so the connection logic and the
/// full request bytes are checked without a kernel.
final class ScriptedTransport: NetlinkTransport, @unchecked Sendable {
    let portID: UInt32 = 4242
    private(set) var sent: [[UInt8]] = []
    private var pending: [[UInt8]] = []
    /// Given every message of a sent datagram, returns the datagrams the "kernel" answers with.
    var respond: (_ messages: [NetlinkMessage]) -> [[UInt8]]

    init(respond: @escaping (_ messages: [NetlinkMessage]) -> [[UInt8]]) { self.respond = respond }

    func send(_ datagram: [UInt8]) throws(NetlinkError) {
        sent.append(datagram)
        let messages = try Mnl.parseMessages(datagram)
        pending += respond(messages)
    }

    func receive() throws(NetlinkError) -> [UInt8] {
        guard !pending.isEmpty else { throw NetlinkError.system("recvfrom netlink", errno: 11) }
        return pending.removeFirst()
    }
}

/// Reply builders for the scripted kernel.
enum Reply {
    static func header(length: Int, type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32 = 4242) -> [UInt8] {
        hostBytes(UInt32(length)) + hostBytes(type) + hostBytes(flags) + hostBytes(sequence) + hostBytes(portID)
    }

    /// `NLMSG_ERROR` with `errno` (0: an acknowledgement), echoing the request header (capped ack).
    static func error(_ errno: Int32, to request: NetlinkMessage) -> [UInt8] {
        let echoed = header(length: 16 + request.payload.count, type: request.type, flags: request.flags, sequence: request.sequence)
        return header(length: 16 + 4 + 16, type: 2, flags: errno == 0 ? 0x100 : 0x100, sequence: request.sequence) + hostBytes(-errno) + echoed
    }

    /// A message of `type` with `payload`, as part of a multi-part dump when `multi`.
    static func message(type: UInt16, sequence: UInt32, payload: [UInt8], multi: Bool = false) -> [UInt8] {
        header(length: 16 + payload.count, type: type, flags: multi ? 2 : 0, sequence: sequence) + payload
    }

    static func done(sequence: UInt32) -> [UInt8] {
        header(length: 20, type: 3, flags: 2, sequence: sequence) + hostBytes(Int32(0))
    }

    /// The family reply for `IPVS` with id `id`.
    static func family(id: UInt16, sequence: UInt32) -> [UInt8] {
        let attrs: [UInt8] = hex("0900 0200 49505653 00 000000") + hostBytes(UInt16(6)) + hostBytes(UInt16(1)) + hostBytes(id) + [0, 0]
        return message(type: 0x10, sequence: sequence, payload: [1, 2, 0, 0] + attrs)
    }
}

/// A scripted kernel that resolves `IPVS` to 0x20 and acknowledges everything else.
func ackingKernel() -> ScriptedTransport {
    ScriptedTransport { messages in
        messages.map { message in
            if message.type == GenericNetlink.controllerID { return Reply.family(id: 0x20, sequence: message.sequence) + Reply.error(0, to: message) }
            return Reply.error(0, to: message)
        }
    }
}
