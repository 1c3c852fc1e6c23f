// Chat and text completions, from a request to an engine submission (GenerationStream.swift takes
// it from there), and /tokenize's answer.
//
// A request is first prepared: decoded, its `model` resolved to the base (the served name) or an
// adapter (`name`, `name@v1`) with the `adapters` extension stacking more, its prompt rendered and
// tokenized and checked against the context, so the client gets a 400 with both numbers before
// anything is queued. Preparing is a pure function of the body and immutable state (the model, a
// snapshot of the catalog), so a large body is prepared on the prompt thread while the loop goes on
// serving; a small one (most requests) is prepared inline. A prompt is refused from its length in
// bytes alone when even the fewest tokens it could make cannot fit, before any tokenizing.
// A constraint (`guided_regex`, `guided_choice`) whose pattern is not in the model's compiled cache
// sends the preparation to the prompt thread whatever the body's size, since determinising a
// pattern can take milliseconds or more; a cached one is looked up inline. The loop never compiles.
// Everything else here runs on the loop thread.

import ChatTemplate
import Foundation
import Generation
import Grammar
import HTTP
import Engine
import Llama
import LoRA
import ModelFormats
import Registry
import Sampling
import Tokenizer

/// A request ready for the engine, or the error to answer.
enum PreparedGeneration: @unchecked Sendable {
    // @unchecked: GenerationRequest, [AdapterUse] and the token ids are immutable values.
    case ready(Ready)
    case failed(OpenAIError, label: String)
    /// Versions of served adapters that must be loaded first (off the loop), then prepare again.
    case needsVersions([AdapterReference])
    /// The request's pattern is not compiled yet: prepare again on the prompt thread, which may compile.
    case needsCompiling

    struct Ready {
        let request: GenerationRequest
        /// The model's name for logs, metrics and the queue key.
        let label: String
        let uses: [AdapterUse]
        /// The registry versions of `uses`, in order (held while the sequence runs).
        let references: [AdapterReference]
        /// The merged copy to run instead of `uses` (one adapter at scale 1 that has one).
        let merged: MergedAdapter?
        let prompt: [Int32]
        let echoText: String?
    }
}

/// Immutable state a preparation reads, so that it can run on any thread.
struct PreparationContext: @unchecked Sendable {
    // @unchecked: ModelBundle is immutable; the catalog is a value snapshot of immutable entries.
    let bundle: ModelBundle
    let catalog: AdapterCatalog
    /// The adapters in memory now.
    let resident: ResidentAdapters.Snapshot
    /// What the caller may use: anything else is answered exactly as a model that does not exist.
    let permit: Permit
    let servedName: String
    let contextLimit: Int
    /// 0: none.
    let maxTokensDefault: Int
}

extension Endpoints {
    /// Bodies up to this size are prepared on the loop: tokenizing them costs microseconds, less than
    /// a trip to the prompt thread and back.
    static let inlinePreparationBytes = 4096

    /// What a preparation for `permit`'s caller reads, snapshotted now on the loop.
    func preparationContext(_ permit: Permit) -> PreparationContext {
        PreparationContext(bundle: bundle, catalog: catalog, resident: resident.snapshot, permit: permit, servedName: servedName,
                           contextLimit: engine.contextLimit, maxTokensDefault: maxTokensDefault)
    }

    /// Whether `prepare` runs `r`'s preparation on the prompt thread (a large body, or `offLoop`).
    static func preparesOffLoop(_ r: RoutedRequest, offLoop: Bool = false) -> Bool {
        offLoop || r.http.body.count > inlinePreparationBytes
    }

    /// Runs `prepare` inline for a small body, else (or when `offLoop`) on the prompt thread; then
    /// `then` on the loop, unless the client left meanwhile (logged as 499).
    func prepare<T>(_ r: RoutedRequest, offLoop: Bool = false, _ prepare: @escaping @Sendable () -> T, then: @escaping (T) -> Void) {
        if !Self.preparesOffLoop(r, offLoop: offLoop) { return then(prepare()) }
        work.run(on: promptQueue, prepare, then: { [unowned self] result in
            guard !r.connection.isClosed else {
                return responder.logRequest(r.http, status: 499, endpoint: r.endpoint, tenant: r.caller.tenantLabel, adapter: "", started: r.started,
                                            extra: "the client left while its request was prepared")
            }
            then(result)
        })
    }

