import ArgumentParser
import AsyncHTTPClient
import Foundation
import Kubelet
import NIOCore

/// `node-agent status`: asks a running agent for `/status` and judges it, for systemd, cron or a load balancer.
///
/// Exit status 0 when healthy, 1 when the heartbeat is stale or a check fails, 2 when the agent cannot be reached.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running agent's health and heartbeat; exit 0 healthy, 1 stale or failing, 2 unreachable."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Option(help: ArgumentHelp("The agent's status server.", valueName: "host:port"))
    var address = "127.0.0.1:10248"

    @Option(name: .customLong("max-age"), help: ArgumentHelp("Oldest acceptable lease renewal.", valueName: "duration"))
    var maxAge = "40s"

    @Option(name: .shortAndLong, help: "Output format: text or json.")
    var output: Format = .text

    @Option(help: ArgumentHelp("How long to wait for the agent.", valueName: "duration"))
    var timeout = "5s"

    func validate() throws {
        guard BindAddress(parsing: address) != nil else { throw ValidationError("invalid value \"\(address)\" for address: expected host:port") }
        guard GoDuration.parse(maxAge).map({ $0 > .zero }) == true else {
            throw ValidationError("invalid value \"\(maxAge)\" for max-age: expected a positive duration such as 40s")
        }
        guard GoDuration.parse(timeout).map({ $0 > .zero }) == true else {
            throw ValidationError("invalid value \"\(timeout)\" for timeout: expected a positive duration such as 5s")
        }
    }

    func run() async throws {
        let verdict: StatusVerdict
        do {
            let data = try await fetch()
            verdict = StatusVerdict.judge(data, maxAge: GoDuration.parse(maxAge)!)
        } catch {
            verdict = StatusVerdict(exitCode: 2, summary: "agent unreachable at \(address): \(error)", reasons: [], document: nil)
        }
        switch output {
        case .text:
            print(verdict.text(), terminator: "")
        case .json:
            print(verdict.json())
        }
        throw ExitCode(verdict.exitCode)
    }

    private func fetch() async throws -> Data {
        let bind = BindAddress(parsing: address)!
        let url = "http://\(bind)/status"
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .nanoseconds(Int64(GoDuration.parse(timeout)!.nanoseconds)))
        let body = try await response.body.collect(upTo: 16 << 20)
        guard response.status == .ok else { throw StatusFetchError(status: Int(response.status.code)) }
        return Data(buffer: body)
    }
}

struct StatusFetchError: Error, CustomStringConvertible {
    var status: Int
    var description: String { "/status answered HTTP \(status)" }
}

extension Duration {
    var nanoseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}

/// The judgement of one `/status` document: pure, so it is tested without a running agent.
struct StatusVerdict {
    var exitCode: Int32
    var summary: String
    var reasons: [String]
    /// The `/status` document as parsed.
    var document: [String: Any]?

    /// Healthy (0) unless a check fails or the last lease renewal is missing or older than `maxAge` (1);
    /// a document that is not the agent's status JSON counts as unreachable (2).
    static func judge(_ data: Data, maxAge: Duration) -> StatusVerdict {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return StatusVerdict(exitCode: 2, summary: "the answer is not node-agent status JSON", reasons: [], document: nil)
        }
        var reasons: [String] = []
        for component in object["components"] as? [[String: Any]] ?? [] {
            for check in component["checks"] as? [[String: Any]] ?? [] where check["healthy"] as? Bool == false {
                reasons.append("check \(check["name"] as? String ?? "?") failing: \(check["reason"] as? String ?? "unhealthy")")
            }
        }
        if let heartbeatObject = object["heartbeat"],
            let heartbeatData = try? JSONSerialization.data(withJSONObject: heartbeatObject),
            let heartbeat = try? Self.decoder.decode(HeartbeatStatus.self, from: heartbeatData)
        {
            let limit = maxAge.nanoseconds / 1e9
            if let age = heartbeat.renewAgeSeconds {
                if age > limit {
                    reasons.append("lease \(heartbeat.lease) last renewed \(Self.seconds(age)) ago, over the \(Self.seconds(limit)) limit")
                }
            } else {
                reasons.append("lease \(heartbeat.lease) never renewed")
            }
        }
        let node = object["nodeName"] as? String ?? "?"
        let healthy = reasons.isEmpty
        return StatusVerdict(
            exitCode: healthy ? 0 : 1,
            summary: "node-agent \(object["version"] as? String ?? "?") on node \(node): \(healthy ? "healthy" : "UNHEALTHY")",
            reasons: reasons,
            document: object
        )
    }

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    private static func seconds(_ value: Double) -> String { String(format: "%.1fs", value) }

    func text() -> String {
        var lines = [summary]
        lines += reasons.map { "  - \($0)" }
        if let values = document?["heartbeat"] as? [String: Any] {
            let age = (values["renewAgeSeconds"] as? Double).map(Self.seconds) ?? "never"
            lines.append(
                "  lease \(values["lease"] as? String ?? "?"): renewed \(age) ago, "
                    + "\(values["consecutiveFailures"] as? Int ?? 0) consecutive failures, apiserver "
                    + ((values["apiserverReachable"] as? Bool) == true ? "reachable" : "unreachable")
            )
            if let error = values["lastError"] as? String { lines.append("  last error: \(error)") }
            let conditions = (values["conditions"] as? [[String: Any]] ?? []).map { "\($0["type"] as? String ?? "?")=\($0["status"] as? String ?? "?")" }
            if !conditions.isEmpty { lines.append("  conditions: " + conditions.joined(separator: " ")) }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func json() -> String {
        var object: [String: Any] = ["healthy": exitCode == 0, "exitCode": Int(exitCode), "summary": summary, "reasons": reasons]
        if let document { object["status"] = document }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
