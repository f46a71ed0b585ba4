import IPVS
import Iptables
import Logging
import Proxy

extension IPVSProxierFactory {
    /// The daemon's IPVS proxier: one ``IPVSProxier`` per family over the kernel's IPVS (generic netlink),
    /// `kube-ipvs0` (rtnetlink) and the `node-agent-ipvs` nf_tables table, configured from the `--ipvs-*` flags.
    static func daemon(_ settings: AgentSettings) -> IPVSProxierFactory {
        let excludeCIDRs = settings.ipvsExcludeCIDRs.compactMap(IPPrefix.init)
        return IPVSProxierFactory(
            make: { proxierSettings in
                let proxiers = try proxierSettings.families.map { family throws -> any Proxier in
                    let configuration = IPVSProxierConfiguration(
                        family: family,
                        nodeName: proxierSettings.nodeName,
                        scheduler: proxierSettings.ipvsScheduler,
                        syncPeriod: proxierSettings.syncPeriod,
                        minSyncPeriod: proxierSettings.minSyncPeriod,
                        tcpTimeout: settings.ipvsTCPTimeout,
                        tcpFinTimeout: settings.ipvsTCPFinTimeout,
                        udpTimeout: settings.ipvsUDPTimeout,
                        strictARP: settings.ipvsStrictARP,
                        excludeCIDRs: excludeCIDRs.filter { $0.family == family },
                        clusterCIDR: proxierSettings.clusterCIDRs.first { $0.family == family },
                        nodePortAddresses: proxierSettings.nodePortAddresses.filter { $0.family == family }
                    )
                    try configuration.validate()
                    return IPVSProxier.make(
                        configuration: configuration,
                        ipvs: try IPVSKernel(),
                        dummy: try DummyInterface(name: configuration.interfaceName),
                        nftables: try LibNftables(),
                        health: proxierSettings.health,
                        serviceHealth: proxierSettings.serviceHealth,
                        events: proxierSettings.events,
                        metricsFactory: proxierSettings.metricsFactory,
                        logger: proxierSettings.logger
                    )
                }
                return proxiers.count == 1 ? proxiers[0] : MetaProxier(proxiers)
            },
            cleanUp: { logger in
                // Without ip_vs there are no virtual servers to look at; kube-ipvs0's addresses and the
                // node-agent-ipvs tables are removed either way. NodePort virtual servers are recognised on any
                // local address, since the node's addresses at the earlier run are not known.
                let report = IPVSProxier.cleanupLeftovers(
                    ipvs: try? IPVSKernel(), dummy: try? DummyInterface(), nftables: try? LibNftables(),
                    nodePortAddresses: NodePortAddresses.localAddresses(), excludeCIDRs: excludeCIDRs, logger: logger)
                if !report.isEmpty {
                    logger.info(
                        "removed the IPVS mode's leftovers",
                        metadata: [
                            "virtualServers": "\(report.deletedVirtualServers.count)", "addresses": "\(report.removedAddresses.count)",
                            "tables": "\(report.deletedTables.joined(separator: ","))",
                        ])
                }
            }
        )
    }
}
