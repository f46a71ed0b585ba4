// node-agent-logger: containerd's binary log driver program for node-agent.
//
// containerd (its shim) starts it per container as `binary:///path/node-agent-logger?path=...&max-size=...`
// with the container's stdout on fd 3, stderr on fd 4, and a pipe on fd 5 that it closes once ready. It writes
// the CRI log format, `<RFC3339Nano> stdout|stderr F|P <line>`, to `path` and rotates the file by size
// (`max-size` bytes, keeping `max-files` files in all). Glibc only, no Foundation: it starts in a millisecond.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Longest line written as one record; longer lines are split into `P` records like the kubelet's 16 KiB limit.
let maxLineLength = 16 * 1024

func fail(_ message: String, status: Int32) -> Never {
    let bytes = Array("node-agent-logger: \(message)\n".utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(status)
}

func timestamp(_ format: String, nanos: Bool) -> String {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    var parts = tm()
    var seconds = now.tv_sec
    gmtime_r(&seconds, &parts)
    var buffer = [CChar](repeating: 0, count: 64)
    let count = strftime(&buffer, buffer.count, format, &parts)
    var text = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    if nanos {
        let fraction = String(now.tv_nsec)
        text += "." + String(repeating: "0", count: 9 - fraction.count) + fraction + "Z"
    }
    return text
}

/// The CRI log file being written, rotated by size.
struct LogFile {
    let path: String
    let maxSize: Int
    let maxFiles: Int
    var descriptor: Int32 = -1
    var written = 0

    init(path: String, maxSize: Int, maxFiles: Int) {
        self.path = path
        self.maxSize = maxSize
        self.maxFiles = maxFiles
        open()
    }

    mutating func open() {
        descriptor = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        if descriptor < 0 { fail("cannot open \(path): \(String(cString: strerror(errno)))", status: 1) }
        var info = stat()
        written = fstat(descriptor, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Renames the full file aside as `<path>.<UTC time with nanoseconds>` and removes the oldest rotated files beyond `maxFiles - 1`.
    mutating func rotate() {
        close(descriptor)
        // `<path>.20261127-073249.306684728`: unique, and sorting by name sorts by age.
        let stamp = String(timestamp("%Y%m%d-%H%M%S", nanos: true).dropLast())
        rename(path, path + "." + stamp)
        let slash = path.lastIndex(of: "/") ?? path.startIndex
        let directory = slash == path.startIndex ? "." : String(path[..<slash])
        let base = String(path[path.index(after: slash)...]) + "."
        var rotated: [String] = []
        if let handle = opendir(directory) {
            while let entry = readdir(handle) {
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
                }
                if name.hasPrefix(base) { rotated.append(name) }
            }
            closedir(handle)
        }
        rotated.sort()
        while rotated.count > maxFiles - 1 {
            unlink(directory + "/" + rotated.removeFirst())
        }
        open()
    }

    mutating func record(stream: String, partial: Bool, line: ArraySlice<UInt8>) {
        var record = Array("\(timestamp("%Y-%m-%dT%H:%M:%S", nanos: true)) \(stream) \(partial ? "P" : "F") ".utf8)
        record.append(contentsOf: line)
        record.append(UInt8(ascii: "\n"))
        if written > 0 && written + record.count > maxSize { rotate() }
        var offset = 0
        while offset < record.count {
            let count = record[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += count
        }
        written += record.count
    }
}

/// One of the container's output streams (fd 3 stdout, fd 4 stderr) and its unfinished line.
struct Source {
    let descriptor: Int32
    let name: String
    var pending: [UInt8] = []
    var open = true

    mutating func drain(into log: inout LogFile, final: Bool) {
        while true {
            if let newline = pending.prefix(maxLineLength + 1).firstIndex(of: UInt8(ascii: "\n")) {
                var line = pending[..<newline]
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                log.record(stream: name, partial: false, line: line)
                pending.removeSubrange(...newline)
            } else if pending.count > maxLineLength {
                log.record(stream: name, partial: true, line: pending[..<maxLineLength])
                pending.removeSubrange(..<maxLineLength)
            } else {
                break
            }
        }
        if final && !pending.isEmpty {
            log.record(stream: name, partial: false, line: pending[...])
            pending.removeAll()
        }
    }
}

func main() {
    var options: [String: String] = [:]
    var arguments = CommandLine.arguments.dropFirst()
    while let key = arguments.popFirst() {
        options[key] = arguments.popFirst() ?? ""
    }
    guard let path = options["path"], !path.isEmpty else {
        fail("missing `path` (use binary:///path/to/node-agent-logger?path=/var/log/pods/...)", status: 2)
    }
    signal(SIGPIPE, SIG_IGN)
    var log = LogFile(
        path: path, maxSize: Int(options["max-size"] ?? "") ?? 10 * 1024 * 1024, maxFiles: max(1, Int(options["max-files"] ?? "") ?? 5))
    // Tell the shim we are ready.
    close(5)
    var sources = [Source(descriptor: 3, name: "stdout"), Source(descriptor: 4, name: "stderr")]
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while sources.contains(where: \.open) {
        var polls = sources.map { pollfd(fd: $0.open ? $0.descriptor : -1, events: Int16(POLLIN), revents: 0) }
        if poll(&polls, nfds_t(polls.count), -1) < 0 {
            if errno == EINTR { continue }
            break
        }
        for index in sources.indices where sources[index].open && polls[index].revents != 0 {
            let count = chunk.withUnsafeMutableBytes { read(sources[index].descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                sources[index].pending.append(contentsOf: chunk[..<count])
                sources[index].drain(into: &log, final: false)
            } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                sources[index].open = false
                sources[index].drain(into: &log, final: true)
            }
        }
    }
    close(log.descriptor)
}

main()
