import CRI
import Foundation
import KubeAPI

/// Runs probe and lifecycle-hook handlers against a running container: `exec` through the runtime, `httpGet` and
/// `tcpSocket` to the pod's IP (or `host`), `sleep` on the clock.
struct HandlerRunner: Sendable {
    var runtime: any ContainerRuntime
    var clock: any KubeletClock
    /// Where connections start (nil: the daemon's own network namespace).
    var networkNamespace: String?
    var userAgent: String

    /// The target of a handler: the container and its pod's address.
    struct Target: Sendable {
        var containerID: String
        var container: Container
        var podIP: String?
    }

    /// A named port (`http`) resolved against the container's ports, or a number.
    static func port(_ value: IntOrString, in container: Container) -> Int? {
        switch value {
        case .int(let number): return (1...65535).contains(number) ? number : nil
        case .string(let text):
            if let number = Int(text) { return (1...65535).contains(number) ? number : nil }
            return (container.ports ?? []).first { $0.name == text }.map { Int($0.containerPort) }
        }
    }

    func exec(_ command: [String], _ target: Target, timeout: Duration) async -> NetworkProbe.Result {
        guard !command.isEmpty else { return .failure("exec handler has no command") }
        do {
            let result = try await runtime.exec(in: target.containerID, command: command, timeout: timeout)
            let output = (result.stdout + result.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
            if result.exitCode == 0 { return .success(output) }
            return .failure("command \(Self.quote(command)) exited with \(result.exitCode): \(output)")
        } catch let error as ContainerRuntimeError where error.message.contains("did not finish") {
            return .failure("command \(Self.quote(command)) timed out after \(PodWorker.StateMachine.format(timeout))")
        } catch {
            return .failure("command \(Self.quote(command)) failed: \(error)")
        }
    }

    func httpGet(_ action: HTTPGetAction, _ target: Target, timeout: Duration) async -> NetworkProbe.Result {
        guard let port = Self.port(action.port, in: target.container) else {
            return .failure("httpGet port \(action.port) is not a port of container \"\(target.container.name)\"")
        }
        if let scheme = action.scheme, scheme.uppercased() == "HTTPS" {
            return .failure("httpGet with scheme HTTPS is not supported by node-agent; use HTTP, tcpSocket or exec")
        }
        guard let host = (action.host?.isEmpty == false ? action.host : target.podIP) else {
            return .failure("the pod has no IP yet")
        }
        let request = NetworkProbe.HTTPRequest(
            host: host, port: port, path: action.path ?? "/", headers: (action.httpHeaders ?? []).map { ($0.name, $0.value) }, timeout: timeout,
            userAgent: userAgent)
        return await NetworkProbe.http(request, namespace: networkNamespace)
    }

    func tcpSocket(_ action: TCPSocketAction, _ target: Target, timeout: Duration) async -> NetworkProbe.Result {
        guard let port = Self.port(action.port, in: target.container) else {
            return .failure("tcpSocket port \(action.port) is not a port of container \"\(target.container.name)\"")
        }
        guard let host = (action.host?.isEmpty == false ? action.host : target.podIP) else { return .failure("the pod has no IP yet") }
        return await NetworkProbe.tcp(host: host, port: port, timeout: timeout, namespace: networkNamespace)
    }

    /// Runs a probe's handler once.
    func probe(_ probe: Probe, _ target: Target) async -> NetworkProbe.Result {
        let timeout = Duration.seconds(Int64(max(1, probe.timeoutSeconds ?? 1)))
        if let exec = probe.exec { return await self.exec(exec.command ?? [], target, timeout: timeout) }
        if let http = probe.httpGet { return await httpGet(http, target, timeout: timeout) }
        if let tcp = probe.tcpSocket { return await tcpSocket(tcp, target, timeout: timeout) }
        if probe.grpc != nil { return .failure("grpc probes are not supported by node-agent") }
        return .failure("the probe names no handler")
    }

    /// Runs a lifecycle hook (postStart or preStop) within `timeout`.
    func hook(_ handler: LifecycleHandler, _ target: Target, timeout: Duration) async -> NetworkProbe.Result {
        if let exec = handler.exec { return await self.exec(exec.command ?? [], target, timeout: timeout) }
        if let http = handler.httpGet { return await httpGet(http, target, timeout: timeout) }
        if let tcp = handler.tcpSocket { return await tcpSocket(tcp, target, timeout: timeout) }
        if let sleep = handler.sleep {
            let duration = min(Duration.seconds(sleep.seconds), timeout)
            try? await clock.sleep(for: duration)
            return .success("")
        }
        return .failure("the hook names no handler")
    }

    static func quote(_ command: [String]) -> String {
        "[" + command.map { "\"\($0)\"" }.joined(separator: " ") + "]"
    }
}
