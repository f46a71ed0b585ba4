import Foundation
import KubeAPI
import NodeAgentTesting
import Testing

@Suite("watch stream framing")
struct WatchFramingTests {
    static func event(_ type: String, _ name: String, rv: Int) -> String {
        #"{"type":"\#(type)","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"\#(name)","namespace":"default","resourceVersion":"\#(rv)"},"data":{"k":"a \"quoted\" } brace"}}}"#
    }

    func names(_ events: [WatchEvent<ConfigMap>]) -> [String] {
        events.map { event in
            switch event {
            case .added(let object): "ADDED \(object.name)"
            case .modified(let object): "MODIFIED \(object.name)"
            case .deleted(let object): "DELETED \(object.name)"
            case .bookmark(let version): "BOOKMARK \(version)"
            case .error(let status): "ERROR \(status.code ?? 0)"
            }
        }
    }

    @Test("an event split across many chunks is decoded once complete")
    func splitChunks() {
        let recorder = LogRecorder()
        var decoder = WatchEventDecoder<ConfigMap>(logger: recorder.logger(label: "watch"))
        let bytes = Array((Self.event("ADDED", "a", rv: 5) + "\n").utf8)
        var events: [WatchEvent<ConfigMap>] = []
        for byte in bytes { events += decoder.feed([byte]) }
        #expect(names(events) == ["ADDED a"])
        #expect(decoder.skipped == 0)
    }

    @Test("several events in one chunk, without newlines, all come out in order")
    func mergedChunks() {
        var decoder = WatchEventDecoder<ConfigMap>(logger: testLogger())
        let text = Self.event("ADDED", "a", rv: 5) + Self.event("MODIFIED", "a", rv: 6) + "\n"
            + Self.event("DELETED", "a", rv: 7) + #"{"type":"BOOKMARK","object":{"kind":"ConfigMap","metadata":{"resourceVersion":"9"}}}"#
        let events = decoder.feed(Array(text.utf8))
        #expect(names(events) == ["ADDED a", "MODIFIED a", "DELETED a", "BOOKMARK 9"])
    }

    @Test("a chunk boundary inside an escaped quote does not confuse the framer")
    func escapes() {
        var decoder = WatchEventDecoder<ConfigMap>(logger: testLogger())
        let bytes = Array(Self.event("ADDED", "x", rv: 1).utf8)
        let cut = bytes.firstIndex(of: UInt8(ascii: "\\"))! + 1
        var events = decoder.feed(bytes[..<cut])
        events += decoder.feed(bytes[cut...])
        #expect(names(events) == ["ADDED x"])
    }

    @Test("a malformed event is logged and skipped and the next one still arrives")
    func malformedSkipped() {
        let recorder = LogRecorder()
        var decoder = WatchEventDecoder<ConfigMap>(logger: recorder.logger(label: "watch"))
        let text = #"{"type":"ADDED","object":{"metadata":{"name":5}}}"# + "\n"  // name is not a string
            + "this is not json\n"
            + #"{"type":"WHATEVER","object":{}}"# + "\n"
            + Self.event("ADDED", "ok", rv: 3) + "\n"
            + #"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}"#
        let events = decoder.feed(Array(text.utf8))
        #expect(names(events) == ["ADDED ok", "ERROR 410"])
        #expect(decoder.skipped == 3)
        #expect(recorder.records.filter { $0.level == .warning }.count == 3)
    }

    @Test("the framer holds only the unfinished object between chunks")
    func framerBuffer() {
        var framer = JSONStreamFramer()
        #expect(framer.append(Array(#"{"a":1}{"b":"#.utf8)) == [.object(Array(#"{"a":1}"#.utf8))])
        #expect(framer.pendingByteCount == 5)
        #expect(framer.append(Array(#"[1,2]}"#.utf8)) == [.object(Array(#"{"b":[1,2]}"#.utf8))])
        #expect(framer.pendingByteCount == 0)
    }

    @Test("long strings with escapes and braces frame right whatever chunk boundary cuts them")
    func longStringsAtEveryCut() {
        let value = String(repeating: "x", count: 37) + #"\"}{ ]["# + String(repeating: "y", count: 29) + #"\\"#
        let text = #"{"type":"ADDED","object":{"metadata":{"name":"a","annotations":{"k":"\#(value)"}}}}"# + "\n"
        let bytes = Array(text.utf8)
        for cut in 1..<bytes.count {
            var decoder = WatchEventDecoder<ConfigMap>(logger: testLogger())
            var events = decoder.feed(bytes[..<cut])
            events += decoder.feed(bytes[cut...])
            #expect(names(events) == ["ADDED a"], "cut at \(cut)")
            guard case .added(let object) = events.first else { continue }
            #expect(object.metadata.annotations?["k"] == String(repeating: "x", count: 37) + "\"}{ ][" + String(repeating: "y", count: 29) + "\\")
        }
    }

