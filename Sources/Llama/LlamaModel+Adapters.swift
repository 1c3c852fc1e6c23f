// Batches and LoRA in the forward pass (DESIGN.md §6).
//
// The base product W·X runs once over every row of the batch. Then, for each adapter present, the
// rows of the items that use it get s·B·(A·x) added: two thin products over only those rows, so one
// batch mixes any number of adapters. A DoRA module rescales its rows' whole output by m/‖W+sBA‖
// (FORMATS.md §5.4). The base weights are never written.

import Kernels
import LoRA

/// One adapter applied to a sequence, with its per-request scale (1 = as trained).
public struct AdapterUse: Sendable {
    public let adapter: LoRAAdapter
    public let scale: Float

    public init(_ adapter: LoRAAdapter, scale: Float = 1) {
        self.adapter = adapter
        self.scale = scale
    }
}

/// One sequence's part of a batched forward pass. A sequence runs either on unmerged adapters
/// (`adapters`, any number, any scales) or on one merged adapter (`merged`), not both.
public struct BatchItem {
    public var tokens: [Int32]
    public var cache: KVCache
    public var logits: LlamaModel.Logits
    public var adapters: [AdapterUse]
    public var merged: MergedAdapter?

    public init(tokens: [Int32], cache: KVCache, logits: LlamaModel.Logits = .last, adapters: [AdapterUse] = [],
                merged: MergedAdapter? = nil) {
        self.tokens = tokens
        self.cache = cache
        self.logits = logits
        self.adapters = adapters
        self.merged = merged
    }
}

/// The rows of a batch that run on one merged adapter.
struct MergedGroup {
    let merged: MergedAdapter
    var rows: [Int] = []
}

/// The rows of a batch that use one adapter, each with its scale (Int32: what the LoRA kernel reads,
/// so no module call converts them).
struct AdapterGroup {
    let adapter: LoRAAdapter
    var rows: [Int32] = []
    var scales: [Float] = []
}

extension LlamaModel {
    /// Checks that a sequence's adapters fit this model and can be combined.
    func validate(adapters: [AdapterUse]) throws {
        for use in adapters {
            guard use.scale.isFinite else { throw LlamaError.badAdapterUse(use.adapter.name, "its scale is \(use.scale)") }
            guard use.adapter.layerCount == config.layerCount else {
                throw LlamaError.badAdapterUse(use.adapter.name,
                    "it was made for \(use.adapter.layerCount) layers, the base model has \(config.layerCount) (hint: wrong base model?)")
            }
            if use.adapter.isDoRA {
                // m/‖W+sBA‖ was computed for the trained scale; another scale or a second adapter on
                // the same rows would need it recomputed.
                guard use.scale == 1 || use.scale == 0 else {
                    throw LlamaError.badAdapterUse(use.adapter.name, "it is a DoRA adapter, which only runs at scale 1")
                }
                guard adapters.count == 1 else {
                    throw LlamaError.badAdapterUse(use.adapter.name, "it is a DoRA adapter, which cannot be stacked with others")
                }
            }
        }
    }

    /// Groups the rows of items that run on merged adapters, by adapter.
    func mergedGroups(_ batch: [BatchItem], offsets: [Int]) -> [MergedGroup] {
        var groups: [MergedGroup] = []
        var index: [ObjectIdentifier: Int] = [:]
        for (i, item) in batch.enumerated() {
            guard let m = item.merged else { continue }
            let g = index[ObjectIdentifier(m)] ?? {
                groups.append(MergedGroup(merged: m))
                index[ObjectIdentifier(m)] = groups.count - 1
                return groups.count - 1
            }()
            groups[g].rows += (0..<item.tokens.count).map { offsets[i] + $0 }
        }
        return groups
    }

    /// Groups the batch's rows by adapter. Scale 0 drops the adapter, so the output is exactly the base's.
    func adapterGroups(_ batch: [BatchItem], offsets: [Int]) -> [AdapterGroup] {
        var groups: [AdapterGroup] = []
        var index: [ObjectIdentifier: Int] = [:]
        for (i, item) in batch.enumerated() {
            for use in item.adapters where use.scale != 0 {
                let id = ObjectIdentifier(use.adapter)
                let g: Int
                if let existing = index[id] {
                    g = existing
                } else {
                    g = groups.count
                    index[id] = g
                    groups.append(AdapterGroup(adapter: use.adapter))
                }
                for t in 0..<item.tokens.count {
                    groups[g].rows.append(Int32(offsets[i] + t))
                    groups[g].scales.append(use.scale)
                }
            }
        }
        return groups
    }

