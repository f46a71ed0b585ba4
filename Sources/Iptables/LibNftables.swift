import CNftables
import Foundation
import Synchronization

/// The real ``Nftables``: libnftables in this process, through `nft_run_cmd_from_filename` on an in-memory file.
///
/// Every transaction is handed to libnftables as one script, which libnftables sends to the kernel as one
/// netlink batch: all of it applies or none of it does. The script goes through a `memfd` rather than
/// `nft_run_cmd_from_buffer` because libnftables 1.0.6 prints the wrong line for errors in multi-line buffers;
/// with a file it names `FILE:LINE:COL`, which ``NftablesError`` maps back to the command.
///
/// With `networkNamespace`, every libnftables call runs on one dedicated thread that has joined that namespace
/// with `setns(2)`, so tests program a namespace they created without touching the host's ruleset (a netlink
/// socket talks to the namespace of the thread that opened it, and libnftables may reopen its socket).
/// The daemon passes nil and programs the namespace it runs in.
///
/// All unsafe-pointer code for libnftables lives in this file.
public final class LibNftables: Nftables, @unchecked Sendable {
    /// The libnftables context; only touched on ``executor``'s thread or under ``lock``.
    private let context: ContextPointer
    private let lock = Mutex<Void>(())
    private let executor: NamespaceThread?
    /// Declared types of the sets and maps this instance created, by `family table name`: element-only
    /// transactions on them take the direct netlink path (``ElementBatch``).
    private let setTypes = Mutex<[String: ElementBatch.SetType]>([:])
    /// The socket element batches go through, open for the instance's life (see ``BatchSocket`` for why).
    private let batchSocket = Mutex(BatchSocket())

    /// Opens a libnftables context, in `networkNamespace` (a path such as `/var/run/netns/NAME`) when given.
    /// - Throws: ``NftablesError`` when the namespace cannot be entered or libnftables cannot start.
    public init(networkNamespace: String? = nil) throws {
        if let networkNamespace {
            let executor = try NamespaceThread(path: networkNamespace)
            self.executor = executor
            let made: ContextPointer? = executor.perform { nft_ctx_new(UInt32(NFT_CTX_DEFAULT)).map(ContextPointer.init) }
            guard let made else { throw NftablesError.unavailable("nft_ctx_new failed") }
            context = made
        } else {
            executor = nil
            guard let made = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else { throw NftablesError.unavailable("nft_ctx_new failed") }
            context = ContextPointer(made)
        }
        nft_ctx_buffer_output(context.pointer)
        nft_ctx_buffer_error(context.pointer)
    }

    deinit {
        let context = self.context
        if let executor {
            executor.perform { nft_ctx_free(context.pointer) }
            executor.stop()
        } else {
            nft_ctx_free(context.pointer)
        }
    }

    public func run(_ transaction: Transaction) throws {
        guard !transaction.isEmpty else { return }
        let prefix = "\(transaction.family.rawValue) \(transaction.table) "
        let known = setTypes.withLock { types in
            types.filter { $0.key.hasPrefix(prefix) }.reduce(into: [String: ElementBatch.SetType]()) { $0[String($1.key.dropFirst(prefix.count))] = $1.value }
        }
        if let batch = ElementBatch(transaction, types: known) {
            let send: @Sendable () -> (index: Int, errno: Int32)? = { self.batchSocket.withLock { batch.send(on: &$0) } }
            let failure = executor.map { $0.perform(send) } ?? send()
            if let failure {
                let message = "Could not process rule: \(String(cString: strerror(failure.errno)))"
                let line = failure.index >= 1 && failure.index <= transaction.count ? failure.index : nil
                throw NftablesError.rejected("run", message: message, line: line, command: line.map { transaction.line($0 - 1) })
            }
            return
        }
        try execute(script: transaction.script(), operation: "run", transaction: transaction, dryRun: false)
        setTypes.withLock { types in
            for command in transaction.commands {
                switch (command.verb, command.object) {
                case (.add, .set(let set)), (.create, .set(let set)):
                    types[prefix + set.name] = .init(key: set.type.components(separatedBy: " . "), value: nil)
                case (.add, .map(let map)), (.create, .map(let map)):
                    types[prefix + map.name] = .init(key: map.keyType.components(separatedBy: " . "), value: map.valueType.components(separatedBy: " . "))
                case (.delete, .set(let set)): types[prefix + set.name] = nil
                case (.delete, .map(let map)): types[prefix + map.name] = nil
                case (.delete, .table): types = types.filter { !$0.key.hasPrefix(prefix) }
                default: break
                }
            }
        }
    }

    public func check(_ transaction: Transaction) throws {
        guard !transaction.isEmpty else { return }
        try execute(script: transaction.script(), operation: "check", transaction: transaction, dryRun: true)
    }

    public func list(family: Family, table name: String) throws -> TableListing? {
        do {
            let json = try execute(script: "list table \(family.rawValue) \(name)\n", operation: "list", json: true)
            let listing = try ListingParser.parse(json, family: family, table: name, requireTable: true)
            learnSetTypes(listing)
            return listing
        } catch let error as NftablesError where error.isNotFound {
            return nil
        }
    }

