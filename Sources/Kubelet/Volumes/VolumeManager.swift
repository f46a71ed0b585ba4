import Foundation
import KubeAPI
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A volume ready to be bind-mounted into a pod's containers.
struct PreparedVolume: Sendable, Hashable {
    /// The folder (or file, for a hostPath file) on the node.
    var path: String
    /// API data volumes (configMap, secret, downwardAPI, projected) are always mounted read-only.
    var forceReadOnly: Bool
    /// hostPath volumes mount the node's own path; subPaths are never created inside them.
    var isHostPath: Bool
}

/// Sets up and tears down pod volumes under `<root>/pods/<uid>/volumes/<plugin>/<name>`, as the kubelet does:
/// emptyDir (a folder, or a tmpfs for `medium: Memory` with `sizeLimit`), hostPath with its type checks, configMap and
/// secret with `items` and `defaultMode` (rewritten in place when the object changes), downwardAPI and projected
/// (configMap, secret, downwardAPI sources).
///
/// Every failure is a ``KubeletError`` `.failedMount` naming the volume and the missing object or wrong path.
final class VolumeManager: Sendable {
    let podsDirectory: String
    private let objects: ObjectCache
    private let logger: Logger
    /// Memory-backed emptyDirs mounted, by pod UID.
    private let tmpfsMounts = Mutex<[String: Set<String>]>([:])

    init(podsDirectory: String, objects: ObjectCache, logger: Logger) {
        self.podsDirectory = podsDirectory
        self.objects = objects
        self.logger = logger
    }

    func podDirectory(_ uid: String) -> String { "\(podsDirectory)/\(uid)" }

    /// Makes every volume of the pod present and current.
    func setUp(_ pod: DesiredPod, downward: DownwardAPI) async throws(KubeletError) -> [String: PreparedVolume] {
        var result: [String: PreparedVolume] = [:]
        for (index, volume) in (pod.spec.volumes ?? []).enumerated() {
            result[volume.name] = try await setUp(volume, index: index, pod: pod, downward: downward)
        }
        return result
    }

    private func folder(_ pod: DesiredPod, plugin: String, _ name: String) -> String {
        "\(podDirectory(pod.uid))/volumes/kubernetes.io~\(plugin)/\(name)"
    }

