// The resident set on its own: least recently used eviction within the budget, and what it never
// evicts (pinned, in use, the versions a request needs together); which content digests
// become free for the prefix cache to drop. (That a merged copy keeps its adapter resident is
// LiveAdminTests' merge test, which needs a real base to merge into.)

import Testing
import LoRA
import Llama
import Registry
@testable import Server

struct ResidentAdaptersTests {
    /// A one-module adapter whose weights are all `value` (distinct values give distinct digests).
    static func adapter(_ name: String, _ value: Float, rank: Int = 2) -> LoRAAdapter {
        let m = LoRAModule(rank: rank, inFeatures: 8, outFeatures: 8, a: Array(repeating: value, count: rank * 8),
                           b: Array(repeating: value, count: 8 * rank), scale: 1)
        return LoRAAdapter(name: name, layerCount: 1, source: "test", modules: [(0, .q, m)])
    }

    static func ref(_ s: String) -> AdapterReference { AdapterReference(s)! }

    @Test func evictsLeastRecentlyUsedPastTheBudget() {
        let a = Self.adapter("a", 1), b = Self.adapter("b", 2), c = Self.adapter("c", 3)
        var r = ResidentAdapters(budget: 2 * a.byteCount)
        #expect(r.insert(Self.ref("a@v1"), a).isEmpty)
        #expect(r.insert(Self.ref("b@v1"), b).isEmpty)
        r.touch([Self.ref("a@v1")])   // b is now the least recently used
        let out = r.insert(Self.ref("c@v1"), c)
        #expect(Array(out.keys) == [Self.ref("b@v1")])
        #expect(r.items.keys.sorted { $0.description < $1.description } == [Self.ref("a@v1"), Self.ref("c@v1")])
        #expect(r.byteCount <= r.budget)
    }

    @Test func neverEvictsPinnedInUseOrKeptVersions() {
        let a = Self.adapter("a", 1), b = Self.adapter("b", 2), c = Self.adapter("c", 3), d = Self.adapter("d", 4)
        var r = ResidentAdapters(budget: 1)   // smaller than any adapter
        _ = r.insert(Self.ref("a@v1"), a, pinned: true)
        _ = r.insert(Self.ref("b@v1"), b)
        r.acquire([(Self.ref("b@v1"), b)])
        let out = r.insert(Self.ref("c@v1"), c, keeping: [Self.ref("d@v1")])
        #expect(out.isEmpty, "a is pinned, b in use, c just loaded: \(out.keys)")
        // c leaves on the next load, unless the request needs it too.
        #expect(r.insert(Self.ref("d@v1"), d, keeping: [Self.ref("c@v1")]).isEmpty)
        #expect(Set(r.evict().keys) == [Self.ref("c@v1"), Self.ref("d@v1")])
        // b stays while in use, goes when released; a stays while pinned.
        _ = r.release([(Self.ref("b@v1"), b)])
        #expect(Array(r.evict().keys) == [Self.ref("b@v1")])
        r.setPinned(Self.ref("a@v1"), false)
        #expect(Array(r.evict().keys) == [Self.ref("a@v1")])
    }

    @Test func aDigestIsFreeOnlyWhenNothingHoldsIt() {
        let a = Self.adapter("a", 1), same = Self.adapter("same", 1), b = Self.adapter("b", 2)
        #expect(a.contentDigest == same.contentDigest && a.contentDigest != b.contentDigest)
        var r = ResidentAdapters(budget: 1 << 30)
        _ = r.insert(Self.ref("a@v1"), a)
        r.acquire([(Self.ref("same@v1"), same)])
        r.acquire([(Self.ref("b@v1"), b)])
        // b is not resident: its last use frees its digest. same's digest is a's: resident, so held.
        #expect(r.release([(Self.ref("b@v1"), b)]) == [b.contentDigest])
        #expect(r.release([(Self.ref("same@v1"), same)]).isEmpty)
        let removed = r.remove(Self.ref("a@v1"))
        #expect(r.unheld(Set(removed.values.map(\.contentDigest))) == [a.contentDigest])
    }
}
