public import IPVS
public import Iptables
public import Logging

/// What ``IPVSProxier/cleanupLeftovers(ipvs:dummy:nftables:nodePortAddresses:nodePortRange:excludeCIDRs:tableName:logger:)``
/// removed, and what it could not.
public struct IPVSCleanupReport: Sendable, Hashable {
    public var deletedVirtualServers: [String] = []
    public var removedAddresses: [String] = []
    public var deletedTables: [String] = []
    /// Failures, each naming the object; cleanup goes on after one.
    public var failures: [String] = []

    public var isEmpty: Bool { deletedVirtualServers.isEmpty && removedAddresses.isEmpty && deletedTables.isEmpty }
}

extension IPVSProxier {
    /// Removes what an IPVS-mode run of this daemon left behind, for a daemon that now runs in iptables mode (or
    /// stops proxying): the virtual servers it owns (on `kube-ipvs0` addresses, or on a NodePort address with a port
    /// in the NodePort range; see ``IPVSOwnership``), the addresses of `kube-ipvs0`, and the filter tables
    /// `ip`/`ip6` `node-agent-ipvs`. Virtual servers of anyone else are left alone.
    ///
    /// Never throws: without ip_vs (`ipvs` nil, the usual reason to run in iptables mode) only the interface's
    /// addresses and the tables are looked at; every failure is reported and logged, and the rest goes on.
    @discardableResult
    public static func cleanupLeftovers(
        ipvs: (any IPVSInterface)?,
        dummy: (any VirtualIPInterface)?,
        nftables: (any Nftables)?,
        nodePortAddresses: [IPAddress] = [],
        nodePortRange: ClosedRange<Int> = 30000...32767,
        excludeCIDRs: [IPPrefix] = [],
        tableName: String = "node-agent-ipvs",
        logger: Logger
    ) -> IPVSCleanupReport {
        var report = IPVSCleanupReport()
        var bound: Set<IPVS.IPAddress> = []
        if let dummy {
            do {
                bound = try dummy.addresses()
            } catch where error.kind == .notFound {
                // No kube-ipvs0: nothing bound.
            } catch {
                report.failures.append(error.description)
            }
        }
        if let ipvs {
            do {
                var deletions: [ServiceKey] = []
                for status in try ipvs.services() {
                    let key = status.service.key
                    let family: IPFamily = key.family == .inet ? .ipv4 : .ipv6
                    var configuration = IPVSProxierConfiguration(family: family, nodeName: "")
                    configuration.nodePortAddresses = nodePortAddresses
                    configuration.nodePortRange = nodePortRange
                    configuration.excludeCIDRs = excludeCIDRs
                    if IPVSOwnership(configuration: configuration, boundAddresses: bound).owns(key) { deletions.append(key) }
                }
                let results = try ipvs.apply(deletions.map { .deleteService($0) })
                for (key, failure) in zip(deletions, results) {
                    if let failure, failure.kind != .notFound {
                        report.failures.append(failure.description)
                    } else {
                        report.deletedVirtualServers.append("\(key)")
                    }
                }
            } catch {
                report.failures.append(error.description)
            }
        }
        if let dummy, !bound.isEmpty {
            do {
                let result = try dummy.syncAddresses([])
                report.removedAddresses = result.removed.sorted().map(\.description)
                report.failures += result.failed.sorted { $0.key < $1.key }.map { "remove address \($0.key): \($0.value)" }
            } catch {
                report.failures.append(error.description)
            }
        }
        if let nftables {
            for family in [Family.ip, .ip6] {
                do {
                    guard try nftables.listObjects(family: family, table: tableName) != nil else { continue }
                    var transaction = Transaction(family: family, table: tableName)
                    transaction.delete(.table)
                    try nftables.run(transaction)
                    report.deletedTables.append("\(family.rawValue) \(tableName)")
                } catch {
                    report.failures.append("delete table \(family.rawValue) \(tableName): \(error)")
                }
            }
        }
        if !report.isEmpty {
            logger.info(
                "removed IPVS-mode leftovers",
                metadata: [
                    "virtualServers": "\(report.deletedVirtualServers.count)", "addresses": "\(report.removedAddresses.count)",
                    "tables": "\(report.deletedTables.joined(separator: ", "))",
                ])
        }
        for failure in report.failures { logger.warning("cannot remove IPVS-mode leftover", metadata: ["error": "\(failure)"]) }
        return report
    }
}
