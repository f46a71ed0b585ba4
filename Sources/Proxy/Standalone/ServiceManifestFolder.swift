public import Foundation
import Yams

/// The Services (and hand-written EndpointSlices) in the static manifest folder (`--pod-manifest-path`), read
/// as the kubelet reads its static pods: every regular file of the folder (not its subfolders) whose name does
/// not start with a dot, YAML or JSON (JSON is YAML), several documents per file allowed (`---`). Pods and other
/// kinds in the same folder are the kubelet's and are passed over; a file that cannot be read is reported with
/// the file and the reason, and the other files still count.
public struct ServiceManifestFolder: Sendable {
    /// What one scan found.
    public struct Scan: Sendable, Equatable {
        public var services: [NamespacedName: ServiceObject] = [:]
        public var endpointSlices: [NamespacedName: EndpointSliceObject] = [:]
        /// File name → what is wrong with it (or with its documents, separated by "; ").
        public var problems: [String: String] = [:]

        mutating func note(_ file: String, _ problem: String) {
            problems[file] = problems[file].map { "\($0); \(problem)" } ?? problem
        }
    }

    public var path: String

    public init(path: String) {
        self.path = path
    }

    /// Reads the folder now. A missing folder is an empty scan with a problem named after the folder.
    public func scan() -> Scan {
        var result = Scan()
        let url = URL(fileURLWithPath: path)
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            result.problems[path] = "cannot list the manifest folder: \(error.localizedDescription)"
            return result
        }
        for name in names where !name.hasPrefix(".") {
            let file = url.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            guard let data = FileManager.default.contents(atPath: file.path), let text = String(data: data, encoding: .utf8) else {
                result.problems[name] = "cannot read the file as UTF-8 text"
                continue
            }
            read(text, file: name, into: &result)
        }
        return result
    }

    /// Adds the Services and EndpointSlices of `text` (file `file`) to `scan`.
    func read(_ text: String, file: String, into scan: inout Scan) {
        struct Head: Decodable {
            var kind: String?
            var apiVersion: String?
        }
        let decoder = YAMLDecoder()
        var documents: [Node] = []
        do {
            // The sequence parses lazily and keeps a parse error aside instead of throwing it.
            var sequence = try Yams.compose_all(yaml: text)
            while let document = sequence.next() { documents.append(document) }
            if let error = sequence.error { throw error }
        } catch {
            scan.note(file, "not YAML or JSON: \(error)")
            return
        }
        for (index, document) in documents.enumerated() {
            let place = documents.count > 1 ? "document \(index + 1)" : "the document"
            guard case .mapping = document else {
                if case .scalar(let scalar) = document, ["", "null", "~"].contains(scalar.string) { continue }
                scan.note(file, "\(place) is not an object")
                continue
            }
            do {
                let head = try decoder.decode(Head.self, from: document)
                switch head.kind {
                case "Service":
                    var service = try decoder.decode(ServiceObject.self, from: document)
                    service.metadata.namespace = service.metadata.namespace ?? "default"
                    if scan.services[service.namespacedName] != nil {
                        scan.note(file, "Service \(service.namespacedName) is defined twice; the first definition wins")
                    } else {
                        scan.services[service.namespacedName] = service
                    }
                case "EndpointSlice":
                    var slice = try decoder.decode(EndpointSliceObject.self, from: document)
                    slice.metadata.namespace = slice.metadata.namespace ?? "default"
                    let key = NamespacedName(slice.metadata.namespace!, slice.metadata.name)
                    if scan.endpointSlices[key] != nil {
                        scan.note(file, "EndpointSlice \(key) is defined twice; the first definition wins")
                    } else {
                        scan.endpointSlices[key] = slice
                    }
                default:
                    continue  // Pods are the kubelet's; other kinds are not served in standalone mode.
                }
            } catch let error as DecodingError {
                scan.note(file, "\(place) (kind \(Self.kind(of: document))): \(Self.describe(error))")
            } catch {
                scan.note(file, "\(place): \(error)")
            }
        }
    }

    private static func kind(of document: Node) -> String {
        document["kind"]?.string ?? "?"
    }

    /// A decoding error as `field spec.ports[0].port: expected a number`.
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text.isEmpty ? "<document>" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \(path(context.codingPath + [key]))"
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "field \(path(context.codingPath)): expected \(type)"
        case .dataCorrupted(let context):
            return "field \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
