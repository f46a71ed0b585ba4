/// The label keys the runtime writes on every container it creates, so the whole picture can be rebuilt from
/// containerd alone after a restart.
public enum RuntimeLabels {
    public static let podUID = "io.kubernetes.pod.uid"
    public static let podName = "io.kubernetes.pod.name"
    public static let podNamespace = "io.kubernetes.pod.namespace"
    public static let containerName = "io.kubernetes.container.name"
    public static let containerAttempt = "io.kubernetes.container.attempt"
    /// Marks objects this runtime owns (value: the runtime's ID prefix); sweeps touch nothing else.
    public static let managedBy = "io.node-agent.managed-by"
    public static let sandboxID = "io.node-agent.sandbox-id"
    public static let logPath = "io.node-agent.log-path"
    public static let imageRef = "io.node-agent.image"
    public static let stopSignal = "io.node-agent.stop-signal"
    /// Written when the runtime learns a container's exit, then the task is deleted.
    public static let exitCode = "io.node-agent.exit-code"
    public static let startedAt = "io.node-agent.started-at"
    public static let finishedAt = "io.node-agent.finished-at"
    public static let reason = "io.node-agent.reason"
}
