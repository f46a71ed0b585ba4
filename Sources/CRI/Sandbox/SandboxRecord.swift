import Foundation

/// What the runtime keeps on disk per sandbox (`<state>/sandboxes/<id>/sandbox.json`), beside the namespaces it
/// names: enough to tear networking down after a crash (the CNI config and result, like libcni's cache) and to
/// rebuild the sandbox's status after a restart.
struct SandboxRecord: Codable, Sendable {
    enum Phase: String, Codable, Sendable {
        /// Written before anything is made; a record still in this phase at start-up was cut short by a crash.
        case creating
        case ready
        case stopped
    }

    var status: PodSandboxStatus
    var phase: Phase
    var netnsName: String?
    var utsPath: String?
    var ipcPath: String?
    /// The network list used for ADD (raw file contents) and where it came from.
    var cniConfig: String?
    var cniSource: String?
    /// The CNI result JSON, passed as `prevResult` on CHECK and DEL.
    var cniResult: String?
}

/// The sandboxes folder: one subfolder per sandbox with its record and files (hostname, hosts, resolv.conf).
struct SandboxStore: Sendable {
    let root: String

    func directory(_ id: String) -> String { "\(root)/\(id)" }

    func save(_ record: SandboxRecord) throws {
        let directory = directory(record.status.id)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .secondsSince1970
        let data = try encoder.encode(record)
        let temporary = directory + "/sandbox.json.tmp"
        try data.write(to: URL(fileURLWithPath: temporary))
        _ = rename(temporary, directory + "/sandbox.json")
    }

    func load(_ id: String) -> SandboxRecord? {
        guard let data = FileManager.default.contents(atPath: directory(id) + "/sandbox.json") else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try? decoder.decode(SandboxRecord.self, from: data)
    }

    /// Every sandbox folder's ID (with or without a readable record).
    func ids() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted()
    }

    func remove(_ id: String) {
        try? FileManager.default.removeItem(atPath: directory(id))
    }

    func write(_ id: String, file: String, contents: String) throws {
        try Data(contents.utf8).write(to: URL(fileURLWithPath: directory(id) + "/" + file))
    }
}
