import ArgumentParser
import Foundation
import KubeAPI
import Logging
import NodeAgentTesting
import ServiceLifecycle

/// Runs the API server double as a process, for end-to-end tests and for trying the daemon and kubectl by hand.
@main
struct APIServerDoubleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apiserver-double",
        abstract: "Serve an in-memory Kubernetes API (test double) until SIGTERM.",
        discussion: """
            Prints "listening on <url>" once it accepts connections. With --kubeconfig-out it writes a kubeconfig for it \
            (CA and, with --client-certs, a client certificate inline) before printing that line.
            """)

    @Option(help: "Address to listen on.")
    var address = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one.")
    var port = 0

    @Flag(help: "Serve HTTPS with a generated CA.")
    var tls = false

    @Flag(help: "Serve HTTPS and require a client certificate signed by the generated CA (implies --tls).")
    var clientCerts = false

    @Option(help: "Require this bearer token on every request.")
    var token: String?

    @Option(help: "Write a kubeconfig for the double to this file (mode 0600).")
    var kubeconfigOut: String?

    @Option(help: "Watch events kept; older resourceVersions answer 410 Expired.")
    var historyLimit = 1000

    @Option(help: "Seconds between watch bookmarks.")
    var bookmarkInterval = 5

    @Option(help: "Log level (trace, debug, info, warning, error).")
    var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is not between 0 and 65535") }
        guard historyLimit > 0 else { throw ValidationError("--history-limit must be positive") }
        guard bookmarkInterval > 0 else { throw ValidationError("--bookmark-interval must be positive") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is not a log level") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            return handler
        }
        let logger = Logger(label: "apiserver-double")
        var configuration = APIServerDouble.Configuration(tls: clientCerts ? .clientCertificates : (tls ? .serverOnly : .none), port: port)
        configuration.host = address
        configuration.bearerToken = token
        configuration.historyLimit = historyLimit
        configuration.bookmarkInterval = .seconds(bookmarkInterval)
        let double = try await APIServerDouble.start(configuration, logger: logger)
        if let kubeconfigOut {
            do {
                try double.writeKubeconfig(to: kubeconfigOut)
            } catch {
                await double.stop()
                throw ValidationError("cannot write --kubeconfig-out \(kubeconfigOut): \(error)")
            }
        }
        FileHandle.standardOutput.write(Data("listening on \(double.url.absoluteString)\n".utf8))
        let group = ServiceGroup(
            configuration: .init(
                services: [DoubleService(double: double)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Keeps the double up until graceful shutdown, then stops it.
struct DoubleService: Service {
    let double: APIServerDouble

    func run() async throws {
        await withGracefulShutdownHandler {
            try? await gracefulShutdown()
        } onGracefulShutdown: {
            double.dropWatches()
        }
        await double.stop()
    }
}