    private func setUp(_ volume: Volume, index: Int, pod: DesiredPod, downward: DownwardAPI) async throws(KubeletError) -> PreparedVolume {
        let object = "volume \"\(volume.name)\" of pod \(pod.fullName)"
        let field = "spec.volumes[\(index)]"
        func fail(_ message: String, field suffix: String = "") -> KubeletError {
            KubeletError(.failedMount, object: object, field: field + suffix, message)
        }
        if let emptyDir = volume.emptyDir {
            let path = folder(pod, plugin: "empty-dir", volume.name)
            do {
                try makeDirectory(path, mode: 0o777)
            } catch {
                throw fail("cannot create \(path): \(error)")
            }
            if emptyDir.medium == "Memory" {
                try mountTmpfs(path, pod: pod, sizeLimit: emptyDir.sizeLimit, fail: { fail($0) })
            } else if let medium = emptyDir.medium, !medium.isEmpty {
                throw fail("unsupported medium \"\(medium)\"; use \"\" (node disk) or \"Memory\"", field: ".emptyDir.medium")
            }
            return PreparedVolume(path: path, forceReadOnly: false, isHostPath: false)
        }
        if let hostPath = volume.hostPath {
            try HostPathCheck.check(hostPath.path, type: hostPath.type ?? "", fail: { fail($0, field: ".hostPath") })
            return PreparedVolume(path: hostPath.path, forceReadOnly: false, isHostPath: true)
        }
        if let source = volume.configMap {
            let path = folder(pod, plugin: "configmap", volume.name)
            let name = source.name ?? ""
            var payload: [String: AtomicWriter.File] = [:]
            do throws(KubeletError) {
                switch try await objects.configMap(namespace: pod.namespace, name: name) {
                case .found(let map):
                    payload = try Self.project(map.bytesData, items: source.items, defaultMode: source.defaultMode, optional: source.optional ?? false) {
                        fail("configmap \(pod.namespace)/\(name) has no key \"\($0)\" named in items", field: ".configMap.items")
                    }
                case .notFound:
                    guard source.optional == true else { throw fail("configmap \"\(name)\" not found", field: ".configMap.name") }
                }
            } catch let error where error.kind == .createContainerConfigError {
                throw fail(error.message)
            }
            try write(payload, to: path, fail: { fail($0) })
            return PreparedVolume(path: path, forceReadOnly: true, isHostPath: false)
        }
        if let source = volume.secret {
            let path = folder(pod, plugin: "secret", volume.name)
            let name = source.secretName ?? ""
            var payload: [String: AtomicWriter.File] = [:]
            do throws(KubeletError) {
                switch try await objects.secret(namespace: pod.namespace, name: name) {
                case .found(let secret):
                    payload = try Self.project(secret.textData, items: source.items, defaultMode: source.defaultMode, optional: source.optional ?? false) {
                        fail("secret \(pod.namespace)/\(name) has no key \"\($0)\" named in items", field: ".secret.items")
                    }
                case .notFound:
                    guard source.optional == true else { throw fail("secret \"\(name)\" not found", field: ".secret.secretName") }
                }
            } catch let error where error.kind == .createContainerConfigError {
                throw fail(error.message)
            }
            try write(payload, to: path, fail: { fail($0) })
            return PreparedVolume(path: path, forceReadOnly: true, isHostPath: false)
        }
        if let source = volume.downwardAPI {
            let path = folder(pod, plugin: "downward-api", volume.name)
            let payload = try downwardPayload(source.items ?? [], defaultMode: source.defaultMode ?? 0o644, downward: downward, object: object, field: field + ".downwardAPI")
            try write(payload, to: path, fail: { fail($0) })
            return PreparedVolume(path: path, forceReadOnly: true, isHostPath: false)
        }
        if let source = volume.projected {
            let path = folder(pod, plugin: "projected", volume.name)
            let defaultMode = source.defaultMode ?? 0o644
            var payload: [String: AtomicWriter.File] = [:]
            for (sourceIndex, projection) in (source.sources ?? []).enumerated() {
                let sourceField = ".projected.sources[\(sourceIndex)]"
                do throws(KubeletError) {
                    if let keys = projection.configMap {
                        let name = keys.name ?? ""
                        switch try await objects.configMap(namespace: pod.namespace, name: name) {
                        case .found(let map):
                            payload.merge(
                                try Self.project(map.bytesData, items: keys.items, defaultMode: defaultMode, optional: keys.optional ?? false) {
                                    fail("configmap \(pod.namespace)/\(name) has no key \"\($0)\"", field: sourceField)
                                }) { _, new in new }
                        case .notFound:
                            guard keys.optional == true else { throw fail("configmap \"\(name)\" not found", field: sourceField + ".configMap") }
                        }
                    } else if let keys = projection.secret {
                        let name = keys.name ?? ""
                        switch try await objects.secret(namespace: pod.namespace, name: name) {
                        case .found(let secret):
                            payload.merge(
                                try Self.project(secret.textData, items: keys.items, defaultMode: defaultMode, optional: keys.optional ?? false) {
                                    fail("secret \(pod.namespace)/\(name) has no key \"\($0)\"", field: sourceField)
                                }) { _, new in new }
                        case .notFound:
                            guard keys.optional == true else { throw fail("secret \"\(name)\" not found", field: sourceField + ".secret") }
                        }
                    } else if let downwardSource = projection.downwardAPI {
                        payload.merge(
                            try downwardPayload(downwardSource.items ?? [], defaultMode: defaultMode, downward: downward, object: object, field: field + sourceField)
                        ) { _, new in new }
                    } else if projection.serviceAccountToken != nil {
                        throw fail(
                            "serviceAccountToken projections need the TokenRequest API, which node-agent does not implement; set automountServiceAccountToken: false",
                            field: sourceField + ".serviceAccountToken")
                    }
                } catch let error where error.kind == .createContainerConfigError {
                    throw fail(error.message, field: sourceField)
                }
            }
            try write(payload, to: path, fail: { fail($0) })
            return PreparedVolume(path: path, forceReadOnly: true, isHostPath: false)
        }
        if let claim = volume.persistentVolumeClaim {
            throw fail(
                "persistentVolumeClaim \"\(claim.claimName)\" needs a volume plugin, which node-agent does not have; use hostPath or emptyDir",
                field: ".persistentVolumeClaim")
        }
        throw fail("the volume source is not one node-agent supports (emptyDir, hostPath, configMap, secret, downwardAPI, projected)")
    }

