// Jobs on disk, under the registry root, hidden from the registry's listing (a leading dot):
//
//   <root>/.jobs/<job id>/job.json      the record (JobRecord.json), rewritten atomically at each change
//   <root>/.jobs/<job id>/events.jsonl  the event log, one JSON object per line, appended
//   <root>/.jobs/<job id>/train.jsonl   rows sent in the request (and eval.jsonl), as the trainer reads them
//   <root>/.jobs/files/<file id>/       an upload (POST /v1/files): file.json and data.jsonl
//
// An upload is written data first, file.json last, so a file.json means a complete upload; its
// deletion renames the directory aside (`.deleted-<file id>`, which no lookup or listing reads)
// before removing it, so a file is gone at once or not at all.
//
// Everything here reads or writes files, so it runs on the jobs queue, never on the loop. At
// start-up (before any socket exists) `recover` reads every job back; one left `queued` or
// `running` by a daemon that died is marked `failed` ("daemon restarted"): the registry's publish
// is atomic, so such a job published nothing.

import Foundation
import JSON
import SystemCalls

enum JobStore {
    static func jobsDirectory(root: String) -> String { root + "/.jobs" }
    static func directory(root: String, id: String) -> String { jobsDirectory(root: root) + "/" + id }
    static func filesDirectory(root: String) -> String { jobsDirectory(root: root) + "/files" }

    /// A fresh id with OpenAI's prefix (`ftjob-`, `file-`): 24 random hex digits.
    static func newID(prefix: String) -> String {
        let hex = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        return prefix + String(hex.prefix(24))
    }

