import Foundation
import NodeAgentTesting
import ServiceLifecycle
import Testing

@testable import NodeAgent

@Suite("malloc trimming")
struct MemoryTrimmerTests {
    @Test("free arena memory over the threshold is trimmed and logged; under it nothing happens")
    func trimsOverThreshold() throws {
        let recorder = LogRecorder()
        // Leave free memory in the arenas: many small blocks freed while one later block stays.
        var blocks: [UnsafeMutableRawPointer] = (0..<20_000).map { _ in malloc(1024)! }
        let kept = malloc(64)!
        for block in blocks { free(block) }
        blocks.removeAll()
        MemoryTrimmer(threshold: .max, logger: recorder.logger(label: "agent")).trimIfWorthIt()
        #expect(recorder.records.isEmpty)
        MemoryTrimmer(threshold: 1 << 20, logger: recorder.logger(label: "agent")).trimIfWorthIt()
        free(kept)
        let record = try #require(recorder.records.first { $0.message == "trimmed malloc arenas" })
        #expect((UInt(record.metadata["freeBytes"] ?? "") ?? 0) > 1 << 20)
    }

    @Test("the trimmer ends on graceful shutdown")
    func endsOnShutdown() async throws {
        let recorder = LogRecorder()
        let trimmer = MemoryTrimmer(interval: .milliseconds(10), logger: recorder.logger(label: "agent"))
        let group = ServiceGroup(configuration: .init(services: [trimmer], logger: recorder.logger(label: "group")))
        let run = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(50))
        await group.triggerGracefulShutdown()
        try await run.value
    }
}
