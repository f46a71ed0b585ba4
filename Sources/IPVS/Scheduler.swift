/// An IPVS scheduling algorithm, named as the kernel and ipvsadm name it.
///
/// The kernel loads each scheduler from its own module (`ip_vs_<name>`); a name the kernel does not know
/// makes service creation fail with ENOENT.
public enum Scheduler: String, Sendable, CaseIterable, Hashable, Codable {
    /// Round robin.
    case rr
    /// Least connection.
    case lc
    /// Destination hashing.
    case dh
    /// Source hashing.
    case sh
    /// Shortest expected delay.
    case sed
    /// Never queue.
    case nq
    /// Weighted round robin.
    case wrr
    /// Weighted least connection (the kernel's and ipvsadm's default).
    case wlc
    /// Locality-based least connection.
    case lblc
    /// Locality-based least connection with replication.
    case lblcr
    /// Maglev hashing.
    case mh

    /// The kernel module that implements this scheduler, e.g. `ip_vs_rr`.
    public var kernelModule: String { "ip_vs_\(rawValue)" }
}