    func startGeneration(_ r: RoutedRequest, endpoint: GenerationRequest.Endpoint, loadedOnce: Bool = false, offLoop: Bool = false) {
        let context = preparationContext(r.caller.permit), body = r.http.body
        let mayCompile = Self.preparesOffLoop(r, offLoop: offLoop)
        prepare(r, offLoop: offLoop, { Self.prepareGeneration(body: body, endpoint: endpoint, context, mayCompile: mayCompile) },
                then: { [unowned self] prepared in
            if case .needsCompiling = prepared, !mayCompile {
                return startGeneration(r, endpoint: endpoint, loadedOnce: loadedOnce, offLoop: true)
            }
            guard case .needsVersions(let refs) = prepared else { return submitGeneration(prepared, r, endpoint: endpoint) }
            guard !loadedOnce else {
                // Loaded, and gone again before the request could use it (a rescan dropped it).
                return responder.fail(.unavailable("the adapter cache could not keep \(refs.map(\.description).joined(separator: ", ")) now; retry",
                                                   retryAfter: 1), r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
            }
            ensureLoaded(refs) { [unowned self] error in
                if let error {
                    return responder.fail(error, r.http, r.connection, endpoint: r.endpoint, tenant: r.caller.tenantLabel, started: r.started)
                }
                startGeneration(r, endpoint: endpoint, loadedOnce: true)
            }
        })
    }

    /// Decodes, resolves and tokenizes one generation request. Pure: runs on the loop or the prompt
    /// thread. `mayCompile` false (the loop): a pattern not compiled yet returns `.needsCompiling`.
    static func prepareGeneration(body: [UInt8], endpoint: GenerationRequest.Endpoint,
                                  _ c: PreparationContext, mayCompile: Bool = true) -> PreparedGeneration {
        var r: GenerationRequest
        do {
            r = try OpenAIDecode.generationRequest(body: body, endpoint: endpoint,
                                                  vocabularySize: c.bundle.model.config.vocabularySize)
        } catch {
            return .failed(error, label: "")
        }
        // The constraint first, so a bad pattern is answered before any adapter is loaded.
        if let wanted = r.constraint {
            if let compiled = c.bundle.constraints.cached(wanted.source) {
                r.sampling.constraint = compiled
            } else if !mayCompile {
                return .needsCompiling
            } else {
                do {
                    r.sampling.constraint = try c.bundle.constraints.compile(wanted.source)
                } catch let e as RegexError {
                    return .failed(.badRequest(param: wanted.param, message: "\(wanted.param) is not a pattern lorad can follow: \(e)"), label: "")
                } catch let e as JSONSchemaError {
                    return .failed(.badRequest(param: wanted.param, message: "\(wanted.param) is not a schema lorad can follow: \(e)"), label: "")
                } catch let e as GrammarError {
                    return .failed(.badRequest(param: wanted.param, message: "\(wanted.param) is not a grammar lorad can follow: \(e)"), label: "")
                } catch {
                    return .failed(.internal("compiling \(wanted.param): \(error)"), label: "")
                }
            }
        }
        // Model and adapters. One rule for repeats: each adapter is applied once, whether it is named
        // by `model` or in `adapters`, under any spelling (demo, demo@v1).
        var named: [(ref: AdapterReference, scale: Float, param: String)] = []
        let label: String
        if r.model == c.servedName && c.permit.mayUseBase {
            label = c.servedName
        } else if let ref = c.catalog.resolve(r.model), c.permit.mayUse(adapter: ref.name) {
            named.append((ref, 1, "model"))
            label = ref.name
        } else {
            return .failed(notFound(r.model, c.catalog, c.permit), label: "")
        }
        for (i, extra) in r.adapters.enumerated() {
            let param = "adapters[\(i)].name"
            guard let ref = c.catalog.resolve(extra.name), c.permit.mayUse(adapter: ref.name) else {
                var err = notFound(extra.name, c.catalog, c.permit)
                err.param = param
                return .failed(err, label: label)
            }
            if let first = named.first(where: { $0.ref.name == ref.name }) {
                return .failed(.badRequest(param: param, message: "\(param) names \(ref.name), which \(first.param) already applies; "
                                            + "give each adapter once (its scale sets how strongly it applies)"), label: label)
            }
            named.append((ref, extra.scale, param))
        }
        // Versions not in memory load first (off the loop), then the request is prepared again.
        let missing = named.map(\.ref).filter { c.resident.adapters[$0] == nil }
        if !missing.isEmpty { return .needsVersions(missing) }
        let uses = named.map { AdapterUse(c.resident.adapters[$0.ref]!, scale: $0.scale) }
        let refs = named.map(\.ref)
        // Prompt.
        let tokenizer = c.bundle.tokenizer
        let limit = c.contextLimit
        let prompt: [Int32]
        var echoText: String? = nil
        do {
            switch r.prompt {
            case .chat(let messages):
                let rendered = try renderChat(c.bundle, messages)
                let least = tokenizer.minimumTokenCount(rendered)
                if least >= limit {
                    return .failed(.contextTooLong(promptTokens: least, limit: limit, endpoint: endpoint, atLeast: true), label: label)
                }
                prompt = tokenizer.encode(rendered)
            case .text(let text):
                let least = tokenizer.minimumTokenCount(text, parseSpecial: r.parseSpecial)
                if least >= limit {
                    return .failed(.contextTooLong(promptTokens: least, limit: limit, endpoint: endpoint, atLeast: true), label: label)
                }
                prompt = tokenizer.encode(text, parseSpecial: r.parseSpecial)
                echoText = text
            case .tokens(let ids):
                prompt = ids
                echoText = tokenizer.decode(ids)
            }
        } catch let e as OpenAIError {
            return .failed(e, label: label)
        } catch {
            return .failed(.internal("\(error)"), label: label)
        }
        if prompt.count >= limit || (r.sampling.maxTokens.map { prompt.count + $0 > limit } ?? false) {
            return .failed(.contextTooLong(promptTokens: prompt.count, maxTokens: r.sampling.maxTokens, limit: limit,
                                           endpoint: endpoint), label: label)
        }
        var request = r
        if request.sampling.maxTokens == nil, c.maxTokensDefault > 0 {
            request.sampling.maxTokens = min(c.maxTokensDefault, limit - prompt.count)
        }
        // Raw log-probabilities are computed only when asked for (they cost a softmax per token).
        request.sampling.topLogprobs = r.logprobs ? r.topLogprobs : nil
        // One adapter at full scale with a merged copy runs on it, at the base model's speed; stacking,
        // another scale or no copy runs the low-rank path.
        var merged: MergedAdapter? = nil
        if uses.count == 1, uses[0].scale == 1, let m = c.resident.merged[label], m.adapter === uses[0].adapter { merged = m }
        return .ready(.init(request: request, label: label, uses: uses, references: refs, merged: merged, prompt: prompt,
                            echoText: echoText))
    }

    /// 404 for a model that is neither the base nor a served adapter version; for a version the
    /// adapter does not have, the message lists those it has.
    /// Another tenant's adapter is answered exactly as a missing one: nothing tells them apart.
    static func notFound(_ model: String, _ catalog: AdapterCatalog, _ permit: Permit = Permit(tenant: nil)) -> OpenAIError {
        var e = OpenAIError.notFound(model: model)
        if let ref = AdapterReference(model), permit.mayUse(adapter: ref.name), let entry = catalog.entries[ref.name], let v = ref.version {
            e.message = RegistryError.versionNotFound(name: ref.name, version: v, available: entry.versions.keys.sorted()).description
        }
        return e
    }

    /// Queues a prepared request in the engine and starts its response (loop thread).
    private func submitGeneration(_ prepared: PreparedGeneration, _ routed: RoutedRequest,
                                  endpoint: GenerationRequest.Endpoint) {
        let p: PreparedGeneration.Ready
        switch prepared {
        case .failed(let e, let label):
            return responder.fail(e, routed.http, routed.connection, endpoint: routed.endpoint, tenant: routed.caller.tenantLabel, adapter: label,
                                  started: routed.started)
        case .needsCompiling:
            // startGeneration prepares again on the prompt thread before it gets here; kept for the switch.
            return responder.fail(.internal("the request's pattern was not compiled"), routed.http, routed.connection,
                                  endpoint: routed.endpoint, tenant: routed.caller.tenantLabel, started: routed.started)
        case .needsVersions(let refs):
            // startGeneration loads these and prepares again before it gets here; kept for the switch.
            return responder.fail(.notFound(model: refs.map(\.description).joined(separator: ", ")), routed.http, routed.connection,
                                  endpoint: routed.endpoint, tenant: routed.caller.tenantLabel, started: routed.started)
        case .ready(let ready):
            p = ready
        }
        resident.touch(p.references)
        guard isServing() else {
            return responder.fail(.unavailable("the server is shutting down", retryAfter: 5), routed.http, routed.connection,
                                  endpoint: routed.endpoint, tenant: routed.caller.tenantLabel, adapter: p.label, started: routed.started)
        }
        let r = p.request
        let wantsPromptLogprobs = endpoint == .completion && r.echo && r.logprobs
        var submission = EngineRequest(queueKey: p.label, adapters: p.uses, merged: p.merged, prompt: p.prompt, sampling: r.sampling,
                                       promptLogprobs: wantsPromptLogprobs)
        if case .tenant(let t) = routed.caller {
            // Fairness and limits are the tenant's, whatever adapters it uses.
            submission.queueKey = "tenant " + t.name
            submission.maxRunning = t.maxRunning
            submission.maxQueued = t.maxQueued
            // Nor do they share cached prefixes: a hit shows (cached_tokens, a faster first token).
            submission.cachePartition = t.name
            // A tenant with nothing else running gets its prefill in a step of its own (engine.prefill_first).
            submission.prefillFirst = true
            if let seconds = tokenBuckets.wait(t.name, perMinute: t.tokensPerMinute) {
                metrics.rejected(reason: "tenant_token_rate")
                var e = OpenAIError(status: 429, message: "tenant \(t.name) has used its tokens_per_minute (\(t.tokensPerMinute)); retry in \(seconds) s",
                                    type: "rate_limit_error", code: "rate_limit_exceeded")
                e.retryAfter = seconds
                return responder.refuse(Refusal(error: e, reason: .tokenRate, who: routed.caller.auditName, tenant: t.name),
                                        routed.http, routed.connection, endpoint: routed.endpoint, adapter: p.label, started: routed.started)
            }
        }
        let id: UInt64
        do {
            id = try engine.submit(submission)
        } catch {
            let e = OpenAIError(error, endpoint: endpoint, maxTokens: r.sampling.maxTokens)
            if case .queueFull = error {
                metrics.rejected(reason: "queue_full")
                return responder.refuse(Refusal(error: e, reason: .queueFull, who: routed.caller.auditName, tenant: routed.caller.tenantLabel),
                                        routed.http, routed.connection, endpoint: routed.endpoint, adapter: p.label, started: routed.started)
            }
            return responder.fail(e, routed.http, routed.connection, endpoint: routed.endpoint, tenant: routed.caller.tenantLabel,
                                  adapter: p.label, started: routed.started)
        }
        let prefix = endpoint == .chat ? "chatcmpl-" : "cmpl-"
        let g = GenerationStream(endpoints: self, routed: routed, request: r, engineID: id,
                                 responseID: prefix + String(format: "%016llx", nextRequestID() ^ UInt64(createdAt) << 20),
                                 label: p.label, prompt: p.prompt, echoText: p.echoText)
        g.onMergedWeights = p.merged != nil
        g.holds = zip(p.references, p.uses.map(\.adapter)).map { ($0, $1) }
        started(g)
        g.begin()
    }

    /// The /tokenize answer for `body`. Pure: any thread.
    static func tokenize(body: [UInt8], _ c: PreparationContext) -> Result<[UInt8], OpenAIError> {
        do {
            let r = try OpenAIDecode.tokenizeRequest(body: body)
            if let m = r.model, !(m == c.servedName && c.permit.mayUseBase),
               !(c.catalog.resolve(m).map { c.permit.mayUse(adapter: $0.name) } ?? false) {
                throw notFound(m, c.catalog, c.permit)
            }
            let tokenizer = c.bundle.tokenizer
            let tokens: [Int32]
            switch r.input {
            case .text(let text):
                tokens = tokenizer.encode(text, parseSpecial: r.parseSpecial, addBOS: r.addSpecialTokens ? nil : false)
            case .chat(let messages):
                tokens = try chatTokens(c.bundle, messages)
            }
            let strings = r.returnTokenStrings ? tokens.map { tokenizer.tokenText($0) ?? "" } : nil
            return .success(OpenAIEncode.tokenize(tokens: tokens, maxModelLength: c.contextLimit, tokenStrings: strings))
        } catch let e as OpenAIError {
            return .failure(e)
        } catch {
            return .failure(.internal("\(error)"))
        }
    }

    /// The prompt of a chat: messages rendered by the template, contents as plain text. Any thread.
    static func chatTokens(_ bundle: ModelBundle, _ messages: [ChatMessage]) throws -> [Int32] {
        bundle.tokenizer.encode(try renderChat(bundle, messages))
    }

    /// The rendered chat, ready to bound or encode; template failures become 400s naming messages.
    static func renderChat(_ bundle: ModelBundle, _ messages: [ChatMessage]) throws -> ChatPrompt {
        do {
            return try bundle.renderChat(messages)
        } catch let e as ModelBundleError {
            throw OpenAIError.badRequest(param: "messages", message: "\(e)")
        } catch {
            throw OpenAIError.badRequest(param: "messages", message: "the chat template failed on these messages: \(error)")
        }
    }
}
