import Foundation
import Iptables
import NodeAgentTesting
import Testing

/// libnftables against the real kernel, always inside a network namespace this suite creates (entered with
/// setns on LibNftables' dedicated thread), never the host's ruleset.
@Suite("LibNftables against the kernel", .enabled(if: SystemTests.enabled), .serialized)
struct LibNftablesSystemTests {
    static func withNamespace(_ body: (NetworkNamespace, LibNftables) throws -> Void) throws {
        try SystemTests.requireRoot()
        let namespace = try NetworkNamespace.create("naproxy-ipt-\(UInt16.random(in: 1000...9999))")
        defer { namespace.delete() }
        let nft = try LibNftables(networkNamespace: namespace.path)
        try body(namespace, nft)
    }

    static func sampleTransaction() -> Transaction {
        var tx = Transaction(family: .ip, table: "naproxy-test")
        tx.add(.table)
        tx.add(NamedMap("service-ips", keyType: "ipv4_addr . inet_proto . inet_service", valueType: "verdict"))
        tx.add(NamedSet("affinity", type: "ipv4_addr", flags: ["dynamic", "timeout"], timeout: .seconds(300)))
        tx.add(Chain("nat-prerouting", base: .init(type: "nat", hook: "prerouting", priority: "dstnat")))
        tx.add(Chain("services"))
        tx.add(Chain("svc-a"))
        tx.add(Rule(chain: "nat-prerouting", "jump services"))
        tx.add(Rule(chain: "services", "ip daddr . meta l4proto . th dport vmap @service-ips"))
        tx.add(Rule(chain: "svc-a", "meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.1.0.1 . 8080, 1 : 10.1.0.2 . 8080 }"))
        tx.addElement("service-ips", Element(key: "10.96.0.10 . tcp . 80", value: "goto svc-a"))
        return tx
    }

    @Test("a transaction applies atomically and lists back as parsed JSON")
    func runAndList() throws {
        try Self.withNamespace { namespace, nft in
            try nft.run(Self.sampleTransaction())
            let listing = try #require(try nft.list(family: .ip, table: "naproxy-test"))
            #expect(Set(listing.chains.keys) == ["nat-prerouting", "services", "svc-a"])
            #expect(listing.chains["nat-prerouting"]?.base?.hook == "prerouting")
            #expect(listing.chains["nat-prerouting"]?.base?.priority == "-100")
            #expect(listing.chains["svc-a"]?.rules.count == 1)
            #expect(listing.sets["service-ips"]?.elements == ["10.96.0.10 . tcp . 80": "goto svc-a"])
            #expect(listing.sets["service-ips"]?.valueType == "verdict")
            #expect(listing.sets["affinity"]?.isMap == false)
            // nft itself agrees (independent read-back).
            let text = try namespace.run(["nft", "list", "table", "ip", "naproxy-test"])
            #expect(text.contains("10.96.0.10 . tcp . 80 : goto svc-a"))

            let objects = try #require(try nft.listObjects(family: .ip, table: "naproxy-test"))
            #expect(Set(objects.chains.keys) == ["nat-prerouting", "services", "svc-a"])
            #expect(Set(objects.sets.keys) == ["service-ips", "affinity"])
            #expect(try nft.list(family: .ip, table: "naproxy-absent") == nil)
            #expect(try nft.listObjects(family: .ip, table: "naproxy-absent") == nil)
        }
    }

    @Test("a rejected transaction applies nothing and names nft's message and the offending line")
    func rejection() throws {
        try Self.withNamespace { namespace, nft in
            try nft.run(Self.sampleTransaction())
            let before = try nft.list(family: .ip, table: "naproxy-test")
            var tx = Transaction(family: .ip, table: "naproxy-test")
            tx.add(Chain("svc-b"))
            tx.addElement("service-ips", Element(key: "10.96.0.11 . tcp . 80", value: "goto svc-b"))
            tx.add(Rule(chain: "no-such-chain", "counter"))
            let error = try #require(throws: NftablesError.self) { try nft.run(tx) }
            #expect(error.line == 3)
            #expect(error.command == "add rule ip naproxy-test no-such-chain counter")
            #expect(error.message.contains("No such file or directory"))
            #expect(try nft.list(family: .ip, table: "naproxy-test") == before)

            var syntax = Transaction(family: .ip, table: "naproxy-test")
            syntax.add(Rule(chain: "svc-a", "counter"))
            syntax.add(Rule(chain: "svc-a", "ip daddr 1.2.3 accept"))
            let syntaxError = try #require(throws: NftablesError.self) { try nft.run(syntax) }
            #expect(syntaxError.line == 2)
            #expect(syntaxError.command?.contains("1.2.3") == true)
        }
    }

    @Test("check validates against the kernel without applying")
    func checkOnly() throws {
        try Self.withNamespace { _, nft in
            try nft.check(Self.sampleTransaction())
            #expect(try nft.list(family: .ip, table: "naproxy-test") == nil)
            try nft.run(Self.sampleTransaction())
            var bad = Transaction(family: .ip, table: "naproxy-test")
            bad.delete(.chain(Chain("no-such-chain")))
            let error = try #require(throws: NftablesError.self) { try nft.check(bad) }
            #expect(error.operation == "check")
            #expect(error.line == 1)
        }
    }

