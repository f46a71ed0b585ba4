import Foundation
import KubeAPI
import NIOCore

/// Server-side printing as the real apiserver does it for `kubectl get`: when a GET or LIST asks for
/// `application/json;as=Table;v=v1;g=meta.k8s.io`, the answer is a `meta.k8s.io/v1` Table with the columns the
/// Kubernetes printers define (priority 1 columns are the ones `-o wide` adds).
enum TablePrinter {
    struct Column: Sendable {
        var name: String
        var type = "string"
        var format = ""
        var priority = 0
        var cell: @Sendable (JSONValue, Date) -> JSONValue
    }

    /// True when the Accept header asks for a Table.
    static func wantsTable(_ accept: String?) -> Bool {
        accept?.contains("as=Table") == true
    }

    /// A Table of `objects` (the items of a list, or one object).
    static func table(plural: String, objects: [JSONValue], resourceVersion: String?, now: Date = Date()) -> JSONValue {
        let columns = columns(for: plural)
        let definitions: [JSONValue] = columns.map { column in
            ["name": .string(column.name), "type": .string(column.type), "format": .string(column.format), "description": "",
             "priority": .integer(Int64(column.priority))]
        }
        let rows: [JSONValue] = objects.map { object in
            var metadata = object["metadata"] ?? [:]
            metadata["managedFields"] = nil
            return [
                "cells": .array(columns.map { $0.cell(object, now) }),
                "object": ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata],
            ]
        }
        var metadata: JSONValue = [:]
        if let resourceVersion { metadata["resourceVersion"] = .string(resourceVersion) }
        return ["kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": .array(definitions), "rows": .array(rows)]
    }

    /// A watch event frame with its object as a one-row Table (ERROR and BOOKMARK events pass unchanged).
    static func tableFrame(_ frame: ByteBuffer, plural: String) -> ByteBuffer {
        guard let event = try? JSONValue.parse(frame.readableBytesView), let type = event["type"]?.stringValue,
            ["ADDED", "MODIFIED", "DELETED"].contains(type), let object = event["object"]
        else { return frame }
        let table = table(plural: plural, objects: [object], resourceVersion: object[path: ["metadata", "resourceVersion"]]?.stringValue)
        return Store.eventFrame(type: type, object: table)
    }

    // MARK: Columns per resource (pkg/printers/internalversion/printers.go)

    private static let name = Column(name: "Name", format: "name") { object, _ in .string(object["metadata"]?["name"]?.stringValue ?? "") }
    private static let age = Column(name: "Age") { object, now in .string(age(object, now)) }

    static func columns(for plural: String) -> [Column] {
        switch plural {
        case "nodes":
            return [
                name,
                Column(name: "Status") { object, _ in .string(nodeStatus(object)) },
                Column(name: "Roles") { object, _ in .string(nodeRoles(object)) },
                age,
                Column(name: "Version") { object, _ in .string(object[path: ["status", "nodeInfo", "kubeletVersion"]]?.stringValue ?? "") },
                Column(name: "Internal-IP", priority: 1) { object, _ in .string(nodeAddress(object, "InternalIP")) },
                Column(name: "External-IP", priority: 1) { object, _ in .string(nodeAddress(object, "ExternalIP")) },
                Column(name: "OS-Image", priority: 1) { object, _ in .string(object[path: ["status", "nodeInfo", "osImage"]]?.stringValue ?? "<unknown>") },
                Column(name: "Kernel-Version", priority: 1) { object, _ in
                    .string(object[path: ["status", "nodeInfo", "kernelVersion"]]?.stringValue ?? "<unknown>")
                },
                Column(name: "Container-Runtime", priority: 1) { object, _ in
                    .string(object[path: ["status", "nodeInfo", "containerRuntimeVersion"]]?.stringValue ?? "<unknown>")
                },
            ]
        case "leases":
            return [name, Column(name: "Holder") { object, _ in .string(object[path: ["spec", "holderIdentity"]]?.stringValue ?? "") }, age]
        case "pods":
            return [
                name,
                Column(name: "Ready") { object, _ in .string(podReady(object)) },
                Column(name: "Status") { object, _ in .string(podStatus(object)) },
                Column(name: "Restarts", type: "string") { object, _ in .string(podRestarts(object)) },
                age,
                Column(name: "IP", priority: 1) { object, _ in .string(object[path: ["status", "podIP"]]?.stringValue ?? "<none>") },
                Column(name: "Node", priority: 1) { object, _ in .string(object[path: ["spec", "nodeName"]]?.stringValue ?? "<none>") },
                Column(name: "Nominated Node", priority: 1) { object, _ in .string(object[path: ["status", "nominatedNodeName"]]?.stringValue ?? "<none>") },
                Column(name: "Readiness Gates", priority: 1) { object, _ in
                    let gates = object[path: ["spec", "readinessGates"]]?.arrayValue ?? []
                    return .string(gates.isEmpty ? "<none>" : "\(gates.count)")
                },
            ]
        case "services":
            return [
                name,
                Column(name: "Type") { object, _ in .string(object[path: ["spec", "type"]]?.stringValue ?? "ClusterIP") },
                Column(name: "Cluster-IP") { object, _ in .string(object[path: ["spec", "clusterIP"]]?.stringValue ?? "<none>") },
                Column(name: "External-IP") { object, _ in .string(serviceExternalIPs(object)) },
                Column(name: "Port(s)") { object, _ in .string(servicePorts(object)) },
                age,
                Column(name: "Selector", priority: 1) { object, _ in .string(selector(object[path: ["spec", "selector"]])) },
            ]
        case "endpointslices":
            return [
                name,
                Column(name: "AddressType") { object, _ in .string(object["addressType"]?.stringValue ?? "") },
                Column(name: "Ports") { object, _ in
                    let ports = (object["ports"]?.arrayValue ?? []).compactMap { $0["port"]?.integerValue.map(String.init) }
                    return .string(ports.isEmpty ? "<unset>" : ports.joined(separator: ","))
                },
                Column(name: "Endpoints") { object, _ in
                    let addresses = (object["endpoints"]?.arrayValue ?? []).flatMap { $0["addresses"]?.arrayValue ?? [] }.compactMap(\.stringValue)
                    let shown = addresses.prefix(3).joined(separator: ",")
                    return .string(addresses.isEmpty ? "<unset>" : addresses.count > 3 ? shown + " + \(addresses.count - 3) more..." : shown)
                },
                age,
            ]
        default:
            return [name, age]
        }
    }

    // MARK: Cells

    private static func nodeStatus(_ node: JSONValue) -> String {
        let conditions = node[path: ["status", "conditions"]]?.arrayValue ?? []
        var status: String
        switch conditions.first(where: { $0["type"]?.stringValue == "Ready" })?["status"]?.stringValue {
        case "True": status = "Ready"
        case "False": status = "NotReady"
        default: status = "Unknown"
        }
        if node[path: ["spec", "unschedulable"]] == .bool(true) { status += ",SchedulingDisabled" }
        return status
    }

    private static func nodeRoles(_ node: JSONValue) -> String {
        let labels = node[path: ["metadata", "labels"]]?.objectValue ?? [:]
        var roles = labels.keys.filter { $0.hasPrefix("node-role.kubernetes.io/") }.map { String($0.dropFirst("node-role.kubernetes.io/".count)) }
        if let role = labels["kubernetes.io/role"]?.stringValue { roles.append(role) }
        return roles.isEmpty ? "<none>" : roles.sorted().joined(separator: ",")
    }

    private static func nodeAddress(_ node: JSONValue, _ type: String) -> String {
        (node[path: ["status", "addresses"]]?.arrayValue ?? []).first { $0["type"]?.stringValue == type }?["address"]?.stringValue ?? "<none>"
    }

    private static func podReady(_ pod: JSONValue) -> String {
        let total = pod[path: ["spec", "containers"]]?.arrayValue?.count ?? 0
        let ready = (pod[path: ["status", "containerStatuses"]]?.arrayValue ?? []).filter { $0["ready"] == .bool(true) }.count
        return "\(ready)/\(total)"
    }

    private static func podRestarts(_ pod: JSONValue) -> String {
        let restarts = (pod[path: ["status", "containerStatuses"]]?.arrayValue ?? []).compactMap { $0["restartCount"]?.integerValue }.reduce(0, +)
        return "\(restarts)"
    }

    /// As kubectl's printPod: the phase or reason, overridden by init progress, a waiting/terminated container's
    /// reason, and Terminating for a pod being deleted.
    private static func podStatus(_ pod: JSONValue) -> String {
        var reason = pod[path: ["status", "reason"]]?.stringValue ?? pod[path: ["status", "phase"]]?.stringValue ?? "Pending"
        let initTotal = pod[path: ["spec", "initContainers"]]?.arrayValue?.count ?? 0
        for (index, status) in (pod[path: ["status", "initContainerStatuses"]]?.arrayValue ?? []).enumerated() {
            if let terminated = status[path: ["state", "terminated"]], terminated["exitCode"]?.integerValue == 0 { continue }
            if let terminated = status[path: ["state", "terminated"]] {
                reason = "Init:" + (terminated["reason"]?.stringValue ?? "ExitCode:\(terminated["exitCode"]?.integerValue ?? 0)")
            } else if let waiting = status[path: ["state", "waiting"]]?["reason"]?.stringValue, waiting != "PodInitializing" {
                reason = "Init:\(waiting)"
            } else {
                reason = "Init:\(index)/\(initTotal)"
            }
            return reason
        }
        for status in (pod[path: ["status", "containerStatuses"]]?.arrayValue ?? []).reversed() {
            if let waiting = status[path: ["state", "waiting"]]?["reason"]?.stringValue, !waiting.isEmpty {
                reason = waiting
            } else if let terminated = status[path: ["state", "terminated"]] {
                reason = terminated["reason"]?.stringValue ?? "ExitCode:\(terminated["exitCode"]?.integerValue ?? 0)"
            }
        }
        if pod[path: ["metadata", "deletionTimestamp"]] != nil { reason = "Terminating" }
        return reason
    }

    private static func serviceExternalIPs(_ service: JSONValue) -> String {
        var ips = (service[path: ["spec", "externalIPs"]]?.arrayValue ?? []).compactMap(\.stringValue)
        ips += (service[path: ["status", "loadBalancer", "ingress"]]?.arrayValue ?? []).compactMap { $0["ip"]?.stringValue ?? $0["hostname"]?.stringValue }
        if ips.isEmpty { return service[path: ["spec", "type"]]?.stringValue == "LoadBalancer" ? "<pending>" : "<none>" }
        return ips.joined(separator: ",")
    }

    private static func servicePorts(_ service: JSONValue) -> String {
        let ports = (service[path: ["spec", "ports"]]?.arrayValue ?? []).map { port -> String in
            var text = "\(port["port"]?.integerValue ?? 0)"
            if let nodePort = port["nodePort"]?.integerValue { text += ":\(nodePort)" }
            return text + "/" + (port["protocol"]?.stringValue ?? "TCP")
        }
        return ports.isEmpty ? "<none>" : ports.joined(separator: ",")
    }

    private static func selector(_ value: JSONValue?) -> String {
        guard let pairs = value?.objectValue, !pairs.isEmpty else { return "<none>" }
        return pairs.keys.sorted().map { "\($0)=\(pairs[$0]?.stringValue ?? "")" }.joined(separator: ",")
    }

    private static func age(_ object: JSONValue, _ now: Date) -> String {
        guard let text = object[path: ["metadata", "creationTimestamp"]]?.stringValue, let created = RFC3339.parse(text) else { return "<unknown>" }
        return humanDuration(now.timeIntervalSince(created))
    }

    /// Kubernetes' `duration.HumanDuration`: `45s`, `3m20s`, `12m`, `5h10m`, `3d4h`, `12d`, `2y30d`.
    static func humanDuration(_ interval: TimeInterval) -> String {
        let seconds = Int(interval.rounded(.down))
        if seconds < 0 { return "0s" }
        if seconds < 60 * 2 { return "\(seconds)s" }
        let minutes = seconds / 60
        if minutes < 10 { return seconds % 60 == 0 ? "\(minutes)m" : "\(minutes)m\(seconds % 60)s" }
        if minutes < 60 * 3 { return "\(minutes)m" }
        let hours = minutes / 60
        if hours < 8 { return minutes % 60 == 0 ? "\(hours)h" : "\(hours)h\(minutes % 60)m" }
        if hours < 48 { return "\(hours)h" }
        if hours < 24 * 8 { return hours % 24 == 0 ? "\(hours / 24)d" : "\(hours / 24)d\(hours % 24)h" }
        if hours < 24 * 365 * 2 { return "\(hours / 24)d" }
        if hours < 24 * 365 * 8 { return (hours / 24) % 365 == 0 ? "\(hours / 24 / 365)y" : "\(hours / 24 / 365)y\((hours / 24) % 365)d" }
        return "\(hours / 24 / 365)y"
    }
}
