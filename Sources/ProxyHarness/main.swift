import Foundation
import Iptables
import Logging
import Proxy
import ServiceLifecycle

/// A test-support executable: the nftables proxier fed from a folder of JSON objects, with its `/healthz`.
/// System tests start it inside their node namespace (`ip netns exec`) so that every nft, sysctl and conntrack
/// call happens there, and kill it with SIGKILL to prove restart convergence. Once the API server double
/// exists, the daemon in proxy mode replaces it and kubectl replaces the folder.
///
///     proxy-harness --manifests DIR --node-name NAME [--node-ip IP]... [--cluster-cidr CIDR]
///                   [--healthz-bind-address HOST:PORT] [--sync-period SECONDS] [--min-sync-period SECONDS]
///                   [--conntrack PATH]   (`/bin/true` disables conntrack cleanup: the tests' negative control)
struct Arguments {
    var manifests = ""
    var nodeName = "node"
    var nodeIPs: [IPAddress] = []
    var clusterCIDR: IPPrefix?
    var healthzHost = "0.0.0.0"
    var healthzPort = 10256
    var syncPeriod: Duration = .seconds(30)
    var minSyncPeriod: Duration = .milliseconds(100)
    var pollInterval: Duration = .milliseconds(100)
    var verbose = false
    var conntrack = "/usr/sbin/conntrack"

    static func parse(_ arguments: [String]) -> Arguments {
        var result = Arguments()
        var iterator = arguments.dropFirst().makeIterator()
        func value(_ flag: String) -> String {
            guard let next = iterator.next() else { fail("\(flag) needs a value") }
            return next
        }
        func seconds(_ text: String, _ flag: String) -> Duration {
            guard let number = Double(text), number >= 0 else { fail("\(flag): \"\(text)\" is not a number of seconds") }
            return .milliseconds(Int(number * 1000))
        }
        while let flag = iterator.next() {
            switch flag {
            case "--manifests": result.manifests = value(flag)
            case "--node-name": result.nodeName = value(flag)
            case "--node-ip":
                let text = value(flag)
                guard let ip = IPAddress(text) else { fail("--node-ip: \"\(text)\" is not an IP address") }
                result.nodeIPs.append(ip)
            case "--cluster-cidr":
                let text = value(flag)
                guard let prefix = IPPrefix(text) else { fail("--cluster-cidr: \"\(text)\" is not a CIDR") }
                result.clusterCIDR = prefix
            case "--healthz-bind-address":
                let text = value(flag)
                guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
                    fail("--healthz-bind-address: \"\(text)\" is not HOST:PORT")
                }
                result.healthzHost = String(text[..<colon])
                result.healthzPort = port
            case "--sync-period": result.syncPeriod = seconds(value(flag), flag)
            case "--min-sync-period": result.minSyncPeriod = seconds(value(flag), flag)
            case "--poll-interval": result.pollInterval = seconds(value(flag), flag)
            case "--conntrack": result.conntrack = value(flag)
            case "-v", "--verbose": result.verbose = true
            default: fail("unknown flag \(flag)")
            }
        }
        if result.manifests.isEmpty { fail("--manifests DIR is required") }
        return result
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("proxy-harness: \(message)\n".utf8))
        exit(2)
    }
}

if CommandLine.arguments.count > 1, CommandLine.arguments[1].hasPrefix("udp-") {
    UDPTools.run(CommandLine.arguments)
}
let arguments = Arguments.parse(CommandLine.arguments)
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = arguments.verbose ? .debug : .info
    return handler
}
let logger = Logger(label: "proxy-harness")
let health = ProxyHealth(timeout: arguments.syncPeriod * 2)
let serviceHealth = ServiceHealthServer(health: health, logger: logger)
let nftables: LibNftables
do {
    nftables = try LibNftables()
} catch {
    Arguments.fail("\(error)")
}
let proxier = NftablesProxier(
    configuration: NftablesProxierConfiguration(
        nodeName: arguments.nodeName,
        nodePortAddresses: arguments.nodeIPs,
        clusterCIDR: arguments.clusterCIDR,
        syncPeriod: arguments.syncPeriod,
        minSyncPeriod: arguments.minSyncPeriod
    ),
    nftables: nftables,
    conntrack: ConntrackTool(executable: arguments.conntrack, logger: logger),
    health: health,
    serviceHealth: serviceHealth,
    logger: logger
)
let source = ManifestSource(
    directory: URL(fileURLWithPath: arguments.manifests),
    pollInterval: arguments.pollInterval,
    proxier: proxier,
    nodeName: arguments.nodeName,
    logger: logger
)
let healthServer = ProxyHealthServer(host: arguments.healthzHost, port: arguments.healthzPort, health: health, logger: logger)
let group = ServiceGroup(
    configuration: .init(
        services: [.init(service: proxier), .init(service: source), .init(service: healthServer)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
)
try await group.run()
await serviceHealth.closeAll()
