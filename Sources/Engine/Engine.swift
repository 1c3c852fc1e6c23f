// The engine: one thread that owns every live sequence and runs continuous batching (DESIGN.md §2).
//
// Each step it takes the cancellations and pauses posted since the last one, admits waiting
// requests into free slots (round-robin over adapters, prefix-cache lookups), then runs ONE batched
// forward pass: one token for every decoding sequence and a chunk of prompt for the sequences still
// prefilling (at most `prefillChunk` prompt tokens per step, so a long prompt does not hold up the
// others' next tokens). It samples, turns tokens into text, and posts events to an outbox; `wake`
// tells the consumer (the server's loop, through uv_async) to drain it. The engine never touches
// sockets and never blocks on a consumer: a slow reader is paused by the server, not waited for.
//
// Threads: `submit`, `cancel`, `setPaused`, `drainEvents`, `stats`, `beginDrain` and `shutdown` may
// be called from any thread; they touch only the state guarded by `lock`. Everything else (the
// sequences, their caches, the prefix cache) belongs to the engine thread alone.

import Foundation
import Llama
import LoRA
import Sampling
import Tokenizer

/// What the consumer takes from the outbox: events in the order they happened, per request, and
/// the size (sequences) of each batch run since the last drain.
public struct EngineOutput: Sendable {
    public var events: [(id: UInt64, event: EngineEvent)] = []
    public var batchSizes: [Int] = []
}

public struct EngineStats: Sendable, Equatable {
    public var liveSequences = 0
    public var queuedRequests = 0
    /// KV bytes held by live sequences and by the prefix cache.
    public var kvBytesSequences = 0
    public var kvBytesPrefixCache = 0
    public var prefixCacheEntries = 0
    public var steps = 0
}

public final class Engine: @unchecked Sendable {
    // @unchecked: the fields below `lock` are touched only with it held; the fields marked
    // "engine thread" only by the engine thread; the rest are immutable.
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let config: EngineConfig
    /// Positions one sequence may hold: the configured context capped at the model's.
    public let contextLimit: Int
    public let budget: KVBudget
    private let wake: @Sendable () -> Void

    private struct Pending {
        let id: UInt64
        let request: EngineRequest
    }

    private let lock = NSCondition()
    private var queue = FairQueue<Pending>()
    private var cancelled: Set<UInt64> = []
    private var pauseChanges: [UInt64: Bool] = [:]
    private var forgottenAdapters: Set<String> = []
    private var outbox = EngineOutput()
    private var nextID: UInt64 = 1
    private var draining = false
    private var stopRequested = false
    private var finishedRunning = false
    private var currentStats = EngineStats()
    private var queueLimit: Int
    private var perAdapterQueueLimit: Int

    // Engine thread.
    private var live: [EngineSequence] = []
    private var deferred: [Pending] = []
    private var pausedIDs: Set<UInt64> = []
    private let prefix: PrefixCache
    private var admissions: UInt64 = 0
    /// The last step ran only first-of-key prefills (see `step`): the next one decodes.
    private var lastStepPrefillOnly = false
    private var events: [(id: UInt64, event: EngineEvent)] = []

    public init(model: LlamaModel, tokenizer: Tokenizer, config: EngineConfig = EngineConfig(),
                wake: @escaping @Sendable () -> Void) {
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        contextLimit = max(2, min(config.contextLimit, model.config.trainedContextLength))
        budget = KVBudget(capacityBytes: config.kvBudgetBytes)
        queueLimit = config.queueLimit
        perAdapterQueueLimit = config.perAdapterQueueLimit
        prefix = PrefixCache(maxEntries: config.prefixCacheMaxEntries, minTokens: config.prefixCacheMinTokens)
        self.wake = wake
    }

