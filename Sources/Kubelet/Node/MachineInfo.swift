public import Foundation

/// What the Node reports about the machine: identity, software, and capacity, read from /proc, /sys, /etc and
/// statfs. Every path is read under ``root`` so tests point it at a prepared folder.
public struct MachineInfo: Sendable, Equatable {
    public var machineID: String
    public var bootID: String
    public var systemUUID: String
    public var kernelVersion: String
    public var osImage: String
    /// GOARCH spelling: amd64, arm64, ...
    public var architecture: String
    public var operatingSystem: String
    public var cpuCount: Int
    public var memoryBytes: UInt64
    /// Capacity of the filesystem holding the agent's root folder.
    public var filesystemBytes: UInt64

    public init(
        machineID: String, bootID: String, systemUUID: String, kernelVersion: String, osImage: String,
        architecture: String, operatingSystem: String = "linux", cpuCount: Int, memoryBytes: UInt64, filesystemBytes: UInt64
    ) {
        self.machineID = machineID
        self.bootID = bootID
        self.systemUUID = systemUUID
        self.kernelVersion = kernelVersion
        self.osImage = osImage
        self.architecture = architecture
        self.operatingSystem = operatingSystem
        self.cpuCount = cpuCount
        self.memoryBytes = memoryBytes
        self.filesystemBytes = filesystemBytes
    }

    /// Reads the machine. Unreadable identity files give empty strings (the kubelet reports them empty too).
    /// - Parameters:
    ///   - root: the folder standing for `/`.
    ///   - stateDirectory: the agent's root folder, whose filesystem is `ephemeral-storage`.
    public static func read(root: String = "/", stateDirectory: String) -> MachineInfo {
        let host = HostFiles(root: root)
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return MachineInfo(
            machineID: host.firstLine("/etc/machine-id") ?? host.firstLine("/var/lib/dbus/machine-id") ?? "",
            bootID: host.firstLine("/proc/sys/kernel/random/boot_id") ?? "",
            systemUUID: host.firstLine("/sys/class/dmi/id/product_uuid")?.lowercased() ?? "",
            kernelVersion: host.firstLine("/proc/sys/kernel/osrelease") ?? release,
            osImage: osImage(host.text("/etc/os-release") ?? host.text("/usr/lib/os-release") ?? ""),
            architecture: goArchitecture(machine),
            cpuCount: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            memoryBytes: ResourceReadings.meminfo(host.text("/proc/meminfo") ?? "")["MemTotal"] ?? 0,
            filesystemBytes: ResourceReadings.filesystem(host.path(stateDirectory))?.capacityBytes ?? 0
        )
    }

    /// `PRETTY_NAME` of os-release, as the kubelet reports `osImage`.
    static func osImage(_ osRelease: String) -> String {
        for line in osRelease.split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            return line.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        return "Linux"
    }

    /// uname's machine name in Go's spelling.
    static func goArchitecture(_ machine: String) -> String {
        switch machine {
        case "x86_64": "amd64"
        case "aarch64", "arm64": "arm64"
        case "armv7l", "armv6l": "arm"
        case "i386", "i686": "386"
        case "ppc64le": "ppc64le"
        case "s390x": "s390x"
        case "riscv64": "riscv64"
        default: machine
        }
    }
}

/// Files of the host, read under a root folder.
struct HostFiles: Sendable {
    var root: String

    func path(_ path: String) -> String {
        root == "/" ? path : (root.hasSuffix("/") ? String(root.dropLast()) : root) + path
    }

    func text(_ file: String) -> String? { try? String(contentsOfFile: path(file), encoding: .utf8) }

    func firstLine(_ file: String) -> String? {
        text(file)?.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}