    @Test("the namespace's ruleset changes, the host's does not")
    func staysInNamespace() throws {
        try Self.withNamespace { namespace, nft in
            try nft.run(Self.sampleTransaction())
            let inside = try namespace.run(["nft", "list", "tables"])
            #expect(inside.contains("naproxy-test"))
            let host = try Command.run(["nft", "list", "tables"])
            #expect(!host.contains("naproxy-test"))
        }
    }

    @Test("element-only transactions go straight to the kernel as one batch and read back like libnftables' own")
    func elementFastPath() throws {
        try Self.withNamespace { namespace, nft in
            var tx = Self.sampleTransaction()
            tx.add(NamedMap("slots", keyType: "integer", valueType: "ipv4_addr . inet_service", typeof: "numgen random mod 2 : ip daddr . tcp dport"))
            tx.add(NamedMap("ports", keyType: "inet_proto . inet_service", valueType: "verdict"))
            tx.add(NamedSet("pairs", type: "ipv4_addr . ipv4_addr"))
            try nft.run(tx)

            var elements = Transaction(family: .ip, table: "naproxy-test")
            elements.addElement("slots", Element(key: "65536", value: "10.1.0.7 . 8080"))
            elements.addElement("slots", Element(key: "65537", value: "10.1.0.8 . 8081"))
            elements.addElement("service-ips", Element(key: "10.96.0.99 . udp . 53", value: "goto svc-a"))
            elements.addElement("ports", Element(key: "tcp . 30080", value: "drop"))
            elements.addElement("pairs", Element(key: "10.1.0.7 . 10.1.0.7"))
            elements.deleteElement("service-ips", key: "10.96.0.10 . tcp . 80")
            try nft.run(elements)
            let listing = try #require(try nft.list(family: .ip, table: "naproxy-test"))
            #expect(listing.sets["slots"]?.elements == ["65536": "10.1.0.7 . 8080", "65537": "10.1.0.8 . 8081"])
            #expect(listing.sets["service-ips"]?.elements == ["10.96.0.99 . udp . 53": "goto svc-a"])
            #expect(listing.sets["ports"]?.elements == ["tcp . 30080": "drop"])
            #expect(listing.sets["pairs"]?.elements == ["10.1.0.7 . 10.1.0.7": ""])
            #expect(try namespace.run(["nft", "list", "map", "ip", "naproxy-test", "slots"]).contains("65537 : 10.1.0.8 . 8081"))

            // All or nothing: the second command fails (no such element), the first does not apply either.
            var failing = Transaction(family: .ip, table: "naproxy-test")
            failing.addElement("pairs", Element(key: "10.1.0.9 . 10.1.0.9"))
            failing.deleteElement("service-ips", key: "10.96.0.250 . tcp . 80")
            let error = try #require(throws: NftablesError.self) { try nft.run(failing) }
            #expect(error.line == 2)
            #expect(error.isNotFound)
            #expect(error.command == "delete element ip naproxy-test service-ips { 10.96.0.250 . tcp . 80 }")
            #expect(try nft.list(family: .ip, table: "naproxy-test")?.sets["pairs"]?.elements == ["10.1.0.7 . 10.1.0.7": ""])
        }
    }

    @Test("element batches in a row share one socket: replacements, a refused batch, and the batches after it all answer for themselves")
    func elementBatchesInARow() throws {
        try Self.withNamespace { namespace, nft in
            var tx = Self.sampleTransaction()
            tx.add(NamedMap("slots", keyType: "integer", valueType: "ipv4_addr . inet_service", typeof: "numgen random mod 2 : ip daddr . tcp dport"))
            tx.add(NamedSet("pairs", type: "ipv4_addr . ipv4_addr"))
            try nft.run(tx)
            var previous: String?
            for round in 0..<40 {
                // An endpoint replacement's shape: the slot's old value and the old pair go, the new ones come.
                var replace = Transaction(family: .ip, table: "naproxy-test")
                let address = "10.1.1.\(round)"
                if let previous {
                    replace.deleteElement("slots", key: "0")
                    replace.deleteElement("pairs", key: "\(previous) . \(previous)")
                }
                replace.addElement("slots", Element(key: "0", value: "\(address) . 8080"))
                replace.addElement("pairs", Element(key: "\(address) . \(address)"))
                try nft.run(replace)
                previous = address
                if round % 10 == 5 {
                    // Refused (no such element): its error names its own command, and the next batch is unaffected.
                    var failing = Transaction(family: .ip, table: "naproxy-test")
                    failing.deleteElement("pairs", key: "10.1.2.1 . 10.1.2.1")
                    let error = try #require(throws: NftablesError.self) { try nft.run(failing) }
                    #expect(error.line == 1)
                    #expect(error.isNotFound)
                }
            }
            let listing = try #require(try nft.list(family: .ip, table: "naproxy-test"))
            #expect(listing.sets["slots"]?.elements == ["0": "10.1.1.39 . 8080"])
            #expect(listing.sets["pairs"]?.elements == ["10.1.1.39 . 10.1.1.39": ""])
            #expect(try namespace.run(["nft", "list", "map", "ip", "naproxy-test", "slots"]).contains("0 : 10.1.1.39 . 8080"))
        }
    }
}
