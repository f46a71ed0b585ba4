import Foundation
import Testing

@testable import Kubelet

@Suite("Node readings, eviction thresholds and the renewal schedule")
struct NodeReadingsTests {
    private func preparedRoot() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("na-kubelet-\(UUID().uuidString.prefix(8))")
        func write(_ path: String, _ text: String) throws {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        try write("etc/machine-id", "0123456789abcdef0123456789abcdef\n")
        try write("proc/sys/kernel/random/boot_id", "5e1f3c1a-0000-4000-8000-000000000001\n")
        try write("sys/class/dmi/id/product_uuid", "EC2A-UUID\n")
        try write("proc/sys/kernel/osrelease", "6.1.0-28-amd64\n")
        try write("etc/os-release", "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
        try write("proc/meminfo", "MemTotal:       16384000 kB\nMemFree:         1000000 kB\nMemAvailable:    8192000 kB\n")
        try write("proc/loadavg", "0.10 0.20 0.30 3/412 9999\n")
        try write("proc/sys/kernel/pid_max", "4194304\n")
        return root
    }

    @Test("machine identity and capacity come from the host's files")
    func machineInfo() throws {
        let root = try preparedRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let info = MachineInfo.read(root: root.path, stateDirectory: "/")
        #expect(info.machineID == "0123456789abcdef0123456789abcdef")
        #expect(info.bootID == "5e1f3c1a-0000-4000-8000-000000000001")
        #expect(info.systemUUID == "ec2a-uuid")
        #expect(info.kernelVersion == "6.1.0-28-amd64")
        #expect(info.osImage == "Debian GNU/Linux 12 (bookworm)")
        #expect(info.memoryBytes == 16_384_000 * 1024)
        #expect(info.cpuCount >= 1)
        #expect(info.filesystemBytes > 0)
        #expect(MachineInfo.goArchitecture("x86_64") == "amd64")
        #expect(MachineInfo.goArchitecture("aarch64") == "arm64")
    }

    @Test("readings: MemAvailable, statvfs, the process count and pid_max")
    func readings() throws {
        let root = try preparedRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let readings = try #require(ResourceReadings.read(root: root.path, stateDirectory: "/"))
        #expect(readings.memoryAvailableBytes == 8_192_000 * 1024)
        #expect(readings.processes == 412)
        #expect(readings.pidMax == 4_194_304)
        #expect(readings.filesystemCapacityBytes >= readings.filesystemAvailableBytes)
    }

    @Test("the kubelet's default hard thresholds and a parsed --eviction-hard")
    func thresholds() throws {
        let defaults = EvictionThresholds()
        var readings = ResourceReadings(
            memoryAvailableBytes: 500 << 20, memoryCapacityBytes: 8 << 30, filesystemAvailableBytes: 50 << 30,
            filesystemCapacityBytes: 100 << 30, inodesFree: 900_000, inodes: 1_000_000, processes: 400, pidMax: 32768
        )
        #expect(defaults.pressures(readings) == (memory: false, disk: false, pid: false))
        readings.memoryAvailableBytes = 99 << 20
        readings.filesystemAvailableBytes = 9 << 30
        #expect(defaults.pressures(readings) == (memory: true, disk: true, pid: false))
        readings.filesystemAvailableBytes = 50 << 30
        readings.inodesFree = 40_000
        #expect(defaults.pressures(readings).disk)

        let parsed = try EvictionThresholds(parsing: "memory.available<1Gi, pid.available<10%")
        #expect(parsed.memoryAvailable == .absolute(1 << 30))
        #expect(parsed.nodefsAvailable == nil)
        readings.processes = 30000
        #expect(parsed.pressures(readings) == (memory: true, disk: false, pid: true))
        #expect(throws: EvictionThresholds.ParseError(entry: "memory.free<1Gi")) { try EvictionThresholds(parsing: "memory.free<1Gi") }
        #expect(throws: EvictionThresholds.ParseError.self) { try EvictionThresholds(parsing: "nodefs.available<120%") }
    }

    @Test("renewal ticks stay on the 10 s grid whatever a round costs")
    func schedule() {
        let start = ContinuousClock.Instant.now
        let schedule = RenewalSchedule(start: start, interval: .seconds(10))
        #expect(schedule.nextTick(after: start) == start.advanced(by: .seconds(10)))
        #expect(schedule.nextTick(after: start.advanced(by: .milliseconds(9_999))) == start.advanced(by: .seconds(10)))
        // A renewal that took 13 s (apiserver slow) does not push later ticks: the next is at 20 s, not 23 s.
        #expect(schedule.nextTick(after: start.advanced(by: .seconds(13))) == start.advanced(by: .seconds(20)))
        #expect(schedule.nextTick(after: start.advanced(by: .seconds(45))) == start.advanced(by: .seconds(50)))
    }
}
