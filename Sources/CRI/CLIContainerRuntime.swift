public import Foundation
public import Logging

/// The real ``ContainerRuntime``: containerd driven through its CLI (`ctr`, or `nerdctl`), pod sandboxes made of
/// a network namespace wired by CNI plus UTS/IPC namespaces holding the hostname, CRI-format logs through the
/// binary log driver, exits from the events stream and a relist.
///
/// All state lives in containerd (container labels) and in the sandbox records on disk, so a new instance over the
/// same containerd rebuilds the picture with ``recover()`` and adopts running containers without restarting them.
public actor CLIContainerRuntime: ContainerRuntime {
    public nonisolated let configuration: CLIRuntimeConfiguration
    nonisolated let cli: any RuntimeCLI
    nonisolated let runner: any CommandRunning
    nonisolated let logger: Logger
    nonisolated let store: SandboxStore
    nonisolated let namespaces: PodNamespaces
    nonisolated let cniRunner: CNIPluginRunner
    private let pullGate: PullGate

    private var sandboxes: [String: SandboxRecord] = [:]
    private var containers: [String: ContainerStatus] = [:]
    /// Created containers not yet started: containerd gets them on start, in one `ctr run` (see ``createContainer(in:config:)``).
    private var pending: [String: CLIContainerSpec] = [:]
    /// Containers whose start call is in flight.
    private var starting: Set<String> = []
    /// Counts finished start calls; ``startedIn`` records each container's number. A task list requested at number N
    /// says nothing about a container whose start finished later (its task may not have existed yet when containerd
    /// answered), so a refresh with that list leaves it alone.
    private var startSequence: UInt64 = 0
    private var startedIn: [String: UInt64] = [:]
    /// The `ctr tasks ls` in flight and the start sequence number it was requested at; concurrent callers share it.
    private var taskListing: (task: Task<[String: CLITask], any Error>, sequence: UInt64)?
    /// Image statuses learned by ensure/pull/status, so creating a container needs no extra image lookup.
    private var imageCache: [String: ImageStatus] = [:]
    /// Each image's STOPSIGNAL lookup by image digest: the signal, or nil when the image sets none; the lookup's own
    /// nil when it failed (it is tried again then). ctr copies the signal into every container's labels, so one
    /// `containers info` per image tells it, not one per container stopped, also when 30 pods stop at once.
    private var imageStopSignals: [String: Task<String??, Never>] = [:]
    /// Containers whose task is already deleted (by the reap or the exit delivery); removal skips that ctr call.
    private var tasksDeleted: Set<String> = []
    private var tracker = ExitTracker()
    private nonisolated let subscribers = ExitSubscribers()
    /// The one recovery run; every call waits for it before touching anything, so a sweep never races a creation.
    private var recovery: Task<RecoveryReport, any Error>?

    /// Creates a runtime; nothing is touched until the first call (``recover()`` runs implicitly then).
    /// - Parameter cli: the CLI backend; nil builds ctr or nerdctl per the configuration.
    public init(
        configuration: CLIRuntimeConfiguration, cli: (any RuntimeCLI)? = nil, runner: any CommandRunning = SubprocessCommandRunner(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.runner = runner
        self.logger = logger
        self.cli =
            cli
            ?? {
                switch configuration.resolvedCLI() {
                case .ctr:
                    return CtrCLI(
                        executable: configuration.cliPath ?? "ctr", socket: configuration.endpoint.socketPath,
                        namespace: configuration.namespace, timeout: configuration.requestTimeout, runner: runner)
                case .nerdctl:
                    return NerdctlCLI(
                        executable: configuration.cliPath ?? "nerdctl", socket: configuration.endpoint.socketPath,
                        namespace: configuration.namespace, timeout: configuration.requestTimeout, runner: runner)
                }
            }()
        self.store = SandboxStore(root: configuration.stateDirectory + "/sandboxes")
        self.namespaces = PodNamespaces()
        self.cniRunner = CNIPluginRunner(
            binDirectories: configuration.cniBinDirectories, pluginNamespace: configuration.cniPluginNamespace,
            timeout: configuration.requestTimeout, runner: runner)
        self.pullGate = PullGate(permits: configuration.serializeImagePulls ? 1 : max(1, configuration.maxParallelImagePulls))
    }

    // MARK: Errors

    /// Wraps a CLI failure: "containerd is not running" becomes `.runtimeUnavailable`, others `.commandFailed`.
    private func wrap<T>(_ object: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CommandError {
            if error.isNotFound || error.stderr.contains("connect: no such file") || error.stderr.contains("connection refused")
                || error.stderr.contains("failed to dial") || error.stderr.contains("context deadline exceeded")
            {
                throw ContainerRuntimeError.runtimeUnavailable(configuration.endpoint.socketPath, error)
            }
            throw ContainerRuntimeError.command(object, error)
        }
    }

    private func ensureRecovered() async throws {
        _ = try await recover()
    }

    // MARK: Images

    public func imageStatus(_ image: String) async throws -> ImageStatus? {
        let reference = try ImageReference(parsing: image).description
        let status = try await wrap("image \(reference)") { try await cli.image(reference) }
        imageCache[reference] = status
        return status
    }

    public func pullImage(_ image: String) async throws -> ImageStatus {
        let reference = try ImageReference(parsing: image).description
        await pullGate.acquire()
        defer { Task { await pullGate.release() } }
        logger.info("pulling image", metadata: ["image": "\(reference)"])
        do {
            let status = try await cli.pull(reference, logger: logger)
            imageCache[reference] = status
            logger.info("pulled image", metadata: ["image": "\(reference)", "digest": "\(status.digest)"])
            return status
        } catch let error as CommandError {
            if (try? await cli.ping()) == nil { throw ContainerRuntimeError.runtimeUnavailable(configuration.endpoint.socketPath, error) }
            throw ContainerRuntimeError.pullFailed(reference, error)
        }
    }

    public func ensureImage(_ image: String, policy: ImagePullPolicy?) async throws -> ImageStatus {
        let reference = try ImageReference(parsing: image)
        let policy = policy ?? ImagePullPolicy.default(for: reference)
        let present = try await imageStatus(image)
        switch policy {
        case .never:
            guard let present else { throw ContainerRuntimeError.imageNeverPull(reference.description) }
            return present
        case .ifNotPresent:
            if let present { return present }
            return try await pullImage(image)
        case .always:
            do {
                return try await pullImage(image)
            } catch let error as ContainerRuntimeError where error.kind == .imagePullFailed {
                // Like the kubelet with an unreachable registry: a present image still runs, the failure is logged.
                guard let present else { throw error }
                logger.warning("pull failed, using the present image", metadata: ["image": "\(reference)", "error": "\(error)"])
                return present
            }
        }
    }

    // MARK: Sandboxes

    private func newID() -> String {
        var bytes = [UInt8](repeating: 0, count: 8)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        return configuration.idPrefix + bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// True for IDs this runtime made: its prefix then 16 hex digits (so sweeps never touch a neighbour's objects
    /// that merely share the prefix).
    nonisolated func isOwnID(_ id: String) -> Bool {
        guard id.hasPrefix(configuration.idPrefix) else { return false }
        let rest = id.dropFirst(configuration.idPrefix.count)
        return rest.count == 16 && rest.allSatisfy(\.isHexDigit)
    }

    static func validate(_ config: PodSandboxConfig) throws {
        let object = "pod \(config.pod)"
        for (field, value) in [("metadata.name", config.pod.name), ("metadata.namespace", config.pod.namespace), ("metadata.uid", config.pod.uid)] {
            guard !value.isEmpty, value.count <= 253, !value.contains("/"), !value.contains("_"), !value.contains(" ") else {
                throw ContainerRuntimeError(.invalidConfig, object: object, field: field, "must be a non-empty DNS-style name without '/', '_' or spaces")
            }
        }
        let hostname = config.hostname
        guard !hostname.isEmpty, hostname.count <= 63, hostname.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") })
        else {
            throw ContainerRuntimeError(.invalidConfig, object: object, field: "spec.hostname", "must be a DNS label of at most 63 lowercase characters")
        }
    }

    public func runPodSandbox(_ config: PodSandboxConfig) async throws -> PodSandboxStatus {
        try await ensureRecovered()
        try Self.validate(config)
        let id = newID()
        let directory = store.directory(id)
        let network = config.hostNetwork ? nil : try CNINetworkList.load(directory: configuration.cniConfDirectory)
        var record = SandboxRecord(
            status: PodSandboxStatus(id: id, config: config, state: .ready, createdAt: Date(), podIPs: [], networkNamespacePath: nil),
            phase: .creating)
        // The record is first written once the namespaces exist (before CNI ADD, so a crash mid-ADD can be undone);
        // a crash before that leaves only namespaces named by the ID, which the start-up sweep removes.
        if network == nil { try store.save(record) } else { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        var attachment: CNIPluginRunner.Attachment?
        do {
            if let network {
                let paths = try await namespaces.create(name: id, hostname: config.hostname, stateDirectory: directory)
                record.netnsName = id
                record.status.networkNamespacePath = paths.network
                record.utsPath = paths.uts
                record.ipcPath = paths.ipc
                record.cniConfig = try? String(contentsOfFile: network.source, encoding: .utf8)
                record.cniSource = network.source
                try store.save(record)
                let attach = CNIPluginRunner.Attachment(containerID: id, netnsPath: paths.network, pod: config.pod)
                attachment = attach
                let result = try await cniRunner.add(network, attach, logger: logger)
                record.cniResult = result.json
                record.status.podIPs = result.ips
            }
            try store.write(id, file: "hostname", contents: PodFiles.hostname(config))
            try store.write(id, file: "hosts", contents: PodFiles.hosts(config, podIPs: record.status.podIPs))
            try store.write(id, file: "resolv.conf", contents: PodFiles.resolvConf(config, cluster: configuration.clusterDNS))
            record.phase = .ready
            try store.save(record)
        } catch {
            logger.warning("sandbox creation failed, cleaning up", metadata: ["pod": "\(config.pod)", "sandbox": "\(id)", "error": "\(error)"])
            if let network, let attachment {
                try? await cniRunner.delete(network, attachment, previous: record.cniResult, logger: logger)
            }
            namespaces.delete(name: config.hostNetwork ? nil : id, stateDirectory: directory)
            store.remove(id)
            if let error = error as? ContainerRuntimeError { throw error }
            throw ContainerRuntimeError(
                .invalidState, object: "sandbox for pod \(config.pod)", "could not create the pod's namespaces or files: \(error); is the daemon root?")
        }
        sandboxes[id] = record
        logger.info("sandbox ready", metadata: ["pod": "\(config.pod)", "sandbox": "\(id)", "ip": "\(record.status.podIPs.joined(separator: ","))"])
        return record.status
    }

    private func sandbox(_ id: String) throws -> SandboxRecord {
        guard let record = sandboxes[id] else { throw ContainerRuntimeError.sandboxNotFound(id) }
        return record
    }

    /// Tears networking down (CNI DEL with the cached result) and deletes the netns. Idempotent.
    private func teardownNetwork(_ record: inout SandboxRecord) async throws {
        guard let netnsName = record.netnsName else { return }
        let network: CNINetworkList?
        if let text = record.cniConfig {
            network = try? CNINetworkList(data: Data(text.utf8), source: record.cniSource ?? "cached config")
        } else {
            network = try? CNINetworkList.load(directory: configuration.cniConfDirectory)
        }
        if let network {
            let attachment = CNIPluginRunner.Attachment(containerID: record.status.id, netnsPath: PodNamespaces.netnsPath(netnsName), pod: record.status.config.pod)
            try await cniRunner.delete(network, attachment, previous: record.cniResult, logger: logger)
        }
        PodNamespaces.deleteNetwork(netnsName)
        record.cniResult = nil
        record.netnsName = nil
    }

    public func stopPodSandbox(_ id: String, gracePeriod: Duration) async throws {
        try await ensureRecovered()
        var record = try sandbox(id)
        let members = containers.values.filter { $0.sandboxID == id && $0.state == .running }.map(\.id)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for member in members { group.addTask { try await self.stopContainer(member, gracePeriod: gracePeriod) } }
            try await group.waitForAll()
        }
        try await teardownNetwork(&record)
        record.phase = .stopped
        record.status.state = .notReady
        try? store.save(record)
        sandboxes[id] = record
        logger.info("sandbox stopped", metadata: ["sandbox": "\(id)", "pod": "\(record.status.config.pod)"])
    }

    public func removePodSandbox(_ id: String) async throws {
        try await ensureRecovered()
        guard var record = sandboxes[id] else { return }
        for member in containers.values where member.sandboxID == id {
            try await removeContainer(member.id)
        }
        try await teardownNetwork(&record)
        namespaces.delete(name: nil, stateDirectory: store.directory(id))
        store.remove(id)
        sandboxes[id] = nil
        scheduleLogRemoval(record.status.config.pod)
        logger.info("sandbox removed", metadata: ["sandbox": "\(id)", "pod": "\(record.status.config.pod)"])
    }

    public func podSandboxStatus(_ id: String) async throws -> PodSandboxStatus {
        try await ensureRecovered()
        return try sandbox(id).status
    }

    public func listPodSandboxes() async throws -> [PodSandboxStatus] {
        try await ensureRecovered()
        return sandboxes.values.map(\.status).sorted { $0.createdAt < $1.createdAt }
    }

    // MARK: Logs

    public nonisolated func logPath(pod: PodIdentity, containerName: String, attempt: Int) -> String {
        "\(configuration.podLogDirectory)/\(pod.logDirectoryName)/\(containerName)/\(attempt).log"
    }

    /// Marks a removed pod's log folder; ``maintain()`` deletes it once `logRetention` has passed.
    private func scheduleLogRemoval(_ pod: PodIdentity) {
        let directory = "\(configuration.podLogDirectory)/\(pod.logDirectoryName)"
        guard FileManager.default.fileExists(atPath: directory) else { return }
        if configuration.logRetention <= Duration.zero {
            try? FileManager.default.removeItem(atPath: directory)
        } else {
            _ = FileManager.default.createFile(atPath: directory + "/.removed", contents: Data(String(Date().timeIntervalSince1970).utf8))
        }
    }

    /// Deletes the log folders of removed pods whose retention has passed (by `now`).
    public func maintain(now: Date = Date()) {
        let root = configuration.podLogDirectory
        let retention = Double(configuration.logRetention.components.seconds)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            let marker = "\(root)/\(name)/.removed"
            guard let text = try? String(contentsOfFile: marker, encoding: .utf8), let at = Double(text) else { continue }
            if now.timeIntervalSince1970 - at >= retention { try? FileManager.default.removeItem(atPath: "\(root)/\(name)") }
        }
    }

    // MARK: Containers

    public func createContainer(in sandboxID: String, config: ContainerConfig) async throws -> String {
        try await ensureRecovered()
        let record = try sandbox(sandboxID)
        let pod = record.status.config.pod
        let object = "container \"\(config.name)\" of pod \(pod)"
        guard record.phase == .ready else {
            throw ContainerRuntimeError(.sandboxNotReady, object: object, "the pod sandbox \(sandboxID) is stopped; create a new sandbox")
        }
        guard !config.name.isEmpty, config.name.count <= 63, config.name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") })
        else { throw ContainerRuntimeError(.invalidConfig, object: object, field: "name", "must be a DNS label (lowercase letters, digits, '-')") }
        guard config.attempt >= 0 else { throw ContainerRuntimeError(.invalidConfig, object: object, field: "attempt", "must not be negative") }
        if (config.user != nil || config.group != nil) && cli.kind == .ctr {
            throw ContainerRuntimeError(
                .unsupported, object: object, field: "securityContext.runAsUser",
                "ctr 1.6 cannot set the process user; leave runAsUser/runAsGroup unset (the image's user applies) or use --runtime-cli=nerdctl")
        }
        for (index, mount) in config.mounts.enumerated() {
            guard mount.hostPath.hasPrefix("/"), mount.containerPath.hasPrefix("/"), !mount.hostPath.contains(","), !mount.containerPath.contains(",")
            else { throw ContainerRuntimeError(.invalidConfig, object: object, field: "volumeMounts[\(index)]", "paths must be absolute and hold no ','") }
            guard FileManager.default.fileExists(atPath: mount.hostPath) else {
                throw ContainerRuntimeError(.invalidConfig, object: object, field: "volumeMounts[\(index)]", "host path \(mount.hostPath) does not exist")
            }
        }
        for (index, variable) in config.env.enumerated() where variable.name.isEmpty || variable.name.contains("=") {
            throw ContainerRuntimeError(.invalidConfig, object: object, field: "env[\(index)].name", "must be non-empty and hold no '='")
        }
        let reference = try ImageReference(parsing: config.image).description
        var image = imageCache[reference]
        if image == nil { image = try await imageStatus(reference) }
        guard let image else {
            throw ContainerRuntimeError.imageNotFound(reference)
        }
        guard let loggerPath = configuration.resolvedLoggerPath() else {
            throw ContainerRuntimeError(
                .invalidConfig, object: object, field: "--container-log-driver",
                "node-agent-logger was not found beside the node-agent binary nor on PATH; install it there")
        }
        var processArgs: [String] = []
        if !config.command.isEmpty {
            processArgs = config.command + config.args
        } else if !config.args.isEmpty {
            let entrypoint = try await wrap(object) { try await cli.imageEntrypoint(reference) }.entrypoint
            processArgs = entrypoint + config.args
        }
        let id = newID()
        let logPath = logPath(pod: pod, containerName: config.name, attempt: config.attempt)
        var labels = config.labels
        labels[RuntimeLabels.podUID] = pod.uid
        labels[RuntimeLabels.podName] = pod.name
        labels[RuntimeLabels.podNamespace] = pod.namespace
        labels[RuntimeLabels.containerName] = config.name
        labels[RuntimeLabels.containerAttempt] = String(config.attempt)
        labels[RuntimeLabels.managedBy] = configuration.idPrefix
        labels[RuntimeLabels.sandboxID] = sandboxID
        labels[RuntimeLabels.logPath] = logPath
        labels[RuntimeLabels.imageRef] = image.digest
        if let stopSignal = config.stopSignal { labels[RuntimeLabels.stopSignal] = stopSignal }
        var mounts = config.mounts
        var namespacePaths: [String: String] = [:]
        let hostNetwork = record.status.config.hostNetwork
        if !hostNetwork {
            let directory = store.directory(sandboxID)
            let taken = Set(mounts.map(\.containerPath))
            for (file, target) in [("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf"), ("hostname", "/etc/hostname")] where !taken.contains(target) {
                mounts.append(ContainerMount(hostPath: "\(directory)/\(file)", containerPath: target, readOnly: false))
            }
            if let netns = record.status.networkNamespacePath { namespacePaths["network"] = netns }
            if let uts = record.utsPath { namespacePaths["uts"] = uts }
            if let ipc = record.ipcPath { namespacePaths["ipc"] = ipc }
        }
        let spec = CLIContainerSpec(
            id: id, image: reference, processArgs: processArgs, env: config.env, workingDirectory: config.workingDirectory, mounts: mounts,
            labels: labels, namespaces: namespacePaths, hostNetwork: hostNetwork, hostname: record.status.config.hostname,
            resources: config.resources, user: config.user, group: config.group, readOnlyRootFilesystem: config.readOnlyRootFilesystem,
            privileged: config.privileged, logURI: logURI(loggerPath: loggerPath, logPath: logPath))
        try FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // containerd gets the container on start, created and started by one `ctr run --detach`: a created
        // container is a validated spec held here (every check above ran now, so create fails where CRI would).
        // This saves a CLI round trip per container; a created-but-unstarted container does not survive a restart,
        // which the kubelet treats like a container that was never created.
        pending[id] = spec
        containers[id] = ContainerStatus(
            id: id, sandboxID: sandboxID, pod: pod, name: config.name, attempt: config.attempt, state: .created, image: reference,
            imageDigest: image.digest, createdAt: Date(), logPath: logPath, labels: labels)
        tracker.watch(id)
        logger.debug("container created", metadata: ["container": "\(id)", "name": "\(config.name)", "pod": "\(pod)"])
        return id
    }

    /// containerd's binary log driver URI for the logger program.
    private nonisolated func logURI(loggerPath: String, logPath: String) -> String {
        "binary://\(loggerPath)?path=\(logPath)&max-size=\(configuration.logMaxSize)&max-files=\(configuration.logMaxFiles)"
    }

    private func container(_ id: String) throws -> ContainerStatus {
        guard let status = containers[id] else { throw ContainerRuntimeError.containerNotFound(id) }
        return status
    }

    public func startContainer(_ id: String) async throws {
        try await ensureRecovered()
        var status = try container(id)
        guard status.state == .created else {
            throw ContainerRuntimeError(.invalidState, object: "container \(id)", "only a created container can start (state \(status.state.rawValue))")
        }
        let spec = pending[id]
        var uri: String?
        if spec == nil {
            guard let loggerPath = configuration.resolvedLoggerPath() else {
                throw ContainerRuntimeError(
                    .invalidConfig, object: "container \(id)", field: "--container-log-driver",
                    "node-agent-logger was not found beside the node-agent binary nor on PATH; install it there")
            }
            uri = logURI(loggerPath: loggerPath, logPath: status.logPath ?? "/dev/null")
        }
        // Running from now: an exit event may arrive before the CLI call returns (a process that ends at once).
        // Relists leave a starting container alone until its task exists.
        status.state = .running
        status.startedAt = Date()
        containers[id] = status
        starting.insert(id)
        defer { starting.remove(id) }
        do {
            if let spec {
                try await wrap("container \(id)") { try await cli.run(spec) }
                pending[id] = nil
            } else {
                try await wrap("container \(id)") { try await cli.start(id, logURI: uri) }
            }
            startSequence += 1
            startedIn[id] = startSequence
        } catch {
            if containers[id]?.state == .running {
                containers[id]?.state = .created
                containers[id]?.startedAt = nil
            }
            throw error
        }
    }

    /// The task list of containerd now, with the start sequence number it is valid for (see ``startSequence``).
    ///
    /// Callers that ask while a listing is in flight share it and its (earlier) sequence number, which keeps the
    /// refresh rule safe: stopping 30 pods at once polled `ctr tasks ls` some 70 times a second, one process each.
    private func taskSnapshot() async throws -> (tasks: [String: CLITask], sequence: UInt64) {
        if let listing = taskListing {
            return (try await wrap("tasks") { try await listing.task.value }, listing.sequence)
        }
        let sequence = startSequence
        let cli = self.cli
        let task = Task { try await cli.tasks() }
        taskListing = (task, sequence)
        defer { taskListing = nil }
        return (try await wrap("tasks") { try await task.value }, sequence)
    }

    /// Reaps the containers among `ids` whose task `snapshot` shows stopped or gone; a container whose start
    /// finished after the snapshot was requested is skipped (the list may predate its task).
    private func refresh(_ ids: [String], snapshot: (tasks: [String: CLITask], sequence: UInt64)) async {
        let tasks = snapshot.tasks
        for id in ids {
            guard let status = containers[id], status.state == .running, !starting.contains(id) else { continue }
            if let started = startedIn[id], started > snapshot.sequence { continue }
            let task = tasks[id]
            if task == nil || task?.status == .stopped {
                await handle(tracker.observedStopped(id), source: .relist, task: task)
            }
        }
    }

    /// Carries out an ``ExitTracker`` action.
    private func handle(_ action: ExitTracker.Action, source: ContainerExit.Source, task: CLITask? = nil) async {
        switch action {
        case .none:
            return
        case .reap(let id):
            var code = task?.exitCode
            do {
                let deleted = try await cli.deleteTask(id)
                tasksDeleted.insert(id)
                if code == nil { code = deleted }
            } catch {
                // containerd refused to delete the task (still running, or not answering): no exit to report; the
                // next relist looks again.
                logger.debug("reap deferred", metadata: ["container": "\(id)", "error": "\(error)"])
                _ = tracker.reaped(id, sandboxID: nil, exitCode: nil, at: Date(), source: source)
                return
            }
            let finishedAt = task?.finishedAt ?? Date()
            let next = tracker.reaped(id, sandboxID: containers[id]?.sandboxID, exitCode: code ?? 255, at: finishedAt, source: source)
            await handle(next, source: source)
        case .deliver(let exit):
            guard var status = containers[exit.containerID] else { return }
            status.state = .exited
            status.exitCode = exit.exitCode
            status.finishedAt = exit.finishedAt
            status.reason = exit.exitCode == 0 ? "Completed" : "Error"
            containers[exit.containerID] = status
            var labels = [
                RuntimeLabels.exitCode: String(exit.exitCode), RuntimeLabels.finishedAt: RFC3339Nano.format(exit.finishedAt),
                RuntimeLabels.reason: status.reason ?? "Error",
            ]
            if let started = status.startedAt { labels[RuntimeLabels.startedAt] = RFC3339Nano.format(started) }
            status.labels.merge(labels) { _, new in new }
            containers[exit.containerID] = status
            do {
                try await cli.setLabels(exit.containerID, labels)
                if source == .events {
                    _ = try await cli.deleteTask(exit.containerID)
                    tasksDeleted.insert(exit.containerID)
                }
            } catch {
                logger.warning("could not record an exit", metadata: ["container": "\(exit.containerID)", "error": "\(error)"])
            }
            logger.info(
                "container exited",
                metadata: ["container": "\(exit.containerID)", "exitCode": "\(exit.exitCode)", "source": "\(exit.source.rawValue)"])
            subscribers.yield(exit)
        }
    }

    /// Called by the monitor for each task exit on the events stream.
    func exitEventReceived(_ event: CLIExitEvent) async {
        guard containers[event.containerID] != nil else { return }
        let action = tracker.exitEvent(event.containerID, sandboxID: containers[event.containerID]?.sandboxID, exitCode: event.exitCode, at: event.exitedAt)
        await handle(action, source: .events)
    }

    /// One relist: compares every running container with containerd's tasks and reaps those that ended.
    public func relist() async throws {
        try await ensureRecovered()
        await refresh(Array(containers.keys), snapshot: try await taskSnapshot())
    }

    public func stopContainer(_ id: String, gracePeriod: Duration) async throws {
        try await ensureRecovered()
        let status = try container(id)
        guard status.state == .running else { return }
        // The pod's stop signal, else the image's STOPSIGNAL (ctr records it as a container label), else TERM.
        var signal = status.labels[RuntimeLabels.stopSignal]
        if signal == nil { signal = await imageStopSignal(of: status) }
        let stopSignal = signal ?? "SIGTERM"
        try await wrap("container \(id)") { try await cli.kill(id, signal: stopSignal) }
        if try await !waitForStop(id, within: gracePeriod) {
            logger.info("grace period over, killing", metadata: ["container": "\(id)"])
            try await wrap("container \(id)") { try await cli.kill(id, signal: "SIGKILL") }
            _ = try await waitForStop(id, within: .seconds(10))
        }
    }

    /// The STOPSIGNAL of the container's image, from the label ctr set at create; looked up once per image digest
    /// (callers asking while the lookup is in flight share it).
    private func imageStopSignal(of status: ContainerStatus) async -> String? {
        let cli = self.cli, id = status.id
        let lookup = { @Sendable () async -> String?? in
            guard let info = try? await cli.container(id) else { return nil }
            return .some(info.labels["io.containerd.image.config.stop-signal"])
        }
        guard let digest = status.imageDigest else { return await lookup() ?? nil }
        if let known = imageStopSignals[digest], let signal = await known.value { return signal }
        let task = Task(operation: lookup)
        imageStopSignals[digest] = task
        guard let signal = await task.value else {
            if imageStopSignals[digest] == task { imageStopSignals[digest] = nil }
            return nil
        }
        return signal
    }

    /// Polls the task until it stopped (then reaps it) or `limit` passes; true when it stopped.
    private func waitForStop(_ id: String, within limit: Duration) async throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while true {
            if containers[id]?.state != .running { return true }
            let snapshot = try await taskSnapshot()
            if snapshot.tasks[id] == nil || snapshot.tasks[id]?.status == .stopped {
                await refresh([id], snapshot: snapshot)
                if containers[id]?.state != .running { return true }
            }
            if clock.now >= deadline { return false }
            try await Task.sleep(for: min(.milliseconds(100), deadline - clock.now))
        }
    }

    public func removeContainer(_ id: String) async throws {
        try await ensureRecovered()
        guard let status = containers[id] else { return }
        if pending.removeValue(forKey: id) != nil {
            containers[id] = nil
            tracker.forget(id)
            return
        }
        if status.state == .running {
            try await wrap("container \(id)") { try await cli.kill(id, signal: "SIGKILL") }
            _ = try await waitForStop(id, within: .seconds(10))
        }
        let taskDeleted = tasksDeleted.contains(id)
        try await wrap("container \(id)") {
            if !taskDeleted { _ = try await cli.deleteTask(id) }
            try await cli.deleteContainer(id)
        }
        containers[id] = nil
        startedIn[id] = nil
        tasksDeleted.remove(id)
        tracker.forget(id)
    }

    public func exec(in id: String, command: [String], timeout: Duration) async throws -> ExecResult {
        try await ensureRecovered()
        let status = try container(id)
        guard status.state == .running else {
            throw ContainerRuntimeError(.invalidState, object: "container \(id)", "exec needs a running container (state \(status.state.rawValue))")
        }
        guard !command.isEmpty else { throw ContainerRuntimeError(.invalidConfig, object: "exec in container \(id)", field: "command", "is empty") }
        let execID = "exec-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        do {
            return try await cli.exec(id, execID: execID, command: command, user: nil, timeout: timeout)
        } catch let error as CommandError where error.isTimeout {
            throw ContainerRuntimeError(.commandFailed, object: "exec in container \(id)", "the command did not finish within \(timeout)", underlying: error)
        } catch let error as CommandError {
            throw ContainerRuntimeError.command("exec in container \(id)", error)
        }
    }

    public func containerStatus(_ id: String) async throws -> ContainerStatus {
        try await ensureRecovered()
        if containers[id]?.state == .running {
            await refresh([id], snapshot: try await taskSnapshot())
        }
        return try container(id)
    }

    public func listContainers() async throws -> [ContainerStatus] {
        try await ensureRecovered()
        return containers.values.sorted { $0.createdAt < $1.createdAt }
    }

    // MARK: Exit events

    public nonisolated func exitEvents() -> AsyncStream<ContainerExit> { subscribers.subscribe() }

    // MARK: Recovery and cleanup

    /// What ``recover()`` found and did.
    public struct RecoveryReport: Sendable, Hashable {
        public var adoptedSandboxes: [String] = []
        public var adoptedContainers: [String] = []
        public var removedSandboxes: [String] = []
        public var removedContainers: [String] = []
        public var releasedAllocations: [String] = []
        public var removedNetworkNamespaces: [String] = []
    }

    /// Rebuilds the picture from containerd labels and the sandbox records, adopting what runs (never restarting
    /// it) and sweeping away what a crash left half-made: `creating` sandboxes, containers whose sandbox is gone,
    /// netns and CNI allocations with this runtime's prefix and no sandbox.
    /// - Throws: `.runtimeUnavailable` when containerd does not answer.
    /// Runs once per instance; later calls return the first run's report (a failed run is retried).
    @discardableResult
    public func recover() async throws -> RecoveryReport {
        if let recovery { return try await recovery.value }
        let task = Task { try await self.performRecovery() }
        recovery = task
        do {
            return try await task.value
        } catch {
            recovery = nil
            throw error
        }
    }

    public func runtimeStatus() async -> RuntimeStatus {
        var status = RuntimeStatus(version: "containerd://unknown")
        do {
            status.version = "containerd://" + (try await wrap("containerd") { try await cli.ping() })
        } catch {
            status.runtimeProblem = "\(error)"
        }
        do {
            _ = try CNINetworkList.load(directory: configuration.cniConfDirectory)
        } catch {
            status.networkProblem = "Network plugin returns error: cni plugin not initialized: \(error)"
        }
        return status
    }

    private func performRecovery() async throws -> RecoveryReport {
        _ = try await wrap("containerd") { try await cli.ping() }
        var report = RecoveryReport()
        let prefix = configuration.idPrefix
        // Sandboxes from their records.
        for id in store.ids() where isOwnID(id) && sandboxes[id] == nil {
            guard var record = store.load(id), record.phase != .creating else {
                await sweepSandbox(id, record: store.load(id))
                report.removedSandboxes.append(id)
                continue
            }
            if record.phase == .ready, let netnsName = record.netnsName {
                if !FileManager.default.fileExists(atPath: PodNamespaces.netnsPath(netnsName)) {
                    logger.warning("sandbox lost its network namespace", metadata: ["sandbox": "\(id)"])
                    try? await teardownNetwork(&record)
                    record.phase = .stopped
                    record.status.state = .notReady
                } else if let result = record.cniResult, let text = record.cniConfig,
                    let network = try? CNINetworkList(data: Data(text.utf8), source: record.cniSource ?? "cached config")
                {
                    let attachment = CNIPluginRunner.Attachment(containerID: id, netnsPath: PodNamespaces.netnsPath(netnsName), pod: record.status.config.pod)
                    do {
                        try await cniRunner.check(network, attachment, previous: result)
                    } catch {
                        logger.warning("CNI CHECK failed for an adopted sandbox", metadata: ["sandbox": "\(id)", "error": "\(error)"])
                    }
                }
            }
            sandboxes[id] = record
            report.adoptedSandboxes.append(id)
        }
        // Containers from their labels.
        let snapshot = try await taskSnapshot()
        let tasks = snapshot.tasks
        for id in try await wrap("containers", { try await cli.containerIDs() }) where isOwnID(id) && containers[id] == nil {
            guard let info = try await wrap("container \(id)", { try await cli.container(id) }), info.labels[RuntimeLabels.managedBy] == prefix else { continue }
            let labels = info.labels
            guard let sandboxID = labels[RuntimeLabels.sandboxID], sandboxes[sandboxID] != nil else {
                logger.info("removing a container whose sandbox is gone", metadata: ["container": "\(id)"])
                _ = try? await cli.kill(id, signal: "SIGKILL")
                for _ in 0..<50 {
                    let now = try? await cli.tasks()
                    if now?[id] == nil || now?[id]?.status == .stopped { break }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                _ = try? await cli.deleteTask(id)
                try? await cli.deleteContainer(id)
                report.removedContainers.append(id)
                continue
            }
            let pod = PodIdentity(uid: labels[RuntimeLabels.podUID] ?? "", name: labels[RuntimeLabels.podName] ?? "", namespace: labels[RuntimeLabels.podNamespace] ?? "")
            var status = ContainerStatus(
                id: id, sandboxID: sandboxID, pod: pod, name: labels[RuntimeLabels.containerName] ?? "",
                attempt: Int(labels[RuntimeLabels.containerAttempt] ?? "") ?? 0, state: .created, image: info.image,
                imageDigest: labels[RuntimeLabels.imageRef], createdAt: info.createdAt, logPath: labels[RuntimeLabels.logPath], labels: labels)
            status.startedAt = labels[RuntimeLabels.startedAt].flatMap(RFC3339Nano.parse)
            if let code = labels[RuntimeLabels.exitCode].flatMap({ Int32($0) }) {
                status.state = .exited
                status.exitCode = code
                status.finishedAt = labels[RuntimeLabels.finishedAt].flatMap(RFC3339Nano.parse)
                status.reason = labels[RuntimeLabels.reason]
                tracker.watch(id, alreadyExited: true)
            } else if let task = tasks[id] {
                status.state = .running
                status.startedAt = status.startedAt ?? task.startedAt ?? ProcessStart.time(pid: task.pid) ?? info.createdAt
                tracker.watch(id)
            } else {
                tracker.watch(id)
            }
            containers[id] = status
            report.adoptedContainers.append(id)
        }
        // Running containers whose task stopped while we were away are reaped now.
        await refresh(Array(containers.keys), snapshot: snapshot)
        // Network namespaces and CNI allocations with our prefix and no sandbox.
        let netnsNames = ((try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? []).filter { isOwnID($0) }
        let live = Set(sandboxes.values.compactMap(\.netnsName))
        for name in netnsNames where !live.contains(name) {
            await releaseAllocation(containerID: name, netnsName: name)
            PodNamespaces.deleteNetwork(name)
            report.removedNetworkNamespaces.append(name)
        }
        for owner in Self.hostLocalOwners(configuration.cniConfDirectory) where isOwnID(owner) && sandboxes[owner]?.cniResult == nil {
            await releaseAllocation(containerID: owner, netnsName: nil)
            report.releasedAllocations.append(owner)
        }
        maintain()
        logger.info(
            "runtime state recovered",
            metadata: [
                "sandboxes": "\(report.adoptedSandboxes.count)", "containers": "\(report.adoptedContainers.count)",
                "swept": "\(report.removedSandboxes.count + report.removedContainers.count + report.removedNetworkNamespaces.count + report.releasedAllocations.count)",
            ])
        return report
    }

    /// Removes everything of a sandbox that a crash left half-made.
    private func sweepSandbox(_ id: String, record: SandboxRecord?) async {
        logger.info("sweeping a half-made sandbox", metadata: ["sandbox": "\(id)"])
        if var record {
            record.netnsName = record.netnsName ?? id
            try? await teardownNetwork(&record)
        } else {
            await releaseAllocation(containerID: id, netnsName: id)
        }
        namespaces.delete(name: id, stateDirectory: store.directory(id))
        store.remove(id)
    }

    /// CNI DEL for a container ID with the current network config (host-local releases by container ID).
    private func releaseAllocation(containerID: String, netnsName: String?) async {
        guard let network = try? CNINetworkList.load(directory: configuration.cniConfDirectory) else { return }
        let attachment = CNIPluginRunner.Attachment(
            containerID: containerID, netnsPath: netnsName.map(PodNamespaces.netnsPath) ?? "",
            pod: PodIdentity(uid: "", name: "", namespace: ""))
        try? await cniRunner.delete(network, attachment, previous: nil, logger: logger)
    }

    /// Container IDs holding an address in host-local's store (`ipam.dataDir`, default /var/lib/cni/networks/<net>).
    static func hostLocalOwners(_ confDirectory: String) -> [String] {
        guard let network = try? CNINetworkList.load(directory: confDirectory) else { return [] }
        var owners: [String] = []
        for plugin in network.plugins {
            guard let object = try? JSONSerialization.jsonObject(with: Data(plugin.utf8)) as? [String: Any],
                let ipam = object["ipam"] as? [String: Any], ipam["type"] as? String == "host-local"
            else { continue }
            let directory = (ipam["dataDir"] as? String ?? "/var/lib/cni/networks") + "/" + network.name
            for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where !file.hasPrefix("last_reserved") && file != "lock" {
                if let text = try? String(contentsOfFile: directory + "/" + file, encoding: .utf8),
                    let owner = text.split(whereSeparator: \.isNewline).first
                {
                    owners.append(String(owner))
                }
            }
        }
        return owners
    }
}

/// Limits concurrent image pulls (one at a time when pulls are serialized).
actor PullGate {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(permits: Int) { available = permits }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty { available += 1 } else { waiters.removeFirst().resume() }
    }
}

/// A process's start time from `/proc/<pid>/stat` (field 22, clock ticks since boot) and the boot time.
enum ProcessStart {
    static func time(pid: Int32) -> Date? {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, so starttime (22) is index 19.
        guard fields.count > 19, let ticks = Double(fields[19]),
            let procStat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = procStat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
            let boot = Double(line.split(separator: " ").last ?? "")
        else { return nil }
        return Date(timeIntervalSince1970: boot + ticks / Double(sysconf(Int32(_SC_CLK_TCK))))
    }
}
