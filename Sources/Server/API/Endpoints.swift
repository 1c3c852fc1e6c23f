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
    /// `adapters.cache_bytes`: what the loaded older versions (`name@vN`) may hold together.
    var pinnedBudget: Int
    /// `adapters.merged_bytes`: what merged copies may hold together.
    var mergedBudget = 1 << 30
    /// `adapters.merged_type`.
    var mergedType: MergeStorage = .baseType
    /// Loaded older versions, least recently used first.
    private var pinnedUse: [AdapterReference] = []
    /// Running generations by engine id; each removes itself when it ends or is cancelled.
    private(set) var streams: [UInt64: GenerationStream] = [:]
    private var requestCounter: UInt64 = 0

    init(bundle: ModelBundle, engine: Engine, responder: Responder, servedName: String, catalog: AdapterCatalog,
         maxTokensDefault: Int, pinnedBudget: Int, work: LoopWork, isServing: @escaping () -> Bool) {
        self.pinnedBudget = pinnedBudget
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
            responder.respondJSON(200, Array(#"{"status":"ok"}"#.utf8), r.http, r.connection, endpoint: r.endpoint, started: r.started)
        }
        router.add("GET", "/healthz", health)
        router.add("GET", "/health", health)   // vLLM's and llama-server's name
        router.add("GET", "/readyz") { [unowned self] r in
            if isServing() {
                responder.respondJSON(200, Array(#"{"status":"ready"}"#.utf8), r.http, r.connection, endpoint: r.endpoint, started: r.started)
            } else {
                responder.fail(.unavailable("the server is shutting down", retryAfter: 5), r.http, r.connection,
                               endpoint: r.endpoint, started: r.started)
            }
        }
        router.add("GET", "/metrics") { [unowned self] r in
            updateGauges()
            var h = HTTPHeaders()
            h.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            responder.finish(HTTPResponse(status: 200, headers: h, body: Array(metrics.render().utf8)), r.http, r.connection,
                             endpoint: r.endpoint, adapter: "", started: r.started)
        }
        router.add("GET", "/v1/models") { [unowned self] r in
            responder.respondJSON(200, OpenAIEncode.models(modelEntries()), r.http, r.connection, endpoint: r.endpoint, started: r.started)
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
    }

    // MARK: Running generations

    /// Hands the engine's events to their streams (the daemon calls this when the engine wakes it).
    func deliverEngineEvents() {
        let out = engine.drainEvents()
        for n in out.batchSizes { metrics.batchSize(n) }
        for (id, event) in out.events {
            guard let g = streams[id] else { continue }   // cancelled: its client is gone
            if g.handle(event) { streams[id] = nil }
        }
        updateGauges()
    }

    func started(_ g: GenerationStream) { streams[g.engineID] = g }

    /// A stream its client left: the engine stops the sequence and no more events go to it.
    /// False when it was not running (it had ended).
    func cancelled(_ g: GenerationStream) -> Bool {
        guard streams.removeValue(forKey: g.engineID) != nil else { return false }
        engine.cancel(g.engineID)
        return true
    }

    func nextRequestID() -> UInt64 {
        requestCounter += 1
        return requestCounter
    }

    // MARK: Older versions on demand

    /// Loads `refs` on the loader thread into the catalog's pinned versions, then calls `done` on the
    /// loop with nil, or the error to answer (an unknown version is a 404 that lists the versions).
    func loadVersions(_ refs: [AdapterReference], _ done: @escaping (OpenAIError?) -> Void) {
        guard let access = registryAccess else { return done(.internal("the registry is not set up")) }
        let root = access.root(), base = access.base
        work.run(on: access.loaderQueue, { () -> Result<[(AdapterCatalog.Entry, Double)], OpenAIError> in
            do {
                let registry = try Registry(root: root)
                var loaded: [(AdapterCatalog.Entry, Double)] = []
                for ref in refs {
                    let v = try registry.resolve(ref)
                    let started = Date()
                    let adapter = try LoRAAdapter.load(path: v.loadPath, name: ref.name, base: base)
                    loaded.append((AdapterCatalog.Entry(name: ref.name, adapter: adapter, path: v.loadPath, version: v.version,
                                                        created: v.manifest?.created ?? Int(Date().timeIntervalSince1970)),
                                   Date().timeIntervalSince(started)))
                }
                return .success(loaded)
            } catch {
                return .failure(Self.openAIError(error))
            }
        }, then: { [unowned self] result in
            switch result {
            case .failure(let e): done(e)
            case .success(let loaded):
                for (entry, seconds) in loaded {
                    catalog.addPinned(entry)
                    let ref = AdapterReference(name: entry.name, version: entry.version)
                    pinnedUse.removeAll { $0 == ref }
                    pinnedUse.append(ref)
                    metrics.adapterLoaded(name: entry.name, seconds: seconds)
                }
                evictPinned(keeping: Set(loaded.map { AdapterReference(name: $0.0.name, version: $0.0.version) }))
                done(nil)
            }
        })
    }

    /// Marks the pinned versions among `uses` as just used.
    func touchPinned(_ uses: [AdapterUse]) {
        for use in uses {
            guard let (ref, _) = catalog.pinned.first(where: { $0.value.adapter === use.adapter }) else { continue }
            pinnedUse.removeAll { $0 == ref }
            pinnedUse.append(ref)
        }
    }

    /// Drops least recently used pinned versions until they fit `pinnedBudget`. A running sequence
    /// keeps the adapter it holds until it ends; only the catalog lets go of it.
    func evictPinned(keeping: Set<AdapterReference> = []) {
        pinnedUse.removeAll { catalog.pinned[$0] == nil }   // gone with a rescan
        var bytes = pinnedUse.reduce(0) { $0 + (catalog.pinned[$1]?.adapter.byteCount ?? 0) }
        for ref in pinnedUse where bytes > pinnedBudget && !keeping.contains(ref) {
            bytes -= catalog.pinned[ref]?.adapter.byteCount ?? 0
            catalog.removePinned(ref)
            metrics.adapterEvicted(name: ref.name)
        }
        pinnedUse.removeAll { catalog.pinned[$0] == nil }
    }

    // MARK: Models

    func modelEntries() -> [ModelEntry] {
        let context = engine.contextLimit
        var out = [ModelEntry(id: servedName, created: createdAt, ownedBy: "lorad", parent: nil, root: bundle.gguf.path,
                              maxModelLength: context)]
        for name in catalog.sortedNames {
            let e = catalog.entries[name]!
            out.append(ModelEntry(id: name, created: e.created, ownedBy: "lorad", parent: servedName, root: e.path,
                                  maxModelLength: context))
        }
        return out
    }

    private func respondModel(_ r: RoutedRequest) {
        // The base by its served name, an adapter by `name` or `name@v1` (its entry is under `name`).
        let id = r.parameters["id"] ?? ""
        let name = id == servedName ? servedName : catalog.lookup(id)?.name
        guard let name, let entry = modelEntries().first(where: { $0.id == name }) else {
            return responder.fail(.notFound(model: id), r.http, r.connection, endpoint: r.endpoint, started: r.started)
        }
        responder.respondJSON(200, OpenAIEncode.model(entry), r.http, r.connection, endpoint: r.endpoint, started: r.started)
    }

    // MARK: Tokenize

    /// /tokenize: prepared like a generation (inline when small, else on the prompt thread).
    private func handleTokenize(_ r: RoutedRequest) {
        let context = preparationContext, body = r.http.body
        prepare(r, { Self.tokenize(body: body, context) }, then: { [unowned self] result in
            switch result {
            case .success(let json): responder.respondJSON(200, json, r.http, r.connection, endpoint: r.endpoint, started: r.started)
            case .failure(let e): responder.fail(e, r.http, r.connection, endpoint: r.endpoint, started: r.started)
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
                                  r.http, r.connection, endpoint: r.endpoint, started: r.started)
        } catch let e as OpenAIError {
            responder.fail(e, r.http, r.connection, endpoint: r.endpoint, started: r.started)
        } catch {
            responder.fail(.internal("\(error)"), r.http, r.connection, endpoint: r.endpoint, started: r.started)
        }
    }
}