    @Test("a bad field in an event's object is reported by the object's own path")
    func eventErrorPath() {
        let recorder = LogRecorder()
        var decoder = WatchEventDecoder<Pod>(logger: recorder.logger(label: "watch"))
        let text = #"{"type":"MODIFIED","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","ports":[{"containerPort":"x"}]}]}}}"#
        #expect(decoder.feed(Array((text + "\n").utf8)).isEmpty)
        let warning = recorder.records.first { $0.level == .warning }
        let error = warning?.metadata["error"] ?? ""
        #expect(error.contains("field spec.containers[0].ports[0].containerPort"), "\(error)")
    }

    @Test("an object larger than the limit is dropped as garbage instead of growing memory")
    func oversize() {
        var framer = JSONStreamFramer(maximumObjectSize: 16)
        let frames = framer.append(Array(#"{"a":"0123456789012345678901234"}"#.utf8) + Array("\n{\"b\":1}".utf8))
        #expect(frames.last == .object(Array(#"{"b":1}"#.utf8)))
        #expect(frames.dropLast().allSatisfy { if case .garbage = $0 { true } else { false } })
        #expect(frames.count >= 2)
    }
}

@Suite("backoff and the reflector state machine")
struct ReflectorTests {
    @Test("backoff doubles from the initial delay up to the cap, with bounded jitter")
    func backoffGrowth() {
        var backoff = Backoff(policy: BackoffPolicy(initial: .milliseconds(100), maximum: .seconds(1), factor: 2, jitter: 0)) { 0.5 }
        let delays = (0..<6).map { _ in backoff.next() }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        backoff.reset()
        #expect(backoff.next() == .milliseconds(100))

        var jittered = Backoff(policy: BackoffPolicy(initial: .milliseconds(100), maximum: .seconds(1), factor: 2, jitter: 0.5)) { 0.999 }
        let first = jittered.next()
        #expect(first > .milliseconds(100) && first <= .milliseconds(150))
    }

    func machine() -> ReflectorStateMachine {
        ReflectorStateMachine(backoff: Backoff(policy: BackoffPolicy(initial: .seconds(1), maximum: .seconds(8), factor: 2, jitter: 0)) { 0 })
    }

    @Test("list, then watch from the list's version, then resume from the last event or bookmark")
    func happyPath() {
        var machine = machine()
        #expect(machine.start() == .list)
        #expect(machine.listSucceeded(resourceVersion: "10") == .watch(resourceVersion: "10"))
        machine.observed(resourceVersion: "12")
        machine.observed(resourceVersion: "15")  // a bookmark
        #expect(machine.watchEnded(after: .seconds(300), eventCount: 2) == .watch(resourceVersion: "15"))
        #expect(machine.hasSynced)
    }

    @Test("410 Gone relists at once the first time and backs off when it repeats without progress")
    func gone() {
        var machine = machine()
        _ = machine.listSucceeded(resourceVersion: "10")
        #expect(machine.watchFailed(gone: true) == .list)
        _ = machine.listSucceeded(resourceVersion: "11")
        #expect(machine.watchFailed(gone: true) == .wait(.seconds(1), then: .list))
    }

    @Test("failures back off exponentially and a watch that closes at once with nothing is a failure")
    func noHotLoop() {
        var machine = machine()
        #expect(machine.listFailed() == .wait(.seconds(1), then: .list))
        #expect(machine.listFailed() == .wait(.seconds(2), then: .list))
        #expect(machine.listFailed(retryAfter: .seconds(7)) == .wait(.seconds(7), then: .list))
        #expect(machine.listSucceeded(resourceVersion: "5") == .watch(resourceVersion: "5"))
        #expect(machine.watchEnded(after: .milliseconds(10), eventCount: 0) == .wait(.seconds(1), then: .watch(resourceVersion: "5")))
        #expect(machine.watchFailed(gone: false) == .wait(.seconds(2), then: .watch(resourceVersion: "5")))
        #expect(machine.watchFailed(gone: false) == .wait(.seconds(4), then: .watch(resourceVersion: "5")))
        #expect(machine.watchFailed(gone: false) == .wait(.seconds(8), then: .watch(resourceVersion: "5")))
        #expect(machine.watchFailed(gone: false) == .wait(.seconds(8), then: .watch(resourceVersion: "5")))
        #expect(machine.watchEnded(after: .seconds(60), eventCount: 0) == .watch(resourceVersion: "5"))
        #expect(machine.watchFailed(gone: false) == .wait(.seconds(1), then: .watch(resourceVersion: "5")))
    }
}
