// KubeAPIBench: decoding cost of a LIST of 10,000 realistic pods and of a stream of 100,000 watch events.
//
// Run: swift run -c release KubeAPIBench [--runs N]
// Each measured run happens in a fresh child process so that peak RSS (VmHWM) belongs to that run alone.
import BenchSupport
import Foundation
import KubeAPI
import Logging

let podCount = 10_000
let eventCount = 100_000
let listTargetSeconds = 1.0
let listTargetMegabytes = 200.0

/// One realistic pod as a kube-apiserver returns it (managedFields included, which the typed model does not know).
func podJSON(_ index: Int) -> String {
    let name = "web-\(index / 10)-\(String(index, radix: 36))"
    let node = "node-\(index % 100)"
    let uid = String(format: "%08x-1b2c-4d5e-8f90-%012x", index, index * 7919)
    return """
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"\(name)","generateName":"web-\(index / 10)-","namespace":"team-\(index % 20)",\
        "uid":"\(uid)","resourceVersion":"\(100000 + index)","creationTimestamp":"2025-03-01T10:\(String(format: "%02d", index % 60)):00Z",\
        "labels":{"app":"web","pod-template-hash":"7d9f8c6b5","tier":"frontend","version":"v\(index % 5)"},\
        "annotations":{"kubectl.kubernetes.io/restartedAt":"2025-03-01T09:00:00Z","prometheus.io/scrape":"true"},\
        "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-\(index / 10)-7d9f8c6b5","uid":"\(uid)","controller":true,"blockOwnerDeletion":true}],\
        "managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2025-03-01T10:00:00Z","fieldsType":"FieldsV1",\
        "fieldsV1":{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{}}},\
        "f:spec":{"f:containers":{"k:{\\"name\\":\\"web\\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{}}}}}},\
        {"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2025-03-01T10:00:05Z","fieldsType":"FieldsV1","subresource":"status",\
        "fieldsV1":{"f:status":{"f:conditions":{},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:podIPs":{},"f:startTime":{}}}}]},\
        "spec":{"volumes":[{"name":"config","configMap":{"name":"web-config","defaultMode":420}},{"name":"cache","emptyDir":{"sizeLimit":"1Gi"}},\
        {"name":"kube-api-access-x7k2p","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},\
        {"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},\
        {"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}],"defaultMode":420}}],\
        "initContainers":[{"name":"migrate","image":"registry.example.com/web/migrate:1.4.2","command":["/bin/migrate","--up"],\
        "resources":{"requests":{"cpu":"50m","memory":"64Mi"}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],\
        "containers":[{"name":"web","image":"registry.example.com/web/server:1.4.2","args":["--port=8080","--log-level=info"],\
        "ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},{"name":"metrics","containerPort":9090,"protocol":"TCP"}],\
        "env":[{"name":"POD_NAME","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}},\
        {"name":"POD_IP","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"status.podIP"}}},{"name":"LOG_FORMAT","value":"json"},\
        {"name":"DB_PASSWORD","valueFrom":{"secretKeyRef":{"name":"db","key":"password"}}},{"name":"CACHE_DIR","value":"/cache"}],\
        "resources":{"limits":{"cpu":"1","memory":"512Mi"},"requests":{"cpu":"250m","memory":"256Mi"}},\
        "volumeMounts":[{"name":"config","mountPath":"/etc/web","readOnly":true},{"name":"cache","mountPath":"/cache"},\
        {"name":"kube-api-access-x7k2p","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],\
        "livenessProbe":{"httpGet":{"path":"/healthz","port":8080,"scheme":"HTTP"},"initialDelaySeconds":10,"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},\
        "readinessProbe":{"httpGet":{"path":"/ready","port":"http","scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":5,"successThreshold":1,"failureThreshold":3},\
        "lifecycle":{"preStop":{"exec":{"command":["/bin/sh","-c","sleep 5"]}}},"terminationMessagePath":"/dev/termination-log",\
        "terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent","securityContext":{"allowPrivilegeEscalation":false,"runAsNonRoot":true,"runAsUser":1000,\
        "capabilities":{"drop":["ALL"]}}},{"name":"sidecar","image":"registry.example.com/proxy:2.0","ports":[{"containerPort":15001,"protocol":"TCP"}],\
        "resources":{"limits":{"memory":"128Mi"},"requests":{"cpu":"10m","memory":"64Mi"}},"terminationMessagePath":"/dev/termination-log",\
        "terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,\
        "dnsPolicy":"ClusterFirst","serviceAccountName":"web","serviceAccount":"web","nodeName":"\(node)","securityContext":{"fsGroup":2000},\
        "schedulerName":"default-scheduler","tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},\
        {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],"priority":0,\
        "enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},\
        "status":{"phase":"Running","conditions":[{"type":"PodReadyToStartContainers","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-03-01T10:00:03Z"},\
        {"type":"Initialized","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-03-01T10:00:04Z"},\
        {"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-03-01T10:00:15Z"},\
        {"type":"ContainersReady","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-03-01T10:00:15Z"},\
        {"type":"PodScheduled","status":"True","lastProbeTime":null,"lastTransitionTime":"2025-03-01T10:00:00Z"}],\
        "hostIP":"10.0.\(index % 100).10","hostIPs":[{"ip":"10.0.\(index % 100).10"}],"podIP":"10.244.\(index % 250).\(index % 200 + 2)",\
        "podIPs":[{"ip":"10.244.\(index % 250).\(index % 200 + 2)"}],"startTime":"2025-03-01T10:00:00Z",\
        "initContainerStatuses":[{"name":"migrate","state":{"terminated":{"exitCode":0,"reason":"Completed","startedAt":"2025-03-01T10:00:01Z",\
        "finishedAt":"2025-03-01T10:00:03Z","containerID":"containerd://\(uid)a"}},"lastState":{},"ready":true,"restartCount":0,\
        "image":"registry.example.com/web/migrate:1.4.2","imageID":"registry.example.com/web/migrate@sha256:3f1c","containerID":"containerd://\(uid)a","started":false}],\
        "containerStatuses":[{"name":"sidecar","state":{"running":{"startedAt":"2025-03-01T10:00:05Z"}},"lastState":{},"ready":true,"restartCount":0,\
        "image":"registry.example.com/proxy:2.0","imageID":"registry.example.com/proxy@sha256:9a8b","containerID":"containerd://\(uid)c","started":true},\
        {"name":"web","state":{"running":{"startedAt":"2025-03-01T10:00:05Z"}},"lastState":{"terminated":{"exitCode":137,"reason":"OOMKilled",\
        "startedAt":"2025-03-01T09:00:00Z","finishedAt":"2025-03-01T09:59:00Z","containerID":"containerd://\(uid)0"}},"ready":true,"restartCount":1,\
        "image":"registry.example.com/web/server:1.4.2","imageID":"registry.example.com/web/server@sha256:7e6d","containerID":"containerd://\(uid)b","started":true}],\
        "qosClass":"Burstable"}}
        """
}

