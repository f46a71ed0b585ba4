/// Where netlink datagrams go: the real socket (``MnlSocket``) or, in tests, a recording double.
public protocol NetlinkTransport: AnyObject {
    /// The port id the kernel addresses replies to.
    var portID: UInt32 { get }
    /// Sends one datagram (one or more netlink messages).
    func send(_ datagram: [UInt8]) throws(NetlinkError)
    /// Receives one datagram, waiting at most the transport's receive timeout.
    func receive() throws(NetlinkError) -> [UInt8]
}

/// Request/reply over a ``NetlinkTransport``: sequence numbers, acknowledgements, multi-part dumps and batches.
///
/// Not thread-safe: callers serialize access (``IPVSKernel`` holds it under a mutex).
public final class NetlinkConnection {
    public let transport: any NetlinkTransport
    private var sequence: UInt32
    /// Called with every datagram received; tests and the capture tool use it to record kernel replies.
    public var onReceive: ((_ datagram: [UInt8]) -> Void)?

    /// The largest datagram a batch puts on the wire (well under the kernel's default socket send buffer).
    public static let batchBytes = 32 * 1024

    public init(transport: any NetlinkTransport, firstSequence: UInt32 = 1) {
        self.transport = transport
        self.sequence = firstSequence
    }

    private func nextSequence() -> UInt32 {
        defer { sequence &+= 1 }
        return sequence
    }

    private func receiveMessages() throws(NetlinkError) -> [NetlinkMessage] {
        let datagram = try transport.receive()
        onReceive?(datagram)
        return try Mnl.parseMessages(datagram)
    }

    /// Sends `request` with `NLM_F_ACK` and returns the replies that came before the acknowledgement.
    ///
    /// - Throws: ``NetlinkError`` with the kernel's errno when the kernel rejects it, or on a socket failure.
    @discardableResult
    public func perform(_ request: NetlinkRequest, operation: String) throws(NetlinkError) -> [NetlinkMessage] {
        var request = request
        request.flags |= NetlinkConstants.ack
        let seq = nextSequence()
        try transport.send(Mnl.encode(request, sequence: seq, portID: transport.portID))
        var replies: [NetlinkMessage] = []
        while true {
            for message in try receiveMessages() where message.sequence == seq {
                if message.type == NetlinkConstants.error {
                    let (code, text) = try NetlinkConnection.decodeError(message)
                    if code == 0 { return replies }
                    throw .kernel(operation, errno: code, message: text)
                }
                replies.append(message)
            }
        }
    }

    /// Sends `request` as a dump (`NLM_F_DUMP`) and collects every part until `NLMSG_DONE`.
    ///
    /// - Throws: ``NetlinkError`` when the kernel refuses the dump or reports an error at its end.
    public func dump(_ request: NetlinkRequest, operation: String) throws(NetlinkError) -> [NetlinkMessage] {
        var request = request
        request.flags |= NetlinkConstants.dump
        let seq = nextSequence()
        try transport.send(Mnl.encode(request, sequence: seq, portID: transport.portID))
        var replies: [NetlinkMessage] = []
        while true {
            for message in try receiveMessages() where message.sequence == seq {
                switch message.type {
                case NetlinkConstants.done:
                    let code = Mnl.load(Int32.self, message.payload) ?? 0
                    if code < 0 { throw .kernel(operation, errno: -code) }
                    return replies
                case NetlinkConstants.error:
                    let (code, text) = try NetlinkConnection.decodeError(message)
                    if code == 0 { return replies }
                    throw .kernel(operation, errno: code, message: text)
                case NetlinkConstants.noop:
                    continue
                default:
                    replies.append(message)
                }
            }
        }
    }

    /// Sends many requests in as few datagrams as possible and reports each one's outcome, in order.
    ///
    /// Every request is attempted even when an earlier one fails (the kernel processes each message of a
    /// datagram on its own). Only the last message of each datagram asks for an acknowledgement; the kernel
    /// always reports failures, and answers in order, so its acknowledgement means everything before it is done.
    ///
    /// - Returns: one entry per request: nil for success, the kernel's error otherwise.
    /// - Throws: ``NetlinkError`` on a socket failure or timeout (the outcome of the unsent rest is unknown).
    public func batch(_ requests: [NetlinkRequest], operation: (Int) -> String) throws(NetlinkError) -> [NetlinkError?] {
        var results = [NetlinkError?](repeating: nil, count: requests.count)
        var index = 0
        while index < requests.count {
            let first = index
            let firstSequence = sequence
            var datagram: [UInt8] = []
            datagram.reserveCapacity(NetlinkConnection.batchBytes + 1024)
            var lastStart = 0
            while index < requests.count {
                let encoded = Mnl.encode(requests[index], sequence: firstSequence &+ UInt32(index - first), portID: transport.portID)
                if !datagram.isEmpty && datagram.count + encoded.count > NetlinkConnection.batchBytes { break }
                lastStart = datagram.count
                datagram += encoded
                index += 1
            }
            // The last message of the datagram asks for the acknowledgement that closes it.
            Mnl.addFlags(NetlinkConstants.ack, toMessageAt: lastStart, in: &datagram)
            sequence = firstSequence &+ UInt32(index - first)
            let lastSequence = firstSequence &+ UInt32(index - first - 1)
            try transport.send(datagram)
            var closed = false
            while !closed {
                for message in try receiveMessages() where message.type == NetlinkConstants.error {
                    let offset = message.sequence &- firstSequence
                    guard offset < UInt32(index - first) else { continue }
                    let (code, text) = try NetlinkConnection.decodeError(message)
                    if code != 0 { results[first + Int(offset)] = .kernel(operation(first + Int(offset)), errno: code, message: text) }
                    if message.sequence == lastSequence { closed = true }
                }
            }
        }
        return results
    }

    /// Decodes `struct nlmsgerr`: the positive errno (0 for an acknowledgement) and the extended-ack message.
    static func decodeError(_ message: NetlinkMessage) throws(NetlinkError) -> (Int32, String?) {
        guard let raw = Mnl.load(Int32.self, message.payload) else { throw .malformed("an NLMSG_ERROR shorter than its errno") }
        var text: String?
        if message.flags & NetlinkConstants.ackTLVs != 0 {
            // With NETLINK_CAP_ACK the echoed request is only its header; the TLVs follow it.
            let echoedLength: Int
            if message.flags & 0x100 != 0 {  // NLM_F_CAPPED
                echoedLength = Mnl.headerLength
            } else {
                echoedLength = Int(Mnl.load(UInt32.self, message.payload, offset: 4) ?? UInt32(Mnl.headerLength))
            }
            let start = 4 + Mnl.align(echoedLength)
            if start < message.payload.count,
                let attributes = try? NetlinkAttributes(parsing: message.payload[start...])
            {
                text = attributes.string(NetlinkConstants.errorAttributeMessage)
            }
        }
        return (-raw, text)
    }
}
