public import Foundation

/// The signals the kubelet's eviction manager watches: memory, the node filesystem, and process IDs.
public struct ResourceReadings: Sendable, Equatable {
    public var memoryAvailableBytes: UInt64
    public var memoryCapacityBytes: UInt64
    public var filesystemAvailableBytes: UInt64
    public var filesystemCapacityBytes: UInt64
    public var inodesFree: UInt64
    public var inodes: UInt64
    public var processes: UInt64
    public var pidMax: UInt64

    public init(
        memoryAvailableBytes: UInt64, memoryCapacityBytes: UInt64, filesystemAvailableBytes: UInt64, filesystemCapacityBytes: UInt64,
        inodesFree: UInt64, inodes: UInt64, processes: UInt64, pidMax: UInt64
    ) {
        self.memoryAvailableBytes = memoryAvailableBytes
        self.memoryCapacityBytes = memoryCapacityBytes
        self.filesystemAvailableBytes = filesystemAvailableBytes
        self.filesystemCapacityBytes = filesystemCapacityBytes
        self.inodesFree = inodesFree
        self.inodes = inodes
        self.processes = processes
        self.pidMax = pidMax
    }

    /// Reads the host now: MemAvailable from /proc/meminfo, statfs of `stateDirectory`, the process count from
    /// /proc/loadavg and kernel.pid_max. Returns nil when /proc cannot be read.
    public static func read(root: String = "/", stateDirectory: String) -> ResourceReadings? {
        let host = HostFiles(root: root)
        guard let meminfo = host.text("/proc/meminfo").map(Self.meminfo), let total = meminfo["MemTotal"] else { return nil }
        let available = meminfo["MemAvailable"] ?? (meminfo["MemFree"] ?? 0) + (meminfo["Cached"] ?? 0)
        let filesystem = filesystem(host.path(stateDirectory)) ?? filesystem(host.path("/"))
        // /proc/loadavg: "0.00 0.01 0.05 2/345 6789": the fourth field is running/total scheduling entities.
        let processes = host.text("/proc/loadavg")?.split(separator: " ").dropFirst(3).first?.split(separator: "/").last.flatMap { UInt64($0) } ?? 0
        let pidMax = host.firstLine("/proc/sys/kernel/pid_max").flatMap { UInt64($0) } ?? 32768
        return ResourceReadings(
            memoryAvailableBytes: available, memoryCapacityBytes: total,
            filesystemAvailableBytes: filesystem?.availableBytes ?? 0, filesystemCapacityBytes: filesystem?.capacityBytes ?? 0,
            inodesFree: filesystem?.inodesFree ?? 0, inodes: filesystem?.inodes ?? 0,
            processes: processes, pidMax: pidMax
        )
    }

    /// /proc/meminfo as bytes per key.
    static func meminfo(_ text: String) -> [String: UInt64] {
        var values: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
            guard parts.count >= 2, let number = UInt64(parts[1]) else { continue }
            values[String(parts[0])] = parts.count >= 3 && parts[2] == "kB" ? number * 1024 : number
        }
        return values
    }

    struct Filesystem {
        var capacityBytes: UInt64
        var availableBytes: UInt64
        var inodes: UInt64
        var inodesFree: UInt64
    }

    /// statvfs of the filesystem holding `path` (its nearest existing ancestor).
    static func filesystem(_ path: String) -> Filesystem? {
        var candidate = URL(fileURLWithPath: path)
        while !FileManager.default.fileExists(atPath: candidate.path) && candidate.path != "/" {
            candidate.deleteLastPathComponent()
        }
        var stats = statvfs()
        guard statvfs(candidate.path, &stats) == 0 else { return nil }
        let block = UInt64(stats.f_frsize > 0 ? stats.f_frsize : stats.f_bsize)
        return Filesystem(
            capacityBytes: UInt64(stats.f_blocks) * block, availableBytes: UInt64(stats.f_bavail) * block,
            inodes: UInt64(stats.f_files), inodesFree: UInt64(stats.f_ffree)
        )
    }
}