    /// y = W·x for every row (W' for rows on a merged adapter that touches this matrix), plus each
    /// unmerged adapter's low-rank term on its rows.
    func linear(_ w: WeightMatrix, _ x: [Float], _ n: Int, _ y: inout [Float], layer: Int, target: LoRATarget,
                _ groups: [AdapterGroup], _ merged: [MergedGroup] = []) {
        let here = merged.compactMap { g in g.merged.matrix(layer: layer, target: target).map { (g.rows, $0) } }
        if here.isEmpty {
            mm(w, x, n, &y)
        } else {
            var covered = [Bool](repeating: false, count: n)
            for (rows, _) in here { for r in rows { covered[r] = true } }
            mmRows(w, x, rows: (0..<n).filter { !covered[$0] }, &y)
            for (rows, m) in here { mmRows(m, x, rows: rows, &y) }
        }
        applyGroups(groups, layer: layer, target: target, x, &y, inDim: w.cols, outDim: w.rows)
    }

    /// y[r] = W·x[r] for the given rows only (gathered into one product, then scattered back).
    private func mmRows(_ w: WeightMatrix, _ x: [Float], rows: [Int], _ y: inout [Float]) {
        guard !rows.isEmpty else { return }
        var xs = [Float](repeating: 0, count: rows.count * w.cols)
        for (j, r) in rows.enumerated() {
            for c in 0..<w.cols { xs[j * w.cols + c] = x[r * w.cols + c] }
        }
        var ys = [Float](repeating: 0, count: rows.count * w.rows)
        mm(w, xs, rows.count, &ys)
        for (j, r) in rows.enumerated() {
            for o in 0..<w.rows { y[r * w.rows + o] = ys[j * w.rows + o] }
        }
    }

    /// Adds every unmerged adapter's term to its rows. Groups run in parallel on the pool when no row
    /// belongs to two groups (stacked adapters on one row run serially, so no row is written twice).
    func applyGroups(_ groups: [AdapterGroup], layer: Int, target: LoRATarget, _ x: [Float], _ y: inout [Float],
                     inDim: Int, outDim: Int) {
        let work = groups.compactMap { g in g.adapter.module(layer: layer, target: target).map { (g, $0) } }
        guard !work.isEmpty else { return }
        var seen = Set<Int32>()
        let disjoint = work.allSatisfy { g, _ in g.rows.allSatisfy { seen.insert($0).inserted } }
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                let xp = UnsafeSendable(xb.baseAddress!), yp = UnsafeSendable(yb.baseAddress!)
                let body: @Sendable (Int) -> Void = { i in
                    let (g, m) = work[i]
                    Self.applyLoRA(m, xp.value, yp.value, rows: g.rows, scales: g.scales, inDim: inDim, outDim: outDim)
                }
                if disjoint && work.count > 1 {
                    pool.parallelFor(work.count, body)
                } else {
                    for i in work.indices { body(i) }
                }
            }
        }
    }

    /// y[r] = dora ⊙ (y[r] + s·B·(A·x[r])) for the given rows (dora = 1 for plain LoRA). The C kernel
    /// reads A and Bᵀ in the module's packed element type (f16/bf16 when exact, else f32).
    private static func applyLoRA(_ m: LoRAModule, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                  rows: [Int32], scales: [Float], inDim: Int, outDim: Int) {
        let p = m.packed
        rows.withUnsafeBufferPointer { rb in
            scales.withUnsafeBufferPointer { sb in
                // A is the module's own f32 `a` on the f32 path, else the packed 16-bit copy.
                func run(_ a: UnsafeRawBufferPointer, _ bt: UnsafeRawBufferPointer, _ element: LoRAElement) {
                    loraRows(element: element, a: a.baseAddress!, bt: bt.baseAddress!, rank: m.rank, inDim: inDim,
                             outDim: outDim, x: x, rows: rb.baseAddress!, scales: sb.baseAddress!, scale: m.scale,
                             count: rows.count, y: y)
                }
                if p.element == .f32 {
                    m.a.withUnsafeBytes { a in p.bt32.withUnsafeBytes { bt in run(a, bt, .f32) } }
                } else {
                    p.a16.withUnsafeBytes { a in p.bt16.withUnsafeBytes { bt in run(a, bt, p.element) } }
                }
            }
        }
        if let dora = m.doraScale {
            for row in rows {
                let yr = y + Int(row) * outDim
                for o in 0..<outDim { yr[o] *= dora[o] }
            }
        }
    }
}
