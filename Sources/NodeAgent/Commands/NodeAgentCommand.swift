import ArgumentParser

/// `node-agent`: the kubelet and kube-proxy of a Kubernetes worker node in one daemon.
struct NodeAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node-agent",
        abstract: "Run a Kubernetes worker node: the kubelet's and kube-proxy's jobs in one daemon.",
        discussion: """
            Without a subcommand, `node-agent` runs the daemon (`node-agent run`).
            Settings come from defaults, then the --config YAML file, then flags; flags win.
            """,
        version: AgentVersion.version,
        subcommands: [RunCommand.self, StatusCommand.self, PreflightCommand.self, VersionCommand.self],
        defaultSubcommand: RunCommand.self
    )
}

/// `node-agent version`: prints the agent's version and the Kubernetes release it follows.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print the node-agent version and the Kubernetes version it follows."
    )

    @Flag(name: .long, help: "Print only the version number.")
    var short = false

    func run() {
        if short {
            print(AgentVersion.version)
        } else {
            print("node-agent \(AgentVersion.version) (kubelet and kube-proxy for Kubernetes v\(AgentVersion.kubernetesVersion); node reports \(AgentVersion.kubeletVersion))")
        }
    }
}
