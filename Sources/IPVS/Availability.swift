import Foundation

/// Whether this kernel can do IPVS, and if not, why (one line a user can act on).
public enum IPVSAvailability: Sendable, Equatable, CustomStringConvertible {
    case available
    case unavailable(reason: String)

    public var isAvailable: Bool { self == .available }

    public var description: String {
        switch self {
        case .available: "IPVS is available"
        case .unavailable(let reason): "IPVS is unavailable: \(reason)"
        }
    }
}

/// Checks and loads kernel modules; ``system`` uses `/sys/module` and the machine's `modprobe`.
public struct ModuleLoader: Sendable {
    /// True when module `name` is loaded (or built in and visible in `/sys/module`).
    public var isLoaded: @Sendable (_ name: String) -> Bool
    /// Loads module `name`, returning nil on success or the failure in one line; nil itself when there is no modprobe.
    public var load: (@Sendable (_ name: String) -> String?)?

    public init(isLoaded: @escaping @Sendable (String) -> Bool, load: (@Sendable (String) -> String?)?) {
        self.isLoaded = isLoaded
        self.load = load
    }

    /// The machine's own: `/sys/module/<name>` and the first `modprobe` found in the usual places.
    public static var system: ModuleLoader {
        let modprobe = ["/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe", "/bin/modprobe"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        return ModuleLoader(
            isLoaded: { FileManager.default.fileExists(atPath: "/sys/module/\($0)") },
            load: modprobe.map { path in
                { @Sendable name in ModuleLoader.run(path, [name]) }
            })
    }

    /// Runs `path arguments`; nil on exit 0, else the first line of its error output.
    static func run(_ path: String, _ arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { return "cannot run \(path): \(error)" }
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationStatus == 0 { return nil }
        let text = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init)
        return text ?? "exit status \(process.terminationStatus)"
    }
}

extension IPVSKernel {
    /// Tells whether IPVS can be used here, loading `ip_vs` and the schedulers' modules when a modprobe exists.
    ///
    /// Tries the `IPVS` generic netlink family first; when it is missing, runs `modprobe ip_vs` and tries again;
    /// then makes sure each scheduler's module (`ip_vs_<name>`) is loaded or loadable. Never throws: the reason is
    /// one line, e.g. "the kernel has no IPVS generic netlink family and `modprobe ip_vs` failed: modprobe: FATAL:
    /// Module ip_vs not found in directory /lib/modules/6.1.0".
    public static func isAvailable(
        schedulers: [String] = [Scheduler.rr.rawValue], namespacePath: String? = nil, modules: ModuleLoader = .system
    ) -> IPVSAvailability {
        func probe() -> IPVSError? {
            do {
                _ = try IPVSKernel(namespacePath: namespacePath, receiveTimeout: .seconds(5))
                return nil
            } catch { return error }
        }
        if let failure = probe() {
            guard failure.kind == .unavailable else { return .unavailable(reason: failure.description) }
            guard let load = modules.load else {
                return .unavailable(reason: "the kernel has no IPVS generic netlink family and there is no modprobe to load ip_vs")
            }
            if let loadFailure = load("ip_vs") {
                return .unavailable(reason: "the kernel has no IPVS generic netlink family and `modprobe ip_vs` failed: \(loadFailure)")
            }
            if let again = probe() {
                return .unavailable(reason: "`modprobe ip_vs` succeeded but IPVS still cannot be used: \(again.description)")
            }
        }
        for scheduler in schedulers where !modules.isLoaded("ip_vs_\(scheduler)") {
            // Without modprobe the kernel's own request_module is the only way; let the first service tell.
            guard let load = modules.load else { continue }
            if let loadFailure = load("ip_vs_\(scheduler)") {
                return .unavailable(reason: "scheduler \(scheduler) is missing: `modprobe ip_vs_\(scheduler)` failed: \(loadFailure)")
            }
        }
        return .available
    }
}