    private func downwardPayload(
        _ items: [DownwardAPIVolumeFile], defaultMode: Int32, downward: DownwardAPI, object: String, field: String
    ) throws(KubeletError) -> [String: AtomicWriter.File] {
        var payload: [String: AtomicWriter.File] = [:]
        for (index, item) in items.enumerated() {
            let itemField = "\(field).items[\(index)]"
            guard Self.isSafeRelativePath(item.path) else {
                throw KubeletError(.failedMount, object: object, field: itemField + ".path", "must be a relative path without '..'")
            }
            let value: String
            do throws(KubeletError) {
                if let reference = item.fieldRef {
                    value = try downward.field(reference.fieldPath, object: object, field: itemField + ".fieldRef", volume: true)
                } else if let reference = item.resourceFieldRef {
                    value = try downward.resource(reference, defaultContainer: nil, object: object, field: itemField + ".resourceFieldRef")
                } else {
                    throw KubeletError(.failedMount, object: object, field: itemField, "needs fieldRef or resourceFieldRef")
                }
            } catch {
                throw KubeletError(.failedMount, object: object, field: error.field ?? itemField, error.message)
            }
            payload[item.path] = AtomicWriter.File(data: Data(value.utf8), mode: item.mode ?? defaultMode)
        }
        return payload
    }

    /// The files of a configMap/secret volume: every key, or only `items` (each must exist unless optional).
    static func project(
        _ data: [String: Data], items: [KeyToPath]?, defaultMode: Int32?, optional: Bool, missing: (String) -> KubeletError
    ) throws(KubeletError) -> [String: AtomicWriter.File] {
        let mode = defaultMode ?? 0o644
        var payload: [String: AtomicWriter.File] = [:]
        guard let items, !items.isEmpty else {
            for (key, value) in data { payload[key] = AtomicWriter.File(data: value, mode: mode) }
            return payload
        }
        for item in items {
            guard let value = data[item.key] else {
                if optional { continue }
                throw missing(item.key)
            }
            guard isSafeRelativePath(item.path) else { throw missing(item.key) }
            payload[item.path] = AtomicWriter.File(data: value, mode: item.mode ?? mode)
        }
        return payload
    }

    static func isSafeRelativePath(_ path: String) -> Bool {
        !path.isEmpty && !path.hasPrefix("/") && !path.split(separator: "/").contains("..")
    }

    private func write(_ payload: [String: AtomicWriter.File], to path: String, fail: (String) -> KubeletError) throws(KubeletError) {
        do {
            if try AtomicWriter(directory: path).write(payload) {
                logger.debug("volume contents written", metadata: ["path": "\(path)", "files": "\(payload.count)"])
            }
        } catch {
            throw fail("cannot write the volume's files under \(path): \(error)")
        }
    }

