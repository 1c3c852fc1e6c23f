// The trainable side of a LoRA adapter: every module's A and B as plain f32 arrays the optimizer
// updates in place, in lorad's convention (LoRAAdapter.swift): A is rank × in, B is out × rank with rows
// in GGUF order (q/k permuted), `scale` with alpha/r or rsLoRA's alpha/√r folded in, and for DoRA the
// magnitude vector m (GGUF row order). Gradients come back in the same layout, index for index.
// `adapter(name:model:)` turns the current values into the immutable LoRAAdapter the forward pass (and
// export) reads; for DoRA that recomputes m/‖W + s·B·A‖ per row from the base rows.
//
// PiSSA (LoRAInitialization.swift) trains against the residual W − s·B0·A0, but lorad's base is shared
// by every tenant and stays frozen, so the residual is not written into it. Instead a PiSSA module
// carries its starting factors as a frozen term (`Module.frozen`), and its delta is s·(B·A − B0·A0):
// W + s·(B·A − B0·A0) = (W − s·B0·A0) + s·B·A, exactly PiSSA's model. The frozen term is kept apart
// from A and B rather than as a frozen half of one rank-2r A and B, so the optimizer, its state, the
// gradients and the checkpoint only ever see the trainable values (AdamW's decoupled weight decay would
// otherwise shrink a frozen half). `adapter(name:model:)` joins the two into the rank-2r plain LoRA
// A' = [A; A0], B' = [B | −B0] at the same scale, which is PEFT's "convert PiSSA to LoRA"
// (path_initial_model_for_weight_conversion) and what the forward pass runs and publishing exports, so
// serving needs nothing new. The backward pass adds the frozen term's share of dX (its A0, B0 get no
// gradient; TrainingPass+Backward.swift).

import Kernels
import Llama
import LoRA

public struct LoRAParameters: Sendable {
    public struct Module: Sendable, Equatable {
        public let layer: Int
        public let target: LoRATarget
        public let rank: Int
        public let inFeatures: Int
        public let outFeatures: Int
        /// Folded scale (as LoRAModule.scale).
        public let scale: Float
        /// rank × inFeatures, row-major.
        public var a: [Float]
        /// outFeatures × rank, row-major, rows in GGUF order.
        public var b: [Float]
        /// DoRA: the magnitude vector m (outFeatures, GGUF row order); nil for plain LoRA.
        public var magnitude: [Float]?
        /// PiSSA: the frozen starting factors A0 (rank × in) and B0 (out × rank, GGUF row order),
        /// subtracted: the module's delta is scale·(B·A − B0·A0). nil otherwise.
        public var frozen: Frozen?

        public struct Frozen: Sendable, Equatable {
            public let a: [Float]
            public let b: [Float]
            public init(a: [Float], b: [Float]) {
                self.a = a
                self.b = b
            }
        }

        public init(layer: Int, target: LoRATarget, rank: Int, inFeatures: Int, outFeatures: Int, scale: Float,
                    a: [Float], b: [Float], magnitude: [Float]? = nil, frozen: Frozen? = nil) {
            precondition(a.count == rank * inFeatures && b.count == outFeatures * rank, "LoRAParameters: A/B sizes do not match the shape")
            precondition(magnitude.map { $0.count == outFeatures } ?? true, "LoRAParameters: magnitude needs one value per output row")
            precondition(frozen.map { $0.a.count == a.count && $0.b.count == b.count } ?? true, "LoRAParameters: the frozen term needs A's and B's shapes")
            self.layer = layer
            self.target = target
            self.rank = rank
            self.inFeatures = inFeatures
            self.outFeatures = outFeatures
            self.scale = scale
            self.a = a
            self.b = b
            self.magnitude = magnitude
            self.frozen = frozen
        }

        public var isDoRA: Bool { magnitude != nil }

        /// The rank the forward pass runs and publishing exports (2·rank with a frozen term).
        public var effectiveRank: Int { frozen == nil ? rank : 2 * rank }

        /// The factors the forward pass runs: A, B alone, or with a frozen term the rank-2r
        /// [A; A0] and [B | −B0].
        public var effective: (rank: Int, a: [Float], b: [Float]) {
            guard let f = frozen else { return (rank, a, b) }
            var joined = [Float](repeating: 0, count: outFeatures * 2 * rank)
            for o in 0..<outFeatures {
                for k in 0..<rank {
                    joined[o * 2 * rank + k] = b[o * rank + k]
                    joined[o * 2 * rank + rank + k] = -f.b[o * rank + k]
                }
            }
            return (2 * rank, a + f.a, joined)
        }
    }

