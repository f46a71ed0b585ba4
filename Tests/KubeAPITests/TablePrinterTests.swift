import Foundation
import KubeAPI
import Testing

@testable import NodeAgentTesting

@Suite("The double's server-side Table printing")
struct TablePrinterTests {
    @Test("ages read as Kubernetes' HumanDuration writes them")
    func humanDuration() {
        #expect(TablePrinter.humanDuration(45) == "45s")
        #expect(TablePrinter.humanDuration(119) == "119s")
        #expect(TablePrinter.humanDuration(200) == "3m20s")
        #expect(TablePrinter.humanDuration(12 * 60 + 5) == "12m")
        #expect(TablePrinter.humanDuration(5 * 3600 + 600) == "5h10m")
        #expect(TablePrinter.humanDuration(30 * 3600) == "30h")
        #expect(TablePrinter.humanDuration(3 * 86400 + 4 * 3600) == "3d4h")
        #expect(TablePrinter.humanDuration(40 * 86400) == "40d")
    }

    @Test("node and pod rows carry the kubectl columns")
    func rows() throws {
        let node: JSONValue = [
            "metadata": ["name": "n1", "labels": ["node-role.kubernetes.io/worker": ""], "creationTimestamp": "2026-01-01T00:00:00Z"],
            "spec": ["unschedulable": true],
            "status": [
                "conditions": [["type": "Ready", "status": "True"]],
                "nodeInfo": ["kubeletVersion": "v1.32.0", "osImage": "Debian", "kernelVersion": "6.1", "containerRuntimeVersion": "containerd://1.6"],
                "addresses": [["type": "InternalIP", "address": "10.0.0.5"]],
            ],
        ]
        let now = RFC3339.parse("2026-01-01T00:00:30Z")!
        let nodeTable = TablePrinter.table(plural: "nodes", objects: [node], resourceVersion: "7", now: now)
        #expect(nodeTable["rows"]?.arrayValue?.first?["cells"] == [
            "n1", "Ready,SchedulingDisabled", "worker", "30s", "v1.32.0", "10.0.0.5", "<none>", "Debian", "6.1", "containerd://1.6",
        ])
        let pod: JSONValue = [
            "metadata": ["name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"],
            "spec": ["containers": [["name": "a"], ["name": "b"]], "nodeName": "n1"],
            "status": [
                "phase": "Running", "podIP": "10.88.0.4",
                "containerStatuses": [
                    ["name": "a", "ready": true, "restartCount": 2, "state": ["running": [:]]],
                    ["name": "b", "ready": false, "restartCount": 1, "state": ["waiting": ["reason": "CrashLoopBackOff"]]],
                ],
            ],
        ]
        let podTable = TablePrinter.table(plural: "pods", objects: [pod], resourceVersion: nil, now: now)
        #expect(podTable["rows"]?.arrayValue?.first?["cells"] == ["p", "1/2", "CrashLoopBackOff", "3", "30s", "10.88.0.4", "n1", "<none>", "<none>"])
        #expect(podTable["kind"] == "Table")
        #expect(podTable["columnDefinitions"]?.arrayValue?.count == 9)
    }
}
