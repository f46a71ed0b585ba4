import Iptables
import NodeAgentTesting
import Testing

@Suite("Transaction rendering")
struct TransactionTests {
    @Test("renders every object kind in nft syntax, one command per line")
    func rendersScript() {
        var tx = Transaction(family: .ip, table: "node-agent")
        tx.add(.table)
        tx.add(Chain("nat-prerouting", base: .init(type: "nat", hook: "prerouting", priority: "dstnat")))
        tx.add(Chain("svc-a", comment: "ns/web:http"))
        tx.flush(.chain(Chain("svc-a")))
        tx.add(NamedMap("service-ips", keyType: "ipv4_addr . inet_proto . inet_service", valueType: "verdict"))
        tx.add(NamedSet("affinity", type: "ipv4_addr", flags: ["dynamic", "timeout"], timeout: .seconds(10800)))
        tx.add(Rule(chain: "nat-prerouting", "jump services", comment: "entry"))
        tx.addElement("service-ips", Element(key: "10.96.0.10 . tcp . 80", value: "goto svc-a"))
        tx.addElement("service-ips", Element(key: "10.96.0.11 . udp . 53", value: "goto svc-b"))
        tx.deleteElement("service-ips", key: "10.96.0.12 . tcp . 80")
        tx.delete(.chain(Chain("svc-old")))
        tx.delete(.rule(Rule(chain: "svc-a", "", handle: 7)))
        #expect(
            tx.script() == """
                add table ip node-agent
                add chain ip node-agent nat-prerouting { type nat hook prerouting priority dstnat ; }
                add chain ip node-agent svc-a { comment "ns/web:http" ; }
                flush chain ip node-agent svc-a
                add map ip node-agent service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
                add set ip node-agent affinity { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
                add rule ip node-agent nat-prerouting jump services comment "entry"
                add element ip node-agent service-ips { 10.96.0.10 . tcp . 80 : goto svc-a, 10.96.0.11 . udp . 53 : goto svc-b }
                delete element ip node-agent service-ips { 10.96.0.12 . tcp . 80 }
                delete chain ip node-agent svc-old
                delete rule ip node-agent svc-a handle 7

                """
        )
        #expect(tx.count == 11)
        #expect(tx.line(7).hasPrefix("add element ip node-agent service-ips"))
    }

    @Test("an error buffer names the line and the command at fault")
    func parsesErrors() {
        var tx = Transaction(family: .ip, table: "t")
        tx.add(.table)
        tx.add(Rule(chain: "missing", "counter"))
        let buffer = """
            /proc/self/fd/9:2:19-25: Error: Could not process rule: No such file or directory
            add rule ip t missing counter
                          ^^^^^^^
            """
        let error = NftablesError.parseForTesting(buffer, path: "/proc/self/fd/9", transaction: tx)
        #expect(error.line == 2)
        #expect(error.command == "add rule ip t missing counter")
        #expect(error.message == "Could not process rule: No such file or directory")
        #expect(error.isNotFound)
        #expect(error.description.contains("at line 2 (add rule ip t missing counter)"))
    }
}

@Suite("FakeNftables semantics")
struct FakeNftablesTests {
    func baseTable() throws -> FakeNftables {
        let fake = FakeNftables()
        var tx = Transaction(family: .ip, table: "t")
        tx.add(.table)
        tx.add(NamedMap("m", keyType: "ipv4_addr", valueType: "verdict"))
        tx.add(Chain("a"))
        tx.add(Rule(chain: "a", "counter"))
        tx.addElement("m", Element(key: "10.0.0.1", value: "goto a"))
        try fake.run(tx)
        return fake
    }

    @Test("a failing command rolls the whole transaction back")
    func atomic() throws {
        let fake = try baseTable()
        var tx = Transaction(family: .ip, table: "t")
        tx.add(Chain("b"))
        tx.add(Rule(chain: "nosuch", "counter"))
        #expect(throws: NftablesError.self) { try fake.run(tx) }
        #expect(fake.table(.ip, "t")?.chains["b"] == nil)
    }

    @Test("deleting a chain a map still points to is refused")
    func referencedChain() throws {
        let fake = try baseTable()
        var tx = Transaction(family: .ip, table: "t")
        tx.flush(.chain(Chain("a")))
        tx.delete(.chain(Chain("a")))
        let error = try #require(throws: NftablesError.self) { try fake.run(tx) }
        #expect(error.message.contains("busy"))
        var ok = Transaction(family: .ip, table: "t")
        ok.deleteElement("m", key: "10.0.0.1")
        ok.flush(.chain(Chain("a")))
        ok.delete(.chain(Chain("a")))
        try fake.run(ok)
        #expect(fake.table(.ip, "t")?.chains["a"] == nil)
    }

    @Test("re-adding a map key with another value is refused, as the kernel does")
    func changedValue() throws {
        let fake = try baseTable()
        var tx = Transaction(family: .ip, table: "t")
        tx.add(Chain("b"))
        tx.addElement("m", Element(key: "10.0.0.1", value: "goto b"))
        #expect(throws: NftablesError.self) { try fake.run(tx) }
    }
}