    /// The base model's layer count.
    public let layerCount: Int
    /// Ordered by layer, then q, k, v, o, gate, up, down; (layer, target) pairs are distinct.
    public var modules: [Module]

    public init(layerCount: Int, modules: [Module]) {
        self.layerCount = layerCount
        self.modules = modules.sorted { ($0.layer, $0.target.order) < ($1.layer, $1.target.order) }
        var seen = Set<Int>()
        for m in self.modules {
            precondition(m.layer >= 0 && m.layer < layerCount, "LoRAParameters: layer \(m.layer) out of range")
            precondition(seen.insert(LoRAAdapter.slot(layer: m.layer, target: m.target)).inserted, "LoRAParameters: duplicate module")
        }
    }

    /// The adapter's current values, to train further. A DoRA module needs its magnitude vector
    /// (every loader keeps it).
    public init(adapter: LoRAAdapter) throws {
        for e in adapter.modules where e.module.isDoRA && e.module.magnitude == nil {
            throw TrainingError.badSetting(name: "adapter", value: "\(adapter.name) blk.\(e.layer).\(e.target.rawValue)",
                                           expected: "a DoRA module with its magnitude vector")
        }
        self.init(layerCount: adapter.layerCount, modules: adapter.modules.map { e in
            Module(layer: e.layer, target: e.target, rank: e.module.rank, inFeatures: e.module.inFeatures,
                   outFeatures: e.module.outFeatures, scale: e.module.scale, a: e.module.a, b: e.module.b,
                   magnitude: e.module.isDoRA ? e.module.magnitude : nil)
        })
    }

    /// An immutable adapter with the current values, for the forward pass or export. DoRA modules get
    /// m/‖W + s·B·A‖ per row from `model`'s stored rows (DoRA.scales, as the PEFT loader computes it).
    public func adapter(name: String, model: LlamaModel, source: String = "training", declaredBase: String? = nil,
                        contentDigest: String? = nil) throws -> LoRAAdapter {
        let built = try modules.map { m in
            let e = m.effective
            var doraScale: [Float]?
            if let mag = m.magnitude {
                let w = model.weights.layers[m.layer].matrix(m.target)
                doraScale = try DoRA.scales(magnitude: mag, a: e.a, b: e.b, scale: m.scale, rank: e.rank,
                                            inFeatures: m.inFeatures, outFeatures: m.outFeatures,
                                            module: m.target.hfPath(layer: m.layer)) { row in
                    var out = [Float](repeating: 0, count: w.cols)
                    out.withUnsafeMutableBufferPointer { w.decodeRow(row, into: $0.baseAddress!) }
                    return out
                }
            }
            return (m.layer, m.target, LoRAModule(rank: e.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures,
                                                  a: e.a, b: e.b, scale: m.scale, doraScale: doraScale, magnitude: m.magnitude))
        }
        return LoRAAdapter(name: name, layerCount: layerCount, source: source, modules: built, declaredBase: declaredBase,
                           contentDigest: contentDigest)
    }

    /// The index in `modules` of (layer, target), if the adapter has that module.
    public func index(layer: Int, target: LoRATarget) -> Int? {
        modules.firstIndex { $0.layer == layer && $0.target == target }
    }

    /// The number of trainable floats.
    public var parameterCount: Int { modules.reduce(0) { $0 + $1.a.count + $1.b.count + ($1.magnitude?.count ?? 0) } }

    /// These values with `source`'s frozen terms, module for module (a checkpoint holds only the
    /// trainable values; the frozen ones are the run's starting point).
    public func withFrozenTerms(of source: LoRAParameters) throws(TrainingError) -> LoRAParameters {
        var out = self
        for i in out.modules.indices {
            let m = out.modules[i]
            guard let j = source.index(layer: m.layer, target: m.target) else { continue }
            guard let f = source.modules[j].frozen else { continue }
            guard f.a.count == m.a.count, f.b.count == m.b.count else {
                throw .badSetting(name: "checkpoint", value: "blk.\(m.layer).\(m.target.rawValue) rank \(m.rank)",
                                  expected: "the rank of the run's PiSSA start (\(source.modules[j].rank))")
            }
            out.modules[i].frozen = f
        }
        return out
    }

