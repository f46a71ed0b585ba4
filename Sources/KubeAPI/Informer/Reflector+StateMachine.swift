/// The list-then-watch decisions of a reflector, without I/O.
///
/// LIST, then WATCH from the list's resourceVersion; remember the last seen version (bookmarks included);
/// a watch that ends re-watches from it; 410 Gone / `Expired` relists; any failure waits an exponential
/// backoff with jitter first, and so does a watch that ended at once with nothing in it (never a hot loop).
public struct ReflectorStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        case list
        case watch(resourceVersion: String)
        /// Wait, then do `then` (a `.list` or `.watch`).
        indirect case wait(Duration, then: Action)
    }

    /// The last resourceVersion seen: from the list, any event, or a bookmark.
    public private(set) var resourceVersion: String?
    public private(set) var hasSynced = false
    private var backoff: Backoff
    /// A watch shorter than this that delivered nothing counts as a failure.
    private let minimumWatchDuration: Duration
    /// 410s in a row with no event between them: the second and later ones back off.
    private var consecutiveGone = 0

    public init(backoff: Backoff, minimumWatchDuration: Duration = .seconds(1)) {
        self.backoff = backoff
        self.minimumWatchDuration = minimumWatchDuration
    }

    public mutating func start() -> Action { .list }

    /// The LIST succeeded at `resourceVersion`: watch from there.
    public mutating func listSucceeded(resourceVersion version: String) -> Action {
        resourceVersion = version
        hasSynced = true
        backoff.reset()
        return .watch(resourceVersion: version)
    }

    /// The LIST failed: wait (at least `retryAfter`, when the server said so) and list again.
    public mutating func listFailed(retryAfter: Duration? = nil) -> Action {
        .wait(max(backoff.next(), retryAfter ?? .zero), then: .list)
    }

    /// An event or bookmark carried `version`.
    public mutating func observed(resourceVersion version: String) {
        if !version.isEmpty { resourceVersion = version }
        consecutiveGone = 0
    }

    /// The server closed the watch normally (timeout, restart, dropped connection without error).
    public mutating func watchEnded(after duration: Duration, eventCount: Int) -> Action {
        guard let version = resourceVersion else { return .list }
        if eventCount > 0 || duration >= minimumWatchDuration {
            backoff.reset()
            return .watch(resourceVersion: version)
        }
        return .wait(backoff.next(), then: .watch(resourceVersion: version))
    }

    /// The watch could not start or broke. `gone` (410 / Expired) means the version is too old: relist at once.
    public mutating func watchFailed(gone: Bool, retryAfter: Duration? = nil) -> Action {
        if gone {
            resourceVersion = nil
            consecutiveGone += 1
            return consecutiveGone == 1 ? .list : .wait(max(backoff.next(), retryAfter ?? .zero), then: .list)
        }
        guard let version = resourceVersion else { return .wait(max(backoff.next(), retryAfter ?? .zero), then: .list) }
        return .wait(max(backoff.next(), retryAfter ?? .zero), then: .watch(resourceVersion: version))
    }
}
