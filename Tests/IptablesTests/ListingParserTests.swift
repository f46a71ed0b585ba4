import Iptables
import NodeAgentTesting
import Testing

@Suite("FakeNftables listing")
struct FakeListingTests {
    @Test("the fake lists what it holds with rule text")
    func listsBack() throws {
        let fake = FakeNftables()
        var tx = Transaction(family: .ip, table: "t")
        tx.add(.table)
        tx.add(Chain("a"))
        tx.add(Rule(chain: "a", "counter", comment: "c"))
        try fake.run(tx)
        let listing = try #require(try fake.list(family: .ip, table: "t"))
        #expect(listing.chains["a"]?.rules.first?.text == "counter comment \"c\"")
        #expect(try fake.list(family: .ip6, table: "t") == nil)
    }
}
