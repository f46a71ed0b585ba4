/// The verbs of the Kubernetes API, generic over typed resources.
///
/// ``KubeClient`` implements it over HTTP(S); code above KubeAPI (the kubelet, the proxy) takes this protocol so
/// its logic can be unit tested with an in-memory implementation. Every method throws ``KubeAPIError``.
public protocol KubeClientProtocol: Sendable {
    /// GET one object. Throws a 404 ``KubeAPIError`` (``KubeAPIError/isNotFound``) when it does not exist.
    func get<T: KubeResource>(_ type: T.Type, namespace: String?, name: String) async throws -> T

    /// LIST objects (one page when `options.limit` is set).
    func list<T: KubeResource>(_ type: T.Type, namespace: String?, options: ListOptions) async throws -> ResourceList<T>

    /// CREATE; the namespace comes from `object.metadata.namespace`. 409 ``KubeAPIError/isAlreadyExists`` when taken.
    func create<T: KubeResource>(_ object: T) async throws -> T

    /// PUT the whole object; `metadata.resourceVersion` must match the server's or a 409
    /// ``KubeAPIError/isConflict`` is thrown. Status changes are ignored for resources with a status subresource.
    func update<T: KubeResource>(_ object: T) async throws -> T

    /// PUT to the `status` subresource: only status changes.
    func updateStatus<T: KubeResource>(_ object: T) async throws -> T

    /// PATCH one object, or its `subresource` (`"status"`).
    func patch<T: KubeResource>(_ type: T.Type, namespace: String?, name: String, patch: Patch, subresource: String?) async throws -> T

    /// DELETE one object. Pods bound to a node are deleted gracefully unless `gracePeriodSeconds` is 0.
    func delete<T: KubeResource>(_ type: T.Type, namespace: String?, name: String, options: DeleteOptions) async throws

    /// WATCH changes. The stream ends when the server closes the watch; a malformed event is logged and skipped.
    /// Throws (before streaming) a 410 ``KubeAPIError/isGone`` when the resourceVersion is too old.
    func watch<T: KubeResource>(_ type: T.Type, namespace: String?, options: WatchOptions) async throws -> WatchStream<T>
}

extension KubeClientProtocol {
    public func list<T: KubeResource>(_ type: T.Type, namespace: String? = nil) async throws -> ResourceList<T> {
        try await list(type, namespace: namespace, options: ListOptions())
    }

    public func patch<T: KubeResource>(_ type: T.Type, namespace: String?, name: String, patch: Patch) async throws -> T {
        try await self.patch(type, namespace: namespace, name: name, patch: patch, subresource: nil)
    }

    /// PATCH the `status` subresource (the kubelet's way of writing pod and node status).
    public func patchStatus<T: KubeResource>(_ type: T.Type, namespace: String?, name: String, patch: Patch) async throws -> T {
        try await self.patch(type, namespace: namespace, name: name, patch: patch, subresource: "status")
    }

    public func delete<T: KubeResource>(_ type: T.Type, namespace: String?, name: String) async throws {
        try await delete(type, namespace: namespace, name: name, options: DeleteOptions())
    }

    /// Every item, following `continue` tokens page by page.
    public func listAll<T: KubeResource>(_ type: T.Type, namespace: String?, options: ListOptions) async throws -> ResourceList<T> {
        var options = options
        var result = try await list(type, namespace: namespace, options: options)
        while let token = result.metadata.continue, !token.isEmpty {
            options.continueToken = token
            let page = try await list(type, namespace: namespace, options: options)
            result.items.append(contentsOf: page.items)
            result.metadata.continue = page.metadata.continue
        }
        return result
    }
}