    private func makeDirectory(_ path: String, mode: mode_t) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue { return }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, mode)
    }

    private func mountTmpfs(_ path: String, pod: DesiredPod, sizeLimit: Quantity?, fail: (String) -> KubeletError) throws(KubeletError) {
        if tmpfsMounts.withLock({ $0[pod.uid]?.contains(path) ?? false }) || Self.isMountPoint(path) {
            tmpfsMounts.withLock { _ = $0[pod.uid, default: []].insert(path) }
            return
        }
        var options = "mode=0777"
        if let sizeLimit, sizeLimit.value > 0 { options += ",size=\(sizeLimit.value)" }
        guard mount("tmpfs", path, "tmpfs", 0, options) == 0 else {
            let code = errno
            throw fail("cannot mount a tmpfs (medium Memory) on \(path): \(String(cString: strerror(code))); the daemon must run as root")
        }
        tmpfsMounts.withLock { _ = $0[pod.uid, default: []].insert(path) }
    }

    /// True when `path` is listed in /proc/self/mounts.
    static func isMountPoint(_ path: String) -> Bool {
        mounts(under: path).contains(path)
    }

    /// Mount points at or under `prefix`, deepest first.
    static func mounts(under prefix: String) -> [String] {
        // Read to the end: /proc files report size 0, and String(contentsOfFile:) returns only their first page
        // (about 4 KB, some 50 mounts), which a node with many pods outgrows.
        guard let data = try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/mounts")).readToEnd() else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 1 else { return nil }
            let point = String(fields[1]).replacingOccurrences(of: "\\040", with: " ")
            return point == prefix || point.hasPrefix(prefix + "/") ? point : nil
        }.sorted { $0.count > $1.count }
    }

    /// Unmounts the pod's tmpfs volumes and removes its folder. A mount that will not go keeps the folder (and
    /// is logged), so nothing under it is deleted by accident.
    func tearDown(uid: String) {
        let directory = podDirectory(uid)
        for point in Self.mounts(under: directory) {
            if umount2(point, Int32(MNT_DETACH)) != 0 {
                logger.error("cannot unmount a pod volume; keeping the pod folder", metadata: ["path": "\(point)", "errno": "\(errno)"])
                return
            }
        }
        tmpfsMounts.withLock { _ = $0.removeValue(forKey: uid) }
        do {
            if FileManager.default.fileExists(atPath: directory) { try FileManager.default.removeItem(atPath: directory) }
        } catch {
            logger.warning("cannot remove a pod folder", metadata: ["path": "\(directory)", "error": "\(error)"])
        }
    }

    /// UIDs that have a folder under the pods directory.
    func podFolders() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: podsDirectory)) ?? []
    }
}

/// hostPath `type` checks, as the kubelet does them before mounting.
enum HostPathCheck {
    static func check(_ path: String, type: String, fail: (String) -> KubeletError) throws(KubeletError) {
        guard path.hasPrefix("/") else { throw fail("path \"\(path)\" must be absolute") }
        var info = stat()
        let exists = lstat(path, &info) == 0 || stat(path, &info) == 0
        if exists && (info.st_mode & S_IFMT) == S_IFLNK { _ = stat(path, &info) }
        let kind = info.st_mode & S_IFMT
        switch type {
        case "":
            return
        case "DirectoryOrCreate":
            if !exists {
                do {
                    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                } catch {
                    throw fail("cannot create directory \(path): \(error)")
                }
            } else if kind != S_IFDIR {
                throw fail("hostPath type check failed: \(path) is not a directory")
            }
        case "Directory":
            guard exists else { throw fail("hostPath type check failed: \(path) does not exist (type Directory)") }
            guard kind == S_IFDIR else { throw fail("hostPath type check failed: \(path) is not a directory") }
        case "FileOrCreate":
            if !exists {
                let descriptor = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
                guard descriptor >= 0 else { throw fail("cannot create file \(path): \(String(cString: strerror(errno)))") }
                close(descriptor)
            } else if kind != S_IFREG {
                throw fail("hostPath type check failed: \(path) is not a file")
            }
        case "File":
            guard exists else { throw fail("hostPath type check failed: \(path) does not exist (type File)") }
            guard kind == S_IFREG else { throw fail("hostPath type check failed: \(path) is not a file") }
        case "Socket":
            guard exists, kind == S_IFSOCK else { throw fail("hostPath type check failed: \(path) is not a socket file") }
        case "CharDevice":
            guard exists, kind == S_IFCHR else { throw fail("hostPath type check failed: \(path) is not a character device") }
        case "BlockDevice":
            guard exists, kind == S_IFBLK else { throw fail("hostPath type check failed: \(path) is not a block device") }
        default:
            throw fail(
                "unknown hostPath type \"\(type)\"; use \"\", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice or BlockDevice")
        }
    }
}
