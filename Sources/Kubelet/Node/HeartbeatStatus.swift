public import Foundation

/// The `heartbeat` section of `/status`: what a monitor needs to judge the node's liveness as the control plane sees it.
public struct HeartbeatStatus: Codable, Sendable, Equatable {
    /// A node condition as last posted.
    public struct Condition: Codable, Sendable, Equatable {
        public var type: String
        public var status: String
        public var reason: String?
        public var message: String?

        public init(type: String, status: String, reason: String? = nil, message: String? = nil) {
            self.type = type
            self.status = status
            self.reason = reason
            self.message = message
        }
    }

    /// `kube-node-lease/<node>`.
    public var lease: String
    public var leaseDurationSeconds: Int
    public var renewIntervalSeconds: Int
    public var lastRenewTime: Date?
    /// Seconds since the last successful renewal, by the agent's clock when the snapshot was taken.
    public var renewAgeSeconds: Double?
    public var consecutiveFailures: Int
    public var totalFailures: Int
    public var lastError: String?
    public var lastNodeStatusPatchTime: Date?
    public var apiserverReachable: Bool
    public var conditions: [Condition]

    public init(
        lease: String, leaseDurationSeconds: Int, renewIntervalSeconds: Int, lastRenewTime: Date? = nil, renewAgeSeconds: Double? = nil,
        consecutiveFailures: Int = 0, totalFailures: Int = 0, lastError: String? = nil, lastNodeStatusPatchTime: Date? = nil,
        apiserverReachable: Bool = false, conditions: [Condition] = []
    ) {
        self.lease = lease
        self.leaseDurationSeconds = leaseDurationSeconds
        self.renewIntervalSeconds = renewIntervalSeconds
        self.lastRenewTime = lastRenewTime
        self.renewAgeSeconds = renewAgeSeconds
        self.consecutiveFailures = consecutiveFailures
        self.totalFailures = totalFailures
        self.lastError = lastError
        self.lastNodeStatusPatchTime = lastNodeStatusPatchTime
        self.apiserverReachable = apiserverReachable
        self.conditions = conditions
    }
}
