/// Hard eviction thresholds, as kubelet's `--eviction-hard` spells them (`memory.available<100Mi,nodefs.available<10%`).
///
/// A node reports MemoryPressure, DiskPressure or PIDPressure while a reading is below its threshold.
/// The defaults are the kubelet's on Linux.
public struct EvictionThresholds: Sendable, Equatable {
    /// A threshold: an absolute quantity in bytes (or count) or a percentage of capacity.
    public enum Threshold: Sendable, Equatable {
        case absolute(UInt64)
        case percentage(Double)

        func isCrossed(available: UInt64, capacity: UInt64) -> Bool {
            switch self {
            case .absolute(let minimum): available < minimum
            case .percentage(let percent): capacity > 0 && Double(available) < Double(capacity) * percent / 100
            }
        }
    }

    public var memoryAvailable: Threshold? = .absolute(100 * 1024 * 1024)
    public var nodefsAvailable: Threshold? = .percentage(10)
    public var nodefsInodesFree: Threshold? = .percentage(5)
    public var imagefsAvailable: Threshold? = .percentage(15)
    public var pidAvailable: Threshold? = nil

    public init() {}

    /// A refused `--eviction-hard` entry.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var entry: String
        public var description: String {
            "invalid eviction threshold \"\(entry)\": expected signal<quantity or signal<percent%, where signal is one of "
                + "memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, pid.available"
        }
    }

    /// Parses a comma-separated list; signals not named keep no threshold (as the kubelet does once the flag is set).
    public init(parsing text: String) throws(ParseError) {
        memoryAvailable = nil
        nodefsAvailable = nil
        nodefsInodesFree = nil
        imagefsAvailable = nil
        pidAvailable = nil
        for entry in text.split(separator: ",").map({ String($0).trimmingSpaces }) where !entry.isEmpty {
            let parts = entry.split(separator: "<", maxSplits: 1).map { String($0).trimmingSpaces }
            guard parts.count == 2, let threshold = Self.threshold(parts[1]) else { throw ParseError(entry: entry) }
            switch parts[0] {
            case "memory.available": memoryAvailable = threshold
            case "nodefs.available": nodefsAvailable = threshold
            case "nodefs.inodesFree": nodefsInodesFree = threshold
            case "imagefs.available": imagefsAvailable = threshold
            case "pid.available": pidAvailable = threshold
            default: throw ParseError(entry: entry)
            }
        }
    }

    private static func threshold(_ text: String) -> Threshold? {
        if text.hasSuffix("%") {
            guard let percent = Double(text.dropLast()), (0...100).contains(percent) else { return nil }
            return .percentage(percent)
        }
        return ResourceQuantityText.bytes(text).map(Threshold.absolute)
    }

    /// The pressures the readings show.
    public func pressures(_ readings: ResourceReadings) -> (memory: Bool, disk: Bool, pid: Bool) {
        let memory = memoryAvailable?.isCrossed(available: readings.memoryAvailableBytes, capacity: readings.memoryCapacityBytes) ?? false
        let disk =
            (nodefsAvailable?.isCrossed(available: readings.filesystemAvailableBytes, capacity: readings.filesystemCapacityBytes) ?? false)
            || (nodefsInodesFree?.isCrossed(available: readings.inodesFree, capacity: readings.inodes) ?? false)
            || (imagefsAvailable?.isCrossed(available: readings.filesystemAvailableBytes, capacity: readings.filesystemCapacityBytes) ?? false)
        let pid = pidAvailable?.isCrossed(available: readings.pidMax - min(readings.processes, readings.pidMax), capacity: readings.pidMax) ?? false
        return (memory, disk, pid)
    }
}

/// Byte quantities in Kubernetes' spelling (`100Mi`, `1G`, `512`), for thresholds and reservations.
public enum ResourceQuantityText {
    /// Bytes for a binary (Ki, Mi, Gi, Ti) or decimal (k, M, G, T) suffixed quantity; nil when malformed.
    public static func bytes(_ text: String) -> UInt64? {
        let suffixes: [(String, UInt64)] = [
            ("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("Pi", 1 << 50),
            ("k", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000), ("P", 1_000_000_000_000_000),
        ]
        for (suffix, multiplier) in suffixes where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number >= 0 else { return nil }
            return UInt64(number * Double(multiplier))
        }
        guard let number = UInt64(text) else { return nil }
        return number
    }
}

extension String {
    var trimmingSpaces: String {
        var view = Substring(self)
        while view.first == " " { view.removeFirst() }
        while view.last == " " { view.removeLast() }
        return String(view)
    }
}
