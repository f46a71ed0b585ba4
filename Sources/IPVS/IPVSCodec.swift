/// Encoding and decoding of the kernel's IPVS generic netlink messages (`linux/ip_vs.h`), byte for byte as
/// ipvsadm's libipvs sends them: ports and IPv4 netmasks big-endian, addresses as the 16-byte `nf_inet_addr`
/// union, flags as `struct ip_vs_flags { flags, mask }`.
public enum IPVSCodec {
    /// The generic netlink family name and the version IPVS speaks.
    public static let familyName = "IPVS"
    public static let version: UInt8 = 1

    /// `IPVS_CMD_*`.
    public enum Command: UInt8, Sendable {
        case newService = 1, setService, deleteService, getService
        case newDestination, setDestination, deleteDestination, getDestination
        case setConfig = 12, getConfig = 13, getInfo = 15, zero = 16, flush = 17
    }

    /// `IPVS_CMD_ATTR_*`.
    enum Attr {
        static let service: UInt16 = 1
        static let destination: UInt16 = 2
        static let timeoutTCP: UInt16 = 4
        static let timeoutTCPFin: UInt16 = 5
        static let timeoutUDP: UInt16 = 6
    }

    /// `IPVS_SVC_ATTR_*`.
    enum ServiceAttr {
        static let family: UInt16 = 1
        static let proto: UInt16 = 2
        static let address: UInt16 = 3
        static let port: UInt16 = 4
        static let firewallMark: UInt16 = 5
        static let schedulerName: UInt16 = 6
        static let flags: UInt16 = 7
        static let timeout: UInt16 = 8
        static let netmask: UInt16 = 9
        static let stats: UInt16 = 10
        static let stats64: UInt16 = 12
    }

    /// `IPVS_DEST_ATTR_*`.
    enum DestinationAttr {
        static let address: UInt16 = 1
        static let port: UInt16 = 2
        static let forwarding: UInt16 = 3
        static let weight: UInt16 = 4
        static let upperThreshold: UInt16 = 5
        static let lowerThreshold: UInt16 = 6
        static let activeConnections: UInt16 = 7
        static let inactiveConnections: UInt16 = 8
        static let persistentConnections: UInt16 = 9
        static let stats: UInt16 = 10
        static let family: UInt16 = 11
        static let stats64: UInt16 = 12
    }

    /// `IPVS_STATS_ATTR_*`.
    enum StatsAttr {
        static let connections: UInt16 = 1
        static let packetsIn: UInt16 = 2
        static let packetsOut: UInt16 = 3
        static let bytesIn: UInt16 = 4
        static let bytesOut: UInt16 = 5
        static let cps: UInt16 = 6
        static let inpps: UInt16 = 7
        static let outpps: UInt16 = 8
        static let inbps: UInt16 = 9
        static let outbps: UInt16 = 10
    }

    // MARK: Requests

