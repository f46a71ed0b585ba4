/// Options of a LIST.
public struct ListOptions: Sendable, Hashable {
    /// `app=web,tier!=db,env in (a,b),!legacy`.
    public var labelSelector: String?
    /// `spec.nodeName=node-1,metadata.namespace!=kube-system`.
    public var fieldSelector: String?
    /// Page size; the answer's `metadata.continue` fetches the next page.
    public var limit: Int?
    public var continueToken: String?
    /// `""` (most recent, from storage) or `"0"` (any, from cache).
    public var resourceVersion: String?

    public init(labelSelector: String? = nil, fieldSelector: String? = nil, limit: Int? = nil, continueToken: String? = nil, resourceVersion: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.limit = limit
        self.continueToken = continueToken
        self.resourceVersion = resourceVersion
    }

    var queryItems: [(String, String)] {
        var items: [(String, String)] = []
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        if let limit { items.append(("limit", String(limit))) }
        if let continueToken, !continueToken.isEmpty { items.append(("continue", continueToken)) }
        if let resourceVersion { items.append(("resourceVersion", resourceVersion)) }
        return items
    }
}

/// Options of a WATCH.
public struct WatchOptions: Sendable, Hashable {
    public var labelSelector: String?
    public var fieldSelector: String?
    /// Start after this version; nil or `"0"` start with synthetic ADDED events for what exists.
    public var resourceVersion: String?
    /// Ask for BOOKMARK events so the resourceVersion stays fresh without changes.
    public var allowWatchBookmarks: Bool = true
    /// The server ends the watch after this many seconds.
    public var timeoutSeconds: Int?

    public init(labelSelector: String? = nil, fieldSelector: String? = nil, resourceVersion: String? = nil, allowWatchBookmarks: Bool = true, timeoutSeconds: Int? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.resourceVersion = resourceVersion
        self.allowWatchBookmarks = allowWatchBookmarks
        self.timeoutSeconds = timeoutSeconds
    }

    var queryItems: [(String, String)] {
        var items: [(String, String)] = [("watch", "true")]
        if let labelSelector, !labelSelector.isEmpty { items.append(("labelSelector", labelSelector)) }
        if let fieldSelector, !fieldSelector.isEmpty { items.append(("fieldSelector", fieldSelector)) }
        if let resourceVersion { items.append(("resourceVersion", resourceVersion)) }
        if allowWatchBookmarks { items.append(("allowWatchBookmarks", "true")) }
        if let timeoutSeconds { items.append(("timeoutSeconds", String(timeoutSeconds))) }
        return items
    }
}

/// A PATCH body and its content type.
public enum Patch: Sendable, Hashable {
    /// RFC 7386 JSON merge patch (`application/merge-patch+json`): objects merge, lists replace, null deletes.
    case merge(JSONValue)
    /// Kubernetes strategic merge patch (`application/strategic-merge-patch+json`): lists with a merge key
    /// (containers by name, conditions by type) merge element-wise.
    case strategicMerge(JSONValue)
    /// RFC 6902 JSON patch operations (`application/json-patch+json`).
    case json([JSONValue])

    public var contentType: String {
        switch self {
        case .merge: "application/merge-patch+json"
        case .strategicMerge: "application/strategic-merge-patch+json"
        case .json: "application/json-patch+json"
        }
    }

    var body: [UInt8] {
        switch self {
        case .merge(let value), .strategicMerge(let value): value.serialized()
        case .json(let operations): JSONValue.array(operations).serialized()
        }
    }
}
