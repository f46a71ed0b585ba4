import Foundation
import Logging
import Proxy
import ServiceLifecycle

/// Feeds a proxier from a folder of Kubernetes JSON objects (`Service`, `EndpointSlice`, `Node`), polled like an
/// informer: the first scan is the initial list (then `*Synced`), later scans deliver adds, updates and deletes.
/// A restarted harness re-lists the folder, as a restarted daemon re-lists the API.
struct ManifestSource: Service {
    var directory: URL
    var pollInterval: Duration
    var proxier: any Proxier
    var nodeName: String
    var logger: Logger

    private enum Object: Equatable {
        case service(ServiceObject)
        case slice(EndpointSliceObject)
        case node(NodeObject)
    }

    func run() async throws {
        var known: [String: Object] = [:]
        var first = true
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let current = scan()
            for (key, object) in current.sorted(by: { $0.key < $1.key }) where known[key] != object {
                deliver(previous: known[key], current: object)
            }
            for (key, object) in known where current[key] == nil {
                deliver(previous: object, current: nil)
            }
            known = current
            if first {
                first = false
                proxier.servicesSynced()
                proxier.endpointSlicesSynced()
            }
            try? await Task.sleep(for: pollInterval)
        }
    }

    private func deliver(previous: Object?, current: Object?) {
        switch (previous, current) {
        case (.service(let old)?, .service(let new)?): proxier.serviceChanged(previous: old, current: new)
        case (nil, .service(let new)?): proxier.serviceChanged(previous: nil, current: new)
        case (.service(let old)?, nil): proxier.serviceChanged(previous: old, current: nil)
        case (.slice(let old)?, .slice(let new)?): proxier.endpointSliceChanged(previous: old, current: new)
        case (nil, .slice(let new)?): proxier.endpointSliceChanged(previous: nil, current: new)
        case (.slice(let old)?, nil): proxier.endpointSliceChanged(previous: old, current: nil)
        case (_, .node(let node)?): proxier.nodeChanged(node)
        case (.node?, nil): proxier.nodeChanged(nil)
        default: break
        }
    }

    /// Every object in the folder by `kind/namespace/name`; unreadable files are logged and skipped.
    private func scan() -> [String: Object] {
        var result: [String: Object] = [:]
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
        let decoder = JSONDecoder()
        for file in files where file.pathExtension == "json" {
            guard let data = try? Data(contentsOf: file) else { continue }
            struct Kind: Decodable { var kind: String? }
            do {
                let kind = try decoder.decode(Kind.self, from: data).kind ?? ""
                switch kind {
                case "Service":
                    let service = try decoder.decode(ServiceObject.self, from: data)
                    result["Service/\(service.namespacedName)"] = .service(service)
                case "EndpointSlice":
                    let slice = try decoder.decode(EndpointSliceObject.self, from: data)
                    result["EndpointSlice/\(slice.metadata.namespace ?? "default")/\(slice.metadata.name)"] = .slice(slice)
                case "Node":
                    let node = try decoder.decode(NodeObject.self, from: data)
                    if node.metadata.name == nodeName { result["Node/\(node.metadata.name)"] = .node(node) }
                default:
                    logger.warning("ignoring object of unknown kind", metadata: ["file": "\(file.lastPathComponent)", "kind": "\(kind)"])
                }
            } catch {
                logger.warning("cannot decode object", metadata: ["file": "\(file.lastPathComponent)", "error": "\(error)"])
            }
        }
        return result
    }
}