    /// A new adapter on `targets` of every layer, scale alpha/r (rsLoRA: alpha/√r), started as PEFT
    /// starts one (LoRAInitialization): `.lora` draws A from SplitMix64(seed) with B zero, `.pissa`
    /// takes both from the base weight's SVD (with the frozen term that keeps the model unchanged).
    /// With `dora`, every module gets DoRA's magnitude vector, starting at W's row norms.
    public static func new(model: LlamaModel, rank: Int, alpha: Double, targets: [LoRATarget], rsLoRA: Bool = false,
                           initialization: LoRAInitialization.Method = .lora, dora: Bool = false,
                           seed: UInt64) throws(TrainingError) -> LoRAParameters {
        guard rank >= 1 else { throw .badSetting(name: "--rank", value: "\(rank)", expected: "at least 1") }
        guard alpha > 0, alpha.isFinite else { throw .badSetting(name: "--alpha", value: "\(alpha)", expected: "a positive number") }
        guard !targets.isEmpty else { throw .badSetting(name: "--targets", value: "none", expected: "at least one projection") }
        // PEFT allows both at once, but its PiSSA-to-LoRA conversion is not checked here for DoRA's
        // magnitude (nor is the pair in lorad's goldens), so it is refused rather than guessed.
        guard !(dora && initialization == .pissa) else {
            throw .badSetting(name: "--init/--dora", value: "pissa with DoRA", expected: "one of them (--init lora with --dora, or --init pissa alone)")
        }
        let scale = Float(rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
        var rng = SplitMix64(seed: seed ^ 0x4C6F_5241_496E_6974)
        var modules: [Module] = []
        for layer in 0..<model.config.layerCount {
            for target in LoRATarget.allCases where targets.contains(target) {
                let w = model.weights.layers[layer].matrix(target)
                guard rank <= min(w.rows, w.cols) else {
                    throw .badSetting(name: "--rank", value: "\(rank)", expected: "at most \(min(w.rows, w.cols)) for \(target.rawValue)")
                }
                let magnitude = dora ? LoRAInitialization.rowNorms(w) : nil
                switch initialization {
                case .lora:
                    modules.append(Module(layer: layer, target: target, rank: rank, inFeatures: w.cols, outFeatures: w.rows, scale: scale,
                                          a: LoRAInitialization.loraA(rank: rank, inFeatures: w.cols, rng: &rng),
                                          b: LoRAInitialization.loraB(outFeatures: w.rows, rank: rank), magnitude: magnitude))
                case .pissa:
                    let f: (a: [Float], b: [Float])
                    do {
                        f = try LoRAInitialization.pissa(weight: LoRAInitialization.dequantized(w), outFeatures: w.rows,
                                                         inFeatures: w.cols, rank: rank, scale: scale)
                    } catch {
                        throw .badSetting(name: "--init pissa", value: "blk.\(layer).\(target.rawValue)",
                                          expected: "a weight whose SVD converges (LAPACK: \(error))")
                    }
                    modules.append(Module(layer: layer, target: target, rank: rank, inFeatures: w.cols, outFeatures: w.rows, scale: scale,
                                          a: f.a, b: f.b, magnitude: magnitude, frozen: Module.Frozen(a: f.a, b: f.b)))
                }
            }
        }
        return LoRAParameters(layerCount: model.config.layerCount, modules: modules)
    }
}

/// d loss / d A and d loss / d B for every module of a LoRAParameters, index for index, same layouts.
public struct LoRAGradients: Sendable {
    /// modules[i]'s rank × inFeatures gradient.
    public var a: [[Float]]
    /// modules[i]'s outFeatures × rank gradient (rows in GGUF order).
    public var b: [[Float]]
    /// modules[i]'s magnitude gradient (DoRA, GGUF row order), nil for plain LoRA modules.
    public var magnitude: [[Float]?]

    /// Zeros shaped like `parameters`.
    public init(zerosLike parameters: LoRAParameters) {
        a = parameters.modules.map { [Float](repeating: 0, count: $0.a.count) }
        b = parameters.modules.map { [Float](repeating: 0, count: $0.b.count) }
        magnitude = parameters.modules.map { m in m.magnitude.map { [Float](repeating: 0, count: $0.count) } }
    }
}
