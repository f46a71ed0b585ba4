import Foundation

/// A network namespace a test created, with helpers to run commands inside it. Deleting it removes
/// every interface that lives in it (veths' peers included).
public struct NetworkNamespace: Sendable, Hashable {
    public let name: String

    /// The bind-mount path of the namespace, as `ip netns` keeps it.
    public var path: String { "/var/run/netns/\(name)" }

    /// Creates the namespace with loopback up. An existing namespace of the same name (left by a crashed run of
    /// the same test) is deleted first.
    public static func create(_ name: String) throws -> NetworkNamespace {
        try Command.output(["ip", "netns", "delete", name])
        try Command.run(["ip", "netns", "add", name])
        let namespace = NetworkNamespace(name: name)
        try namespace.run(["ip", "link", "set", "lo", "up"])
        return namespace
    }

    /// Runs `arguments` inside the namespace and returns standard output.
    @discardableResult
    public func run(_ arguments: [String], input: String? = nil) throws -> String {
        try Command.run(["ip", "netns", "exec", name] + arguments, input: input)
    }

    /// Runs `arguments` inside the namespace and returns its output whatever the exit status.
    @discardableResult
    public func output(_ arguments: [String], input: String? = nil) throws -> Command.Output {
        try Command.output(["ip", "netns", "exec", name] + arguments, input: input)
    }

    /// Deletes the namespace; quiet when it is already gone.
    public func delete() {
        _ = try? Command.output(["ip", "netns", "delete", name])
    }
}

/// The isolated topology every data-path test uses (see TESTBED.md): a "node" namespace with no route off the
/// machine, owning a bridge with 10.250.0.1/24, and "hosts" (backends, clients) each in its own namespace on a veth
/// attached to the bridge with a default route via 10.250.0.1. Nothing leaves: the node has no other interface.
public final class NodeTopology: @unchecked Sendable {
    public let node: NetworkNamespace
    public private(set) var hosts: [NetworkNamespace] = []
    public let bridge: String
    public static let gateway = "10.250.0.1"
    private let prefix: String

    /// Creates `<prefix>-node` with its bridge. `prefix` keeps concurrent tests' objects apart.
    public init(prefix: String) throws {
        self.prefix = prefix
        node = try NetworkNamespace.create("\(prefix)-node")
        bridge = "br-\(prefix)".prefix(15).description
        try node.run(["ip", "link", "add", bridge, "type", "bridge"])
        try node.run(["ip", "addr", "add", "\(Self.gateway)/24", "dev", bridge])
        try node.run(["ip", "link", "set", bridge, "up"])
    }

    /// Adds host namespace `<prefix>-<name>` at `address` (in 10.250.0.0/24) on the bridge.
    @discardableResult
    public func addHost(_ name: String, address: String) throws -> NetworkNamespace {
        let host = try NetworkNamespace.create("\(prefix)-\(name)")
        hosts.append(host)
        let peer = "v\(prefix.prefix(6))\(hosts.count)\(UInt16.random(in: 0...UInt16.max))".prefix(15).description
        try node.run(["ip", "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", host.name])
        try node.run(["ip", "link", "set", peer, "master", bridge, "up"])
        try host.run(["ip", "addr", "add", "\(address)/24", "dev", "eth0"])
        try host.run(["ip", "link", "set", "eth0", "up"])
        try host.run(["ip", "route", "add", "default", "via", Self.gateway])
        return host
    }

    /// Deletes every namespace of the topology.
    public func tearDown() {
        for host in hosts { host.delete() }
        hosts.removeAll()
        node.delete()
    }

    deinit { tearDown() }
}
