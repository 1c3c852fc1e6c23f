// The admin API over the registry: list and show adapters, import a version from a path under
// `adapters.import_roots`, activate, roll back, remove; and vLLM's `load_lora_adapter` /
// `unload_lora_adapter`, so tools written for vLLM work unchanged. Only for privileged callers
// (Daemon's `authorize`: a peer uid in `admin.uids` on the Unix socket; never over TCP).
//
// Every registry read and change runs on the loader thread (they read and write files); a change
// answers only after the daemon has rescanned, so a client that gets 200 can use the new state at
// once. Each change is one log line saying who asked.

import Foundation
import HTTP
import JSON
import Llama
import LoRA
import Registry
import SystemCalls

/// `POST /v1/adapters/combine`'s body, checked, with its inputs resolved against the served adapters:
/// `{"name": NEW, "method": "cat|linear|svd|ties|dare", "adapters": [{"name": A, "weight": w}, ...],
/// "rank": k, "density": d, "seed": s, "activate": true}`.
struct CombineRequest: @unchecked Sendable {
    // @unchecked: LoRAAdapter is immutable.
    struct Input {
        let reference: String
        let adapter: LoRAAdapter
        let weight: Float
    }
    let name: String
    let methodName: String
    let method: LoRAAdapter.CombineMethod
    let inputs: [Input]
    let activate: Bool

    /// The adapter versions `body` combines (they must be resident before `init`).
    static func references(_ body: JSONValue?, catalog: AdapterCatalog) throws -> [AdapterReference] {
        guard let list = body?["adapters"]?.arrayValue else { return [] }
        return try list.enumerated().compactMap { i, item in
            guard let name = item["name"]?.stringValue else { return nil }
            guard let ref = catalog.resolve(name) else {
                var e = Endpoints.notFound(name, catalog)
                e.param = "adapters[\(i)].name"
                throw e
            }
            return ref
        }
    }

    init(_ body: JSONValue?, catalog: AdapterCatalog, resident: ResidentAdapters) throws {
        let usage = "expected {\"name\": NEW, \"method\": \"cat|linear|svd|ties|dare\", \"adapters\": [{\"name\": NAME, \"weight\": W}, ...]}"
        guard let body, let name = body["name"]?.stringValue else { throw OpenAIError.badRequest(param: "name", message: usage) }
        guard AdapterName.isValid(name) else { throw RegistryError.badName(name) }
        guard let list = body["adapters"]?.arrayValue, !list.isEmpty else { throw OpenAIError.badRequest(param: "adapters", message: usage) }
        var inputs: [Input] = []
        for (i, item) in list.enumerated() {
            guard let ref = item["name"]?.stringValue else { throw OpenAIError.badRequest(param: "adapters[\(i)].name", message: usage) }
            let weight = item["weight"].map { $0.doubleValue ?? .nan } ?? 1
            guard weight.isFinite else { throw OpenAIError.badRequest(param: "adapters[\(i)].weight", message: "expected a finite number") }
            guard let version = catalog.resolve(ref), let adapter = resident[version] else {
                var e = Endpoints.notFound(ref, catalog)
                e.param = "adapters[\(i)].name"
                throw e
            }
            inputs.append(Input(reference: ref, adapter: adapter, weight: Float(weight)))
        }
        let methodName = body["method"]?.stringValue ?? "linear"
        let rank = body["rank"]?.intValue ?? inputs.flatMap { $0.adapter.modules.map(\.module.rank) }.max() ?? 1
        guard rank >= 1 && rank <= 256 else { throw OpenAIError.badRequest(param: "rank", message: "expected an integer from 1 to 256") }
        let density = body["density"]?.doubleValue ?? 0.5
        guard density > 0 && density <= 1 else { throw OpenAIError.badRequest(param: "density", message: "expected a number in (0, 1]") }
        let seed = UInt64(max(0, body["seed"]?.intValue ?? 0))
        switch methodName {
        case "cat": method = .cat
        case "linear": method = .linear
        case "svd": method = .svd(rank: rank)
        case "ties": method = .ties(density: Float(density), rank: rank)
        case "dare": method = .dare(density: Float(density), rank: rank, seed: seed)
        default: throw OpenAIError.badRequest(param: "method", message: "expected one of cat, linear, svd, ties, dare")
        }
        self.name = name
        self.methodName = methodName
        self.inputs = inputs
        self.activate = body["activate"]?.boolValue ?? true
    }
}