    /// A request of `command` carrying `attributes`.
    public static func request(family: UInt16, _ command: Command, _ attributes: [NetlinkAttribute] = []) -> NetlinkRequest {
        .generic(family: family, command: command.rawValue, version: version, attributes: attributes)
    }

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }

    /// The service's identifying attributes (as the kernel looks a service up).
    static func keyAttributes(_ key: ServiceKey) -> [NetlinkAttribute] {
        switch key {
        case .address(let proto, let address, let port):
            [
                .u16(ServiceAttr.family, address.family.rawValue), .u16(ServiceAttr.proto, proto.rawValue),
                .bytes(ServiceAttr.address, address.unionBytes), .bytes(ServiceAttr.port, be16(port)),
            ]
        case .firewallMark(let mark, let family):
            [.u16(ServiceAttr.family, family.rawValue), .u32(ServiceAttr.firewallMark, mark)]
        }
    }

    /// `IPVS_CMD_ATTR_SERVICE` with only the key (delete, get, and the service of a real-server request).
    public static func serviceKey(_ key: ServiceKey) -> NetlinkAttribute { .nested(Attr.service, keyAttributes(key)) }

    /// `IPVS_CMD_ATTR_SERVICE` with every setting (add, update), in libipvs's order.
    public static func service(_ service: VirtualService) -> NetlinkAttribute {
        let netmask: NetlinkAttribute
        if service.key.family == .inet {
            let prefix = min(service.netmaskPrefixLength, 32)
            let mask: UInt32 = prefix == 0 ? 0 : UInt32.max << (32 - UInt32(prefix))
            netmask = .bytes(ServiceAttr.netmask, [UInt8(mask >> 24), UInt8((mask >> 16) & 0xff), UInt8((mask >> 8) & 0xff), UInt8(mask & 0xff)])
        } else {
            netmask = .u32(ServiceAttr.netmask, UInt32(service.netmaskPrefixLength))
        }
        return .nested(
            Attr.service,
            keyAttributes(service.key) + [
                .string(ServiceAttr.schedulerName, service.schedulerName),
                .bytes(ServiceAttr.flags, hostBytes(service.flags.intersection(.settable).rawValue) + hostBytes(UInt32.max)),
                .u32(ServiceAttr.timeout, service.timeout),
                netmask,
            ])
    }

    /// `IPVS_CMD_ATTR_DEST` with every setting (add, update).
    ///
    /// `IPVS_DEST_ATTR_ADDR_FAMILY` is always sent: kernels from 3.18 use it (and take mixed families for tunnels);
    /// older ones parse IPVS attributes without strict validation and ignore it, using the service's family, which
    /// is also what ``decodeDestination(_:serviceFamily:)`` infers when a reply lacks it.
    public static func destination(_ server: RealServer) -> NetlinkAttribute {
        .nested(
            Attr.destination,
            [
                .bytes(DestinationAttr.address, server.address.unionBytes),
                .bytes(DestinationAttr.port, be16(server.port)),
                .u32(DestinationAttr.forwarding, server.forwarding.rawValue),
                .u32(DestinationAttr.weight, UInt32(bitPattern: server.weight)),
                .u32(DestinationAttr.upperThreshold, server.upperThreshold),
                .u32(DestinationAttr.lowerThreshold, server.lowerThreshold),
                .u16(DestinationAttr.family, server.address.family.rawValue),
            ])
    }

    /// `IPVS_CMD_ATTR_DEST` with only address, port and family (delete).
    public static func destinationKey(_ key: RealServerKey) -> NetlinkAttribute {
        .nested(
            Attr.destination,
            [
                .bytes(DestinationAttr.address, key.address.unionBytes),
                .bytes(DestinationAttr.port, be16(key.port)),
                .u16(DestinationAttr.family, key.address.family.rawValue),
            ])
    }

    /// The request that carries out `operation`.
    public static func request(family: UInt16, for operation: IPVSOperation) -> NetlinkRequest {
        switch operation {
        case .addService(let s): request(family: family, .newService, [service(s)])
        case .updateService(let s): request(family: family, .setService, [service(s)])
        case .deleteService(let key): request(family: family, .deleteService, [serviceKey(key)])
        case .addRealServer(let r, let key): request(family: family, .newDestination, [serviceKey(key), destination(r)])
        case .updateRealServer(let r, let key): request(family: family, .setDestination, [serviceKey(key), destination(r)])
        case .deleteRealServer(let r, let key): request(family: family, .deleteDestination, [serviceKey(key), destinationKey(r)])
        }
    }

    /// `IPVS_CMD_SET_CONFIG` with the three timeouts.
    public static func setTimeouts(family: UInt16, _ timeouts: IPVSTimeouts) -> NetlinkRequest {
        request(
            family: family, .setConfig,
            [.u32(Attr.timeoutTCP, timeouts.tcp), .u32(Attr.timeoutTCPFin, timeouts.tcpFin), .u32(Attr.timeoutUDP, timeouts.udp)])
    }

    // MARK: Replies

    /// The attributes of a generic netlink reply (after its 4-byte `genlmsghdr`).
    static func attributes(of message: NetlinkMessage) throws(NetlinkError) -> NetlinkAttributes {
        guard message.payload.count >= 4 else { throw .malformed("a generic netlink reply without its genlmsghdr") }
        return try NetlinkAttributes(parsing: message.payload[4...])
    }

    /// Decodes one service reply (`IPVS_CMD_NEW_SERVICE` carrying `IPVS_CMD_ATTR_SERVICE`).
    public static func decodeService(_ message: NetlinkMessage) throws(NetlinkError) -> ServiceStatus {
        guard let attrs = try attributes(of: message).nested(Attr.service) else { throw .malformed("a service reply without IPVS_CMD_ATTR_SERVICE") }
        guard let rawFamily = attrs.u16(ServiceAttr.family), let family = AddressFamily(rawValue: rawFamily) else {
            throw .malformed("a service with a missing or unknown address family")
        }
        let key: ServiceKey
        if let mark = attrs.u32(ServiceAttr.firewallMark), mark != 0 {
            key = .firewallMark(mark, family: family)
        } else {
            guard let rawProto = attrs.u16(ServiceAttr.proto), let proto = IPProtocol(rawValue: rawProto) else {
                throw .malformed("a service with a missing or unknown protocol")
            }
            guard let addrBytes = attrs[ServiceAttr.address], let address = IPAddress(unionBytes: addrBytes, family: family),
                let port = attrs.be16(ServiceAttr.port)
            else { throw .malformed("a service without a valid address and port") }
            key = .address(proto, address, port: port)
        }
        var flags = ServiceFlags()
        if let raw = attrs[ServiceAttr.flags], let value = Mnl.load(UInt32.self, raw) { flags = ServiceFlags(rawValue: value).subtracting(.hashed) }
        var prefix: UInt8 = family == .inet ? 32 : 128
        if let raw = attrs[ServiceAttr.netmask], raw.count >= 4 {
            if family == .inet {
                let mask = UInt32(raw[0]) << 24 | UInt32(raw[1]) << 16 | UInt32(raw[2]) << 8 | UInt32(raw[3])
                prefix = UInt8(mask.nonzeroBitCount)
            } else if let value = Mnl.load(UInt32.self, raw) {
                prefix = UInt8(truncatingIfNeeded: value)
            }
        }
        let service = VirtualService(
            key, scheduler: attrs.string(ServiceAttr.schedulerName) ?? "", flags: flags, timeout: attrs.u32(ServiceAttr.timeout) ?? 0,
            netmaskPrefixLength: prefix)
        return ServiceStatus(service: service, stats: try stats(attrs, stats: ServiceAttr.stats, stats64: ServiceAttr.stats64))
    }

    /// Decodes one real-server reply; a reply without `IPVS_DEST_ATTR_ADDR_FAMILY` (kernels before 3.18) takes `serviceFamily`.
    public static func decodeDestination(_ message: NetlinkMessage, serviceFamily: AddressFamily) throws(NetlinkError) -> RealServerStatus {
        guard let attrs = try attributes(of: message).nested(Attr.destination) else { throw .malformed("a real-server reply without IPVS_CMD_ATTR_DEST") }
        var family = serviceFamily
        if let raw = attrs.u16(DestinationAttr.family) {
            guard let known = AddressFamily(rawValue: raw) else { throw .malformed("a real server with unknown address family \(raw)") }
            family = known
        }
        guard let addrBytes = attrs[DestinationAttr.address], let address = IPAddress(unionBytes: addrBytes, family: family),
            let port = attrs.be16(DestinationAttr.port)
        else { throw .malformed("a real server without a valid address and port") }
        let forwarding = ForwardingMethod(rawValue: (attrs.u32(DestinationAttr.forwarding) ?? 0) & 0x7) ?? .masquerade
        let server = RealServer(
            address, port: port, weight: Int32(bitPattern: attrs.u32(DestinationAttr.weight) ?? 0), forwarding: forwarding,
            upperThreshold: attrs.u32(DestinationAttr.upperThreshold) ?? 0, lowerThreshold: attrs.u32(DestinationAttr.lowerThreshold) ?? 0)
        return RealServerStatus(
            server: server, activeConnections: attrs.u32(DestinationAttr.activeConnections) ?? 0,
            inactiveConnections: attrs.u32(DestinationAttr.inactiveConnections) ?? 0,
            persistentConnections: attrs.u32(DestinationAttr.persistentConnections) ?? 0,
            stats: try stats(attrs, stats: DestinationAttr.stats, stats64: DestinationAttr.stats64))
    }

    /// Stats from the 64-bit nest when present, else the older 32-bit one.
    static func stats(_ attrs: NetlinkAttributes, stats: UInt16, stats64: UInt16) throws(NetlinkError) -> IPVSStats {
        var result = IPVSStats()
        if let s = try attrs.nested(stats64) {
            result.connections = s.u64(StatsAttr.connections) ?? 0
            result.packetsIn = s.u64(StatsAttr.packetsIn) ?? 0
            result.packetsOut = s.u64(StatsAttr.packetsOut) ?? 0
            result.bytesIn = s.u64(StatsAttr.bytesIn) ?? 0
            result.bytesOut = s.u64(StatsAttr.bytesOut) ?? 0
            result.connectionsPerSecond = s.u64(StatsAttr.cps) ?? 0
            result.packetsInPerSecond = s.u64(StatsAttr.inpps) ?? 0
            result.packetsOutPerSecond = s.u64(StatsAttr.outpps) ?? 0
            result.bytesInPerSecond = s.u64(StatsAttr.inbps) ?? 0
            result.bytesOutPerSecond = s.u64(StatsAttr.outbps) ?? 0
        } else if let s = try attrs.nested(stats) {
            result.connections = UInt64(s.u32(StatsAttr.connections) ?? 0)
            result.packetsIn = UInt64(s.u32(StatsAttr.packetsIn) ?? 0)
            result.packetsOut = UInt64(s.u32(StatsAttr.packetsOut) ?? 0)
            result.bytesIn = s.u64(StatsAttr.bytesIn) ?? 0
            result.bytesOut = s.u64(StatsAttr.bytesOut) ?? 0
            result.connectionsPerSecond = UInt64(s.u32(StatsAttr.cps) ?? 0)
            result.packetsInPerSecond = UInt64(s.u32(StatsAttr.inpps) ?? 0)
            result.packetsOutPerSecond = UInt64(s.u32(StatsAttr.outpps) ?? 0)
            result.bytesInPerSecond = UInt64(s.u32(StatsAttr.inbps) ?? 0)
            result.bytesOutPerSecond = UInt64(s.u32(StatsAttr.outbps) ?? 0)
        }
        return result
    }

    /// Decodes the `IPVS_CMD_GET_CONFIG` reply.
    public static func decodeTimeouts(_ message: NetlinkMessage) throws(NetlinkError) -> IPVSTimeouts {
        let attrs = try attributes(of: message)
        guard let tcp = attrs.u32(Attr.timeoutTCP), let fin = attrs.u32(Attr.timeoutTCPFin), let udp = attrs.u32(Attr.timeoutUDP) else {
            throw .malformed("a timeout reply without the three timeouts")
        }
        return IPVSTimeouts(tcp: tcp, tcpFin: fin, udp: udp)
    }
}