/// Peak resident set size of this process so far, in MB (VmHWM).
func peakRSSMegabytes() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
        return kilobytes / 1024
    }
    return 0
}

/// CPU time this thread has used, in seconds: unlike wall time it barely moves when other processes load the machine.
func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}


/// Child mode: decode the list in `path`; print "seconds peakMB count".
/// `mode` is keep / drop (unknown fields) or foundation (Foundation's JSONDecoder over the same bytes: the anchor).
func decodeList(path: String, mode: String) throws {
    struct FoundationList: Decodable { var items: [Pod] }
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let cpuStart = threadCPUSeconds()
    let items: [Pod]
    if mode == "foundation" {
        items = try JSONDecoder().decode(FoundationList.self, from: data).items
    } else {
        items = try ResourceCodec.decodeList(Pod.self, from: data, keepUnknownFields: mode == "keep").items
    }
    let cpu = threadCPUSeconds() - cpuStart
    precondition(items.count == podCount && items[podCount - 1].status?.containerStatuses?.count == 2)
    print(cpu, peakRSSMegabytes(), items.count)
}

/// Child mode: decode `eventCount` MODIFIED events fed in 64 KiB chunks; print "seconds peakMB count".
func decodeWatch(keepUnknownFields: Bool) {
    var distinct: [UInt8] = []
    for index in 0..<1000 {
        distinct.append(contentsOf: Array(#"{"type":"MODIFIED","object":"#.utf8))
        distinct.append(contentsOf: Array(podJSON(index).utf8))
        distinct.append(contentsOf: Array("}\n".utf8))
    }
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    var decoder = WatchEventDecoder<Pod>(keepUnknownFields: keepUnknownFields, logger: logger)
    let cpuStart = threadCPUSeconds()
    var seen = 0
    let chunk = 64 * 1024
    while seen < eventCount {
        var offset = 0
        while offset < distinct.count, seen < eventCount {
            let end = min(offset + chunk, distinct.count)
            seen += decoder.feed(distinct[offset..<end]).count
            offset = end
        }
    }
    let cpu = threadCPUSeconds() - cpuStart
    precondition(decoder.skipped == 0)
    print(cpu, peakRSSMegabytes(), seen)
}

func runChild(_ arguments: [String]) throws -> (seconds: Double, megabytes: Double) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let fields = output.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) }
    guard process.terminationStatus == 0, fields.count >= 2 else { fatalError("child \(arguments) failed: \(output)") }
    return (fields[0], fields[1])
}


