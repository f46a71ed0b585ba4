/// Where the kubeconfig comes from, in kubectl's and the kubelet's order:
/// the `--kubeconfig` flag, else the `KUBECONFIG` environment variable (a colon-separated list), else `~/.kube/config`.
public enum KubeconfigLocator {
    /// The candidate files in priority order. An explicit path is the only candidate when given.
    public static func candidates(explicit: String?, environment: [String: String]) -> [String] {
        if let explicit, !explicit.isEmpty {
            return [explicit]
        }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            return list.split(separator: ":", omittingEmptySubsequences: true).map(String.init)
        }
        if let home = environment["HOME"], !home.isEmpty {
            return ["\(home)/.kube/config"]
        }
        return []
    }
}
