// What the daemon answers, on the loop thread: operations endpoints (/healthz, /readyz, /metrics),
// the OpenAI-compatible API (/v1/models, /v1/chat/completions, /v1/completions) and vLLM's
// /tokenize and /detokenize, registered on the router; and the generations running for clients,
// keyed by their engine ids, which the engine's events are delivered to.
//
// The endpoints read the model, the engine and the catalog in effect; they never read a file and
// never compute a forward pass. Large prompts are prepared on the prompt thread (Preparation.swift).

import Dispatch
import Foundation
import Engine
import Generation
import HTTP
import Llama
import LoRA
import Registry

final class Endpoints {
    let bundle: ModelBundle
    let engine: Engine
    let responder: Responder
    var metrics: ServerMetrics { responder.metrics }
    /// The base model's name in the API.
    let servedName: String
    let createdAt = Int(Date().timeIntervalSince1970)
    /// The adapters in effect; the daemon swaps in each rescanned catalog.
    var catalog: AdapterCatalog
    /// `engine.max_tokens_default` (0: none); live, so a reload sets it.
    var maxTokensDefault: Int
    /// False once the daemon drains: new generations are refused.
    let isServing: () -> Bool
    /// Results of the prompt thread come back to the loop through this.
    let work: LoopWork
    /// Tokenizes prompts too large to tokenize on the loop without stalling it.
    let promptQueue = DispatchQueue(label: "lorad.prompts")
    /// Where the registry is and how to read it off the loop (set with the admin routes).
    var registryAccess: AdminContext?
    /// The adapter versions in memory, within `adapters.cache_bytes`.
    var resident: ResidentAdapters
    /// Loads under way, with the callers waiting for each (one load serves them all).
    private var loading: [AdapterReference: [(OpenAIError?) -> Void]] = [:]
    /// Per load under way: the versions its requests need together (kept when it evicts).
    private var loadingKeeps: [AdapterReference: Set<AdapterReference>] = [:]
    /// Per adapter: the last load failure, for the admin API.
    var lastLoadError: [String: String] = [:]
    /// `tokens_per_minute` of each tenant.
    var tokenBuckets = TokenBuckets()
    /// Per adapter name: generations ended and tokens they generated (GET /v1/adapters/NAME).
    private(set) var usage: [String: (requests: Int, tokens: Int)] = [:]
    /// `adapters.merged_bytes`: what merged copies may hold together.
    var mergedBudget = 1 << 30
    /// `adapters.merged_type`.
    var mergedType: MergeStorage = .baseType
    /// Running generations by engine id; each removes itself when it ends or is cancelled.
    private(set) var streams: [UInt64: GenerationStream] = [:]
    private var requestCounter: UInt64 = 0

    init(bundle: ModelBundle, engine: Engine, responder: Responder, servedName: String, catalog: AdapterCatalog,
         maxTokensDefault: Int, cacheBudget: Int, work: LoopWork, isServing: @escaping () -> Bool) {
        resident = ResidentAdapters(budget: cacheBudget)
        self.bundle = bundle
        self.engine = engine
        self.responder = responder
        self.servedName = servedName
        self.catalog = catalog
        self.maxTokensDefault = maxTokensDefault
        self.work = work
        self.isServing = isServing
    }

