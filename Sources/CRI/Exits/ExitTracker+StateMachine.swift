public import struct Foundation.Date

/// Decides what to do with each sign of a container's end so that every exit is delivered exactly once, whether
/// the events stream, a relist, or a stop call saw it first. Pure: no I/O, tested without containerd.
public struct ExitTracker: Sendable {
    /// What the runtime must do next.
    public enum Action: Sendable, Hashable {
        /// Nothing: already delivered, being handled, or not ours.
        case none
        /// Delete the stopped task to learn its exit code (ctr reports it only then), then call ``reaped(_:exitCode:at:source:)``.
        case reap(containerID: String)
        /// Record the exit (labels), delete the task, and deliver the event.
        case deliver(ContainerExit)
    }

    private var watched: Set<String> = []
    private var reaping: Set<String> = []
    private var delivered: Set<String> = []

    public init() {}

    /// Starts watching a container (created or adopted); only watched containers produce events.
    public mutating func watch(_ id: String, alreadyExited: Bool = false) {
        watched.insert(id)
        if alreadyExited { delivered.insert(id) }
    }

    /// Forgets a removed container.
    public mutating func forget(_ id: String) {
        watched.remove(id)
        reaping.remove(id)
        delivered.remove(id)
    }

    public func isDelivered(_ id: String) -> Bool { delivered.contains(id) }

    /// The events stream reported an exit with its code and time.
    public mutating func exitEvent(_ id: String, sandboxID: String?, exitCode: Int32, at date: Date) -> Action {
        guard watched.contains(id), !delivered.contains(id) else { return .none }
        delivered.insert(id)
        reaping.remove(id)
        return .deliver(ContainerExit(containerID: id, sandboxID: sandboxID, exitCode: exitCode, finishedAt: date, source: .events))
    }

    /// A relist (or a status call) saw the container's task stopped, or gone while we thought it ran.
    public mutating func observedStopped(_ id: String) -> Action {
        guard watched.contains(id), !delivered.contains(id), !reaping.contains(id) else { return .none }
        reaping.insert(id)
        return .reap(containerID: id)
    }

    /// The reap learned the exit code (nil: the task was already gone, someone else delivered it or will).
    public mutating func reaped(_ id: String, sandboxID: String?, exitCode: Int32?, at date: Date, source: ContainerExit.Source) -> Action {
        reaping.remove(id)
        guard let exitCode, watched.contains(id), !delivered.contains(id) else { return .none }
        delivered.insert(id)
        return .deliver(ContainerExit(containerID: id, sandboxID: sandboxID, exitCode: exitCode, finishedAt: date, source: source))
    }
}
