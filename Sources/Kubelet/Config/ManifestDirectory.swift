import Foundation
import KubeAPI
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A manifest file that could not become a pod, as `/pods` lists it.
public struct ManifestError: Sendable, Hashable, Codable {
    public var path: String
    public var field: String?
    public var message: String
}

/// The static pods of `--pod-manifest-path`: every regular file not starting with a dot, YAML or JSON, one Pod (or
/// a List of Pods) each. A file that fails is reported and skipped; the others still run.
enum ManifestDirectory {
    struct Scan: Sendable, Hashable {
        var pods: [DesiredPod]
        var errors: [ManifestError]
    }

    /// Reads the folder. A missing folder gives no pods and one error.
    static func scan(_ directory: String, nodeName: String, now: Date, previous: [String: DesiredPod] = [:]) -> Scan {
        var pods: [DesiredPod] = []
        var errors: [ManifestError] = []
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            return Scan(pods: [], errors: [ManifestError(path: directory, field: nil, message: "the pod manifest path does not exist; create it or fix --pod-manifest-path")])
        }
        var files: [String] = []
        if isDirectory.boolValue {
            files = ((try? manager.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted().map { "\(directory)/\($0)" }
        } else {
            files = [directory]
        }
        var seenNames: [String: String] = [:]
        for file in files {
            var fileIsDirectory: ObjCBool = false
            guard manager.fileExists(atPath: file, isDirectory: &fileIsDirectory), !fileIsDirectory.boolValue else { continue }
            guard let data = manager.contents(atPath: file) else {
                errors.append(ManifestError(path: file, field: nil, message: "cannot read the file"))
                continue
            }
            do {
                for decoded in try PodManifest.decode(data, path: file) {
                    // Keep the first-seen time of an unchanged pod so its annotation does not change on every scan.
                    var pod = PodManifest.staticPod(decoded, path: file, nodeName: nodeName, seen: now)
                    if let uid = pod.metadata.uid, let earlier = previous[uid] { pod = earlier.pod }
                    let fullName = "\(pod.metadata.namespace ?? "default")/\(pod.metadata.name ?? "")"
                    if let other = seenNames[fullName] {
                        errors.append(ManifestError(path: file, field: "metadata.name", message: "pod \(fullName) is already defined by \(other); this one is ignored"))
                        continue
                    }
                    seenNames[fullName] = file
                    pods.append(DesiredPod(pod: pod, source: .file, manifestPath: file))
                }
            } catch {
                errors.append(ManifestError(path: file, field: error.field, message: error.message))
            }
        }
        return Scan(pods: pods, errors: errors)
    }
}

/// Wakes a signal when files in a folder change, through inotify on a thread of its own (polling its descriptor
/// once a second so it can stop). Falls back to nothing (the periodic rescan) when inotify is unavailable.
final class ManifestWatcher: Sendable {
    private let stopped = Locked(false)
    let directory: String

    init(directory: String) { self.directory = directory }

    /// Starts watching; `changed` is called on every batch of events.
    func start(_ changed: @escaping @Sendable () -> Void, logger: Logger) {
        let directory = self.directory
        let thread = Thread { [stopped] in
            let descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            guard descriptor >= 0 else {
                logger.warning("inotify unavailable; the manifest folder is only rescanned periodically", metadata: ["errno": "\(errno)"])
                return
            }
            defer { close(descriptor) }
            var watch: Int32 = -1
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !stopped.withLock({ $0 }) {
                if watch < 0 {
                    let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
                    watch = inotify_add_watch(descriptor, directory, mask)
                    if watch >= 0 { changed() }
                }
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                let ready = poll(&poller, 1, 1000)
                guard ready > 0 else { continue }
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                guard count > 0 else { continue }
                // IN_IGNORED (the folder went away): watch again once it is back.
                var offset = 0
                while offset + MemoryLayout<inotify_event>.size <= count {
                    let event = buffer.withUnsafeBytes { $0.load(fromByteOffset: offset, as: inotify_event.self) }
                    if event.mask & UInt32(IN_IGNORED) != 0 { watch = -1 }
                    offset += MemoryLayout<inotify_event>.size + Int(event.len)
                }
                changed()
            }
        }
        thread.start()
    }

    func stop() { stopped.withLock { $0 = true } }
}
