import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The namespaces a pod's containers share: network (`/var/run/netns/<name>`, as `ip netns` keeps it), and UTS
/// (holding the pod's hostname) plus IPC, both bind-mounted under the sandbox's state folder.
struct PodNamespaces: Sendable {
    let runner: any CommandRunning
    let timeout: Duration

    struct Paths: Sendable, Hashable {
        var network: String?
        var uts: String
        var ipc: String
    }

    static func netnsPath(_ name: String) -> String { "/var/run/netns/\(name)" }

    /// Creates the pod's network namespace (`ip netns add`) and returns its path.
    func createNetwork(name: String) async throws -> String {
        try await runner.checked(CommandInvocation("ip", ["netns", "add", name], timeout: timeout))
        return Self.netnsPath(name)
    }

    /// Brings loopback up in the network namespace `name` (when there is one) and creates the UTS namespace
    /// holding `hostname` and the IPC namespace, bind-mounted at `<stateDirectory>/uts` and `/ipc`.
    /// The caller removes everything with ``delete(name:stateDirectory:)`` on failure.
    func createLocal(name: String?, hostname: String, stateDirectory: String) async throws {
        let uts = stateDirectory + "/uts"
        let ipc = stateDirectory + "/ipc"
        async let loopback: Void = {
            if let name { try await runner.checked(CommandInvocation("ip", ["-n", name, "link", "set", "lo", "up"], timeout: timeout)) }
        }()
        _ = FileManager.default.createFile(atPath: uts, contents: nil)
        _ = FileManager.default.createFile(atPath: ipc, contents: nil)
        let unshare: Result<String, any Error>
        do {
            unshare = .success(
                try await runner.checked(CommandInvocation("unshare", ["--uts=\(uts)", "--ipc=\(ipc)", "hostname", hostname], timeout: timeout)))
        } catch {
            unshare = .failure(error)
        }
        try await loopback
        _ = try unshare.get()
    }

    /// Unmounts and removes the namespaces; quiet about what is already gone.
    func delete(name: String?, stateDirectory: String) async {
        for file in ["uts", "ipc"] {
            let path = stateDirectory + "/" + file
            _ = umount2(path, Int32(MNT_DETACH))
            try? FileManager.default.removeItem(atPath: path)
        }
        if let name, FileManager.default.fileExists(atPath: Self.netnsPath(name)) {
            _ = try? await runner.run(CommandInvocation("ip", ["netns", "delete", name], timeout: timeout))
        }
    }
}
