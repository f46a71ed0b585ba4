import CoreMetrics
import Metrics

/// The IPVS proxier's metrics: kube-proxy's sync metrics under kube-proxy's names (as the nftables proxier
/// exports them), and IPVS-specific ones under `node_agent_proxy_ipvs_*`.
struct IPVSProxierMetrics: Sendable {
    let syncDuration: Metrics.Timer
    let fullSyncDuration: Metrics.Timer
    let partialSyncDuration: Metrics.Timer
    let lastSync: Gauge
    let serviceChangesPending: Gauge
    let endpointChangesPending: Gauge
    let programmingLatency: Metrics.Timer
    let syncFailures: Counter
    let virtualServers: Gauge
    let realServers: Gauge
    let drainingRealServers: Gauge
    let ipvsWrites: Counter
    let addressWrites: Counter
    let filterWrites: Counter
    let drained: Counter
    let drainTimedOut: Counter

    init(family: IPFamily, factory: any MetricsFactory) {
        let dimensions = [("ip_family", family.rawValue)]
        func timer(_ label: String) -> Metrics.Timer {
            Timer(label: label, dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        }
        syncDuration = timer("kubeproxy_sync_proxy_rules_duration_seconds")
        fullSyncDuration = timer("kubeproxy_sync_full_proxy_rules_duration_seconds")
        partialSyncDuration = timer("kubeproxy_sync_partial_proxy_rules_duration_seconds")
        programmingLatency = timer("kubeproxy_network_programming_duration_seconds")
        lastSync = Gauge(label: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", dimensions: dimensions, factory: factory)
        serviceChangesPending = Gauge(label: "kubeproxy_sync_proxy_rules_service_changes_pending", dimensions: dimensions, factory: factory)
        endpointChangesPending = Gauge(label: "kubeproxy_sync_proxy_rules_endpoint_changes_pending", dimensions: dimensions, factory: factory)
        syncFailures = Counter(label: "node_agent_proxy_ipvs_sync_failures_total", dimensions: dimensions, factory: factory)
        virtualServers = Gauge(label: "node_agent_proxy_ipvs_virtual_servers", dimensions: dimensions, factory: factory)
        realServers = Gauge(label: "node_agent_proxy_ipvs_real_servers", dimensions: dimensions, factory: factory)
        drainingRealServers = Gauge(label: "node_agent_proxy_ipvs_draining_real_servers", dimensions: dimensions, factory: factory)
        ipvsWrites = Counter(label: "node_agent_proxy_ipvs_kernel_writes_total", dimensions: dimensions + [("kind", "ipvs")], factory: factory)
        addressWrites = Counter(label: "node_agent_proxy_ipvs_kernel_writes_total", dimensions: dimensions + [("kind", "address")], factory: factory)
        filterWrites = Counter(label: "node_agent_proxy_ipvs_kernel_writes_total", dimensions: dimensions + [("kind", "nftables")], factory: factory)
        drained = Counter(label: "node_agent_proxy_ipvs_graceful_deletions_total", dimensions: dimensions + [("reason", "drained")], factory: factory)
        drainTimedOut = Counter(label: "node_agent_proxy_ipvs_graceful_deletions_total", dimensions: dimensions + [("reason", "timed_out")], factory: factory)
    }
}