let arguments = CommandLine.arguments
if arguments.count >= 3, arguments[1] == "--child-list" {
    try decodeList(path: arguments[2], mode: arguments.count >= 4 ? arguments[3] : "keep")
    exit(0)
}
if arguments.count >= 2, arguments[1] == "--child-watch" {
    decodeWatch(keepUnknownFields: arguments.count < 3 || arguments[2] != "drop")
    exit(0)
}
if arguments.count >= 2, arguments[1] == "--profile" {
    // A short loop for callgrind: decode one pod 300 times.
    let data = Data(podJSON(1).utf8)
    for _ in 0..<3000 { _ = try ResourceCodec.decode(Pod.self, from: data, keepUnknownFields: false) }
    exit(0)
}
if arguments.count >= 2, arguments[1] == "--probe" {
    // Where the time goes: one pod decoded 2,000 times in several ways.
    struct MetaOnly: Decodable { var metadata: ObjectMeta }
    struct SpecOnly: Decodable { var spec: PodSpec }
    struct StatusOnly: Decodable { var status: PodStatus }
    let data = Data(podJSON(1).utf8)
    print("sizes: Pod \(MemoryLayout<Pod>.size) PodSpec \(MemoryLayout<PodSpec>.size) Container \(MemoryLayout<Container>.size) Probe \(MemoryLayout<Probe>.size) PodStatus \(MemoryLayout<PodStatus>.size) ContainerStatus \(MemoryLayout<ContainerStatus>.size) ObjectMeta \(MemoryLayout<ObjectMeta>.size) Volume \(MemoryLayout<Volume>.size) EnvVar \(MemoryLayout<EnvVar>.size) SecurityContext \(MemoryLayout<SecurityContext>.size)")
    let clock = ContinuousClock()
    func time(_ label: String, _ body: () throws -> Void) rethrows {
        let start = clock.now
        for _ in 0..<2000 { try body() }
        print(label, String(format: "%.1f us/pod", Bench.seconds(clock.now - start) / 2000 * 1e6))
    }
    let shared = JSONDecoder()
    try time("JSONValue (generic)") { _ = try shared.decode(JSONValue.self, from: data) }
    try time("Pod, ResourceCodec (tape)") { _ = try ResourceCodec.decode(Pod.self, from: data, keepUnknownFields: false) }
    try time("Pod, Foundation JSONDecoder") { _ = try shared.decode(Pod.self, from: data) }
    try time("metadata only") { _ = try shared.decode(MetaOnly.self, from: data) }
    try time("spec only") { _ = try shared.decode(SpecOnly.self, from: data) }
    try time("status only") { _ = try shared.decode(StatusOnly.self, from: data) }
    try time("10 quantities") { for _ in 0..<10 { _ = try Quantity("512Mi") } }
    try time("10 RFC 3339 times") { for _ in 0..<10 { _ = RFC3339.parse("2025-03-01T10:00:05Z") } }
    try time("JSONSerialization") { _ = try JSONSerialization.jsonObject(with: data) }
    exit(0)
}
var runs = 5
if let index = arguments.firstIndex(of: "--runs"), index + 1 < arguments.count, let value = Int(arguments[index + 1]) { runs = max(1, value) }