    /// Starts the engine thread.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "lorad-engine"
        thread.stackSize = 8 << 20
        thread.start()
    }

    // MARK: - Any thread

    /// Queues a request and returns its id, or refuses it at once: bad prompt, bad parameters, full
    /// queue (the server answers 429), or the engine stopping.
    public func submit(_ request: EngineRequest) throws(EngineError) -> UInt64 {
        let vocab = model.config.vocabularySize
        do {
            try PromptError.check(request.prompt, room: contextLimit, vocabularySize: vocab)
        } catch {
            throw .prompt(error)
        }
        do {
            try request.sampling.validate(vocabularySize: vocab)
        } catch {
            throw .badParameters(error.description)
        }
        lock.lock()
        defer { lock.unlock() }
        guard !draining && !stopRequested else { throw .shuttingDown }
        guard queue.count < queueLimit else { throw .queueFull(limit: queueLimit, perAdapter: false) }
        let keyLimit = request.maxQueued > 0 ? request.maxQueued : perAdapterQueueLimit
        guard queue.count(forKey: request.queueKey) < keyLimit else {
            throw .queueFull(limit: keyLimit, perAdapter: true)
        }
        let id = nextID
        nextID += 1
        queue.append(Pending(id: id, request: request), key: request.queueKey)
        if request.startsPaused { pauseChanges[id] = true }
        currentStats.queuedRequests = queue.count
        lock.signal()
        return id
    }

    /// New queue limits (a configuration reload); requests already queued stay.
    public func setQueueLimits(total: Int, perAdapter: Int) {
        lock.lock()
        queueLimit = max(1, total)
        perAdapterQueueLimit = max(1, perAdapter)
        lock.unlock()
    }

    /// Stops a request (its client went away): a queued one is dropped, a live one is removed at
    /// the next step and its KV memory returned. No event follows. Unknown ids are ignored.
    public func cancel(_ id: UInt64) {
        lock.lock()
        cancelled.insert(id)
        lock.signal()
        lock.unlock()
    }

    /// Drops the cached prefixes computed with these adapters (by `contentDigest`): the daemon calls
    /// it when an adapter's last use ends and it is no longer loaded, so its KV returns to the budget
    /// instead of waiting for LRU eviction. Sequences still running are not affected.
    public func forgetPrefixes(adapterDigests: Set<String>) {
        guard !adapterDigests.isEmpty else { return }
        lock.lock()
        forgottenAdapters.formUnion(adapterDigests)
        lock.signal()
        lock.unlock()
    }

    /// Holds a live sequence out of the batch (its reader is behind) or lets it run again.
    public func setPaused(_ id: UInt64, _ paused: Bool) {
        lock.lock()
        pauseChanges[id] = paused
        lock.signal()
        lock.unlock()
    }

    /// Takes every event posted since the last call.
    public func drainEvents() -> EngineOutput {
        lock.lock()
        defer { lock.unlock() }
        let out = outbox
        outbox = EngineOutput()
        return out
    }

    public func stats() -> EngineStats {
        lock.lock()
        defer { lock.unlock() }
        return currentStats
    }

    /// Refuses new requests from now on; queued and live ones run to their end.
    public func beginDrain() {
        lock.lock()
        draining = true
        lock.unlock()
    }

    /// Fails every queued and live request with `.shuttingDown`, stops the thread and waits for it.
    public func shutdown() {
        lock.lock()
        stopRequested = true
        lock.signal()
        while !finishedRunning { _ = lock.wait(until: Date().addingTimeInterval(0.05)) }  // false = timed out: check again
        lock.unlock()
    }

    // MARK: - Engine thread

    private func run() {
        while true {
            lock.lock()
            while !stopRequested && cancelled.isEmpty && pauseChanges.isEmpty && forgottenAdapters.isEmpty
                    && !(live.count < config.maxSequences && queue.hasNext(skipping: { atRunningLimit($0, $1) }))
                    && !live.contains(where: { !$0.paused }) {
                lock.wait()
            }
            if stopRequested {
                let waiting = queue.removeAll { _ in true }
                lock.unlock()
                for p in waiting + deferred { events.append((p.id, .failed(.shuttingDown))) }
                for s in live { events.append((s.id, .failed(.shuttingDown))) }
                live.removeAll()
                deferred.removeAll()
                prefix.removeAll()
                publish(batchSize: nil)
                lock.lock()
                finishedRunning = true
                lock.broadcast()
                lock.unlock()
                return
            }
            let gone = cancelled
            cancelled.removeAll()
            let pauses = pauseChanges
            pauseChanges.removeAll()
            let forgotten = forgottenAdapters
            forgottenAdapters.removeAll()
            _ = queue.removeAll { gone.contains($0.id) }
            var admitted: [Pending] = []
            deferred.removeAll { gone.contains($0.id) }
            let free = config.maxSequences - live.count - deferred.count
            for _ in 0..<max(0, free) {
                guard let p = queue.popNext(skipping: { key, p in atRunningLimit(key, p, admitted) }) else { break }
                admitted.append(p)
            }
            lock.unlock()

            live.removeAll { gone.contains($0.id) }   // their caches return to the budget here
            if !forgotten.isEmpty { prefix.remove(adapterDigests: forgotten) }
            // Pauses may name requests still queued: remember them until admission.
            for (id, p) in pauses {
                if p { pausedIDs.insert(id) } else { pausedIDs.remove(id) }
            }
            for id in gone { pausedIDs.remove(id) }
            for s in live { s.paused = pausedIDs.contains(s.id) }
            let toAdmit = deferred + admitted
            deferred.removeAll()
            for p in toAdmit { admit(p) }
            step()
        }
    }

    /// Its key has `maxRunning` sequences live, deferred or being admitted: it waits its turn.
    private func atRunningLimit(_ key: String, _ p: Pending, _ admitting: [Pending] = []) -> Bool {
        let limit = p.request.maxRunning
        guard limit > 0 else { return false }
        let running = live.reduce(0) { $0 + ($1.request.queueKey == key ? 1 : 0) }
            + deferred.reduce(0) { $0 + ($1.request.queueKey == key ? 1 : 0) }
            + admitting.reduce(0) { $0 + ($1.request.queueKey == key ? 1 : 0) }
        return running >= limit
    }

    /// Gives a request its sequence: a KV cache (with a reused prefix when one matches) drawn from
    /// the budget. The cache is limited to the most the sequence can hold (its prompt plus its
    /// max_tokens, within the context), and the request is admitted only when the budget has room for
    /// all of that beside what every live sequence may still grow to, evicting cached prefixes first
    /// (TGI budgets its batches the same way). So a running sequence never runs out of KV memory,
    /// whoever is admitted after it: memory pressure makes new requests wait (or fail at once, when
    /// not even an empty engine could hold them), it never ends another tenant's running sequence.
    private func admit(_ p: Pending) {
        let request = p.request
        let limit = min(contextLimit, request.prompt.count + (request.sampling.maxTokens ?? contextLimit))
        let cache = model.makeCache(contextLimit: max(limit, request.prompt.count + 1), budget: budget)
        var reused = 0
        if config.prefixCache && !request.promptLogprobs,
           let hit = prefix.lookup(adapters: request.adapters, merged: request.merged, partition: request.cachePartition,
                                   prompt: request.prompt) {
            do {
                try cache.copyPrefix(from: hit.entry.cache, count: hit.count)
                reused = hit.count
            } catch {
                // No room for the copy: run the prompt in full (the budget check below decides).
            }
        }
        let needed = cache.growthBytes
        func room() -> Int { budget.capacityBytes - budget.usedBytes - live.reduce(0) { $0 + $1.cache.growthBytes } }
        while room() < needed && prefix.evictOne() {}
        if room() < needed {
            if live.isEmpty {
                events.append((p.id, .failed(.kvBudgetExhausted(
                    "the sequence may need \(needed) bytes of KV (\(cache.contextLimit) positions: its prompt and max_tokens) "
                    + "and the budget has \(room()) free of \(budget.capacityBytes); lower max_tokens or raise engine.kv_budget"))))
            } else {
                deferred.append(p)
            }
            return
        }
        do {
            admissions += 1
            let s = try EngineSequence(id: p.id, request: request, cache: cache, reused: reused, tokenizer: tokenizer,
                                       vocabularySize: model.config.vocabularySize, order: admissions)
            s.paused = pausedIDs.contains(s.id)
            live.append(s)
            events.append((p.id, .admitted(cachedTokens: reused)))
        } catch {
            events.append((p.id, .failed(.badParameters(error.description))))
        }
    }

    private enum Role { case decode(Int32), prefill(Range<Int>) }

    /// One batched forward pass over every runnable sequence, then sampling and events.
    ///
    /// Prompts of keys with fewer live sequences are prefilled first. And the first sequence of a key
    /// (nothing else of its key live: a quiet tenant's request), when its request asks for it
    /// (`prefillFirst`), gets a step of its own for its prefill, without the decode rows, at most
    /// every other step: its first token then costs
    /// about one idle prefill after the step in flight, instead of a prefill stretched by every
    /// other key's decode rows, while their decoders wait at most one step in two.
    private func step() {
        var items: [BatchItem] = []
        var owners: [(EngineSequence, Role)] = []
        var liveOfKey: [String: Int] = [:]
        for s in live { liveOfKey[s.request.queueKey, default: 0] += 1 }
        let decoding = live.filter { !$0.isPrefilling && !$0.paused && $0.pending != nil }
        let firstOfKey = live.filter { $0.request.prefillFirst && $0.isPrefilling && liveOfKey[$0.request.queueKey] == 1 }
        let prefillOnly = config.prefillFirst && !lastStepPrefillOnly && !firstOfKey.isEmpty && !decoding.isEmpty
        lastStepPrefillOnly = prefillOnly
        if !prefillOnly {
            for s in decoding {
                let t = s.pending!
                items.append(BatchItem(tokens: [t], cache: s.cache, logits: .last, adapters: s.request.adapters, merged: s.request.merged))
                owners.append((s, .decode(t)))
            }
        }
        var chunkBudget = max(1, config.prefillChunk)
        let prefilling = (prefillOnly ? firstOfKey : live.filter(\.isPrefilling)).sorted {
            let a = liveOfKey[$0.request.queueKey]!, b = liveOfKey[$1.request.queueKey]!
            return a != b ? a < b : $0.admittedOrder < $1.admittedOrder
        }
        for s in prefilling where chunkBudget > 0 {
            let n = min(chunkBudget, s.request.prompt.count - s.prefilled)
            let range = s.prefilled..<(s.prefilled + n)
            let last = range.upperBound == s.request.prompt.count
            items.append(BatchItem(tokens: Array(s.request.prompt[range]), cache: s.cache,
                                   logits: s.request.promptLogprobs ? .all : (last ? .last : .none),
                                   adapters: s.request.adapters, merged: s.request.merged))
            owners.append((s, .prefill(range)))
            chunkBudget -= n
        }
        guard !items.isEmpty else {
            publish(batchSize: nil)
            return
        }

        // Room in the budget for every item. Admission has set aside each live sequence's whole
        // growth, so this always succeeds; should it not, cached prefixes go first, then the
        // sequence that cannot grow fails on its own (never another one to make room).
        var keep: [Int] = []
        for (i, item) in items.enumerated() {
            while true {
                do {
                    try item.cache.reserve(item.tokens.count)
                    keep.append(i)
                    break
                } catch {
                    if prefix.evictOne() { continue }
                    let s = owners[i].0
                    fail(s, .kvBudgetExhausted("\(error)"))
                    break
                }
            }
        }
        if keep.count != items.count {
            items = keep.map { items[$0] }
            owners = keep.map { owners[$0] }
        }
        guard !items.isEmpty else {
            publish(batchSize: nil)
            return
        }

        let outputs: [[Float]]
        do {
            outputs = try model.forward(batch: items)
        } catch {
            for (s, _) in owners { fail(s, .forwardFailed("\(error)")) }
            publish(batchSize: items.count)
            return
        }

        let vocab = model.config.vocabularySize
        for (i, (s, role)) in owners.enumerated() {
            let logits = outputs[i]
            switch role {
            case .decode(let t):
                s.fed.append(t)
                s.pending = nil
                sampleNext(s, logits: logits, row: 0)
            case .prefill(let range):
                s.fed.append(contentsOf: s.request.prompt[range])
                s.prefilled = range.upperBound
                if s.request.promptLogprobs {
                    collectPromptLogprobs(s, range: range, logits: logits, vocab: vocab)
                }
                if !s.isPrefilling {
                    if s.request.promptLogprobs { events.append((s.id, .promptLogprobs(s.promptLogprobs))) }
                    sampleNext(s, logits: logits, row: s.request.promptLogprobs ? range.count - 1 : 0)
                }
            }
        }
        publish(batchSize: items.count)
    }

    private func sampleNext(_ s: EngineSequence, logits: [Float], row: Int) {
        let vocab = model.config.vocabularySize
        let sampled = logits.withUnsafeBufferPointer {
            s.sampling.sample(logits: UnsafeBufferPointer(rebasing: $0[(row * vocab)..<((row + 1) * vocab)]))
        }
        switch s.accept(sampled) {
        case .goOn(let text):
            events.append((s.id, .token(sampled, text: text)))
        case .finish(let reason, let text):
            events.append((s.id, .token(sampled, text: "")))
            events.append((s.id, .finished(reason, text: text, usage: s.usage)))
            retire(s)
        }
    }

    /// Prompt token k (k ≥ 1) is scored by the row of position k-1; token 0 has no predictor.
    private func collectPromptLogprobs(_ s: EngineSequence, range: Range<Int>, logits: [Float], vocab: Int) {
        let top = s.request.sampling.topLogprobs ?? 0
        let prompt = s.request.prompt
        logits.withUnsafeBufferPointer { all in
            for pos in range {
                if pos == 0 {
                    s.promptLogprobs.append(PromptTokenLogprob(id: prompt[0], logprob: nil, top: []))
                }
                guard pos + 1 < prompt.count else { continue }
                let r = pos - range.lowerBound
                let row = UnsafeBufferPointer(rebasing: all[(r * vocab)..<((r + 1) * vocab)])
                let (lp, alts) = PromptLogprobs.score(row: row, token: prompt[pos + 1], top: top)
                s.promptLogprobs.append(PromptTokenLogprob(id: prompt[pos + 1], logprob: lp, top: alts))
            }
        }
    }

    private func fail(_ s: EngineSequence, _ error: EngineError) {
        events.append((s.id, .failed(error)))
        live.removeAll { $0 === s }
        pausedIDs.remove(s.id)
    }

    /// A finished sequence leaves the batch; its KV goes to the prefix cache (or back to the budget).
    private func retire(_ s: EngineSequence) {
        live.removeAll { $0 === s }
        pausedIDs.remove(s.id)
        if config.prefixCache && !s.request.promptLogprobs {
            prefix.insert(adapters: s.request.adapters, merged: s.request.merged, partition: s.request.cachePartition,
                          tokens: s.fed, cache: s.cache)
        }
    }

    /// Moves this step's events to the outbox, refreshes the stats and wakes the consumer.
    private func publish(batchSize: Int?) {
        let prefixBytes = prefix.byteCount
        let liveBytes = live.reduce(0) { $0 + $1.cache.byteCount }
        lock.lock()
        outbox.events.append(contentsOf: events)
        if let batchSize { outbox.batchSizes.append(batchSize) }
        currentStats.liveSequences = live.count
        currentStats.queuedRequests = queue.count + deferred.count
        currentStats.kvBytesSequences = liveBytes
        currentStats.kvBytesPrefixCache = prefixBytes
        currentStats.prefixCacheEntries = prefix.entries.count
        if batchSize != nil { currentStats.steps += 1 }
        lock.unlock()
        let any = !events.isEmpty || batchSize != nil
        events.removeAll(keepingCapacity: true)
        if any { wake() }
    }
}
