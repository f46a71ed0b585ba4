public import CoreMetrics
import Metrics

/// kube-proxy's sync metrics, through swift-metrics (the daemon bootstraps the Prometheus backend).
struct ProxyMetrics: Sendable {
    let syncDuration: Metrics.Timer
    let fullSyncDuration: Metrics.Timer
    let partialSyncDuration: Metrics.Timer
    let lastSync: Gauge
    let serviceChangesPending: Gauge
    let endpointChangesPending: Gauge
    let programmingLatency: Metrics.Timer
    let syncFailures: Counter
    let rulesTotal: Gauge

    init(family: IPFamily, factory: any MetricsFactory) {
        let dimensions = [("ip_family", family.rawValue)]
        syncDuration = Timer(label: "kubeproxy_sync_proxy_rules_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        fullSyncDuration = Timer(label: "kubeproxy_sync_full_proxy_rules_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        partialSyncDuration = Timer(label: "kubeproxy_sync_partial_proxy_rules_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        lastSync = Gauge(label: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", dimensions: dimensions, factory: factory)
        serviceChangesPending = Gauge(label: "kubeproxy_sync_proxy_rules_service_changes_pending", dimensions: dimensions, factory: factory)
        endpointChangesPending = Gauge(label: "kubeproxy_sync_proxy_rules_endpoint_changes_pending", dimensions: dimensions, factory: factory)
        programmingLatency = Timer(label: "kubeproxy_network_programming_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
        syncFailures = Counter(label: "kubeproxy_sync_proxy_rules_nftables_sync_failures_total", dimensions: dimensions, factory: factory)
        rulesTotal = Gauge(label: "kubeproxy_sync_proxy_rules_nftables_total", dimensions: dimensions, factory: factory)
    }
}
