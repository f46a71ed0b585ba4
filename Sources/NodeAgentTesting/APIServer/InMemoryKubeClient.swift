import Foundation
public import KubeAPI
public import Logging

/// A ``KubeClientProtocol`` that talks to an ``APIServerDouble``'s store directly, without HTTP.
///
/// Same semantics, errors and watch events as the double over HTTP (it runs the same code), for unit tests of
/// logic above KubeAPI (the kubelet's status manager, the proxy's change tracking) that want no sockets.
/// Tests of KubeAPI itself use ``KubeClient`` over real HTTP instead.
public struct InMemoryKubeClient: KubeClientProtocol {
    let double: APIServerDouble
    let logger: Logger
    /// The namespace used when a namespaced call passes none.
    public var defaultNamespace = "default"

    public init(double: APIServerDouble, logger: Logger = Logger(label: "in-memory-kube-client")) {
        self.double = double
        self.logger = logger
    }

    private func served<T: KubeResource>(_ type: T.Type) throws -> ServedResource {
        let resourceType = T.resourceType
        guard let resource = Catalog.resource(group: resourceType.group, version: resourceType.version, plural: resourceType.plural) else {
            throw KubeAPIError.api(
                verb: "GET", path: resourceType.path(namespace: nil),
                status: Status(message: "\(resourceType) is not served by the double", reason: "NotFound", code: 404))
        }
        return resource
    }

    private func namespace<T: KubeResource>(_ type: T.Type, _ namespace: String?) -> String? {
        guard T.resourceType.namespaced else { return nil }
        if let namespace, !namespace.isEmpty { return namespace }
        return defaultNamespace
    }

    private func call<R>(_ verb: String, _ path: String, _ body: () throws(APIFailure) -> R) throws -> R {
        do {
            return try body()
        } catch {
            throw KubeAPIError.api(verb: verb, path: path, status: error.status)
        }
    }

    public func get<T: KubeResource>(_ type: T.Type, namespace: String?, name: String) async throws -> T {
        let resource = try served(T.self)
        let ns = self.namespace(T.self, namespace)
        let value = try call("GET", T.resourceType.path(namespace: ns, name: name)) { () throws(APIFailure) in
            try double.store.get(resource, namespace: ns, name: name)
        }
        return try ResourceCodec.decode(T.self, from: Data(value.serialized()))
    }

    public func list<T: KubeResource>(_ type: T.Type, namespace: String?, options: ListOptions) async throws -> ResourceList<T> {
        let resource = try served(T.self)
        let ns = T.resourceType.namespaced ? namespace : nil
        let value = try call("LIST", T.resourceType.path(namespace: ns)) { () throws(APIFailure) in
            try double.store.list(
                resource, namespace: ns, labelSelector: options.labelSelector, fieldSelector: options.fieldSelector, limit: options.limit,
                continueToken: options.continueToken)
        }
        return try ResourceCodec.decodeList(T.self, from: Data(value.serialized()))
    }

    public func create<T: KubeResource>(_ object: T) async throws -> T {
        let resource = try served(T.self)
        let ns = self.namespace(T.self, object.metadata.namespace)
        let body = try ResourceCodec.encodeValue(object)
        let value = try call("CREATE", T.resourceType.path(namespace: ns)) { () throws(APIFailure) in
            try double.store.create(resource, namespace: ns, body: body)
        }
        return try ResourceCodec.decode(T.self, from: Data(value.serialized()))
    }

    public func update<T: KubeResource>(_ object: T) async throws -> T {
        try await put(object, target: .main)
    }

    public func updateStatus<T: KubeResource>(_ object: T) async throws -> T {
        try await put(object, target: .status)
    }

    private func put<T: KubeResource>(_ object: T, target: Store.WriteTarget) async throws -> T {
        let resource = try served(T.self)
        let ns = self.namespace(T.self, object.metadata.namespace)
        let body = try ResourceCodec.encodeValue(object)
        let name = object.metadata.name ?? ""
        let value = try call("UPDATE", T.resourceType.path(namespace: ns, name: name)) { () throws(APIFailure) in
            try double.store.update(resource, namespace: ns, name: name, body: body, target: target)
        }
        return try ResourceCodec.decode(T.self, from: Data(value.serialized()))
    }

    public func patch<T: KubeResource>(_ type: T.Type, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> T {
        let resource = try served(T.self)
        let ns = self.namespace(T.self, namespace)
        let body: [UInt8]
        switch patch {
        case .merge(let value), .strategicMerge(let value): body = value.serialized()
        case .json(let operations): body = JSONValue.array(operations).serialized()
        }
        let value = try call("PATCH", T.resourceType.path(namespace: ns, name: name, subresource: subresource)) { () throws(APIFailure) in
            try double.store.patch(resource, namespace: ns, name: name, contentType: patch.contentType, body: body, target: subresource == "status" ? .status : .main)
        }
        return try ResourceCodec.decode(T.self, from: Data(value.serialized()))
    }

    public func delete<T: KubeResource>(_ type: T.Type, namespace: String?, name: String, options: DeleteOptions) async throws {
        let resource = try served(T.self)
        let ns = self.namespace(T.self, namespace)
        let optionsValue = try JSONValue(encoding: options)
        _ = try call("DELETE", T.resourceType.path(namespace: ns, name: name)) { () throws(APIFailure) in
            try double.store.delete(resource, namespace: ns, name: name, options: optionsValue)
        }
    }

    public func watch<T: KubeResource>(_ type: T.Type, namespace: String?, options: WatchOptions) async throws -> WatchStream<T> {
        let resource = try served(T.self)
        let ns = T.resourceType.namespaced ? namespace : nil
        let store = double.store
        let (id, initial, frames) = try call("WATCH", T.resourceType.path(namespace: ns)) { () throws(APIFailure) in
            try store.watch(
                resource, namespace: ns, labelSelector: options.labelSelector, fieldSelector: options.fieldSelector,
                resourceVersion: options.resourceVersion, bookmarks: options.allowWatchBookmarks)
        }
        var decoder = WatchEventDecoder<T>(logger: logger)
        let (stream, continuation) = AsyncThrowingStream<WatchEvent<T>, any Error>.makeStream()
        let pump = Task {
            for frame in initial {
                for event in decoder.feed(frame.readableBytesView) { continuation.yield(event) }
            }
            for await frame in frames {
                for event in decoder.feed(frame.readableBytesView) { continuation.yield(event) }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            pump.cancel()
            store.endWatch(id)
        }
        return WatchStream(stream)
    }
}

extension APIServerDouble {
    /// A client bound to this double's store without HTTP (see ``InMemoryKubeClient``).
    public func inMemoryClient(logger: Logger = Logger(label: "in-memory-kube-client")) -> InMemoryKubeClient {
        InMemoryKubeClient(double: self, logger: logger)
    }
}
