import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Creates and removes persistent namespaces with syscalls, as `ip netns add` and `unshare --uts=FILE` do,
/// without starting a process: a dedicated thread unshares, configures, bind-mounts its namespaces onto files
/// and exits. Only that thread ever enters the new namespaces; the rest of the daemon is untouched.
///
/// All unsafe calls for namespaces live in this file. Hand-written because no package on the machine wraps
/// unshare/setns; it saves three process starts per pod sandbox (see the CRIBench figures).
enum NamespaceSyscalls {
    // <sched.h> declares these only under _GNU_SOURCE, which Swift's Glibc module does not set.
    private static let cloneNewNet: Int32 = 0x4000_0000
    private static let cloneNewUTS: Int32 = 0x0400_0000
    private static let cloneNewIPC: Int32 = 0x0800_0000
    private typealias UnshareFunction = @convention(c) (Int32) -> Int32
    private static let unshareFunction: UnshareFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare") else { return nil }
        return unsafeBitCast(symbol, to: UnshareFunction.self)
    }()

    struct Failure: Error, CustomStringConvertible {
        var step: String
        var code: Int32
        var description: String { "\(step): \(String(cString: strerror(code)))" }
    }

    /// What to create: files to hold each namespace (nil: do not create that kind) and the UTS hostname.
    struct Request: Sendable {
        var networkFile: String?
        var utsFile: String?
        var ipcFile: String?
        var hostname: String?
    }

    /// Makes `/var/run/netns` a shared mount like iproute2 does, so the bind mounts propagate; once per process.
    private static let netnsDirectoryPrepared: Int32 = {
        mkdir("/var/run/netns", 0o755)
        if mount("", "/var/run/netns", "none", UInt(MS_SHARED | MS_REC), nil) == 0 { return 0 }
        if errno != EINVAL { return errno }
        guard mount("/var/run/netns", "/var/run/netns", "none", UInt(MS_BIND | MS_REC), nil) == 0 else { return errno }
        return mount("", "/var/run/netns", "none", UInt(MS_SHARED | MS_REC), nil) == 0 ? 0 : errno
    }()

    /// Creates the requested namespaces (loopback brought up in the network one) and bind-mounts them.
    /// On failure removes whatever it made and throws the failing step with its errno.
    static func create(_ request: Request) async throws {
        if request.networkFile != nil, netnsDirectoryPrepared != 0 {
            throw Failure(step: "making /var/run/netns a shared mount", code: netnsDirectoryPrepared)
        }
        let failure: Failure? = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: createOnThisThread(request))
            }
            thread.start()
        }
        if let failure {
            for file in [request.networkFile, request.utsFile, request.ipcFile].compactMap({ $0 }) { remove(file) }
            throw failure
        }
    }

    /// Runs on a thread of its own: the namespaces it unshares die with it unless bind-mounted.
    private static func createOnThisThread(_ request: Request) -> Failure? {
        var flags: Int32 = 0
        if request.networkFile != nil { flags |= cloneNewNet }
        if request.utsFile != nil { flags |= cloneNewUTS }
        if request.ipcFile != nil { flags |= cloneNewIPC }
        for file in [request.networkFile, request.utsFile, request.ipcFile].compactMap({ $0 }) {
            let descriptor = open(file, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
            if descriptor < 0 && errno != EEXIST { return Failure(step: "creating \(file)", code: errno) }
            if descriptor >= 0 { close(descriptor) }
        }
        guard let unshare = unshareFunction else { return Failure(step: "finding unshare(2) in libc", code: ENOSYS) }
        guard unshare(flags) == 0 else { return Failure(step: "unshare", code: errno) }
        if let hostname = request.hostname, request.utsFile != nil {
            let result = hostname.withCString { sethostname($0, strlen($0)) }
            if result != 0 { return Failure(step: "sethostname \(hostname)", code: errno) }
        }
        if request.networkFile != nil, let failure = loopbackUp() { return failure }
        let task = "/proc/thread-self/ns/"
        for (kind, file) in [("net", request.networkFile), ("uts", request.utsFile), ("ipc", request.ipcFile)] {
            guard let file else { continue }
            if mount(task + kind, file, "none", UInt(MS_BIND), nil) != 0 { return Failure(step: "bind-mounting the \(kind) namespace on \(file)", code: errno) }
        }
        return nil
    }

    /// `ip link set lo up` in the thread's current network namespace.
    private static func loopbackUp() -> Failure? {
        let socketDescriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketDescriptor >= 0 else { return Failure(step: "socket for loopback", code: errno) }
        defer { close(socketDescriptor) }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { buffer in
            for (index, byte) in "lo".utf8.enumerated() { buffer[index] = byte }
        }
        guard ioctl(socketDescriptor, UInt(SIOCGIFFLAGS), &request) == 0 else { return Failure(step: "reading loopback flags", code: errno) }
        request.ifr_ifru.ifru_flags |= Int16(IFF_UP)
        guard ioctl(socketDescriptor, UInt(SIOCSIFFLAGS), &request) == 0 else { return Failure(step: "bringing loopback up", code: errno) }
        return nil
    }

    /// Unmounts (lazily) and deletes a namespace file; quiet when it is already gone.
    static func remove(_ file: String) {
        _ = umount2(file, Int32(MNT_DETACH))
        unlink(file)
    }
}
