/// Why an IPVS operation failed, with the object at fault and what to do about it.
public struct IPVSError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure; compare with the static members (`error.kind == .alreadyExists`).
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Code: Hashable, Sendable {
            case alreadyExists, notFound, schedulerNotFound, addressFamilyNotSupported, invalidArgument
            case permissionDenied, unavailable, timeout, malformedReply, system
        }
        private let code: Code

        /// EEXIST: the service or real server is already there.
        public static let alreadyExists = Kind(code: .alreadyExists)
        /// ESRCH (service) or ENOENT (real server): it is not there.
        public static let notFound = Kind(code: .notFound)
        /// ENOENT on a service: the kernel has no scheduler of that name (its module is not loaded or does not exist).
        public static let schedulerNotFound = Kind(code: .schedulerNotFound)
        /// EAFNOSUPPORT: an address family the kernel's IPVS does not take.
        public static let addressFamilyNotSupported = Kind(code: .addressFamilyNotSupported)
        /// EINVAL: the kernel refused the values (e.g. a bad netmask, a non-unicast real server).
        public static let invalidArgument = Kind(code: .invalidArgument)
        /// EPERM / EACCES: CAP_NET_ADMIN is missing.
        public static let permissionDenied = Kind(code: .permissionDenied)
        /// The kernel has no IPVS (module absent or not loadable).
        public static let unavailable = Kind(code: .unavailable)
        /// The kernel did not answer within the receive timeout.
        public static let timeout = Kind(code: .timeout)
        /// A reply could not be decoded.
        public static let malformedReply = Kind(code: .malformedReply)
        /// Any other system error; see ``IPVSError/errno``.
        public static let system = Kind(code: .system)

        public var description: String { "\(code)" }
    }

    public let kind: Kind
    /// What was attempted, e.g. `add service`.
    public let operation: String
    /// The object at fault, e.g. `TCP 10.0.0.1:80` or `TCP 10.0.0.1:80 -> 10.1.0.5:8080`.
    public let object: String
    /// The errno behind it (0 when none).
    public let errno: Int32
    /// More detail: the kernel's message, or the underlying failure.
    public let detail: String?

    public init(kind: Kind, operation: String, object: String, errno: Int32 = 0, detail: String? = nil) {
        self.kind = kind
        self.operation = operation
        self.object = object
        self.errno = errno
        self.detail = detail
    }

    /// Maps a netlink failure of `operation` on `object` to its IPVS meaning.
    ///
    /// ENOENT means "scheduler not found" for service writes and "no such real server" for real-server writes.
    init(_ error: NetlinkError, operation: String, object: String, serviceWrite: Bool = false) {
        let kind: Kind
        if error.isTimeout {
            kind = .timeout
        } else if error.isMalformed {
            kind = .malformedReply
        } else {
            switch error.errno {
            case 17: kind = .alreadyExists
            case 3: kind = .notFound
            case 2: kind = serviceWrite ? .schedulerNotFound : .notFound
            case 97: kind = .addressFamilyNotSupported
            case 22: kind = .invalidArgument
            case 1, 13: kind = .permissionDenied
            default: kind = .system
            }
        }
        self.init(kind: kind, operation: operation, object: object, errno: error.errno, detail: error.kernelMessage ?? (error.isKernelError ? nil : error.description))
    }

    public var description: String {
        let what: String
        switch kind {
        case .alreadyExists: what = "it already exists"
        case .notFound: what = "it does not exist"
        case .schedulerNotFound: what = "the kernel has no such scheduler (load its ip_vs_<name> module or pick another)"
        case .addressFamilyNotSupported: what = "the kernel's IPVS does not support this address family"
        case .invalidArgument: what = "the kernel refused the values as invalid"
        case .permissionDenied: what = "permission denied (CAP_NET_ADMIN is needed)"
        case .unavailable: what = "IPVS is unavailable"
        case .timeout: what = "the kernel did not answer in time"
        case .malformedReply: what = "the kernel's reply could not be decoded"
        default: what = "system error"
        }
        var text = "cannot \(operation) \(object): \(what)"
        if errno != 0 { text += " (\(Errno.name(errno)))" }
        if let detail, !detail.isEmpty { text += ": \(detail)" }
        return text
    }
}
