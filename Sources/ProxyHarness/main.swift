import Foundation
import IPVS
import Iptables
import Logging
import Proxy
import ServiceLifecycle

/// A test-support executable: the nftables or IPVS proxier fed from a folder of JSON objects, with its `/healthz`.
/// System tests start it inside their node namespace (`ip netns exec`) so that every nft, IPVS, sysctl and
/// conntrack call happens there, and kill it with SIGKILL to prove restart convergence. Once the API server double
/// exists, the daemon in proxy mode replaces it and kubectl replaces the folder.
///
///     proxy-harness --manifests DIR --node-name NAME [--node-ip IP]... [--cluster-cidr CIDR]
///                   [--healthz-bind-address HOST:PORT] [--sync-period SECONDS] [--min-sync-period SECONDS]
///                   [--conntrack PATH]   (`/bin/true` disables conntrack cleanup: the tests' negative control)
///                   [--mode nftables|ipvs] [--ipvs-scheduler NAME] [--ipvs-graceful-timeout SECONDS]
///                   [--ipvs-drain-check SECONDS] [--ipvs-strict-arp]
///     proxy-harness cleanup-ipvs [--node-ip IP]...   removes IPVS-mode leftovers and prints what it removed
///     proxy-harness udp-echo|udp-probe|tcp-echo|tcp-hold ...   traffic tools (UDPTools.swift, TCPTools.swift)
struct Arguments {
    var manifests = ""
    var nodeName = "node"
    var nodeIPs: [Proxy.IPAddress] = []
    var clusterCIDR: IPPrefix?
    var healthzHost = "0.0.0.0"
    var healthzPort = 10256
    var syncPeriod: Duration = .seconds(30)
    var minSyncPeriod: Duration = .milliseconds(100)
    var pollInterval: Duration = .milliseconds(100)
    var verbose = false
    var conntrack = "/usr/sbin/conntrack"
    var mode = ProxyMode.iptables
    var scheduler = "rr"
    var gracefulTimeout: Duration = .seconds(900)
    var drainCheck: Duration = .seconds(2)
    var strictARP = false

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
                guard let ip = Proxy.IPAddress(text) else { fail("--node-ip: \"\(text)\" is not an IP address") }
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
            case "--mode":
                let text = value(flag)
                switch text {
                case "ipvs": result.mode = .ipvs
                case "nftables", "iptables": result.mode = .iptables
                default: fail("--mode: \"\(text)\" is not nftables or ipvs")
                }
            case "--ipvs-scheduler": result.scheduler = value(flag)
            case "--ipvs-graceful-timeout": result.gracefulTimeout = seconds(value(flag), flag)
            case "--ipvs-drain-check": result.drainCheck = seconds(value(flag), flag)
            case "--ipvs-strict-arp": result.strictARP = true
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
if CommandLine.arguments.count > 1, CommandLine.arguments[1].hasPrefix("tcp-") {
    TCPTools.run(CommandLine.arguments)
}
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "cleanup-ipvs" {
    let options = Arguments.parse([CommandLine.arguments[0], "--manifests", "-"] + CommandLine.arguments.dropFirst(2))
    let report = IPVSProxier.cleanupLeftovers(
        ipvs: try? IPVSKernel(), dummy: try? DummyInterface(), nftables: try? LibNftables(), nodePortAddresses: options.nodeIPs,
        logger: Logger(label: "proxy-harness"))
    print("virtual servers: \(report.deletedVirtualServers.joined(separator: ", "))")
    print("addresses: \(report.removedAddresses.joined(separator: ", "))")
    print("tables: \(report.deletedTables.joined(separator: ", "))")
    for failure in report.failures { print("failure: \(failure)") }
    exit(report.failures.isEmpty ? 0 : 1)
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
let proxier: any Proxier
switch arguments.mode {
case .iptables:
    proxier = NftablesProxier(
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
case .ipvs:
    let configuration = IPVSProxierConfiguration(
        nodeName: arguments.nodeName,
        scheduler: arguments.scheduler,
        syncPeriod: arguments.syncPeriod,
        minSyncPeriod: arguments.minSyncPeriod,
        strictARP: arguments.strictARP,
        clusterCIDR: arguments.clusterCIDR,
        nodePortAddresses: arguments.nodeIPs,
        gracefulTerminationTimeout: arguments.gracefulTimeout,
        gracefulTerminationCheckInterval: arguments.drainCheck
    )
    do {
        try configuration.validate()
        proxier = IPVSProxier.make(
            configuration: configuration,
            ipvs: try IPVSKernel(),
            dummy: try DummyInterface(name: configuration.interfaceName),
            nftables: nftables,
            conntrack: ConntrackTool(executable: arguments.conntrack, logger: logger),
            health: health,
            serviceHealth: serviceHealth,
            logger: logger
        )
    } catch {
        Arguments.fail("\(error)")
    }
}
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
