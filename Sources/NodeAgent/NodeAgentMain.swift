import ArgumentParser
import Foundation

/// The process entry point.
///
/// ArgumentParser reports usage and validation errors with its own exit code (64); kubelet and kube-proxy
/// users expect 2 for a bad flag or config value, so those errors are printed here and exit with 2.
@main
enum NodeAgentMain {
    static func main() async {
        MemoryTrimmer.limitArenas(environment: ProcessInfo.processInfo.environment)
        do {
            var command = try NodeAgentCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = NodeAgentCommand.exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((NodeAgentCommand.fullMessage(for: error) + "\n").utf8))
                exit(2)
            }
            NodeAgentCommand.exit(withError: error)
        }
    }
}
