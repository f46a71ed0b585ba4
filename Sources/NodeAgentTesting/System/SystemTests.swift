public import Foundation

/// The switch for tests that need the real system: root, containerd, network namespaces, nf_tables.
///
/// The repository's test command (`scripts/test`) sets `NODE_AGENT_SYSTEM_TESTS=1` after preparing the machine.
/// When it is set, a missing prerequisite fails the test with ``requirement(_:)`` instead of skipping it.
public enum SystemTests {
    /// True when the environment asks for system tests.
    public static var enabled: Bool { ProcessInfo.processInfo.environment["NODE_AGENT_SYSTEM_TESTS"] == "1" }

    /// Throws a clear error when the process is not root.
    public static func requireRoot() throws {
        guard getuid() == 0 else { throw Unmet(what: "system tests need root; run them through scripts/test as root") }
    }

    /// A prerequisite that is not there; the message says how to provide it.
    public struct Unmet: Error, CustomStringConvertible {
        public var what: String
        public var description: String { what }
        public init(what: String) { self.what = what }
    }

    /// The repository's root folder, found from this source file's location.
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The folder holding the built products (`node-agent`, `apiserver-double`, ...), found from the test binary.
    public static var productsDirectory: URL {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" && !url.lastPathComponent.hasSuffix(".xctest") {
            url.deleteLastPathComponent()
        }
        if url.path == "/" {
            return URL(fileURLWithPath: ProcessInfo.processInfo.environment["NODE_AGENT_PRODUCTS"] ?? ".build/debug")
        }
        return url.deletingLastPathComponent()
    }
}
