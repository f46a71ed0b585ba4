public import IPVS
import Synchronization

/// An in-memory `kube-ipvs0`: created on demand, holding a set of addresses, answering like rtnetlink
/// (EEXIST for a duplicate address, EADDRNOTAVAIL for a missing one, ENODEV before the interface exists).
public final class FakeDummyInterface: VirtualIPInterface, Sendable {
    private struct State {
        var index: Int32?
        var addresses: Set<IPAddress> = []
    }

    public let name: String
    /// False simulates a kernel without dummy interfaces (CONFIG_DUMMY unset).
    public let canCreate: Bool
    private let state = Mutex(State())

    public init(name: String = "kube-ipvs0", canCreate: Bool = true) {
        self.name = name
        self.canCreate = canCreate
    }

    /// True once ``ensureInterface()`` created the interface.
    public var exists: Bool { state.withLock { $0.index != nil } }

    @discardableResult
    public func ensureInterface() throws(IPVSError) -> Int32 {
        try state.withLock { (state) throws(IPVSError) -> Int32 in
            if let index = state.index { return index }
            guard canCreate else {
                throw IPVSError(kind: .unavailable, operation: "create", object: "dummy interface \(name)", errno: 95, detail: "Unknown device type")
            }
            state.index = 42
            return 42
        }
    }

    private func requireInterface(_ state: State, _ operation: String, _ object: String) throws(IPVSError) {
        guard state.index != nil else { throw IPVSError(kind: .notFound, operation: operation, object: object, errno: 19) }
    }

    public func addresses() throws(IPVSError) -> Set<IPAddress> {
        try state.withLock { (state) throws(IPVSError) -> Set<IPAddress> in
            try requireInterface(state, "list addresses of", "interface \(name)")
            return state.addresses
        }
    }

    public func addAddress(_ address: IPAddress) throws(IPVSError) {
        try state.withLock { (state) throws(IPVSError) in
            try requireInterface(state, "add address", "\(address) on \(name)")
            guard state.addresses.insert(address).inserted else {
                throw IPVSError(kind: .alreadyExists, operation: "add address", object: "\(address) on \(name)", errno: 17)
            }
        }
    }

    public func removeAddress(_ address: IPAddress) throws(IPVSError) {
        try state.withLock { (state) throws(IPVSError) in
            try requireInterface(state, "remove address", "\(address) on \(name)")
            guard state.addresses.remove(address) != nil else {
                throw IPVSError(kind: .notFound, operation: "remove address", object: "\(address) on \(name)", errno: 99)
            }
        }
    }

    public func syncAddresses(_ desired: Set<IPAddress>) throws(IPVSError) -> AddressSyncResult {
        try ensureInterface()
        return state.withLock { state in
            let result = AddressSyncResult(added: desired.subtracting(state.addresses), removed: state.addresses.subtracting(desired))
            state.addresses = desired
            return result
        }
    }
}
