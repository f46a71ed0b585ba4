import CRI
import Foundation
import Synchronization

/// Makes a container's image present per its `imagePullPolicy` (the kubelet's image manager): `Never` requires it
/// present, `IfNotPresent` pulls when absent, `Always` pulls (falling back to a present copy when the registry
/// fails, as the runtime does). An image's presence is remembered for a few seconds so a burst of pods asks the
/// runtime once.
final class ImageManager: Sendable {
    /// What ensuring did, for the Pulling/Pulled events.
    enum Outcome: Sendable {
        case alreadyPresent(ImageStatus)
        case pulled(ImageStatus, seconds: Double)
    }

    private let runtime: any ContainerRuntime
    private let clock: any KubeletClock
    private let presenceTTL: TimeInterval
    private let present = Mutex<[String: (status: ImageStatus, seen: Date)]>([:])
    private let inFlight = Mutex<[String: Task<ImageStatus?, any Error>]>([:])

    init(runtime: any ContainerRuntime, clock: any KubeletClock, presenceTTL: TimeInterval = 5) {
        self.runtime = runtime
        self.clock = clock
        self.presenceTTL = presenceTTL
    }

    /// The pull policy of a container: its own, else Kubernetes' default for the reference.
    static func policy(_ text: String?, image: String) throws -> ImagePullPolicy {
        if let text, !text.isEmpty {
            guard let policy = ImagePullPolicy(rawValue: text) else {
                throw KubeletError(.invalidPod, object: "image \"\(image)\"", field: "imagePullPolicy", "must be Always, IfNotPresent or Never, not \"\(text)\"")
            }
            return policy
        }
        return ImagePullPolicy.default(for: try ImageReference(parsing: image))
    }

    /// - Parameter willPull: called before a pull starts (the `Pulling` event).
    /// - Throws: ``ContainerRuntimeError`` (`.invalidImageName`, `.imagePullFailed`, `.runtimeUnavailable`) or
    ///   ``KubeletError`` `.imageNeverPull`.
    func ensure(_ image: String, policy: ImagePullPolicy, willPull: @Sendable () -> Void) async throws -> Outcome {
        let reference = try ImageReference(parsing: image).description
        let now = clock.now()
        var status = present.withLock { cache -> ImageStatus? in
            guard let entry = cache[reference], now.timeIntervalSince(entry.seen) < presenceTTL else { return nil }
            return entry.status
        }
        if status == nil || policy == .always {
            status = try await lookUp(image, reference: reference)
        }
        switch policy {
        case .never:
            guard let status else {
                throw KubeletError(
                    .imageNeverPull, object: "image \"\(image)\"", field: "imagePullPolicy",
                    "Container image \"\(image)\" is not present with pull policy of Never; import it into containerd (namespace k8s.io) or change imagePullPolicy")
            }
            remember(reference, status, now)
            return .alreadyPresent(status)
        case .ifNotPresent:
            if let status {
                remember(reference, status, now)
                return .alreadyPresent(status)
            }
        case .always:
            break
        }
        willPull()
        let started = clock.now()
        do {
            let pulled = try await runtime.pullImage(image)
            remember(reference, pulled, clock.now())
            return .pulled(pulled, seconds: clock.now().timeIntervalSince(started))
        } catch let error as ContainerRuntimeError where error.kind == .imagePullFailed && policy == .always && status != nil {
            return .alreadyPresent(status!)
        }
    }

    /// One runtime lookup per reference at a time: a burst of pods on the same image waits for the same answer
    /// instead of starting one runtime command each.
    private func lookUp(_ image: String, reference: String) async throws -> ImageStatus? {
        let runtime = self.runtime
        let (task, owner) = inFlight.withLock { flights -> (Task<ImageStatus?, any Error>, Bool) in
            if let task = flights[reference] { return (task, false) }
            let task = Task { try await runtime.imageStatus(image) }
            flights[reference] = task
            return (task, true)
        }
        defer { if owner { inFlight.withLock { _ = $0.removeValue(forKey: reference) } } }
        return try await task.value
    }

    private func remember(_ reference: String, _ status: ImageStatus, _ now: Date) {
        present.withLock { $0[reference] = (status, now) }
    }

    /// Forgets an image (a create found it gone).
    func forget(_ image: String) {
        guard let reference = try? ImageReference(parsing: image).description else { return }
        present.withLock { _ = $0.removeValue(forKey: reference) }
    }
}