/// The generic netlink controller: resolving a family name to its id.
public enum GenericNetlink {
    /// `GENL_ID_CTRL`.
    public static let controllerID: UInt16 = 0x10
    static let getFamilyCommand: UInt8 = 3
    static let familyIDAttribute: UInt16 = 1
    static let familyNameAttribute: UInt16 = 2

    /// `CTRL_CMD_GETFAMILY` for `name`.
    public static func familyRequest(_ name: String) -> NetlinkRequest {
        .generic(family: controllerID, command: getFamilyCommand, version: 1, attributes: [.string(familyNameAttribute, name)])
    }

    /// The family id in a `CTRL_CMD_NEWFAMILY` reply.
    public static func familyID(_ message: NetlinkMessage) throws(NetlinkError) -> UInt16 {
        guard let id = try IPVSCodec.attributes(of: message).u16(familyIDAttribute) else { throw .malformed("a family reply without CTRL_ATTR_FAMILY_ID") }
        return id
    }

    /// Resolves `name` over `connection`.
    ///
    /// - Throws: ``NetlinkError`` with ENOENT when the kernel has no such family.
    public static func resolve(_ name: String, over connection: NetlinkConnection) throws(NetlinkError) -> UInt16 {
        let replies = try connection.perform(familyRequest(name), operation: "CTRL_CMD_GETFAMILY \(name)")
        guard let first = replies.first else { throw .malformed("no reply to CTRL_CMD_GETFAMILY \(name)") }
        return try familyID(first)
    }
}
