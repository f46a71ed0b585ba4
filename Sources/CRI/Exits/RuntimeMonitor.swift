public import ServiceLifecycle
import Logging

/// The runtime's long-running loop: first recovers the runtime's state (retrying every 2 s while containerd does
/// not answer), then streams task exits from the CLI's events (restarting the stream when it breaks) and relists
/// tasks every `relistInterval`, like the kubelet's PLEG, so no exit is missed; each relist also deletes removed
/// pods' logs past their retention. Ends on graceful shutdown or cancellation.
public struct RuntimeMonitor: Service {
    private let runtime: CLIContainerRuntime

    public init(runtime: CLIContainerRuntime) {
        self.runtime = runtime
    }

    public func run() async throws {
        let runtime = self.runtime
        do {
            try await cancelWhenGracefulShutdown {
                try await Self.recover(runtime)
                await Self.watch(runtime)
            }
        } catch is CancellationError {
            // Shut down while still waiting for containerd: a clean end.
        }
    }

    /// containerd may come up after the daemon: keep trying (the kubelet reports the runtime not ready meanwhile).
    private static func recover(_ runtime: CLIContainerRuntime) async throws {
        while true {
            do {
                try await runtime.recover()
                return
            } catch {
                runtime.logger.error("runtime recovery failed, retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(2))
            }
        }
    }

    private static func watch(_ runtime: CLIContainerRuntime) async {
        let configuration = runtime.configuration
        let logger = runtime.logger
        await withTaskGroup(of: Void.self) { group in
            if configuration.watchEvents {
                group.addTask {
                    while !Task.isCancelled {
                        do {
                            try await runtime.cli.exitEvents { event in await runtime.exitEventReceived(event) }
                        } catch {
                            logger.warning("events stream broke, restarting", metadata: ["error": "\(error)"])
                        }
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
            }
            if let interval = configuration.relistInterval {
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        if Task.isCancelled { break }
                        do {
                            try await runtime.relist()
                            await runtime.maintain()
                        } catch {
                            logger.warning("relist failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
            }
            await group.waitForAll()
        }
    }
}
