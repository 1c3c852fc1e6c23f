// The training-job routes (README "Training jobs"): lorad's own
//
//   POST   /v1/adapters/{name}/train   a job for one adapter (202 with the job)
//   GET    /v1/jobs, /v1/jobs/{id}     the caller's jobs
//   GET    /v1/jobs/{id}/events        progress as Server-Sent Events until the job ends
//   DELETE /v1/jobs/{id}               cancel
//
// and OpenAI's fine-tuning shape over the same jobs, so the official client works unchanged:
// `POST /v1/files` (purpose fine-tune, multipart), `GET /v1/files` (newest first, `purpose`
// filter), `GET /v1/files/{id}`, `GET /v1/files/{id}/content` (the bytes as uploaded),
// `DELETE /v1/files/{id}` (409 while a queued or running job trains or evaluates on it),
// `POST/GET /v1/fine_tuning/jobs`, `GET /v1/fine_tuning/jobs/{id}`,
// `POST /v1/fine_tuning/jobs/{id}/cancel`, `GET /v1/fine_tuning/jobs/{id}/events` (a list, newest
// first, as OpenAI's). Every file route reads or writes the disk on the jobs queue, never on the loop.
//
// Who may: an admin, or a tenant with `may_publish` for adapters its patterns cover (RouteAccess
// `.publish` where the adapter is in the path, `.publishers` where it is in the body, checked
// here). A tenant sees only its own jobs and files: another's answers exactly as a missing one.

import Foundation
import HTTP
import JSON