    func register(on router: Router) {
        let health: (RoutedRequest) -> Void = { [unowned self] r in
            responder.respondJSON(200, Array(#"{"status":"ok"}"#.utf8), r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
        }
        router.add("GET", "/healthz", access: .anyone, health)
        router.add("GET", "/health", access: .anyone, health)   // vLLM's and llama-server's name
        router.add("GET", "/readyz", access: .anyone) { [unowned self] r in
            if isServing() {
                responder.respondJSON(200, Array(#"{"status":"ready"}"#.utf8), r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
            } else {
                responder.fail(.unavailable("the server is shutting down", retryAfter: 5), r.http, r.connection,
                               endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
            }
        }
        router.add("GET", "/metrics", access: .operators) { [unowned self] r in
            updateGauges()
            var h = HTTPHeaders()
            h.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            responder.finish(HTTPResponse(status: 200, headers: h, body: Array(metrics.render().utf8)), r.http, r.connection,
                             endpoint: r.endpoint, tenant: r.caller.tenantLabel, adapter: "", started: r.started)
        }
        router.add("GET", "/v1/models") { [unowned self] r in
            responder.respondJSON(200, OpenAIEncode.models(modelEntries(for: r.caller.permit)), r.http, r.connection,
                                  endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
        }
        router.add("GET", "/v1/models/{id}") { [unowned self] r in respondModel(r) }
        router.add("POST", "/v1/chat/completions") { [unowned self] r in startGeneration(r, endpoint: .chat) }
        router.add("POST", "/v1/completions") { [unowned self] r in startGeneration(r, endpoint: .completion) }
        router.add("POST", "/tokenize") { [unowned self] r in handleTokenize(r) }
        router.add("POST", "/detokenize") { [unowned self] r in handleDetokenize(r) }
    }

    func updateGauges() {
        let s = engine.stats()
        metrics.setQueueDepth(s.queuedRequests)
        metrics.setLiveSequences(s.liveSequences)
        metrics.setKVBytes(sequences: s.kvBytesSequences, prefixCache: s.kvBytesPrefixCache)
        metrics.setAdaptersLoaded(resident.items.count, bytes: resident.byteCount)
    }

    // MARK: Running generations

    /// Hands the engine's events to their streams (the daemon calls this when the engine wakes it).
    func deliverEngineEvents() {
        let out = engine.drainEvents()
        for n in out.batchSizes { metrics.batchSize(n) }
        for (id, event) in out.events {
            guard let g = streams[id] else { continue }   // cancelled: its client is gone
            if g.handle(event) { ended(g) }
        }
        updateGauges()
    }

    func started(_ g: GenerationStream) {
        streams[g.engineID] = g
        resident.acquire(g.holds)
    }

    /// A stream its client left: the engine stops the sequence and no more events go to it.
    /// False when it was not running (it had ended).
    func cancelled(_ g: GenerationStream) -> Bool {
        guard streams[g.engineID] != nil else { return false }
        engine.cancel(g.engineID)
        ended(g)
        return true
    }

    /// A generation is over: it lets go of its adapters, and the cached prefixes of those that nothing
    /// holds any more go with them. An eviction that waited for it may happen now.
    private func ended(_ g: GenerationStream) {
        guard streams.removeValue(forKey: g.engineID) != nil else { return }
        if case .tenant(let t) = g.caller {
            tokenBuckets.take(t.name, tokens: g.promptTokenCount + g.completionTokens, perMinute: t.tokensPerMinute)
        }
        if !g.holds.isEmpty {
            usage[g.label, default: (0, 0)].requests += 1
            usage[g.label, default: (0, 0)].tokens += g.completionTokens
        }
        let unused = resident.release(g.holds)
        let evicted = resident.evict()
        letGo(evicted, also: unused)
    }

    func nextRequestID() -> UInt64 {
        requestCounter += 1
        return requestCounter
    }

    // MARK: Adapters in memory

    /// Makes `refs` resident, loading those that are not on the loader thread, then calls `done` on
    /// the loop with nil, or the error to answer. Concurrent requests for one version share its load.
    /// A load evicts what the budget requires, but not the other versions of `refs` (a request that
    /// stacks adapters needs them all at once).
    func ensureLoaded(_ refs: [AdapterReference], pin: Bool = false, keeping: Set<AdapterReference>? = nil,
                      _ done: @escaping (OpenAIError?) -> Void) {
        let keeping = keeping ?? Set(refs)
        let missing = refs.filter { resident[$0] == nil }
        if pin { for ref in refs where resident[ref] != nil { resident.setPinned(ref, true) } }
        guard let ref = missing.first else { return done(nil) }
        let rest = Array(refs.drop { $0 != ref }.dropFirst())
        let next: (OpenAIError?) -> Void = { [unowned self] error in
            if let error { return done(error) }
            if pin { resident.setPinned(ref, true) }
            ensureLoaded(rest, pin: pin, keeping: keeping, done)
        }
        loadingKeeps[ref, default: []].formUnion(keeping)
        if loading[ref] != nil { loading[ref]!.append(next); return }
        loading[ref] = [next]
        guard let access = registryAccess else { return finishLoad(ref, .failure(.internal("the registry is not set up"))) }
        let root = access.root(), base = access.base
        work.run(on: access.loaderQueue, { () -> Result<(LoRAAdapter, [AdapterCatalog.Stamp], Double), OpenAIError> in
            do {
                let v = try Registry(root: root).resolve(ref)
                let started = Date()
                let stamps = v.files.compactMap(AdapterCatalog.stamp)
                let adapter = try LoRAAdapter.load(path: v.loadPath, name: ref.name, base: base,
                                                   options: AdapterCatalog.loadOptions(v, stamps: stamps))
                return .success((adapter, stamps, Date().timeIntervalSince(started)))
            } catch let e as RegistryError {
                return .failure(Self.openAIError(e))
            } catch {
                return .failure(OpenAIError(status: 500, message: "\(ref) could not be loaded: \(error)", type: "server_error",
                                            code: "adapter_load_failed"))
            }
        }, then: { [unowned self] result in finishLoad(ref, result) })
    }

    private func finishLoad(_ ref: AdapterReference, _ result: Result<(LoRAAdapter, [AdapterCatalog.Stamp], Double), OpenAIError>) {
        let waiting = loading.removeValue(forKey: ref) ?? []
        let keeping = loadingKeeps.removeValue(forKey: ref) ?? []
        switch result {
        case .failure(let e):
            lastLoadError[ref.name] = e.message
            metrics.adapterLoadFailed(name: ref.name)
            for w in waiting { w(e) }
        case .success(let (adapter, stamps, seconds)):
            // A rescan may have dropped the version meanwhile; loaded, it serves the waiting requests
            // (a sequence may always finish on a version that is gone), and the next rescan drops it.
            let evicted = resident.insert(ref, adapter, stamps: stamps, keeping: keeping)
            metrics.adapterLoaded(name: ref.name, seconds: seconds)
            lastLoadError[ref.name] = nil
            letGo(evicted)
            for w in waiting { w(nil) }
        }
        updateGauges()
    }

    /// Counts evictions and tells the engine to drop the cached prefixes of adapters nothing holds.
    func letGo(_ removed: ResidentAdapters.Removed, also digests: Set<String> = [], evicted: Bool = true) {
        if evicted { for ref in removed.keys { metrics.adapterEvicted(name: ref.name) } }
        let forget = resident.unheld(Set(removed.values.map(\.contentDigest)).union(digests))
        engine.forgetPrefixes(adapterDigests: forget)
    }

    // MARK: Models

    /// The models `permit` may use: the base (when allowed) and the served adapters it covers.
    func modelEntries(for permit: Permit) -> [ModelEntry] {
        let context = engine.contextLimit
        var out: [ModelEntry] = []
        if permit.mayUseBase {
            out.append(ModelEntry(id: servedName, created: createdAt, ownedBy: "lorad", parent: nil, root: bundle.gguf.path,
                                  maxModelLength: context))
        }
        for name in catalog.sortedNames where permit.mayUse(adapter: name) {
            let e = catalog.entries[name]!
            out.append(ModelEntry(id: name, created: e.created, ownedBy: "lorad", parent: servedName, root: e.path,
                                  maxModelLength: context))
        }
        return out
    }

    private func respondModel(_ r: RoutedRequest) {
        // The base by its served name, an adapter by `name` or `name@v1` (its entry is under `name`).
        let id = r.parameters["id"] ?? ""
        let name = id == servedName ? servedName : catalog.resolve(id)?.name
        guard let name, let entry = modelEntries(for: r.caller.permit).first(where: { $0.id == name }) else {
            return responder.fail(.notFound(model: id), r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
        }
        responder.respondJSON(200, OpenAIEncode.model(entry), r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
    }

    // MARK: Tokenize

    /// /tokenize: prepared like a generation (inline when small, else on the prompt thread).
    private func handleTokenize(_ r: RoutedRequest) {
        let context = preparationContext(r.caller.permit), body = r.http.body
        prepare(r, { Self.tokenize(body: body, context) }, then: { [unowned self] result in
            switch result {
            case .success(let json): responder.respondJSON(200, json, r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
            case .failure(let e): responder.fail(e, r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
            }
        })
    }

    private func handleDetokenize(_ r: RoutedRequest) {
        do {
            let vocab = bundle.model.config.vocabularySize
            let d = try OpenAIDecode.detokenizeRequest(body: r.http.body, vocabularySize: vocab)
            if let (i, bad) = d.tokens.enumerated().first(where: { $0.element < 0 || Int($0.element) >= vocab }) {
                throw OpenAIError.badRequest(param: "tokens[\(i)]", message: "token id \(bad) is outside the vocabulary (0..<\(vocab))")
            }
            responder.respondJSON(200, OpenAIEncode.detokenize(prompt: bundle.tokenizer.decode(d.tokens)),
                                  r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
        } catch let e as OpenAIError {
            responder.fail(e, r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
        } catch {
            responder.fail(.internal("\(error)"), r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
        }
    }
}
