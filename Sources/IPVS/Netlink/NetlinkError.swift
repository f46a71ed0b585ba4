/// A failure of the netlink layer: a syscall, a kernel error reply, a malformed message or a timeout.
///
/// The kernel's errno is kept (``errno``) so callers map it to their own meaning (EEXIST, ESRCH, ENOENT...).
public struct NetlinkError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case system
        case kernel
        case malformed
        case timeout
    }

    private let code: Code
    /// The errno, positive (0 when not applicable, e.g. a malformed message).
    public let errno: Int32
    /// What was being done, e.g. `sendto`, `IPVS_CMD_NEW_SERVICE`.
    public let operation: String
    /// The kernel's extended-ack message, when it sent one.
    public let kernelMessage: String?

    /// A syscall failed with `errno`.
    public static func system(_ operation: String, errno: Int32) -> NetlinkError {
        NetlinkError(code: errno == EAGAIN_VALUE ? .timeout : .system, errno: errno, operation: operation, kernelMessage: nil)
    }

    /// The kernel answered a request with a negative error.
    public static func kernel(_ operation: String, errno: Int32, message: String? = nil) -> NetlinkError {
        NetlinkError(code: .kernel, errno: errno, operation: operation, kernelMessage: message)
    }

    /// A message or attribute could not be decoded.
    public static func malformed(_ what: String) -> NetlinkError {
        NetlinkError(code: .malformed, errno: 0, operation: what, kernelMessage: nil)
    }

    /// True when the kernel (not a syscall) rejected the request.
    public var isKernelError: Bool { code == .kernel }
    /// True when no reply arrived within the socket's receive timeout.
    public var isTimeout: Bool { code == .timeout }
    /// True when a reply could not be decoded.
    public var isMalformed: Bool { code == .malformed }

    public var description: String {
        switch code {
        case .system: "\(operation) failed: \(Errno.name(errno)) (\(Errno.text(errno)))"
        case .kernel:
            "the kernel rejected \(operation): \(Errno.name(errno)) (\(Errno.text(errno)))" + (kernelMessage.map { ": \($0)" } ?? "")
        case .malformed: "malformed netlink data: \(operation)"
        case .timeout: "\(operation) timed out waiting for the kernel's reply"
        }
    }
}

let EAGAIN_VALUE: Int32 = 11

/// errno names and texts for messages.
enum Errno {
    static func name(_ code: Int32) -> String {
        switch code {
        case 1: "EPERM"
        case 2: "ENOENT"
        case 3: "ESRCH"
        case 4: "EINTR"
        case 11: "EAGAIN"
        case 12: "ENOMEM"
        case 13: "EACCES"
        case 16: "EBUSY"
        case 17: "EEXIST"
        case 19: "ENODEV"
        case 22: "EINVAL"
        case 93: "EPROTONOSUPPORT"
        case 95: "EOPNOTSUPP"
        case 97: "EAFNOSUPPORT"
        case 99: "EADDRNOTAVAIL"
        case 105: "ENOBUFS"
        default: "errno \(code)"
        }
    }

    static func text(_ code: Int32) -> String { Mnl.strerror(code) }
}
