import Foundation
import Synchronization

/// The bearer token for a request: fixed, or read from a file and re-read whenever the file changes
/// (projected service-account tokens are rotated in place).
final class TokenSource: Sendable {
    private enum Source {
        case none
        case fixed(String)
        case file(String)
        case basic(String)
    }

    private struct Cached {
        var modified: Date?
        var size: Int?
        var token: String?
    }

    private let source: Source
    private let cache = Mutex(Cached())

    init(_ credentials: ClientConfiguration.Credentials) {
        switch credentials {
        case .none: source = .none
        case .token(let token): source = .fixed(token)
        case .tokenFile(let path): source = .file(path)
        case .basic(let username, let password):
            source = .basic(Data("\(username):\(password)".utf8).base64EncodedString())
        }
    }

    /// The `Authorization` header value, or nil when there are no credentials.
    ///
    /// - Throws: ``KubeAPIError`` when the token file cannot be read.
    func authorization() throws -> String? {
        switch source {
        case .none: return nil
        case .fixed(let token): return "Bearer \(token)"
        case .basic(let encoded): return "Basic \(encoded)"
        case .file(let path):
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let modified = attributes?[.modificationDate] as? Date
            let size = (attributes?[.size] as? NSNumber)?.intValue
            if let token = cache.withLock({ cached -> String? in
                cached.token != nil && cached.modified == modified && cached.size == size ? cached.token : nil
            }) {
                return "Bearer \(token)"
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KubeAPIError.kubeconfig(file: path, entry: nil, field: "tokenFile", problem: "cannot read the token file")
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            cache.withLock { $0 = Cached(modified: modified, size: size, token: token) }
            return "Bearer \(token)"
        }
    }
}
