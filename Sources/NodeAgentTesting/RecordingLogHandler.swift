public import Logging
import Synchronization

/// A log handler that keeps every record in memory, so tests assert on what was logged.
///
/// ```swift
/// let recorder = LogRecorder()
/// let logger = recorder.logger(label: "proxy")
/// ...
/// #expect(recorder.records.contains { $0.message == "sync failed" })
/// ```
public final class LogRecorder: Sendable {
    /// One log record as it was emitted.
    public struct Record: Sendable, Equatable {
        public var label: String
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    private let storage = Mutex<[Record]>([])

    public init() {}

    /// Everything logged so far, oldest first.
    public var records: [Record] { storage.withLock { $0 } }

    /// A logger at `level` whose records land in this recorder.
    public func logger(label: String, level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label) { label in RecordingLogHandler(label: label, recorder: self) }
        logger.logLevel = level
        return logger
    }

    fileprivate func append(_ record: Record) {
        storage.withLock { $0.append(record) }
    }
}

/// The `LogHandler` behind ``LogRecorder``.
public struct RecordingLogHandler: LogHandler {
    public var logLevel: Logger.Level = .trace
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let recorder: LogRecorder

    public init(label: String, recorder: LogRecorder) {
        self.label = label
        self.recorder = recorder
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        recorder.append(
            LogRecorder.Record(
                label: label,
                level: event.level,
                message: event.message.description,
                metadata: merged.mapValues { "\($0)" }
            )
        )
    }
}