extension Endpoints {
    func registerJobs(on router: Router, _ jobs: JobManager, maxUploadBytes: @escaping () -> Int) {
        let upload = Route.BodyLimit(setting: "admin.max_upload_bytes", bytes: maxUploadBytes)
        router.add("POST", "/v1/adapters/{name}/train", access: .publish, maxBodyBytes: upload) { [unowned self] r in
            let name = r.parameters["name"] ?? "", body = r.http.body
            let (owner, isAdmin) = Self.jobOwner(r)
            submitJob(r, jobs, status: 202) { try JobSpec.parse(adapter: name, body: body, owner: owner, mayUsePaths: isAdmin) }
        }
        router.add("GET", "/v1/jobs", access: .publishers) { [unowned self] r in
            let (owner, all) = Self.jobOwner(r)
            respondJob(r, .object([("object", .string("list")),
                                   ("data", .array(jobs.jobs(visibleTo: owner, all: all).map(\.json))), ("has_more", .bool(false))]))
        }
        router.add("GET", "/v1/jobs/{id}", access: .publishers) { [unowned self] r in
            withJob(r, jobs) { respondJob(r, $0.json) }
        }
        router.add("DELETE", "/v1/jobs/{id}", access: .publishers) { [unowned self] r in
            withJob(r, jobs) { respondJob(r, (jobs.cancel($0.id) ?? $0).json) }
        }
        router.add("GET", "/v1/jobs/{id}/events", access: .publishers) { [unowned self] r in
            withJob(r, jobs) { job in
                let id = job.id
                let stream = JobEventStream(r, responder: responder, final: { jobs.records[id]?.json },
                                            leave: { jobs.unwatch(id, $0) })
                jobs.watch(id, stream)
            }
        }

        router.add("POST", "/v1/files", access: .publishers, maxBodyBytes: upload) { [unowned self] r in
            let body = r.http.body, contentType = r.http.headers["Content-Type"]
            let (owner, _) = Self.jobOwner(r)
            let root = registryAccess?.root() ?? ""
            work.run(on: jobs.jobsQueue, { () -> Result<JSONValue, OpenAIError> in
                do { return .success(try Self.saveUpload(body, contentType: contentType, owner: owner, root: root).json) } catch {
                    return .failure(error as? OpenAIError ?? .internal("the file could not be stored: \(error)"))
                }
            }, then: { [unowned self] result in
                switch result {
                case .success(let json): respondJob(r, json)
                case .failure(let e): failJob(r, e)
                }
            })
        }
        router.add("GET", "/v1/files", access: .publishers) { [unowned self] r in
            let (owner, _) = Self.jobOwner(r)
            let purpose = Self.queryValue("purpose", in: r.http.query)
            onFiles(r, jobs, { root in
                let files = JobStore.files(owner: owner, root: root).filter { purpose == nil || $0.purpose == purpose }
                return .success(.object([("object", .string("list")), ("data", .array(files.map(\.json))), ("has_more", .bool(false))]))
            }, then: { [unowned self] json in respondJob(r, json) })
        }
        router.add("GET", "/v1/files/{id}", access: .publishers) { [unowned self] r in
            withFile(r, jobs, { file, _, _ in .success(file.json) }, then: { [unowned self] json in respondJob(r, json) })
        }
        router.add("GET", "/v1/files/{id}/content", access: .publishers) { [unowned self] r in
            withFile(r, jobs, { _, path, _ -> Result<[UInt8], OpenAIError> in
                guard let data = FileManager.default.contents(atPath: path) else {
                    return .failure(.internal("the file's data could not be read"))
                }
                return .success([UInt8](data))
            }, then: { [unowned self] (bytes: [UInt8]) in
                var h = HTTPHeaders()
                h.add("Content-Type", "application/octet-stream")
                responder.finish(HTTPResponse(status: 200, headers: h, body: bytes), r.http, r.connection, endpoint: r.endpoint,
                                 tenant: r.caller.tenantLabel, adapter: "", started: r.started)
            })
        }
        router.add("DELETE", "/v1/files/{id}", access: .publishers) { [unowned self] r in
            let (owner, all) = Self.jobOwner(r)
            let users = jobs.fileUsers
            withFile(r, jobs, { file, _, root in
                // On the jobs queue, where jobs are prepared: every job that uses the file is counted.
                let using = users.jobs(using: file.id)
                if !using.isEmpty {
                    let shown = using.filter { all || $0.owner == owner }.map(\.job)
                    let which = shown.isEmpty ? "a queued or running job" : "queued or running job \(shown.joined(separator: ", "))"
                    return .failure(OpenAIError(status: 409, message: "\(file.id) is the training or validation file of \(which); delete it once the job has ended (or cancel the job)",
                                                type: "invalid_request_error", param: "id", code: "file_in_use"))
                }
                do { try JobStore.deleteFile(file.id, root: root) } catch {
                    return .failure(.internal("the file could not be deleted: \(error)"))
                }
                return .success(.object([("id", .string(file.id)), ("object", .string("file")), ("deleted", .bool(true))]))
            }, then: { [unowned self] json in respondJob(r, json) })
        }
        router.add("POST", "/v1/fine_tuning/jobs", access: .publishers) { [unowned self] r in
            let body = r.http.body, served = servedName
            let (owner, _) = Self.jobOwner(r)
            let permit = r.caller.permit
            submitJob(r, jobs, status: 200) {
                try JobSpec.parseFineTuning(body: body, owner: owner, servedName: served, mayPublish: { permit.mayUse(adapter: $0) })
            }
        }
        router.add("GET", "/v1/fine_tuning/jobs", access: .publishers) { [unowned self] r in
            let (owner, all) = Self.jobOwner(r)
            let list = Array(jobs.jobs(visibleTo: owner, all: all).reversed())
            let page = Self.page(list.map { ($0.id, $0.json) }, query: r.http.query)
            respondJob(r, .object([("object", .string("list")), ("data", .array(page.items)), ("has_more", .bool(page.more))]))
        }
        router.add("GET", "/v1/fine_tuning/jobs/{id}", access: .publishers) { [unowned self] r in
            withJob(r, jobs) { respondJob(r, $0.json) }
        }
        router.add("POST", "/v1/fine_tuning/jobs/{id}/cancel", access: .publishers) { [unowned self] r in
            withJob(r, jobs) { respondJob(r, (jobs.cancel($0.id) ?? $0).json) }
        }
        router.add("GET", "/v1/fine_tuning/jobs/{id}/events", access: .publishers) { [unowned self] r in
            withJob(r, jobs) { job in
                let events = jobs.events(of: job.id).reversed().map { ($0.json(jobID: job.id)["id"]!.stringValue!, $0.json(jobID: job.id)) }
                let page = Self.page(Array(events), query: r.http.query)
                respondJob(r, .object([("object", .string("list")), ("data", .array(page.items)), ("has_more", .bool(page.more))]))
            }
        }
    }

    /// Whose jobs the caller sees: a tenant its own; an admin (or an open daemon's caller) all.
    static func jobOwner(_ r: RoutedRequest) -> (owner: String?, all: Bool) {
        if case .tenant(let t) = r.caller { return (t.name, false) }
        return (nil, true)
    }

    private func submitJob(_ r: RoutedRequest, _ jobs: JobManager, status: Int, _ parse: @escaping @Sendable () throws -> JobSpec) {
        jobs.submit(parse) { [unowned self] result in
            guard !r.connection.isClosed else { return }
            switch result {
            case .success(let record):
                responder.respondJSON(status, Array(record.json.serialized().utf8), r.http, r.connection, endpoint: r.endpoint,
                                      tenant: r.caller.tenantLabel, started: r.started)
            case .failure(let e): failJob(r, e)
            }
        }
    }

    private func withJob(_ r: RoutedRequest, _ jobs: JobManager, _ body: (JobRecord) -> Void) {
        let id = r.parameters["id"] ?? ""
        let (owner, all) = Self.jobOwner(r)
        guard let job = jobs.job(id, visibleTo: owner, all: all) else {
            var e = OpenAIError(status: 404, message: "no job \(OpenAIError.excerpt(id))", type: "invalid_request_error", param: "id")
            e.code = "job_not_found"
            return failJob(r, e)
        }
        body(job)
    }

