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

    /// Creates the namespaces; on failure removes whatever was made.
    func create(name: String, hostname: String, stateDirectory: String, hostNetwork: Bool) async throws -> Paths {
        let uts = stateDirectory + "/uts"
        let ipc = stateDirectory + "/ipc"
        var paths = Paths(network: nil, uts: uts, ipc: ipc)
        do {
            if !hostNetwork {
                try await runner.checked(CommandInvocation("ip", ["netns", "add", name], timeout: timeout))
                paths.network = Self.netnsPath(name)
                try await runner.checked(CommandInvocation("ip", ["-n", name, "link", "set", "lo", "up"], timeout: timeout))
            }
            _ = FileManager.default.createFile(atPath: uts, contents: nil)
            _ = FileManager.default.createFile(atPath: ipc, contents: nil)
            try await runner.checked(CommandInvocation("unshare", ["--uts=\(uts)", "--ipc=\(ipc)", "hostname", hostname], timeout: timeout))
        } catch {
            await delete(name: hostNetwork ? nil : name, stateDirectory: stateDirectory)
            throw error
        }
        return paths
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
