public import Foundation
public import KubeAPI

/// Computes the Node's status fields from the machine, the readings and the configuration (pure).
public struct NodeStatusBuilder: Sendable {
    public var configuration: NodeConfiguration
    public var machine: MachineInfo
    public var addresses: [NodeAddress]

    public init(configuration: NodeConfiguration, machine: MachineInfo, addresses: [NodeAddress]) {
        self.configuration = configuration
        self.machine = machine
        self.addresses = addresses
    }

    /// cpu, memory, pods and ephemeral-storage as the kubelet reports capacity.
    public var capacity: [String: Quantity] {
        [
            "cpu": Quantity(Int64(machine.cpuCount)),
            "memory": Self.kibibytes(machine.memoryBytes),
            "pods": Quantity(Int64(configuration.maxPods)),
            "ephemeral-storage": Self.kibibytes(machine.filesystemBytes),
        ]
    }

    /// Capacity minus `--system-reserved`, `--kube-reserved` and the hard eviction thresholds (memory and
    /// ephemeral-storage), never below zero: the kubelet's allocatable.
    public var allocatable: [String: Quantity] {
        let reserved = configuration.reserved
        let cpuMillis = max(0, Int64(machine.cpuCount) * 1000 - Int64(truncating: ((reserved["cpu"] ?? 0) * 1000) as NSNumber))
        var memory = Decimal(machine.memoryBytes) - (reserved["memory"] ?? 0)
        if case .absolute(let bytes) = configuration.evictionThresholds.memoryAvailable { memory -= Decimal(bytes) }
        var storage = Decimal(machine.filesystemBytes) - (reserved["ephemeral-storage"] ?? 0)
        switch configuration.evictionThresholds.nodefsAvailable {
        case .absolute(let bytes): storage -= Decimal(bytes)
        case .percentage(let percent): storage -= Decimal(machine.filesystemBytes) * Decimal(percent) / 100
        case nil: break
        }
        return [
            "cpu": Quantity(milli: cpuMillis),
            "memory": Self.kibibytes(UInt64(truncating: max(0, memory) as NSNumber)),
            "pods": Quantity(Int64(configuration.maxPods)),
            "ephemeral-storage": Quantity(Int64(truncating: max(0, storage) as NSNumber)),
        ]
    }

    /// The status to post, with `conditions` as computed by the ``NodeConditionTracker``.
    public func status(conditions: [NodeCondition], runtimeVersion: String) -> NodeStatus {
        var status = NodeStatus()
        status.capacity = capacity
        status.allocatable = allocatable
        status.conditions = conditions
        status.addresses = addresses
        status.daemonEndpoints = NodeDaemonEndpoints(kubeletEndpoint: DaemonEndpoint(port: configuration.kubeletPort))
        var info = NodeSystemInfo()
        info.machineID = machine.machineID
        info.systemUUID = machine.systemUUID
        info.bootID = machine.bootID
        info.kernelVersion = machine.kernelVersion
        info.osImage = machine.osImage
        info.containerRuntimeVersion = runtimeVersion
        info.kubeletVersion = configuration.kubeletVersion
        info.kubeProxyVersion = configuration.kubeletVersion
        info.operatingSystem = machine.operatingSystem
        info.architecture = machine.architecture
        status.nodeInfo = info
        return status
    }

    /// The labels every node carries, plus `--node-labels`.
    public var labels: [String: String] {
        var labels = [
            "kubernetes.io/hostname": configuration.nodeName,
            "kubernetes.io/os": machine.operatingSystem,
            "kubernetes.io/arch": machine.architecture,
            "beta.kubernetes.io/os": machine.operatingSystem,
            "beta.kubernetes.io/arch": machine.architecture,
        ]
        labels.merge(configuration.labels) { _, given in given }
        return labels
    }

    private static func kibibytes(_ bytes: UInt64) -> Quantity {
        // The kubelet reports memory and storage capacity in Ki.
        (try? Quantity("\(bytes / 1024)Ki")) ?? Quantity(Int64(bytes))
    }
}

/// The node's addresses: `--node-ip`, else the address of the interface holding the default route; plus Hostname.
public enum NodeAddresses {
    public static func resolve(nodeIPs: [String], hostname: String, root: String = "/") -> [NodeAddress] {
        let ips = nodeIPs.isEmpty ? detect(root: root) : nodeIPs
        return ips.map { NodeAddress(type: "InternalIP", address: $0) } + [NodeAddress(type: "Hostname", address: hostname)]
    }

    /// The node's IP when `--node-ip` is not given, as the kubelet picks it: the IPv4 address of the interface
    /// holding the default route, else the first non-loopback IPv4 address; empty when there is none.
    /// The Node's InternalIP and the pods' hostIP both come from here.
    public static func detect(root: String = "/") -> [String] {
        if let address = defaultRouteAddress(root: root) { return [address] }
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var inAddress = pointer.pointee.sin_addr
                _ = inet_ntop(AF_INET, &inAddress, &buffer, socklen_t(buffer.count))
            }
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !text.isEmpty, !text.hasPrefix("127.") { return [text] }
        }
        return []
    }

    /// The IPv4 address of the interface named by the default route in /proc/net/route.
    public static func defaultRouteAddress(root: String = "/") -> String? {
        guard let table = HostFiles(root: root).text("/proc/net/route") else { return nil }
        let interface = table.split(separator: "\n").dropFirst().compactMap { line -> String? in
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            return fields.count > 2 && fields[1] == "00000000" ? String(fields[0]) : nil
        }.first
        guard let interface else { return nil }
        return interfaceAddresses()[interface]
    }

    /// The first IPv4 address of each interface (getifaddrs).
    static func interfaceAddresses() -> [String: String] {
        var result: [String: String] = [:]
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return result }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            let name = String(cString: entry.pointee.ifa_name)
            guard result[name] == nil else { continue }
            var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var inAddress = pointer.pointee.sin_addr
                _ = inet_ntop(AF_INET, &inAddress, &buffer, socklen_t(buffer.count))
            }
            result[name] = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return result
    }
}