/// Writes the LIST body of `podCount` pods to `path`.
func writeList(to path: String) throws {
    var text = #"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"200000"},"items":["#
    text.reserveCapacity(podCount * 6000)
    for index in 0..<podCount {
        if index > 0 { text += "," }
        text += podJSON(index)
    }
    text += "]}"
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}
if arguments.count >= 3, arguments[1] == "--write-list" {
    // For profiling one decode: KubeAPIBench --write-list F; perf stat KubeAPIBench --child-list F keep
    try writeList(to: arguments[2])
    exit(0)
}

// The LIST body, written once to a temporary file.
let listPath = NSTemporaryDirectory() + "nakube-bench-podlist-\(getpid()).json"
try writeList(to: listPath)
defer { try? FileManager.default.removeItem(atPath: listPath) }
let listBytes = (try? FileManager.default.attributesOfItem(atPath: listPath)[.size] as? Int) ?? 0

let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first ?? "?"
print("KubeAPIBench: \(runs) runs each, medians; each run in a fresh process (peak RSS = VmHWM of that process)")
print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(load) at start (timings scale with load)")
print("LIST of \(podCount) pods: \(String(format: "%.1f", Double(listBytes) / 1_048_576)) MB of JSON, \(listBytes / podCount) bytes per pod")
print("")
print("time = CPU seconds of the decoding thread (CLOCK_THREAD_CPUTIME_ID), robust to other load on the machine")
print("case                                  time (s)   target   ratio   peak RSS (MB)   target   ratio")
var foundationTime = 0.0
for (label, mode) in [
    ("LIST, Foundation JSONDecoder (anchor)", "foundation"), ("LIST decode, unknown fields kept", "keep"),
    ("LIST decode, unknown fields dropped", "drop"),
] {
    var times: [Double] = []
    var peaks: [Double] = []
    for _ in 0..<runs {
        let (time, peak) = try runChild(["--child-list", listPath, mode])
        times.append(time)
        peaks.append(peak)
    }
    let time = Bench.median(times)
    let peak = Bench.median(peaks)
    if mode == "foundation" { foundationTime = time }
    print(
        label.padding(toLength: 38, withPad: " ", startingAt: 0)
            + String(format: "%8.3f   %6.1f   %5.2f   %13.1f   %6.0f   %5.2f", time, listTargetSeconds, time / listTargetSeconds, peak, listTargetMegabytes, peak / listTargetMegabytes)
            + (mode == "foundation" ? "" : String(format: "   (%.2fx faster than the anchor)", foundationTime / time)))
}
for (label, mode) in [("WATCH \(eventCount) events, unknown kept", "keep"), ("WATCH \(eventCount) events, dropped", "drop")] {
    var times: [Double] = []
    var peaks: [Double] = []
    for _ in 0..<runs {
        let (time, peak) = try runChild(["--child-watch", mode])
        times.append(time)
        peaks.append(peak)
    }
    let time = Bench.median(times)
    print(
        label.padding(toLength: 38, withPad: " ", startingAt: 0)
            + String(format: "%8.3f        -       -   %13.1f        -       -   (%.0f events/s)", time, Bench.median(peaks), Double(eventCount) / time))
}
