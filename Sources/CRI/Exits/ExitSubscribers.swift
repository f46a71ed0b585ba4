import Foundation
import Synchronization

/// The subscribers of a runtime's exit events. Subscribing is immediate (no exit after the call is missed) and a
/// subscriber whose stream ends is dropped.
public final class ExitSubscribers: Sendable {
    private let continuations = Mutex<[UUID: AsyncStream<ContainerExit>.Continuation]>([:])

    public init() {}

    /// A new stream receiving every exit delivered from now on.
    public func subscribe() -> AsyncStream<ContainerExit> {
        let (stream, continuation) = AsyncStream.makeStream(of: ContainerExit.self)
        let key = UUID()
        continuations.withLock { $0[key] = continuation }
        continuation.onTermination = { [weak self] _ in _ = self?.continuations.withLock { $0.removeValue(forKey: key) } }
        return stream
    }

    /// Delivers `exit` to every subscriber.
    public func yield(_ exit: ContainerExit) {
        for continuation in continuations.withLock({ Array($0.values) }) { continuation.yield(exit) }
    }
}
