import CAgentShims
import Logging
import ServiceLifecycle

/// Gives memory that glibc malloc keeps after a burst of work back to the kernel.
///
/// A pod sync burst (decoding objects, one subprocess per runtime call on every thread) leaves the malloc arenas
/// holding megabytes of free pages that nothing else reclaims; with 100 idle pods a `malloc_trim(0)` took the
/// daemon's resident memory down by about 13 MB (KubeletBench). Every `interval`, when the arenas hold more than
/// `threshold` free bytes, this service trims them; an idle daemon thus pays one `mallinfo2` walk per interval.
struct MemoryTrimmer: Service {
    /// The arena count the daemon caps glibc malloc at (by default glibc makes up to 8 per core, each keeping its
    /// own free pages); `MALLOC_ARENA_MAX` in the environment wins.
    static let arenaMax: Int32 = 2

    var interval: Duration = .seconds(10)
    var threshold: UInt = 1 << 20
    var logger: Logger
    /// The arenas' free bytes (glibc's mallinfo2); replaced in tests.
    var freeBytes: @Sendable () -> UInt = { UInt(cagent_malloc_free_bytes()) }
    /// Trims the arenas (glibc's malloc_trim(0)), true when something went back to the kernel; replaced in tests.
    var trim: @Sendable () -> Bool = { cagent_malloc_trim() == 1 }

    /// Caps malloc's arenas unless the environment chose; call first in `main`, before threads start.
    static func limitArenas(environment: [String: String]) {
        guard environment["MALLOC_ARENA_MAX"] == nil else { return }
        _ = cagent_malloc_set_arena_max(arenaMax)
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                trimIfWorthIt()
            }
        }
    }

    /// Trims when the arenas hold more than `threshold` free bytes.
    func trimIfWorthIt() {
        let free = freeBytes()
        guard free > threshold else { return }
        let released = trim()
        logger.debug("trimmed malloc arenas", metadata: ["freeBytes": "\(free)", "released": "\(released)"])
    }
}
