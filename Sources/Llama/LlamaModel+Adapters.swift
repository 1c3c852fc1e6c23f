// Batches and LoRA in the forward pass (DESIGN.md §6).
//
// The base product W·X runs once over every row of the batch. Then, for each adapter present, the
// rows of the items that use it get s·B·(A·x) added: two thin products over only those rows, so one
// batch mixes any number of adapters. For a decode step's few adapter rows those products run during
// the base product instead (`SideWork`, into scratch rows added afterwards). A DoRA module rescales
// its rows' whole output by m/‖W+sBA‖ (FORMATS.md §5.4). The base weights are never written.

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

/// Which rows of a batch use which unmerged adapters, built once per forward pass: each adapter's rows
/// and per-row scales sit in one buffer whose pointers the LoRA jobs of all 210 projections reuse, so
/// a projection's adapter terms cost no lookups, row copies or reference counting.
final class AdapterPlan {
    /// The adapters in the order first met, each with its range in `rows`/`scales`.
    private let adapters: [LoRAAdapter]
    private let ranges: [Range<Int>]
    /// Every adapter row (all adapters' ranges together) and its scale.
    private let rows: UnsafeMutableBufferPointer<Int32>
    private let scales: UnsafeMutableBufferPointer<Float>
    /// No row uses two adapters, so every adapter's term can run in parallel.
    private let disjoint: Bool
    /// Present when the terms run beside the base product (`SideWork`): a few adapter rows among the
    /// first rows of the batch (a decode step of one or a few sequences), computed into this scratch,
    /// rows 0...last of the batch at row · outDim, then added to the output.
    private let scratch: UnsafeMutableBufferPointer<Float>?

    /// At most this many adapter rows run alongside the base product; more are enough work to split
    /// well on their own, and the scratch add would grow with them.
    static let sideRows = 8

    /// Groups the batch's rows by adapter. `widest` is the widest projection output (for the scratch rows).
    init(_ batch: [BatchItem], offsets: [Int], widest: Int) {
        var order: [LoRAAdapter] = []
        var perAdapter: [[(row: Int32, scale: Float)]] = []
        var index: [ObjectIdentifier: Int] = [:]
        var disjoint = true
        for (i, item) in batch.enumerated() {
            // One entry per distinct adapter of the item, scales summed (s1·BAx + s2·BAx = (s1+s2)·BAx):
            // a job must list each row once, or two threads could add into the same row at once.
            var uses: [(adapter: LoRAAdapter, scale: Float)] = []
            for use in item.adapters {
                if let j = uses.firstIndex(where: { $0.adapter === use.adapter }) {
                    uses[j].scale += use.scale
                } else {
                    uses.append((use.adapter, use.scale))
                }
            }
            // Scale 0 drops the adapter, so the output is exactly the base's.
            uses.removeAll { $0.scale == 0 }
            if uses.count > 1 { disjoint = false }
            for use in uses {
                let id = ObjectIdentifier(use.adapter)
                let g: Int
                if let existing = index[id] {
                    g = existing
                } else {
                    g = order.count
                    index[id] = g
                    order.append(use.adapter)
                    perAdapter.append([])
                }
                for t in 0..<item.tokens.count { perAdapter[g].append((Int32(offsets[i] + t), use.scale)) }
            }
        }
        let all = perAdapter.joined()
        // Exactly all.count long, with a base address even when empty (jobs point into it).
        rows = UnsafeMutableBufferPointer(start: .allocate(capacity: max(all.count, 1)), count: all.count)
        scales = UnsafeMutableBufferPointer(start: .allocate(capacity: max(all.count, 1)), count: all.count)
        var ranges: [Range<Int>] = []
        var at = 0
        for list in perAdapter {
            for (j, entry) in list.enumerated() {
                rows[at + j] = entry.row
                scales[at + j] = entry.scale
            }
            ranges.append(at..<(at + list.count))
            at += list.count
        }
        adapters = order
        self.ranges = ranges
        self.disjoint = disjoint
        // DoRA rescales the whole output row, so its term cannot be added after the product.
        if let last = rows.max().map(Int.init), disjoint, all.count <= Self.sideRows, last < 4 * Self.sideRows,
           !order.contains(where: { $0.isDoRA }) {
            scratch = .allocate(capacity: (last + 1) * widest)
        } else {
            scratch = nil
        }
    }