    /// Runs `body` on the jobs queue with the registry root (the disk is never touched on the loop),
    /// then `then` with its result, or answers its error.
    private func onFiles<T>(_ r: RoutedRequest, _ jobs: JobManager, _ body: @escaping @Sendable (_ root: String) -> Result<T, OpenAIError>,
                            then: @escaping (T) -> Void) {
        let root = registryAccess?.root() ?? ""
        work.run(on: jobs.jobsQueue, { body(root) }, then: { [unowned self] result in
            switch result {
            case .success(let value): then(value)
            case .failure(let e): failJob(r, e)
            }
        })
    }

    /// The uploaded file `{id}` names, when the caller may see it, on the jobs queue; one 404 for a
    /// bad id (answered at once: no path is made of it), a missing file and another tenant's alike.
    private func withFile<T>(_ r: RoutedRequest, _ jobs: JobManager,
                             _ body: @escaping @Sendable (JobStore.FileRecord, _ path: String, _ root: String) -> Result<T, OpenAIError>,
                             then: @escaping (T) -> Void) {
        let id = r.parameters["id"] ?? ""
        let (owner, _) = Self.jobOwner(r)
        guard JobStore.isID(id, prefix: "file-") else { return failJob(r, Self.noFile(id)) }
        onFiles(r, jobs, { root in
            guard let (file, path) = JobStore.file(id, owner: owner, root: root) else { return .failure(Self.noFile(id)) }
            return body(file, path, root)
        }, then: then)
    }

    static func noFile(_ id: String) -> OpenAIError {
        var e = OpenAIError(status: 404, message: "no file \(OpenAIError.excerpt(id))", type: "invalid_request_error", param: "id")
        e.code = "file_not_found"
        return e
    }

    /// A query parameter's decoded value (the first), or nil.
    static func queryValue(_ name: String, in query: String?) -> String? {
        for pair in (query ?? "").split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2, kv[0] == name { return PercentDecoding.decode(kv[1].replacingOccurrences(of: "+", with: " ")) }
        }
        return nil
    }

    private func respondJob(_ r: RoutedRequest, _ json: JSONValue) {
        responder.respondJSON(200, Array(json.serialized().utf8), r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel,
                              started: r.started)
    }

    private func failJob(_ r: RoutedRequest, _ e: OpenAIError) {
        responder.fail(e, r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
    }

    /// OpenAI's cursor pagination: `limit` (default 20, at most 100) items after the one named `after`.
    static func page(_ items: [(id: String, json: JSONValue)], query: String?) -> (items: [JSONValue], more: Bool) {
        let limit = queryValue("limit", in: query).flatMap { Int($0) }.map { min(100, max(1, $0)) } ?? 20
        let after = queryValue("after", in: query)
        var rest = items[...]
        if let after, let i = items.firstIndex(where: { $0.id == after }) { rest = items[(i + 1)...] }
        return (rest.prefix(limit).map(\.json), rest.count > limit)
    }

    /// `POST /v1/files`: a multipart/form-data body with `purpose` (fine-tune) and `file` (JSONL).
    static func saveUpload(_ body: [UInt8], contentType: String?, owner: String?, root: String) throws -> JobStore.FileRecord {
        let usage = "expected multipart/form-data with a \"purpose\" field (fine-tune) and a \"file\" part holding JSONL chat rows"
        let boundary: String?
        do { boundary = try contentType.flatMap(Multipart.boundary(contentType:)) } catch {
            throw OpenAIError.badRequest(param: "file", message: "\(error); \(usage)")
        }
        guard let boundary else { throw OpenAIError.badRequest(param: "file", message: usage) }
        let parts: [MultipartPart]
        do { parts = try Multipart.parse(body, boundary: boundary, maxParts: 4) } catch {
            throw OpenAIError.badRequest(param: "file", message: "\(error); \(usage)")
        }
        let purpose = parts.first { $0.name == "purpose" }.map { String(decoding: $0.content, as: UTF8.self) }
        guard purpose == "fine-tune" else {
            throw OpenAIError.badRequest(param: "purpose", message: "lorad stores files for training only: expected purpose \"fine-tune\"")
        }
        guard let file = parts.first(where: { $0.name == "file" }), !file.content.isEmpty else {
            throw OpenAIError.badRequest(param: "file", message: usage)
        }
        // Each line must at least be a JSON object; the rows' shape is checked when a job uses them.
        var line = 0
        for raw in file.content.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            line += 1
            let trimmed = raw.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0d }
            if trimmed.isEmpty { continue }
            guard (try? JSONValue.parse(Array(raw)))?.objectMembers != nil else {
                throw OpenAIError.badRequest(param: "file", message: "line \(line) is not a JSON object: expected JSONL, one chat row ({\"messages\": [...]}) per line")
            }
        }
        let name = String((file.filename ?? "data.jsonl").split(separator: "/").last ?? "data.jsonl")
        return try JobStore.saveFile(file.content, filename: name, purpose: "fine-tune", owner: owner, root: root)
    }
}