    static func isID(_ s: String, prefix: String) -> Bool {
        s.hasPrefix(prefix) && s.count == prefix.count + 24 && s.dropFirst(prefix.count).allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    static func write(_ record: JobRecord, root: String) throws {
        let dir = directory(root: root, id: record.id)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data((record.json.serialized() + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/job.json"), options: .atomic)
    }

    static func append(_ event: JobEvent, jobID: String, root: String) throws {
        let path = directory(root: root, id: jobID) + "/events.jsonl"
        let line = Array((event.json(jobID: jobID).serialized() + "\n").utf8)
        let fd = try Posix.open(path, O_WRONLY | O_CREAT | O_APPEND, mode: 0o644)
        defer { try? Posix.close(fd) }
        try Posix.writeAll(fd, line)
    }

    /// Every job under `root`, oldest first, with the unfinished ones marked failed (and rewritten).
    /// A directory without a readable job.json is skipped.
    static func recover(root: String) -> (jobs: [JobRecord], restarted: [String]) {
        let base = jobsDirectory(root: root)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return ([], []) }
        var out: [JobRecord] = [], restarted: [String] = []
        for name in names where isID(name, prefix: "ftjob-") {
            guard let data = FileManager.default.contents(atPath: base + "/" + name + "/job.json"),
                  let json = try? JSONValue.parse(Array(data)), var record = JobRecord(json: json), record.id == name else { continue }
            if !record.status.isTerminal {
                record.status = .failed
                record.finishedAt = Date().timeIntervalSince1970
                record.errorCode = "daemon_restarted"
                record.errorMessage = "the daemon restarted before the job finished; nothing was published (submit it again)"
                try? write(record, root: root)
                try? append(JobEvent(sequence: 1_000_000, createdAt: Date().timeIntervalSince1970, level: "error",
                                     message: "failed: daemon restarted", type: "message", data: .null, status: .failed),
                            jobID: name, root: root)
                restarted.append(name)
            }
            out.append(record)
        }
        out.sort { $0.createdAt < $1.createdAt || ($0.createdAt == $1.createdAt && $0.id < $1.id) }
        return (out, restarted)
    }

    /// A job's event log as written (for a job read back at start-up).
    static func events(jobID: String, root: String) -> [JobEvent] {
        guard let data = FileManager.default.contents(atPath: directory(root: root, id: jobID) + "/events.jsonl") else { return [] }
        var out: [JobEvent] = []
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard let j = try? JSONValue.parse(Array(line)) else { continue }
            out.append(JobEvent(sequence: out.count, createdAt: j["created_at"]?.doubleValue ?? 0, level: j["level"]?.stringValue ?? "info",
                                message: j["message"]?.stringValue ?? "", type: j["type"]?.stringValue ?? "message", data: j["data"] ?? .null,
                                status: j["status"]?.stringValue.flatMap(JobStatus.init(rawValue:)) ?? .failed))
        }
        return out
    }

    // MARK: Uploaded files

    struct FileRecord: Sendable {
        let id: String
        let bytes: Int
        let createdAt: Int
        let filename: String
        let purpose: String
        let owner: String?
        /// When it was stored, to the microsecond (file.json's `stored_at`): what orders a listing,
        /// which the second-granular `created_at` cannot.
        let storedAt: Double

        var json: JSONValue {
            .object([("id", .string(id)), ("object", .string("file")), ("bytes", .int(bytes)), ("created_at", .int(createdAt)),
                     ("filename", .string(filename)), ("purpose", .string(purpose)), ("status", .string("processed")),
                     ("status_details", .null), ("expires_at", .null)])
        }
    }

    static func saveFile(_ content: ArraySlice<UInt8>, filename: String, purpose: String, owner: String?, root: String) throws -> FileRecord {
        let id = newID(prefix: "file-")
        let dir = filesDirectory(root: root) + "/" + id
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data(content).write(to: URL(fileURLWithPath: dir + "/data.jsonl"), options: .atomic)
        let now = Date().timeIntervalSince1970
        let record = FileRecord(id: id, bytes: content.count, createdAt: Int(now), filename: filename, purpose: purpose, owner: owner,
                                storedAt: now)
        var meta = record.json.objectMembers ?? []
        meta.append(("owner", record.owner.map(JSONValue.string) ?? .null))
        meta.append(("stored_at", .double(now)))
        try Data(JSONValue.object(meta).serialized().utf8).write(to: URL(fileURLWithPath: dir + "/file.json"), options: .atomic)
        return record
    }

    /// An uploaded file's record and data path, when it exists and `owner` may read it (an admin,
    /// `owner` nil, reads every file).
    static func file(_ id: String, owner: String?, root: String) -> (FileRecord, String)? {
        guard isID(id, prefix: "file-") else { return nil }
        let dir = filesDirectory(root: root) + "/" + id
        guard let data = FileManager.default.contents(atPath: dir + "/file.json"), let j = try? JSONValue.parse(Array(data)) else { return nil }
        let record = FileRecord(id: id, bytes: j["bytes"]?.intValue ?? 0, createdAt: j["created_at"]?.intValue ?? 0,
                                filename: j["filename"]?.stringValue ?? "", purpose: j["purpose"]?.stringValue ?? "",
                                owner: j["owner"]?.stringValue, storedAt: j["stored_at"]?.doubleValue ?? Double(j["created_at"]?.intValue ?? 0))
        if let owner, record.owner != owner { return nil }
        return (record, dir + "/data.jsonl")
    }

    /// The uploaded files `owner` may read (nil: every file), newest first.
    static func files(owner: String?, root: String) -> [FileRecord] {
        let base = filesDirectory(root: root)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return [] }
        let found = names.filter { isID($0, prefix: "file-") }.compactMap { file($0, owner: owner, root: root)?.0 }
        return found.sorted { ($0.storedAt, $0.id) > ($1.storedAt, $1.id) }
    }

    /// Removes upload `id` (an id `file(_:owner:root:)` found): one rename takes it out of every
    /// lookup (the deletion is done once it succeeds), then the renamed directory is removed, with
    /// any that an earlier removal failed to remove.
    static func deleteFile(_ id: String, root: String) throws {
        guard isID(id, prefix: "file-") else { return }
        let base = filesDirectory(root: root)
        try Posix.rename(base + "/" + id, to: base + "/.deleted-" + id)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where name.hasPrefix(".deleted-file-") {
            try? FileManager.default.removeItem(atPath: base + "/" + name)
        }
    }
}
