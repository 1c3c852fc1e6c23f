// The adapter versions in memory: loaded on first use (or at start when preloaded), kept least
// recently used first within a byte budget (`adapters.cache_bytes`, counting each adapter's f32
// modules and the kernels' packed copy), and evicted past it unless pinned (preloaded, loaded by
// the admin API, or merged) or in use by a queued or running sequence. A sequence holds the exact
// adapter object it started with, so an eviction, an unload or a new version never changes
// adapter under it; the memory goes when its last user lets go.
//
// Use is counted by content digest as well as by version, so that the daemon can tell the engine to
// drop the prefix cache's KV for an adapter whose last use ended and that is no longer resident
// (`released`): a digest stays while any resident or running version has it.
//
// Loop thread only; preparations read `snapshot`, a value.

import Llama
import LoRA
import Registry

struct ResidentAdapters {
    struct Item {
        let adapter: LoRAAdapter
        /// The served version's file stamps when it was loaded (a plain adapter rewritten in place
        /// is a new load).
        let stamps: [AdapterCatalog.Stamp]
        var pinned: Bool
        var lastUse: UInt64
    }

    private(set) var items: [AdapterReference: Item] = [:]
    /// Merged copies by adapter name; the adapter they merge is kept resident while they exist.
    private(set) var merged: [String: MergedAdapter] = [:]
    /// Queued and running sequences per version, and per content digest.
    private(set) var inUse: [AdapterReference: Int] = [:]
    private var digestUses: [String: Int] = [:]
    private var clock: UInt64 = 0
    var budget: Int

    init(budget: Int) {
        self.budget = budget
    }

    var byteCount: Int { items.values.reduce(0) { $0 + $1.adapter.byteCount } }
    var mergedBytes: Int { merged.values.reduce(0) { $0 + $1.byteCount } }

    subscript(_ ref: AdapterReference) -> LoRAAdapter? { items[ref]?.adapter }

    /// What a preparation reads: the resident adapters and merged copies now.
    var snapshot: Snapshot { Snapshot(adapters: items.mapValues(\.adapter), merged: merged) }

    struct Snapshot: @unchecked Sendable {
        // @unchecked: LoRAAdapter and MergedAdapter are immutable.
        var adapters: [AdapterReference: LoRAAdapter] = [:]
        var merged: [String: MergedAdapter] = [:]
    }

    /// Adds (or replaces) a loaded version; returns what was evicted to make room.
    mutating func insert(_ ref: AdapterReference, _ adapter: LoRAAdapter, stamps: [AdapterCatalog.Stamp] = [],
                         pinned: Bool = false, keeping: Set<AdapterReference> = []) -> Removed {
        clock += 1
        let keepPin = items[ref]?.pinned ?? false
        items[ref] = Item(adapter: adapter, stamps: stamps, pinned: pinned || keepPin, lastUse: clock)
        return evict(keeping: keeping.union([ref]))
    }

    /// Versions taken out of memory, with the adapter objects (for their digests).
    typealias Removed = [AdapterReference: LoRAAdapter]

    mutating func touch(_ refs: [AdapterReference]) {
        for ref in refs where items[ref] != nil {
            clock += 1
            items[ref]!.lastUse = clock
        }
    }

    mutating func setPinned(_ ref: AdapterReference, _ pinned: Bool) {
        items[ref]?.pinned = pinned
    }

    /// Drops `ref` now (an unload, a removed version), whatever the budget; a running sequence keeps
    /// its object until it ends. Its merged copy goes too.
    mutating func remove(_ ref: AdapterReference) -> Removed {
        guard let item = items.removeValue(forKey: ref) else { return [:] }
        if merged[ref.name]?.adapter === item.adapter { merged[ref.name] = nil }
        return [ref: item.adapter]
    }

    /// Serves `name` merged from `copy` while its adapter is resident; false when it is not.
    mutating func setMerged(_ name: String, _ copy: MergedAdapter?) -> Bool {
        guard let copy else { return merged.removeValue(forKey: name) != nil }
        guard items.contains(where: { $0.key.name == name && $0.value.adapter === copy.adapter }) else { return false }
        merged[name] = copy
        return true
    }

    /// Drops least recently used versions until the rest fit the budget, skipping pinned, merged,
    /// in-use and `keeping` ones (the set may stay over budget while those alone exceed it).
    mutating func evict(keeping: Set<AdapterReference> = []) -> Removed {
        var bytes = byteCount
        guard bytes > budget else { return [:] }
        var out: Removed = [:]
        for (ref, item) in items.sorted(by: { $0.value.lastUse < $1.value.lastUse }) where bytes > budget {
            guard !item.pinned, !keeping.contains(ref), (inUse[ref] ?? 0) == 0, merged[ref.name]?.adapter !== item.adapter else { continue }
            items[ref] = nil
            bytes -= item.adapter.byteCount
            out[ref] = item.adapter
        }
        return out
    }

    /// Keeps only what the catalog still serves: versions it lists (a served version with the same
    /// file stamps), and merged copies of resident served versions.
    mutating func reconcile(with catalog: AdapterCatalog) -> Removed {
        var gone: Removed = [:]
        for (ref, item) in items {
            guard let e = catalog.entries[ref.name], e.versions[ref.version ?? 0] != nil else { gone[ref] = item.adapter; continue }
            if e.version == ref.version, !item.stamps.isEmpty, item.stamps != e.stamps { gone[ref] = item.adapter }
        }
        for ref in gone.keys { items[ref] = nil }
        for (name, m) in merged {
            guard let e = catalog.entries[name], items[e.reference]?.adapter === m.adapter else { merged[name] = nil; continue }
        }
        return gone
    }

    // MARK: Use by sequences

    /// A sequence queued with these versions.
    mutating func acquire(_ uses: [(AdapterReference, LoRAAdapter)]) {
        for (ref, adapter) in uses {
            inUse[ref, default: 0] += 1
            digestUses[adapter.contentDigest, default: 0] += 1
        }
    }

    /// A sequence ended. Returns the content digests nothing uses or holds any more: their cached
    /// prefixes can go.
    mutating func release(_ uses: [(AdapterReference, LoRAAdapter)]) -> Set<String> {
        var candidates = Set<String>()
        for (ref, adapter) in uses {
            if let n = inUse[ref], n > 1 { inUse[ref] = n - 1 } else { inUse[ref] = nil }
            if let n = digestUses[adapter.contentDigest], n > 1 { digestUses[adapter.contentDigest] = n - 1 } else {
                digestUses[adapter.contentDigest] = nil
                candidates.insert(adapter.contentDigest)
            }
        }
        return unheld(candidates)
    }

    /// Of `digests`, those that no resident version has and no sequence uses.
    func unheld(_ digests: Set<String>) -> Set<String> {
        guard !digests.isEmpty else { return [] }
        let held = Set(items.values.map(\.adapter.contentDigest))
        return digests.filter { !held.contains($0) && digestUses[$0] == nil }
    }
}
