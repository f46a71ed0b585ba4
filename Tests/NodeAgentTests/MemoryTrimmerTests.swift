import Foundation
import NodeAgentTesting
import ServiceLifecycle
import Synchronization
import Testing

@testable import NodeAgent

@Suite("malloc trimming")
struct MemoryTrimmerTests {
    @Test("arenas holding more free bytes than the threshold are trimmed and it is logged; under it nothing happens")
    func trimsOverThreshold() {
        let recorder = LogRecorder()
        let trims = Atomic<Int>(0)
        var trimmer = MemoryTrimmer(threshold: 1 << 20, logger: recorder.logger(label: "agent"))
        trimmer.trim = {
            trims.add(1, ordering: .relaxed)
            return true
        }
        trimmer.freeBytes = { 1 << 20 }
        trimmer.trimIfWorthIt()
        #expect(trims.load(ordering: .relaxed) == 0 && recorder.records.isEmpty)
        trimmer.freeBytes = { 5 << 20 }
        trimmer.trimIfWorthIt()
        #expect(trims.load(ordering: .relaxed) == 1)
        #expect(recorder.records.map(\.message) == ["trimmed malloc arenas"])
        #expect(recorder.records.first?.metadata["freeBytes"] == "\(5 << 20)")
    }

    @Test("the trimmer ends on graceful shutdown")
    func endsOnShutdown() async throws {
        let recorder = LogRecorder()
        var trimmer = MemoryTrimmer(interval: .milliseconds(10), logger: recorder.logger(label: "agent"))
        trimmer.freeBytes = { 0 }
        let group = ServiceGroup(configuration: .init(services: [trimmer], logger: recorder.logger(label: "group")))
        let run = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(50))
        await group.triggerGracefulShutdown()
        try await run.value
    }
}
