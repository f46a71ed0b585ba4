import Foundation

/// Settings of the kubelet half, spelled like the kubelet flags they come from.
public struct KubeletConfiguration: Sendable {
    /// The Node's name (`--hostname-override` or the hostname).
    public var nodeName: String
    /// The node's addresses (`--node-ip`), reported as hostIP(s) and used as podIP(s) of hostNetwork pods.
    public var nodeIPs: [String]
    /// `--root-dir`: pod folders live under `<root>/pods/<uid>`.
    public var rootDirectory: String
    /// `--pod-manifest-path`: static pods; nil for none.
    public var podManifestPath: String?
    /// How often the manifest folder is rescanned besides file events (the kubelet's 20 s).
    public var manifestRescanInterval: Duration = .seconds(20)
    /// How often each pod worker looks again without a reason (catches anything an event missed).
    public var resyncInterval: Duration = .seconds(10)
    /// How long a ConfigMap or Secret read from the API serves env vars and volumes before it is read again.
    public var objectCacheTTL: Duration = .seconds(10)
    /// `--max-pods`.
    public var maxPods = 110
    /// Allocatable CPU (millicores) and memory (bytes) for admission and `resourceFieldRef` defaults.
    public var allocatableCPUMillis: Int64
    public var allocatableMemoryBytes: Int64
    public var allocatableEphemeralBytes: Int64
    /// The node's labels for `nodeSelector` admission when the Node object cannot be read.
    public var nodeLabels: [String: String]
    /// CrashLoopBackOff and ImagePullBackOff: initial delay and cap.
    public var backoffInitial: Duration = .seconds(10)
    public var backoffMaximum: Duration = .seconds(300)
    /// The network namespace probe and hook connections are made from: nil for the daemon's own (production);
    /// tests set their isolated node namespace, where the CNI bridge lives.
    public var probeNetworkNamespace: String?
    /// Kubernetes version shown in `User-Agent: kube-probe/<version>`.
    public var probeUserAgent = "kube-probe/1.32"
    /// Events kept per pod for `/pods`.
    public var recentEventsPerPod = 10

    public init(nodeName: String, nodeIPs: [String] = [], rootDirectory: String = "/var/lib/node-agent", podManifestPath: String? = nil) {
        self.nodeName = nodeName
        self.nodeIPs = nodeIPs
        self.rootDirectory = rootDirectory
        self.podManifestPath = podManifestPath
        let cpus = Int64(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        allocatableCPUMillis = cpus * 1000
        let pages = Int64(sysconf(Int32(_SC_PHYS_PAGES)))
        let pageSize = Int64(sysconf(Int32(_SC_PAGESIZE)))
        allocatableMemoryBytes = max(0, pages * pageSize)
        var stats = statvfs()
        allocatableEphemeralBytes = statvfs(rootDirectory, &stats) == 0 ? Int64(stats.f_blocks) * Int64(stats.f_frsize) : 0
        #if arch(arm64)
        let architecture = "arm64"
        #else
        let architecture = "amd64"
        #endif
        nodeLabels = ["kubernetes.io/hostname": nodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": architecture]
    }

    /// `<root>/pods`.
    public var podsDirectory: String { rootDirectory + "/pods" }
}
