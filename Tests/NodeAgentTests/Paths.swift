import Foundation
import NodeAgentTesting

/// Where the built `node-agent` is, and a way to run it.
enum NodeAgentTestingPaths {
    static var binary: String { SystemTests.productsDirectory.appendingPathComponent("node-agent").path }

    /// Runs the command and returns standard output whatever the exit status.
    static func run(_ arguments: [String]) throws -> String {
        try Command.output(arguments).stdout
    }
}
