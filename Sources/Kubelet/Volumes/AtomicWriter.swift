import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a set of files into a volume folder so that a container sees either the old set or the new one, never
/// a mix: the kubelet's `AtomicWriter`. Files live in a timestamped folder `..<time>`; `..data` is a symlink to it;
/// each visible top-level name is a symlink into `..data`. An update writes a new timestamped folder and swaps
/// `..data` with one `rename(2)`, which is how configMap and secret volumes change in place in a running pod.
struct AtomicWriter {
    struct File: Sendable, Hashable {
        var data: Data
        var mode: Int32
    }

    let directory: String

    /// Makes the folder hold exactly `payload` (relative path to file). Does nothing when it already does.
    /// - Returns: true when the contents changed.
    /// - Throws: a Foundation error when the folder cannot be written.
    @discardableResult
    func write(_ payload: [String: File]) throws -> Bool {
        let manager = FileManager.default
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let dataLink = directory + "/..data"
        if let current = try? manager.destinationOfSymbolicLink(atPath: dataLink), matches(payload, in: directory + "/" + current) {
            return false
        }
        let stamp = "..\(Self.timestamp())"
        let target = directory + "/" + stamp
        try manager.createDirectory(atPath: target, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        for (path, file) in payload {
            let full = target + "/" + path
            try manager.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            guard manager.createFile(atPath: full, contents: file.data) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: full])
            }
            chmod(full, mode_t(file.mode & 0o7777))
        }
        let old = try? manager.destinationOfSymbolicLink(atPath: dataLink)
        let temporary = directory + "/..data_tmp"
        unlink(temporary)
        try manager.createSymbolicLink(atPath: temporary, withDestinationPath: stamp)
        guard rename(temporary, dataLink) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: dataLink])
        }
        let visible = Set(payload.keys.map { String($0.split(separator: "/").first ?? "") })
        for name in visible {
            let link = directory + "/" + name
            if (try? manager.destinationOfSymbolicLink(atPath: link)) == nil {
                unlink(link)
                try manager.createSymbolicLink(atPath: link, withDestinationPath: "..data/" + name)
            }
        }
        for entry in (try? manager.contentsOfDirectory(atPath: directory)) ?? [] where !entry.hasPrefix("..") && !visible.contains(entry) {
            unlink(directory + "/" + entry)
        }
        if let old, old != stamp { try? manager.removeItem(atPath: directory + "/" + old) }
        return true
    }

    private func matches(_ payload: [String: File], in folder: String) -> Bool {
        let manager = FileManager.default
        var count = 0
        for (path, file) in payload {
            guard let data = manager.contents(atPath: folder + "/" + path), data == file.data else { return false }
            var info = stat()
            guard stat(folder + "/" + path, &info) == 0, Int32(info.st_mode & 0o7777) == file.mode & 0o7777 else { return false }
            count += 1
        }
        let existing = (manager.enumerator(atPath: folder)?.allObjects as? [String] ?? []).filter { entry in
            var isDirectory: ObjCBool = false
            return manager.fileExists(atPath: folder + "/" + entry, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        return existing.count == count
    }

    private static func timestamp() -> String {
        let now = Date()
        var seconds = time_t(now.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let nanos = Int((now.timeIntervalSince1970 - Double(seconds)) * 1e9)
        return String(
            format: "%04d_%02d_%02d_%02d_%02d_%02d.%09d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour),
            Int(parts.tm_min), Int(parts.tm_sec), nanos)
    }
}
