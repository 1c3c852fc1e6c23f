// An adapter's weights as the forward pass reads them, and the driver that applies many adapters'
// terms to one projection of a batch.
//
// Layout: one allocation per adapter holding every module's A (rank × in) and Bᵀ (rank × out, tiled
// by 8 output columns: `loraTiledBT`), in forward order (layer, then q, k, v, o, gate, up, down), each
// in the narrowest element type that holds all its values exactly: f16, else bf16, else f32. A table of raw descriptors, one per
// (layer, projection) slot, points into it.
//
// Why 16 bits: applying an adapter is memory-bound. A rank-8 adapter on all seven projections of
// SmolLM2 is 2.4 M parameters, read in full for every token of every sequence that uses it. Adapters
// are trained and shipped in f16 or bf16 (PEFT saves the dtype it trained in; llama.cpp's converter
// writes f16), so their values fit 16 bits exactly and halving the bytes changes no result. An adapter
// whose values need f32 (random test adapters, combinations) keeps f32: never a silent rounding.
// Why Bᵀ: adding B·t to an output row is then rank axpys over contiguous memory instead of one
// rank-long dot product per output element; tiled, those axpys read one sequential stream.
// Why one block and raw descriptors: a decode step applies 210 modules per adapter; looking each up in
// a dictionary and copying a struct of arrays (reference counting) cost about as much as the reads of a
// one-adapter step (2-3 µs a module), and one contiguous block is one stream for the prefetcher.

internal import CKernels

public final class LoRAKernelWeights: @unchecked Sendable {
    // @unchecked: `block` and `slots` are written once in init and only read afterwards; deinit frees
    // them when the owning adapter goes away.

    /// One module as the loaders hold it: A rank × in (row-major), B out × rank (row-major), the folded
    /// scale, and DoRA's per-output-row factor (nil for plain LoRA).
    public struct Module {
        public let rank: Int
        public let inDim: Int
        public let outDim: Int
        public let a: [Float]
        public let b: [Float]
        public let scale: Float
        public let dora: [Float]?

        public init(rank: Int, inDim: Int, outDim: Int, a: [Float], b: [Float], scale: Float, dora: [Float]?) {
            precondition(a.count == rank * inDim && b.count == outDim * rank, "LoRAKernelWeights.Module: A/B sizes do not match the shape")
            precondition(dora.map { $0.count == outDim } ?? true, "LoRAKernelWeights.Module: dora needs one value per output row")
            self.rank = rank
            self.inDim = inDim
            self.outDim = outDim
            self.a = a
            self.b = b
            self.scale = scale
            self.dora = dora
        }
    }

    /// What the kernel reads for one slot; `a == nil` when the adapter has no module there.
    struct Slot {
        var a: UnsafeRawPointer?
        var bt: UnsafeRawPointer?
        var element: LoRAElement
        var rank: Int
        var inDim: Int
        var outDim: Int
        var scale: Float
        var dora: UnsafePointer<Float>?
    }

    public let slotCount: Int
    private let block: UnsafeMutableRawPointer
    private let slots: UnsafeMutablePointer<Slot>
    private let slotBytes: [Int]

    /// Bytes of the block (A, Bᵀ and DoRA factors of every module).
    public var byteCount: Int { slotBytes.reduce(0, +) }

    /// Bytes of the block that hold `slot`'s module (0 when there is none).
    public func byteCount(slot: Int) -> Int {
        precondition(slot >= 0 && slot < slotCount, "LoRAKernelWeights: slot \(slot) out of range")
        return slotBytes[slot]
    }

