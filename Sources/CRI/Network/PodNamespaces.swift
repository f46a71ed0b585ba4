import Foundation

/// The namespaces a pod's containers share: network (bind-mounted at `/var/run/netns/<name>`, where `ip netns`
/// keeps them), and UTS (holding the pod's hostname) plus IPC, bind-mounted under the sandbox's state folder.
/// hostNetwork pods get none: their containers use the node's network and UTS namespaces.
struct PodNamespaces: Sendable {
    struct Paths: Sendable, Hashable {
        var network: String
        var uts: String
        var ipc: String
    }

    static func netnsPath(_ name: String) -> String { "/var/run/netns/\(name)" }

    /// Creates the three namespaces with loopback up and the hostname set, in one step without a process.
    /// On failure nothing is left.
    func create(name: String, hostname: String, stateDirectory: String) async throws -> Paths {
        let paths = Paths(network: Self.netnsPath(name), uts: stateDirectory + "/uts", ipc: stateDirectory + "/ipc")
        try await NamespaceSyscalls.create(
            .init(networkFile: paths.network, utsFile: paths.uts, ipcFile: paths.ipc, hostname: hostname))
        return paths
    }

    /// Unmounts and removes the namespaces; quiet about what is already gone.
    func delete(name: String?, stateDirectory: String) {
        NamespaceSyscalls.remove(stateDirectory + "/uts")
        NamespaceSyscalls.remove(stateDirectory + "/ipc")
        if let name { Self.deleteNetwork(name) }
    }

    /// Removes the network namespace `name` (what `ip netns delete` does).
    static func deleteNetwork(_ name: String) {
        if FileManager.default.fileExists(atPath: netnsPath(name)) { NamespaceSyscalls.remove(netnsPath(name)) }
    }
}
