public import ServiceLifecycle
import Logging

/// The runtime's long-running loop: streams task exits from the CLI's events (restarting the stream when it
/// breaks) and relists tasks every `relistInterval`, like the kubelet's PLEG, so no exit is missed; each relist
/// also deletes removed pods' logs past their retention.
public struct RuntimeMonitor: Service {
    private let runtime: CLIContainerRuntime

    public init(runtime: CLIContainerRuntime) {
        self.runtime = runtime
    }

    public func run() async throws {
        let configuration = runtime.configuration
        let logger = runtime.logger
        try await runtime.recover()
        await cancelWhenGracefulShutdown {
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
}