    /// Packs `modules` (distinct slots in 0..<slotCount) into one block, in slot order. Each value is
    /// written once, straight into the block (loading a 40 MB adapter is on a request's path: no
    /// intermediate copies); the element type is chosen first by checking, without converting, that
    /// every value of A and B survives the narrower type.
    public init(slotCount: Int, modules: [(slot: Int, module: Module)]) {
        let sorted = modules.sorted { $0.slot < $1.slot }
        func rounded(_ n: Int) -> Int { (n + 63) & ~63 }
        var elements: [LoRAElement] = []
        var total = 0
        var slotBytes = [Int](repeating: 0, count: slotCount)
        for (i, (slot, m)) in sorted.enumerated() {
            precondition(slot >= 0 && slot < slotCount, "LoRAKernelWeights: slot \(slot) out of range")
            precondition(i == 0 || sorted[i - 1].slot != slot, "LoRAKernelWeights: two modules for slot \(slot)")
            let element: LoRAElement = Self.fitsF16(m.a) && Self.fitsF16(m.b) ? .f16
                : Self.fitsBF16(m.a) && Self.fitsBF16(m.b) ? .bf16 : .f32
            let size = element == .f32 ? 4 : 2
            let tiles = (m.outDim + 7) / 8
            slotBytes[slot] = rounded(size * m.a.count) + rounded(size * tiles * m.rank * 8) + rounded(4 * (m.dora?.count ?? 0))
            total += slotBytes[slot]
            elements.append(element)
        }
        self.slotCount = slotCount
        self.slotBytes = slotBytes
        block = .allocate(byteCount: max(total, 1), alignment: 64)
        slots = .allocate(capacity: max(slotCount, 1))
        slots.initialize(repeating: Slot(a: nil, bt: nil, element: .f32, rank: 0, inDim: 0, outDim: 0, scale: 0, dora: nil),
                         count: max(slotCount, 1))
        var at = 0
        for ((slot, m), element) in zip(sorted, elements) {
            let size = element == .f32 ? 4 : 2
            let tiles = (m.outDim + 7) / 8
            let a = block + at
            at += rounded(size * m.a.count)
            let bt = block + at
            at += rounded(size * tiles * m.rank * 8)
            m.a.withUnsafeBufferPointer { Self.store($0, at: a, as: element) }
            // Bᵀ tiled by 8 output columns (`loraTiledBT`): tile t, row k holds B[8t ..< 8t+8][k];
            // columns past outDim in the last tile are zero.
            let rank = m.rank, outDim = m.outDim
            m.b.withUnsafeBufferPointer { b in
                var column = [Float](repeating: 0, count: 8)
                for t in 0..<tiles {
                    for k in 0..<rank {
                        for j in 0..<8 {
                            let o = t * 8 + j
                            column[j] = o < outDim ? b[o * rank + k] : 0
                        }
                        column.withUnsafeBufferPointer { Self.store($0, at: bt + size * ((t * rank + k) * 8), as: element) }
                    }
                }
            }
            var dora: UnsafePointer<Float>? = nil
            if let d = m.dora {
                let p = block + at
                at += rounded(4 * d.count)
                d.withUnsafeBufferPointer { Self.store($0, at: p, as: .f32) }
                dora = UnsafePointer(p.assumingMemoryBound(to: Float.self))
            }
            slots[slot] = Slot(a: UnsafeRawPointer(a), bt: UnsafeRawPointer(bt), element: element, rank: m.rank, inDim: m.inDim,
                               outDim: m.outDim, scale: m.scale, dora: dora)
        }
    }

    /// Writes `values` at `p` as `element` (exact: the caller checked they fit).
    private static func store(_ values: UnsafeBufferPointer<Float>, at p: UnsafeMutableRawPointer, as element: LoRAElement) {
        switch element {
        case .f32:
            p.copyMemory(from: values.baseAddress!, byteCount: 4 * values.count)
        case .f16:
            let out = p.assumingMemoryBound(to: UInt16.self)
            for i in 0..<values.count { out[i] = f32ToF16(values[i]) }
        case .bf16:
            let out = p.assumingMemoryBound(to: UInt16.self)
            for i in 0..<values.count { out[i] = UInt16(values[i].bitPattern >> 16) }
        }
    }

    deinit {
        slots.deallocate()
        block.deallocate()
    }

    /// The element type the kernel reads for `slot`, or nil when the adapter has no module there (for
    /// tests and inspection).
    public func element(slot: Int) -> LoRAElement? {
        precondition(slot >= 0 && slot < slotCount, "LoRAKernelWeights: slot \(slot) out of range")
        return slots[slot].a == nil ? nil : slots[slot].element
    }

    /// The work of applying `slot` to `count` rows, or nil when the adapter has no module there. The
    /// job points into this object and into `rows`/`scales`: the caller keeps all three alive until
    /// `loraApply` returns.
    public func job(slot: Int, rows: UnsafePointer<Int32>, scales: UnsafePointer<Float>, count: Int) -> LoRAJob? {
        precondition(slot >= 0 && slot < slotCount, "LoRAKernelWeights: slot \(slot) out of range")
        guard slots[slot].a != nil, count > 0 else { return nil }
        return LoRAJob(slot: UnsafePointer(slots + slot), rows: rows, scales: scales, count: count)
    }

    /// What the kernel reads for `slot`, decoded back to f32: A (rank × in) and plain Bᵀ (rank × out,
    /// untiled), or nil when the adapter has no module there. For tests: packing must change no value.
    func decoded(slot: Int) -> (a: [Float], bt: [Float])? {
        precondition(slot >= 0 && slot < slotCount, "LoRAKernelWeights: slot \(slot) out of range")
        let s = slots[slot]
        guard let a = s.a, let bt = s.bt else { return nil }
        func value(_ p: UnsafeRawPointer, _ i: Int) -> Float {
            switch s.element {
            case .f32: return p.load(fromByteOffset: 4 * i, as: Float.self)
            case .f16: return f16ToF32(p.load(fromByteOffset: 2 * i, as: UInt16.self))
            case .bf16: return bf16ToF32(p.load(fromByteOffset: 2 * i, as: UInt16.self))
            }
        }
        let av = (0..<(s.rank * s.inDim)).map { value(a, $0) }
        var btv = [Float](repeating: 0, count: s.rank * s.outDim)
        for k in 0..<s.rank {
            for o in 0..<s.outDim { btv[k * s.outDim + o] = value(bt, (o / 8) * s.rank * 8 + k * 8 + o % 8) }
        }
        return (av, btv)
    }