/// What the admin endpoints need from the daemon beyond what every endpoint has.
struct AdminContext {
    /// `adapters.dir` and `adapters.import_roots` in effect (a SIGHUP may change them).
    var root: () -> String
    var importRoots: () -> [String]
    let base: BaseModelInfo
    let loaderQueue: DispatchQueue
    /// Rescans the registry, then calls back (loop thread).
    let rescan: (_ reason: String, _ then: @escaping () -> Void) -> Void
    let log: (String) -> Void
    /// `admin.max_upload_bytes` in effect: the body limit of uploads (AdminUpload.swift).
    let maxUploadBytes: () -> Int
}

extension Endpoints {
    static let adminBodyLimit = 64 << 10

    func registerAdmin(on router: Router, _ admin: AdminContext) {
        registryAccess = admin
        router.add("GET", "/v1/adapters", access: .admin) { [unowned self] r in
            read(r, admin, { registry in
                let found = try registry.adapters()
                return .array(found.adapters.map { $0.json } + found.failures.map {
                    .object([("name", .string($0.name)), ("error", .string("\($0.error)"))])
                })
            }, decorate: { [unowned self] json in
                .array((json.arrayValue ?? []).map { item in
                    guard case .object(var members) = item, let name = item["name"]?.stringValue, item["error"] == nil else { return item }
                    members += served(name)
                    return .object(members)
                })
            })
        }
        router.add("GET", "/v1/adapters/{name}", access: .publish) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            read(r, admin, { try $0.adapter(name).json }, decorate: { [unowned self] json in
                guard case .object(var members) = json else { return json }
                members += served(name)
                return .object(members)
            })
        }
        // Residency: load a version into memory and keep it there (exempt from eviction), or let it go.
        router.add("POST", "/v1/adapters/{name}/load", access: .admin) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            let v = adminBody(r)?["version"]
            guard r.http.body.isEmpty || adminBody(r) != nil, v == nil || v?.intValue != nil || v?.stringValue.flatMap(AdapterReference.parseVersion) != nil else {
                return fail(r, .badRequest(param: "version", message: "expected no body or {\"version\": N} (3 or \"v3\"); without it, the active version"))
            }
            let model = (v?.intValue ?? v?.stringValue.flatMap(AdapterReference.parseVersion)).map { "\(name)@v\($0)" } ?? name
            guard let ref = catalog.resolve(model) else { return fail(r, Self.notFound(model, catalog)) }
            let who = Self.who(r)
            ensureLoaded([ref], pin: true) { [unowned self] error in
                if let error { return fail(r, error) }
                admin.log("admin: \(who) loaded \(ref) (pinned)")
                updateGauges()
                respondJSON(r, .object([("name", .string(name))] + served(name)))
            }
        }
        router.add("POST", "/v1/adapters/{name}/unload", access: .admin) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            guard catalog.entries[name] != nil else { return fail(r, Self.notFound(name, catalog)) }
            let refs = resident.items.keys.filter { $0.name == name }
            var removed: ResidentAdapters.Removed = [:]
            for ref in refs { removed.merge(resident.remove(ref)) { a, _ in a } }
            letGo(removed, evicted: false)
            updateGauges()
            admin.log("admin: \(Self.who(r)) unloaded \(name) (\(refs.map(\.description).sorted().joined(separator: ", ")))")
            respondJSON(r, .object([("name", .string(name))] + served(name)))
        }
        router.add("POST", "/v1/adapters/{name}/versions", access: .publish,
                   maxBodyBytes: Route.BodyLimit(setting: "admin.max_upload_bytes", bytes: admin.maxUploadBytes)) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            if let body = adminBody(r), body["files"] == nil {
                // A path names the daemon's files: admins only. Tenants publish what they send.
                if case .tenant(let t) = r.caller {
                    let refusal = Refusal(error: Daemon.forbidden("tenant \(t.name) publishes by upload (\"files\" in the body), not by a path on the server"),
                                          reason: .forbidden, who: "tenant \(t.name)", tenant: t.name)
                    return responder.refuse(refusal, r.http, r.connection, endpoint: r.endpoint, started: r.started)
                }
                guard let path = body["path"]?.stringValue else {
                    return fail(r, .badRequest(param: "path", message: "expected a JSON object {\"path\": \"/dir/under/an/import/root\", \"activate\": true}, or the files themselves (\"files\")"))
                }
                let activate = body["activate"]?.boolValue ?? true
                return importAdapter(r, admin, name: name, path: path, activate: activate, reply: nil)
            }
            // The files in the body (AdminUpload.swift): parsed, decoded and published on the loader thread.
            let body = r.http.body, contentType = r.http.headers["Content-Type"], base = admin.base
            let who = Self.who(r)
            change(r, admin, "imported upload (\(body.count) bytes) as \(name)") { registry in
                try Self.publishUpload(body, contentType: contentType, name: name, base: base, who: who, registry: registry)
            }
        }
        router.add("POST", "/v1/adapters/{name}/activate", access: .publish) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            let v = adminBody(r)?["version"]
            guard let version = v?.intValue ?? v?.stringValue.flatMap(AdapterReference.parseVersion), version >= 1 else {
                return fail(r, .badRequest(param: "version", message: "expected {\"version\": N} with N a version number (3 or \"v3\")"))
            }
            change(r, admin, "activated \(name)@v\(version)") { registry in
                try registry.activate(name, version: version)
                return try registry.adapter(name).json
            }
        }
        router.add("POST", "/v1/adapters/{name}/rollback", access: .publish) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            change(r, admin, "rolled \(name) back") { registry in
                try registry.rollback(name)
                return try registry.adapter(name).json
            }
        }
        router.add("DELETE", "/v1/adapters/{name}", access: .admin) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            change(r, admin, "removed \(name)") { registry in
                try registry.remove(name)
                return .object([("name", .string(name)), ("deleted", .bool(true))])
            }
        }
        router.add("DELETE", "/v1/adapters/{name}/versions/{version}", access: .admin) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            guard let version = AdapterReference.parseVersion(r.parameters["version"] ?? "") else {
                return fail(r, .badRequest(param: "version", message: "expected a version number in the path (3 or v3)"))
            }
            change(r, admin, "removed \(name)@v\(version)") { registry in
                try registry.remove(name, version: version)
                return try registry.adapter(name).json
            }
        }
        // A new adapter combined from served ones (lorad adapter combine's methods), published into
        // the registry as its next version with source "combined".
        router.add("POST", "/v1/adapters/combine", access: .admin) { [unowned self] r in
            let body = adminBody(r)
            let refs: [AdapterReference]
            do { refs = try CombineRequest.references(body, catalog: catalog) } catch { return fail(r, Self.openAIError(error)) }
            ensureLoaded(refs) { [unowned self] error in
                if let error { return fail(r, error) }
                combine(r, admin, body)
            }
        }
        // Live merging: W' = W + s·B·A for the served version, built on the loader thread; requests for
        // the adapter alone at scale 1 then run at the base's speed. Dropped with DELETE, or when the
        // served version changes.
        router.add("POST", "/v1/adapters/{name}/merge", access: .admin) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            let who = "admin: " + Self.who(r)
            merge(name, by: who) { [unowned self] result in
                switch result {
                case .failure(let e): fail(r, e)
                case .success(let (version, m)): respondJSON(r, mergedJSON(name, version, m))
                }
            }
        }
        router.add("DELETE", "/v1/adapters/{name}/merge", access: .admin) { [unowned self] r in
            let name = r.parameters["name"] ?? ""
            guard resident.setMerged(name, nil) else {
                return fail(r, OpenAIError(status: 404, message: "\(name) has no merged copy", type: "invalid_request_error"))
            }
            admin.log("admin: \(Self.who(r)) unmerged \(name)")
            respondJSON(r, .object([("name", .string(name)), ("merged", .bool(false))]))
        }
        
        // vLLM's dynamic LoRA endpoints (VLLM_ALLOW_RUNTIME_LORA_UPDATING): the same import, and its
        // reverse, which takes out of the registry what load put in (the source path is untouched).
        router.add("POST", "/v1/load_lora_adapter", access: .admin) { [unowned self] r in
            guard let body = adminBody(r), let name = body["lora_name"]?.stringValue, let path = body["lora_path"]?.stringValue else {
                return fail(r, .badRequest(param: "lora_name", message: "expected {\"lora_name\": NAME, \"lora_path\": PATH}"))
            }
            importAdapter(r, admin, name: name, path: path, activate: true,
                          reply: "Success: LoRA adapter '\(name)' added successfully.")
        }
        router.add("POST", "/v1/unload_lora_adapter", access: .admin) { [unowned self] r in
            guard let name = adminBody(r)?["lora_name"]?.stringValue else {
                return fail(r, .badRequest(param: "lora_name", message: "expected {\"lora_name\": NAME}"))
            }
            change(r, admin, "removed \(name) (unload_lora_adapter)", reply: "Success: LoRA adapter '\(name)' removed successfully.") { registry in
                try registry.remove(name)
                return .null
            }
        }
    }

    // MARK: Steps

    /// Combines the (resident) inputs `body` names and publishes the result (loader thread).
    private func combine(_ r: RoutedRequest, _ admin: AdminContext, _ body: JSONValue?) {
        let request: CombineRequest
        do { request = try CombineRequest(body, catalog: catalog, resident: resident) } catch { return fail(r, Self.openAIError(error)) }
        let base = admin.base
        change(r, admin, "combined \(request.inputs.map { "\($0.reference):\($0.weight)" }.joined(separator: " ")) (\(request.methodName)) into \(request.name)") { registry in
            let combined = try LoRAAdapter.combine(request.inputs.map { ($0.adapter, $0.weight) }, method: request.method, name: request.name)
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-combine-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: tmp) }
            try combined.exportPEFT(directory: tmp, base: base)
            let stats: [(String, JSONValue)] = [
                ("method", .string(request.methodName)),
                ("inputs", .array(request.inputs.map { .object([("adapter", .string($0.reference)), ("weight", .double(Double($0.weight)))]) })),
            ]
            let m = try registry.publish(PublishRequest(name: request.name, source: tmp, kind: .combined, base: BaseFingerprint(base),
                                                        stats: stats, activate: request.activate)) {
                _ = try LoRAAdapter.load(path: $0, name: request.name, base: base)
            }
            return .object([("name", .string(request.name)), ("version", .int(m.version)), ("digest", .string(m.digest)),
                            ("active", .bool(request.activate))])
        }
    }

    /// What this daemon does with `name`, besides what the registry holds: the served version, what
    /// is in memory (versions, bytes, pinned, in use), its shape when loaded, use and the last error.
    func served(_ name: String) -> [(String, JSONValue)] {
        let entry = catalog.entries[name]
        let loaded = resident.items.filter { $0.key.name == name }
        let active = entry.flatMap { resident.items[$0.reference] }
        var out: [(String, JSONValue)] = [
            ("served_version", entry.map { .int($0.version) } ?? .null),
            ("resident", .bool(active != nil)),
            ("loaded_versions", .array(loaded.keys.compactMap(\.version).sorted().map { .int($0) })),
            ("pinned", .bool(active?.pinned ?? false)),
            ("in_use", .int(loaded.keys.reduce(0) { $0 + (resident.inUse[$1] ?? 0) })),
            ("bytes", .int(loaded.values.reduce(0) { $0 + $1.adapter.byteCount })),
            ("merged", .bool(resident.merged[name] != nil)),
        ]
        if let a = active?.adapter {
            let modules = a.modules
            out.append(("rank", .int(modules.map(\.module.rank).max() ?? 0)))
            out.append(("targets", .array(LoRATarget.allCases.filter { t in modules.contains { $0.target == t } }.map { .string($0.rawValue) })))
            out.append(("content_digest", .string(a.contentDigest)))
        }
        let use = usage[name] ?? (0, 0)
        out.append(("requests", .int(use.requests)))
        out.append(("generated_tokens", .int(use.tokens)))
        // A failed load on a request's path, else what the last scan refused (a newer version that
        // does not load, while the one before keeps serving).
        let scanError = catalog.failures.first { $0.name == name }.map { $0.keptPrevious ? "\($0.reason) (the version before keeps serving)" : $0.reason }
        out.append(("last_error", (lastLoadError[name] ?? scanError).map(JSONValue.string) ?? .null))
        return out
    }

    /// The caller as admin log lines name it: "uid 0", "admin token", "tenant acme" (a tenant with
    /// may_publish), or the peer uid when nothing authorized the request.
    static func who(_ r: RoutedRequest) -> String {
        if r.caller != .open { return r.caller.description }
        return r.connection.stream.peerCredentials.map { "uid \($0.uid)" } ?? "?"
    }

    private func importAdapter(_ r: RoutedRequest, _ admin: AdminContext, name: String, path: String, activate: Bool, reply: String?) {
        let roots = admin.importRoots(), base = admin.base
        change(r, admin, "imported \(path) as \(name)", reply: reply) { registry in
            let source = try Self.checkImportPath(path, roots: roots)
            let m = try registry.publish(PublishRequest(name: name, source: source, base: BaseFingerprint(base), activate: activate)) {
                _ = try LoRAAdapter.load(path: $0, name: name, base: base)
            }
            return .object([("name", .string(name)), ("version", .int(m.version)), ("digest", .string(m.digest)),
                            ("active", .bool(activate))])
        }
    }

    /// `path` with symlinks resolved, when it lies under one of `roots` (themselves resolved).
    static func checkImportPath(_ path: String, roots: [String]) throws -> String {
        guard !roots.isEmpty else {
            throw OpenAIError(status: 403, message: "imports by path are off: list the directories they may come from in adapters.import_roots",
                              type: "permission_error", param: "path")
        }
        guard let real = try? Posix.realpath(path) else {
            throw OpenAIError.badRequest(param: "path", message: "\(OpenAIError.excerpt(path)) does not exist")
        }
        for root in roots {
            guard let r = try? Posix.realpath(root) else { continue }
            if real == r || real.hasPrefix(r.hasSuffix("/") ? r : r + "/") { return real }
        }
        throw OpenAIError(status: 403, message: "\(OpenAIError.excerpt(path)) is not under adapters.import_roots (\(roots.joined(separator: ", ")))",
                          type: "permission_error", param: "path")
    }

    private func adminBody(_ r: RoutedRequest) -> JSONValue? {
        guard r.http.body.count <= Self.adminBodyLimit, let v = try? JSONValue.parse(r.http.body), v.objectMembers != nil else { return nil }
        return v
    }

    /// A registry read on the loader thread, answered as JSON.
    private func read(_ r: RoutedRequest, _ admin: AdminContext, _ body: @escaping @Sendable (Registry) throws -> JSONValue,
                      decorate: @escaping (JSONValue) -> JSONValue = { $0 }) {
        let root = admin.root()
        work.run(on: admin.loaderQueue, { () -> Result<JSONValue, OpenAIError> in
            do { return .success(try body(try Registry(root: root))) } catch { return .failure(Self.openAIError(error)) }
        }, then: { [unowned self] result in
            switch result {
            case .success(let json): respondJSON(r, decorate(json))
            case .failure(let e): fail(r, e)
            }
        })
    }

    /// A registry change on the loader thread; after it, a rescan, then the answer and a log line.
    private func change(_ r: RoutedRequest, _ admin: AdminContext, _ what: String, reply: String? = nil,
                        _ body: @escaping @Sendable (Registry) throws -> JSONValue) {
        let root = admin.root()
        let who = Self.who(r)
        work.run(on: admin.loaderQueue, { () -> Result<JSONValue, OpenAIError> in
            do { return .success(try body(try Registry(root: root, create: true))) } catch { return .failure(Self.openAIError(error)) }
        }, then: { [unowned self] result in
            switch result {
            case .failure(let e):
                admin.log("admin: \(who) failed: \(what): \(e.message)")
                fail(r, e)
            case .success(let json):
                admin.log("admin: \(who) \(what)")
                admin.rescan("admin API") { [unowned self] in
                    guard !r.connection.isClosed else { return }
                    if let reply {
                        var h = HTTPHeaders()
                        h.add("Content-Type", "text/plain; charset=utf-8")
                        responder.finish(HTTPResponse(status: 200, headers: h, body: Array(reply.utf8)), r.http, r.connection,
                                         endpoint: r.endpoint, tenant: r.caller.tenantLabel, adapter: "", started: r.started)
                    } else {
                        responder.respondJSON(200, Array(json.serialized().utf8), r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
                    }
                }
            }
        })
    }

    /// Builds the merged copy of `name`'s served version on the loader thread and serves it (loop
    /// thread), within `mergedBudget`. `who` names the caller in the log line.
    func merge(_ name: String, by who: String, _ done: @escaping (Result<(Int, MergedAdapter), OpenAIError>) -> Void) {
        guard let admin = registryAccess else { return done(.failure(.internal("the registry is not set up"))) }
        guard let entry = catalog.entries[name] else { return done(.failure(Self.openAIError(RegistryError.notFound(name: name)))) }
        if let m = resident.merged[name] { return done(.success((entry.version, m))) }
        guard let adapter = resident[entry.reference] else {
            // Not in memory: load it (the merge pins it), then merge.
            return ensureLoaded([entry.reference]) { [unowned self] error in
                if let error { return done(.failure(error)) }
                guard resident[entry.reference] != nil else { return done(.failure(.internal("\(entry.reference) was evicted while it loaded"))) }
                merge(name, by: who, done)
            }
        }
        let base = admin.base, storage = mergedType
        work.run(on: admin.loaderQueue, { () -> Result<MergedAdapter, OpenAIError> in
            do { return .success(try MergedAdapter(adapter: adapter, base: base, storage: storage)) } catch {
                return .failure(.internal("merging \(name) failed: \(error)"))
            }
        }, then: { [unowned self] result in
            switch result {
            case .failure(let e): done(.failure(e))
            case .success(let m):
                guard resident.mergedBytes + m.byteCount <= mergedBudget else {
                    return done(.failure(OpenAIError(status: 507, message: "the merged copy of \(name) needs \(m.byteCount) bytes and adapters.merged_bytes allows \(mergedBudget - resident.mergedBytes) more; unmerge another adapter or raise it",
                                                     type: "server_error", code: "insufficient_storage")))
                }
                guard catalog.entries[name]?.version == entry.version, resident.setMerged(name, m) else {
                    return done(.failure(OpenAIError(status: 409, message: "\(name)'s served version changed while it was merged; merge again",
                                                     type: "invalid_request_error", code: "conflict")))
                }
                admin.log("\(who) merged \(name)@v\(entry.version) (\(m.byteCount) bytes, max |error| \(m.maxAbsError))")
                done(.success((entry.version, m)))
            }
        })
    }

    /// Merges every adapter `names` lists that is served and not merged yet (`adapters.merge`), one
    /// after another; failures are logged.
    func mergeConfigured(_ names: [String], log: @escaping (String) -> Void) {
        guard let name = names.first(where: { catalog.entries[$0] != nil && resident.merged[$0] == nil }) else { return }
        let rest = Array(names.drop { $0 != name }.dropFirst())
        merge(name, by: "adapters.merge:") { [unowned self] result in
            if case .failure(let e) = result { log("adapters.merge: \(name) not merged: \(e.message)") }
            mergeConfigured(rest, log: log)
        }
    }

    private func mergedJSON(_ name: String, _ version: Int, _ m: MergedAdapter) -> JSONValue {
        .object([("name", .string(name)), ("version", .int(version)), ("merged", .bool(true)), ("bytes", .int(m.byteCount)),
                 ("max_abs_error", .double(Double(m.maxAbsError)))])
    }

    private func respondJSON(_ r: RoutedRequest, _ json: JSONValue) {
        responder.respondJSON(200, Array(json.serialized().utf8), r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
    }

    private func fail(_ r: RoutedRequest, _ e: OpenAIError) {
        responder.fail(e, r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
    }

    /// The registry's errors in OpenAI's shape.
    static func openAIError(_ error: Error) -> OpenAIError {
        if let e = error as? OpenAIError { return e }
        guard let e = error as? RegistryError else { return .internal("\(error)") }
        let message = e.description
        switch e {
        case .badName, .badReference: return .badRequest(param: "name", message: message)
        case .notFound, .versionNotFound:
            var o = OpenAIError(status: 404, message: message, type: "invalid_request_error")
            o.code = "adapter_not_found"
            return o
        case .activeVersion, .nothingToRollBackTo:
            return OpenAIError(status: 409, message: message, type: "invalid_request_error", code: "conflict")
        case .badSource, .invalid, .outsideRoot: return .badRequest(param: "path", message: message)
        case .notARegistry, .badManifest, .badFile, .digestMismatch, .system: return .internal(message)
        }
    }
}
