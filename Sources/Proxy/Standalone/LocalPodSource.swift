/// This node's own pods, as standalone services need them: the kubelet implements it over its pod workers.
///
/// The contract: ``pods()`` is the current list (every pod the kubelet runs, ready or not, with the IPs its
/// sandbox got and its container ports); ``changes()`` yields whenever that list may have changed (a pod added
/// or removed, its IP, labels or `Ready` condition changed). Ticks may be coalesced; the consumer re-reads
/// ``pods()`` after each. Each call of ``changes()`` is a new subscription; the stream ends when the kubelet stops.
public protocol LocalPodSource: Sendable {
    func pods() async -> [LocalPod]
    func changes() -> AsyncStream<Void>
}
