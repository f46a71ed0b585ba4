import Foundation
import Hummingbird
import KubeAPI
import NIOCore

/// Maps HTTP requests onto the double's store: discovery, the resource verbs, watches.
struct DoubleResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let box: DoubleBox

    func respond(to request: Request, context: Context) async throws -> Response {
        guard let double = box.double.withLock({ $0 }) else {
            return Self.json(503, Status(message: "starting", reason: "ServiceUnavailable", code: 503))
        }
        if let token = double.configuration.bearerToken {
            let header = request.headers[.authorization] ?? ""
            if header != "Bearer \(token)" {
                return Self.json(401, Status(message: "Unauthorized", reason: "Unauthorized", code: 401))
            }
        }
        let path = request.uri.path
        let query = Self.parseQuery(request.uri.query ?? "")
        let segments = path.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }

        // Discovery and health.
        switch path {
        case "/api", "/api/":
            return Self.json(200, Catalog.apiVersions(serverAddress: "\(double.url.host ?? "127.0.0.1"):\(double.url.port ?? 0)"))
        case "/apis", "/apis/":
            return Self.json(200, Catalog.apiGroupList())
        case "/version", "/version/":
            return Self.json(200, Catalog.version)
        case "/openapi/v3", "/openapi/v3/":
            return Self.json(200, OpenAPIV3.root())
        case "/healthz", "/livez", "/readyz":
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok")))
        default:
            break
        }
        if segments.count >= 4, segments[0] == "openapi", segments[1] == "v3" {
            if let document = OpenAPIV3.document(segments.dropFirst(2).joined(separator: "/")) { return Self.json(200, document) }
            return Self.notFound(path)
        }
        if segments.count == 2, segments[0] == "api" {
            if let list = Catalog.resourceList(group: "", version: segments[1]) { return Self.json(200, list) }
            return Self.notFound(path)
        }
        if segments.count == 2, segments[0] == "apis" {
            if let group = Catalog.apiGroup(segments[1]) { return Self.json(200, group) }
            return Self.notFound(path)
        }
        if segments.count == 3, segments[0] == "apis" {
            if let list = Catalog.resourceList(group: segments[1], version: segments[2]) { return Self.json(200, list) }
            return Self.notFound(path)
        }

        // Resources: /api/v1/... or /apis/<group>/<version>/...
        let group: String
        let version: String
        var rest: ArraySlice<String>
        if segments.first == "api", segments.count >= 3 {
            group = ""
            version = segments[1]
            rest = segments[2...]
        } else if segments.first == "apis", segments.count >= 4 {
            group = segments[1]
            version = segments[2]
            rest = segments[3...]
        } else {
            return Self.notFound(path)
        }
        var namespace: String?
        var resource: ServedResource?
        if rest.first == "namespaces", rest.count >= 3, let namespaced = Catalog.resource(group: group, version: version, plural: rest[rest.startIndex + 2]),
            namespaced.type.namespaced
        {
            namespace = rest[rest.startIndex + 1]
            resource = namespaced
            rest = rest.dropFirst(3)
        } else if let first = rest.first, let served = Catalog.resource(group: group, version: version, plural: first) {
            resource = served
            rest = rest.dropFirst()
        }
        guard let resource else { return Self.notFound(path) }
        let name = rest.first
        let subresource = rest.dropFirst().first
        if rest.count > 2 || (subresource != nil && subresource != "status") { return Self.notFound(path) }
        if subresource == "status", !resource.type.hasStatusSubresource { return Self.notFound(path) }
        let isWatch = query["watch"] == "true" || query["watch"] == "1"
        let verb: String
        switch (request.method, name) {
        case (.get, nil): verb = isWatch ? "WATCH" : "LIST"
        case (.get, _): verb = "GET"
        case (.post, nil): verb = "CREATE"
        case (.put, _?): verb = "UPDATE"
        case (.patch, _?): verb = "PATCH"
        case (.delete, _?): verb = "DELETE"
        default:
            return Self.json(405, Status(message: "the server does not allow this method on the requested resource", reason: "MethodNotAllowed", code: 405))
        }
        double.count(verb, resource.id)
        if let failure = await double.admit(verb: verb, isWatch: isWatch, isResource: true) {
            var response = Self.json(failure.status.code ?? 500, failure.status)
            if let retryAfter = failure.status.details?.retryAfterSeconds { response.headers[.retryAfter] = String(retryAfter) }
            return response
        }
        let store = double.store
        var request = request
        do {
            switch verb {
            case "LIST":
                let limit = query["limit"].flatMap { Int($0) }
                let list = try store.list(
                    resource, namespace: namespace, labelSelector: query["labelSelector"], fieldSelector: query["fieldSelector"], limit: limit,
                    continueToken: query["continue"])
                if TablePrinter.wantsTable(request.headers[.accept]) {
                    return Self.json(
                        200,
                        TablePrinter.table(
                            plural: resource.type.plural, objects: list["items"]?.arrayValue ?? [],
                            resourceVersion: list[path: ["metadata", "resourceVersion"]]?.stringValue))
                }
                return Self.json(200, list)
            case "WATCH":
                return try watch(
                    double: double, resource: resource, namespace: namespace, query: query, table: TablePrinter.wantsTable(request.headers[.accept]))
            case "GET":
                let object = try store.get(resource, namespace: namespace, name: name!)
                if TablePrinter.wantsTable(request.headers[.accept]) {
                    return Self.json(
                        200,
                        TablePrinter.table(
                            plural: resource.type.plural, objects: [object], resourceVersion: object[path: ["metadata", "resourceVersion"]]?.stringValue))
                }
                return Self.json(200, object)
            case "CREATE":
                let body = try await Self.body(&request)
                return Self.json(201, try store.create(resource, namespace: namespace, body: body))
            case "UPDATE":
                let body = try await Self.body(&request)
                return Self.json(
                    200, try store.update(resource, namespace: namespace, name: name!, body: body, target: subresource == "status" ? .status : .main))
            case "PATCH":
                let buffer = try await request.collectBody(upTo: 64 << 20)
                let contentType = request.headers[.contentType] ?? ""
                return Self.json(
                    200,
                    try store.patch(
                        resource, namespace: namespace, name: name!, contentType: contentType, body: Array(buffer.readableBytesView),
                        target: subresource == "status" ? .status : .main))
            default:  // DELETE
                let buffer = try await request.collectBody(upTo: 1 << 20)
                var options: JSONValue = [:]
                if buffer.readableBytes > 0 {
                    do {
                        options = try JSONValue.parse(buffer.readableBytesView, what: "DeleteOptions")
                    } catch {
                        throw APIFailure.badRequest("\(error)")
                    }
                }
                if let grace = query["gracePeriodSeconds"].flatMap({ Int64($0) }) { options["gracePeriodSeconds"] = .integer(grace) }
                return Self.json(200, try store.delete(resource, namespace: namespace, name: name!, options: options))
            }
        } catch let failure as APIFailure {
            return Self.json(failure.status.code ?? 500, failure.status)
        }
    }

    private func watch(double: APIServerDouble, resource: ServedResource, namespace: String?, query: [String: String], table: Bool) throws -> Response {
        if double.isStopping { throw APIFailure(503, "ServiceUnavailable", "the server is shutting down") }
        let bookmarks = query["allowWatchBookmarks"] == "true"
        let store = double.store
        let result = Result { () throws(APIFailure) -> (id: Int, initial: [ByteBuffer], stream: AsyncStream<ByteBuffer>) in
            try store.watch(
                resource, namespace: namespace, labelSelector: query["labelSelector"], fieldSelector: query["fieldSelector"],
                resourceVersion: query["resourceVersion"], bookmarks: bookmarks)
        }
        let registration: (id: Int, initial: [ByteBuffer], stream: AsyncStream<ByteBuffer>)
        switch result {
        case .success(let value):
            registration = value
        case .failure(let failure):
            guard failure.status.code == 410, !double.expiredAsHTTPStatus else { throw failure }
            // The real server answers 200 and sends the 410 as an ERROR event.
            let frame = Store.eventFrame(type: "ERROR", object: try JSONValue(encoding: failure.status))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: frame))
        }
        let timeout = query["timeoutSeconds"].flatMap { Int($0) }
        let interval = double.configuration.bookmarkInterval
        let (id, initial, stream) = registration
        let body = ResponseBody { writer in
            await withTaskGroup(of: Void.self) { group in
                if let timeout {
                    group.addTask {
                        try? await Task.sleep(for: .seconds(timeout))
                        store.endWatch(id)
                    }
                }
                if bookmarks {
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: interval)
                            store.sendBookmark(id)
                        }
                    }
                }
                // kubectl's table output asks for each event's object as a one-row Table.
                let plural = resource.type.plural
                let convert: (ByteBuffer) -> ByteBuffer = table ? { TablePrinter.tableFrame($0, plural: plural) } : { $0 }
                do {
                    for frame in initial { try await writer.write(convert(frame)) }
                    for await frame in stream { try await writer.write(convert(frame)) }
                } catch {
                    // The client went away.
                }
                store.endWatch(id)
                group.cancelAll()
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json", .transferEncoding: "chunked"], body: body)
    }

    static func body(_ request: inout Request) async throws -> JSONValue {
        let buffer = try await request.collectBody(upTo: 64 << 20)
        do {
            return try JSONValue.parse(buffer.readableBytesView, what: "request body")
        } catch {
            throw APIFailure.badRequest("\(error)")
        }
    }

    static func json(_ code: Int, _ value: JSONValue) -> Response {
        Response(
            status: .init(code: code), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }

    static func json(_ code: Int, _ status: Status) -> Response {
        json(code, (try? JSONValue(encoding: status)) ?? ["kind": "Status", "code": .integer(Int64(code))])
    }

    static func notFound(_ path: String) -> Response {
        json(404, Status(message: "the server could not find the requested resource (\(path))", reason: "NotFound", code: 404))
    }

    static func parseQuery(_ query: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            result[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return result
    }
}
