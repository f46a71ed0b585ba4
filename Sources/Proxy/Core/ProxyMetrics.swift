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

    init(family: IPFamily) {
        let dimensions = [("ip_family", family.rawValue)]
        syncDuration = Timer(label: "kubeproxy_sync_proxy_rules_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        fullSyncDuration = Timer(label: "kubeproxy_sync_full_proxy_rules_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        partialSyncDuration = Timer(label: "kubeproxy_sync_partial_proxy_rules_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        lastSync = Gauge(label: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", dimensions: dimensions)
        serviceChangesPending = Gauge(label: "kubeproxy_sync_proxy_rules_service_changes_pending", dimensions: dimensions)
        endpointChangesPending = Gauge(label: "kubeproxy_sync_proxy_rules_endpoint_changes_pending", dimensions: dimensions)
        programmingLatency = Timer(label: "kubeproxy_network_programming_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        syncFailures = Counter(label: "kubeproxy_sync_proxy_rules_nftables_sync_failures_total", dimensions: dimensions)
        rulesTotal = Gauge(label: "kubeproxy_sync_proxy_rules_nftables_total", dimensions: dimensions)
    }
}