    deinit {
        rows.deallocate()
        scales.deallocate()
        scratch?.deallocate()
    }

    /// The adapters' jobs for (layer, target); they point into this plan and the adapters.
    func jobs(layer: Int, target: LoRATarget) -> [LoRAJob] {
        guard !adapters.isEmpty else { return [] }
        let slot = LoRAAdapter.slot(layer: layer, target: target)
        var jobs: [LoRAJob] = []
        jobs.reserveCapacity(adapters.count)
        for (adapter, range) in zip(adapters, ranges) {
            if let job = adapter.kernel.job(slot: slot, rows: rows.baseAddress! + range.lowerBound,
                                            scales: scales.baseAddress! + range.lowerBound, count: range.count) {
                jobs.append(job)
            }
        }
        return jobs
    }

    /// y[r] += every job's term on its rows (DoRA: y[r] = dora ⊙ (…)), after the base product.
    func apply(_ jobs: [LoRAJob], _ x: [Float], _ y: inout [Float], inDim: Int, outDim: Int, pool: ComputePool) {
        guard !jobs.isEmpty else { return }
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                loraApply(jobs, disjoint: disjoint, x: xb.baseAddress!, xs: inDim, y: yb.baseAddress!, ys: outDim, pool: pool)
            }
        }
    }

    /// Whether these jobs run alongside the base product (`alongside`, then `addSide`): few rows, one
    /// adapter each, no DoRA.
    func runsAlongside(_ jobs: [LoRAJob]) -> Bool { scratch != nil && !jobs.isEmpty }

    /// Runs `product(work)` with the jobs' terms as its side work, written into zeroed scratch rows.
    func alongside(_ jobs: [LoRAJob], _ x: [Float], inDim: Int, outDim: Int, product: (SideWork) -> Void) {
        let base = scratch!.baseAddress!
        for r in rows { (base + Int(r) * outDim).update(repeating: 0, count: outDim) }
        x.withUnsafeBufferPointer { xb in
            product(loraWork(jobs, x: xb.baseAddress!, xs: inDim, y: base, ys: outDim))
        }
    }

    /// y[r] += the scratch row r that `alongside` filled, for every adapter row.
    func addSide(_ y: inout [Float], outDim: Int) {
        let base = scratch!.baseAddress!
        y.withUnsafeMutableBufferPointer { yb in
            for r in rows {
                let d = base + Int(r) * outDim, out = yb.baseAddress! + Int(r) * outDim
                for o in 0..<outDim { out[o] += d[o] }
            }
        }
    }
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

    /// y = W·x for every row (W' for rows on a merged adapter that touches this matrix), plus each
    /// unmerged adapter's low-rank term on its rows.
    func linear(_ w: WeightMatrix, _ x: [Float], _ n: Int, _ y: inout [Float], layer: Int, target: LoRATarget,
                _ plan: AdapterPlan, _ merged: [MergedGroup] = []) {
        let here = merged.compactMap { g in g.merged.matrix(layer: layer, target: target).map { (g.rows, $0) } }
        let jobs = plan.jobs(layer: layer, target: target)
        if here.isEmpty, plan.runsAlongside(jobs) {
            // The side work writes the plan's scratch, not y, so the product may write y meanwhile.
            plan.alongside(jobs, x, inDim: w.cols, outDim: w.rows) { side in mm(w, x, n, &y, alongside: side) }
            plan.addSide(&y, outDim: w.rows)
            return
        }
        if here.isEmpty {
            mm(w, x, n, &y)
        } else {
            var covered = [Bool](repeating: false, count: n)
            for (rows, _) in here { for r in rows { covered[r] = true } }
            mmRows(w, x, rows: (0..<n).filter { !covered[$0] }, &y)
            for (rows, m) in here { mmRows(m, x, rows: rows, &y) }
        }
        plan.apply(jobs, x, &y, inDim: w.cols, outDim: w.rows, pool: pool)
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
}

extension LayerWeights {
    /// The projection a LoRA target adapts.
    public func matrix(_ target: LoRATarget) -> WeightMatrix {
        switch target {
        case .q: return wq
        case .k: return wk
        case .v: return wv
        case .o: return wo
        case .gate: return wGate
        case .up: return wUp
        case .down: return wDown
        }
    }
}