    public func listObjects(family: Family, table name: String) throws -> TableListing? {
        // `list tables` is cheap whatever the table holds; `list table` would dump every rule.
        let tables = try execute(script: "list tables \(family.rawValue)\n", operation: "list", json: true)
        guard try ListingParser.parse(tables, family: family, table: name, requireTable: true) != nil else { return nil }
        var merged = TableListing(family: family, name: name)
        for kind in ["chains", "sets", "maps"] {
            let json = try execute(script: "list \(kind) \(family.rawValue)\n", operation: "list", json: true, terse: true)
            if let part = try ListingParser.parse(json, family: family, table: name, requireTable: false) {
                merged.chains.merge(part.chains) { old, _ in old }
                merged.sets.merge(part.sets) { old, _ in old }
            }
        }
        learnSetTypes(merged)
        return merged
    }

    /// Records the declared types of the sets and maps read back, so that element-only transactions on a table
    /// this instance did not create (a restarted daemon's) also take the direct netlink path.
    private func learnSetTypes(_ listing: TableListing?) {
        guard let listing else { return }
        let prefix = "\(listing.family.rawValue) \(listing.name) "
        setTypes.withLock { types in
            for set in listing.sets.values where !set.type.isEmpty {
                types[prefix + set.name] = .init(
                    key: set.type.components(separatedBy: " . "), value: set.valueType.map { $0.components(separatedBy: " . ") })
            }
        }
    }

    /// Runs `script` through libnftables and returns its standard output.
    @discardableResult
    private func execute(
        script: String,
        operation: String,
        transaction: Transaction? = nil,
        dryRun: Bool = false,
        json: Bool = false,
        terse: Bool = false,
        discard: Bool = false
    ) throws -> String {
        let context = self.context
        let body: @Sendable () -> Result<String, NftablesError> = {
            Self.runLocked(context: context, script: script, operation: operation, transaction: transaction, dryRun: dryRun, json: json, terse: terse, discard: discard)
        }
        let result: Result<String, NftablesError>
        if let executor {
            result = executor.perform(body)
        } else {
            result = lock.withLock { _ in body() }
        }
        return try result.get()
    }

    private static func runLocked(
        context wrapped: ContextPointer,
        script: String,
        operation: String,
        transaction: Transaction?,
        dryRun: Bool,
        json: Bool,
        terse: Bool,
        discard: Bool
    ) -> Result<String, NftablesError> {
        let context = wrapped.pointer
        let fd = cnftables_memfd("node-agent-nft")
        guard fd >= 0 else { return .failure(.unavailable("memfd_create: \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var bytes = Array(script.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer in
                write(fd, buffer.baseAddress! + written, buffer.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(.unavailable("write to memfd: \(String(cString: strerror(errno)))"))
            }
            written += count
        }
        bytes = []
        let path = "/proc/self/fd/\(fd)"
        var flags: UInt32 = 0
        if json { flags |= UInt32(NFT_CTX_OUTPUT_JSON) }
        if terse { flags |= UInt32(NFT_CTX_OUTPUT_TERSE) }
        nft_ctx_output_set_flags(context, flags)
        nft_ctx_set_dry_run(context, dryRun)
        defer {
            nft_ctx_set_dry_run(context, false)
            nft_ctx_output_set_flags(context, 0)
        }
        let status = nft_run_cmd_from_filename(context, path)
        let output = nft_ctx_get_output_buffer(context).map { String(cString: $0) } ?? ""
        let errors = nft_ctx_get_error_buffer(context).map { String(cString: $0) } ?? ""
        if status != 0 {
            return .failure(NftablesError.parse(errorBuffer: errors, path: path, operation: operation, transaction: transaction))
        }
        return .success(discard ? "" : output)
    }
}

/// The libnftables context, passed between threads; every use is serialized by ``LibNftables``.
struct ContextPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// A thread that has joined a network namespace and runs closures one at a time.
final class NamespaceThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
    private var thread: Thread?

    /// Starts the thread and waits until it has entered the namespace at `path`.
    init(path: String) throws {
        let entered = Mutex<Result<Void, NftablesError>?>(nil)
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                entered.withLock { $0 = .failure(.namespace("open \(path): \(String(cString: strerror(errno)))")) }
                ready.signal()
                return
            }
            let status = cnftables_enter_netns(fd)
            let error = errno
            close(fd)
            if status != 0 {
                entered.withLock { $0 = .failure(.namespace("setns \(path): \(String(cString: strerror(error)))")) }
                ready.signal()
                return
            }
            entered.withLock { $0 = .success(()) }
            ready.signal()
            self.loop()
        }
        thread.name = "nft-netns"
        self.thread = thread
        thread.start()
        ready.wait()
        try entered.withLock { $0 }!.get()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Runs `body` on the namespace thread and returns its result.
    func perform<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        condition.lock()
        jobs.append {
            let value = body()
            result.withLock { $0 = value }
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        return result.withLock { $0 }!
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }
}