    /// Every value is exactly an f16 (the first that is not stops the scan: f32 adapters fail fast).
    static func fitsF16(_ values: [Float]) -> Bool {
        for v in values {
            let h = f32ToF16(v)
            guard f16ToF32(h) == v || (v.isNaN && f16ToF32(h).isNaN) else { return false }
        }
        return true
    }

    /// Every value is exactly a bf16 (no bits in the lower half of its f32).
    static func fitsBF16(_ values: [Float]) -> Bool {
        values.allSatisfy { $0.bitPattern & 0xffff == 0 }
    }
}

/// One adapter module applied to some rows: y[r] = dora ⊙ (y[r] + scale·s_r·B·(A·x[r])).
/// Made by `LoRAKernelWeights.job`; holds raw pointers only (no reference counting per call).
public struct LoRAJob {

    let slot: UnsafePointer<LoRAKernelWeights.Slot>
    let rows: UnsafePointer<Int32>
    let scales: UnsafePointer<Float>
    let count: Int

    /// Applies the job to rows[lo..<hi].
    func run(_ lo: Int, _ hi: Int, x: UnsafePointer<Float>, xs: Int, y: UnsafeMutablePointer<Float>, ys: Int,
             path: KernelPath) {
        let s = slot.pointee
        precondition(s.inDim <= xs && s.outDim <= ys, "LoRAJob: module \(s.inDim)→\(s.outDim) does not fit rows of \(xs)→\(ys)")
        let done: Int32
        switch path.usable {
        case .avx2:
            done = lorad_avx2_lora_rows(s.element.kernelElement, s.a, s.bt, Int64(s.rank), Int64(s.inDim), Int64(s.outDim),
                                        x, Int64(xs), rows + lo, scales + lo, s.scale, Int64(hi - lo), y, Int64(ys))
        case .portable:
            done = lorad_portable_lora_rows(s.element.kernelElement, s.a, s.bt, Int64(s.rank), Int64(s.inDim), Int64(s.outDim),
                                            x, Int64(xs), rows + lo, scales + lo, s.scale, Int64(hi - lo), y, Int64(ys))
        }
        precondition(done == 1, "LoRAJob: element type \(s.element) not handled by the C kernel")
        if let dora = s.dora {
            for j in lo..<hi {
                let yr = y + Int(rows[j]) * ys
                for o in 0..<s.outDim { yr[o] *= dora[o] }
            }
        }
    }
}

/// The jobs as independent work items, each job cut into chunks of 8 rows: for `loraApply`, or to run
/// alongside a product (`SideWork`) when the jobs write elsewhere than the product's output. Every row
/// must appear at most once in all the jobs together (items run in any order, on any thread).
public func loraWork(_ jobs: [LoRAJob], x: UnsafePointer<Float>, xs: Int, y: UnsafeMutablePointer<Float>, ys: Int,
                     path: KernelPath = .best) -> SideWork {
    // Rows per item: a decode step has one row per job; a prompt's rows are split so both threads
    // share one adapter's long job (each row re-reads A and Bᵀ from cache, not memory).
    let chunk = 8
    var starts = [Int]()
    starts.reserveCapacity(jobs.count + 1)
    var n = 0
    for job in jobs {
        starts.append(n)
        n += (job.count + chunk - 1) / chunk
    }
    starts.append(n)
    return SideWork(count: n) { item in
        var j = 0
        while starts[j + 1] <= item { j += 1 }
        let lo = (item - starts[j]) * chunk
        jobs[j].run(lo, min(lo + chunk, jobs[j].count), x: x, xs: xs, y: y, ys: ys, path: path)
    }
}

/// Applies every job to `y` (rows of stride `ys`) from `x` (rows of stride `xs`). With `disjoint`
/// (no row in two jobs: one adapter per sequence) all jobs' items (`loraWork`) run in parallel;
/// otherwise (stacked adapters) the jobs run one after another, each parallel over its rows, and every
/// row adds its terms in job order. Either way no job may list a row twice (the caller merges repeated
/// uses of one adapter), so no row is written by two threads.
public func loraApply(_ jobs: [LoRAJob], disjoint: Bool, x: UnsafePointer<Float>, xs: Int,
                      y: UnsafeMutablePointer<Float>, ys: Int, pool: ComputePool?, path: KernelPath = .best) {
    if disjoint {
        loraWork(jobs, x: x, xs: xs, y: y, ys: ys, path: path).run(on: pool)
    } else {
        for job in jobs { loraWork([job], x: x, xs: xs, y: y, ys: ys, path: path).run(on: pool) }
    }
}
