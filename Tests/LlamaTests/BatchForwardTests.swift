// A batched forward pass over several sequences gives every sequence what it gets alone.

import Testing
@testable import Llama

@Suite(.serialized) struct BatchForwardTests {
    /// Three sequences at different positions (one mid-decode, one prefilling, one fresh) in one
    /// pass: each item's logits equal running it alone, up to float summation order (the rows go
    /// through the same kernels, so only the row split across threads can differ: 1e-4 is ample).
    @Test(arguments: LlamaModel.Numerics.allCases)
    func batchEqualsAlone(numerics: LlamaModel.Numerics) throws {
        let model = try LlamaModel(path: try testModelPath(), numerics: numerics)
        let histories: [[Int32]] = [[1, 9690, 198, 2683, 359], [], [1, 4093, 198]]
        let fresh: [[Int32]] = [[253], [19556, 905, 17, 216, 33], [26843, 2, 198, 1]]
        let V = model.config.vocabularySize

        var alone: [[Float]] = []
        for (h, f) in zip(histories, fresh) {
            let cache = model.makeCache()
            if !h.isEmpty { _ = try model.forward(h, cache: cache, logits: .none) }
            alone.append(try model.forward(f, cache: cache, logits: .all))
        }
        var caches: [KVCache] = []
        for h in histories {
            let cache = model.makeCache()
            if !h.isEmpty { _ = try model.forward(h, cache: cache, logits: .none) }
            caches.append(cache)
        }
        let batched = try model.forward(batch: zip(fresh, caches).map { BatchItem(tokens: $0, cache: $1, logits: .all) })
        for i in 0..<3 {
            #expect(batched[i].count == fresh[i].count * V)
            let diff = zip(batched[i], alone[i]).map { abs($0 - $1) }.max()!
            #expect(diff < 1e-4, "item \(i): max |Δ logit| \(diff)")
            #expect(caches[i].count == histories[i].count + fresh[i].count)
        }
    }

    @Test func badItemsChangeNothing() throws {
        let model = try LlamaModel(path: try testModelPath())
        let a = model.makeCache(), b = model.makeCache(contextLimit: 4)
        _ = try model.forward([1, 2], cache: a, logits: .none)
        // b cannot hold 5 tokens: the whole batch is refused before any cache moves.
        #expect(throws: LlamaError.contextFull(needed: 5, limit: 4)) {
            try model.forward(batch: [BatchItem(tokens: [3], cache: a), BatchItem(tokens: [1, 2, 3, 4, 5], cache: b)])
        }
        #expect(a.count == 2 && b.count == 0)
        #expect(throws: LlamaError.badToken(49152, vocabularySize: 49152)) {
            try model.forward(batch: [BatchItem(tokens: [3], cache: a), BatchItem(tokens: [49152], cache: b)])
        }
        #expect(throws: LlamaError.cacheSharedInBatch) {
            try model.forward(batch: [BatchItem(tokens: [3], cache: a), BatchItem(tokens: [4], cache: a)])
        }
        #expect(a.count == 2 && b.count == 0)
    }
}

@Suite struct KVBudgetTests {
    @Test func cachesDrawFromTheBudgetAndGiveBack() throws {
        let model = try LlamaModel(path: try testModelPath())
        // One position of SmolLM2 is 2 × 30 layers × 192 × 4 bytes = 46,080 bytes.
        let perPosition = 2 * 30 * 192 * 4
        let budget = KVBudget(capacityBytes: 100 * perPosition)
        var a: KVCache? = model.makeCache(budget: budget)
        _ = try model.forward([1, 2, 3], cache: a!, logits: .none)
        #expect(budget.usedBytes == 64 * perPosition, "grows in one 64-position chunk")
        let b = model.makeCache(budget: budget)
        // 64 more positions do not fit (100 - 64 = 36 left): the cache takes exactly what it needs.
        _ = try model.forward(Array(repeating: 5, count: 30), cache: b, logits: .none)
        #expect(budget.usedBytes == 94 * perPosition)
        #expect(throws: LlamaError.kvBudgetExhausted(needed: 10 * perPosition, available: 6 * perPosition)) {
            try model.forward(Array(repeating: 5, count: 10), cache: b, logits: .none)
        }
        #expect(b.count == 30, "a refused step leaves the cache as it was")
        a = nil
        #expect(budget.usedBytes == 30 * perPosition, "a freed cache returns its bytes")
        _ = try model.forward(Array(repeating: 5, count: 10), cache: b, logits: .none)
    }
}
