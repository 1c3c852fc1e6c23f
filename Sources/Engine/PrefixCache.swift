// Keeps the KV caches of finished sequences so that a new prompt sharing a long prefix with one of
// them (a product's system prompt, an earlier turn of the same conversation) copies those positions
// instead of recomputing them. The idea is vLLM's automatic prefix caching and llama-server's
// prompt cache, at whole-sequence granularity: an entry is one finished sequence's tokens and KV.
//
// Entries are keyed by content, never by name or object: each adapter's `contentDigest` (sha256 of
// its weights and folded scales, or of a published version's files) with its scale, or the merged copy's adapter digest, scale and
// storage type. The KV of a prefix depends on exactly those, so a prefix is never reused across
// adapters, scales, versions with other weights (a same-name republish cannot hit the old KV) or
// between merged and unmerged weights (their numerics differ); an adapter unloaded and loaded again
// finds its entries. Entries hold no adapter, so evicting an adapter frees it; the daemon drops its
// entries when its last use ends (`remove(adapterDigests:)`). A key also carries the request's
// cache partition (the tenant, with tenants): a reused prefix shows in `cached_tokens` and in the
// time to first token, so sharing across tenants would tell one tenant what another sent. Entries
// draw from the engine's KV
// budget and are evicted least-recently-used when a live sequence needs the memory. Owned by the
// engine thread.

import Llama
import LoRA

final class PrefixCache {
    struct Key: Equatable {
        let adapters: [String]
        let scales: [Float]
        /// A sequence on merged weights: the adapter's digest, and the scale and storage type the
        /// merge baked in (their numerics differ from the unmerged path's: the stored type rounds
        /// W + s·B·A).
        let merged: String?
        let mergedForm: String?
        /// Whose entries these are: only requests of the same partition reuse them.
        let partition: String

        init(_ uses: [AdapterUse], merged: MergedAdapter?, partition: String = "") {
            self.partition = partition
            adapters = uses.map(\.adapter.contentDigest)
            scales = uses.map(\.scale)
            self.merged = merged?.adapter.contentDigest
            mergedForm = merged.map { "\($0.scale) \($0.storageType)" }
        }

        func uses(anyOf digests: Set<String>) -> Bool {
            adapters.contains(where: digests.contains) || merged.map(digests.contains) ?? false
        }
    }

    final class Entry {
        let key: Key
        let tokens: [Int32]
        let cache: KVCache
        var lastUsed: UInt64

        init(key: Key, tokens: [Int32], cache: KVCache, lastUsed: UInt64) {
            self.key = key
            self.tokens = tokens
            self.cache = cache
            self.lastUsed = lastUsed
        }
    }

    private(set) var entries: [Entry] = []
    private var clock: UInt64 = 0
    let maxEntries: Int
    let minTokens: Int

    init(maxEntries: Int, minTokens: Int) {
        self.maxEntries = maxEntries
        self.minTokens = max(1, minTokens)
    }

    var byteCount: Int { entries.reduce(0) { $0 + $1.cache.byteCount } }

    /// The entry sharing the longest prefix with `prompt` under the same adapters, and how many
    /// positions to reuse: at most `prompt.count - 1`, since the last prompt token must run to give
    /// the logits of the first generated token.
    func lookup(adapters: [AdapterUse], merged: MergedAdapter? = nil, partition: String = "", prompt: [Int32]) -> (entry: Entry, count: Int)? {
        let key = Key(adapters, merged: merged, partition: partition)
        var best: (Entry, Int)?
        for e in entries where e.key == key {
            let n = commonPrefix(e.tokens, prompt, limit: min(e.cache.count, prompt.count - 1))
            if n >= minTokens && n > (best?.1 ?? 0) { best = (e, n) }
        }
        guard let (e, n) = best else { return nil }
        clock += 1
        e.lastUsed = clock
        return (e, n)
    }

    /// Adds a finished sequence's KV. An entry whose tokens are a prefix of the new one's (same
    /// adapters) is dropped: the new entry answers every lookup it would.
    func insert(adapters: [AdapterUse], merged: MergedAdapter? = nil, partition: String = "", tokens: [Int32], cache: KVCache) {
        guard tokens.count >= minTokens, cache.count == tokens.count else { return }
        let key = Key(adapters, merged: merged, partition: partition)
        entries.removeAll { $0.key == key && $0.tokens.count <= tokens.count && Array(tokens[..<$0.tokens.count]) == $0.tokens }
        // A new entry that is itself a prefix of an existing one adds nothing.
        if entries.contains(where: { $0.key == key && $0.tokens.count >= tokens.count && Array($0.tokens[..<tokens.count]) == tokens }) {
            return
        }
        clock += 1
        entries.append(Entry(key: key, tokens: tokens, cache: cache, lastUsed: clock))
        while entries.count > maxEntries { _ = evictOne() }
    }

    /// Drops the least recently used entry (its KV returns to the budget); false when empty.
    func evictOne() -> Bool {
        guard let i = entries.indices.min(by: { entries[$0].lastUsed < entries[$1].lastUsed }) else { return false }
        entries.remove(at: i)
        return true
    }

    func removeAll() { entries.removeAll() }

    /// Drops every entry computed with one of `digests` (adapters no longer in use anywhere).
    func remove(adapterDigests digests: Set<String>) {
        entries.removeAll { $0.key.uses(anyOf: digests) }
    }

    private func commonPrefix(_ a: [Int32], _ b: [Int32], limit: Int) -> Int {
        var i = 0
        while i < limit && i < a.count && i < b.count && a[i] == b[i] { i += 1 }
        return i
    }
}
