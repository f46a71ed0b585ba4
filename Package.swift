// swift-tools-version: 6.2
import PackageDescription

/// Settings every target of ours shares: Swift 6 language mode, `any` spelled out for existentials,
/// and imports internal unless a file says `public import`.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "node-agent",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "node-agent", targets: ["NodeAgent"]),
        .executable(name: "node-agent-logger", targets: ["NodeAgentLogger"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.24.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        // MARK: C libraries (module maps only; macros become prefixed static inline functions in the shim headers)
        .systemLibrary(
            name: "CNetlink",
            pkgConfig: "libnl-genl-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-genl-3-dev"])]
        ),
        .systemLibrary(
            name: "CMnl",
            pkgConfig: "libmnl",
            providers: [.apt(["libmnl-dev"])]
        ),
        .systemLibrary(
            name: "CNftables",
            pkgConfig: "libnftables",
            providers: [.apt(["libnftables-dev"])]
        ),

        // Small glibc shims for what Glibc's module map leaves out (<sys/timex.h>).
        .target(name: "CAgentShims"),

        // MARK: Kernel- and runtime-facing targets (know nothing of Kubernetes)
        .target(
            name: "IPVS",
            dependencies: ["CNetlink", "CMnl"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Iptables",
            dependencies: ["CNftables", "AgentJSON"],
            swiftSettings: strictSettings
        ),
        // A JSON document as a value, shared by KubeAPI (which re-exports it) and Iptables (nft --json listings), and the
        // RFC 3339 times that KubeAPI and CRI read and write.
        .target(
            name: "AgentJSON",
            swiftSettings: strictSettings
        ),
        .target(
            name: "CRI",
            dependencies: [
                "AgentJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strictSettings
        ),
        // containerd's binary log driver program (CRI log format, rotation); Glibc only so it starts fast.
        .executableTarget(
            name: "NodeAgentLogger",
            swiftSettings: strictSettings
        ),

        // MARK: Kubernetes
        .target(
            name: "KubeAPI",
            dependencies: [
                "AgentJSON",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Kubelet",
            dependencies: [
                "KubeAPI", "CRI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Proxy",
            dependencies: [
                "KubeAPI", "IPVS", "Iptables",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // Service manifests of standalone mode (Standalone/ServiceManifestFolder.swift).
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: The daemon
        .executableTarget(
            name: "NodeAgent",
            dependencies: [
                "KubeAPI", "Kubelet", "Proxy", "CRI", "IPVS", "Iptables", "CAgentShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Test support: fakes and doubles beside the real code (never linked into the daemon)
        .target(
            name: "NodeAgentTesting",
            dependencies: [
                "KubeAPI", "CRI", "IPVS", "Iptables", "Kubelet",
                .product(name: "Logging", package: "swift-log"),
                // The API server double (APIServer/): HTTP(S) with a generated CA.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "apiserver-double",
            dependencies: [
                "NodeAgentTesting", "KubeAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/APIServerDouble",
            swiftSettings: strictSettings
        ),

        // Test support: the nftables proxier fed from a folder of JSON objects, run by the system tests inside
        // their node namespace (never shipped).
        .executableTarget(
            name: "ProxyHarness",
            dependencies: [
                "Proxy", "Iptables", "IPVS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Tests
        .testTarget(
            name: "CRITests",
            dependencies: [
                "CRI", "NodeAgentTesting", "NodeAgentLogger",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "IptablesTests",
            dependencies: ["Iptables", "NodeAgentTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ProxyTests",
            dependencies: [
                "Proxy", "Iptables", "IPVS", "NodeAgentTesting", "ProxyHarness",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KubeletTests",
            dependencies: [
                "Kubelet", "NodeAgentTesting", "KubeAPI", "CRI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "IPVSTests",
            dependencies: ["IPVS", "NodeAgentTesting"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "NodeAgentTests",
            dependencies: [
                "NodeAgent", "NodeAgentTesting", "KubeAPI", "Kubelet",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KubeAPITests",
            dependencies: [
                "KubeAPI", "NodeAgentTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),

        // MARK: Benchmarks (not part of the test suite; each README section gives its command)
        .target(
            name: "BenchSupport",
            path: "Benchmarks/BenchSupport",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "KubeAPIBench",
            dependencies: ["KubeAPI", "BenchSupport"],
            path: "Benchmarks/KubeAPIBench",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "ProxyBench",
            dependencies: [
                "Proxy", "Iptables", "NodeAgentTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ProxyBench",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "KubeletBench",
            dependencies: ["KubeAPI", "NodeAgentTesting", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/KubeletBench",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "CRIBench",
            dependencies: ["CRI", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/CRIBench",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "IPVSBench",
            dependencies: ["IPVS", "BenchSupport"],
            path: "Benchmarks/IPVSBench",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "IPVSProxyBench",
            dependencies: ["Proxy", "IPVS", "Iptables", "BenchSupport", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/IPVSProxyBench",
            swiftSettings: strictSettings
        ),
    ]
)
