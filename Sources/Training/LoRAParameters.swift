// The trainable side of a LoRA adapter: every module's A and B as plain f32 arrays the optimizer
// updates in place, in lorad's convention (LoRAAdapter.swift): A is rank × in, B is out × rank with rows
// in GGUF order (q/k permuted), `scale` with alpha/r or rsLoRA's alpha/√r folded in, and for DoRA the
// magnitude vector m (GGUF row order). Gradients come back in the same layout, index for index.
// `adapter(name:model:)` turns the current values into the immutable LoRAAdapter the forward pass (and
// export) reads; for DoRA that recomputes m/‖W + s·B·A‖ per row from the base rows.

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

        public init(layer: Int, target: LoRATarget, rank: Int, inFeatures: Int, outFeatures: Int, scale: Float,
                    a: [Float], b: [Float], magnitude: [Float]? = nil) {
            precondition(a.count == rank * inFeatures && b.count == outFeatures * rank, "LoRAParameters: A/B sizes do not match the shape")
            precondition(magnitude.map { $0.count == outFeatures } ?? true, "LoRAParameters: magnitude needs one value per output row")
            self.layer = layer
            self.target = target
            self.rank = rank
            self.inFeatures = inFeatures
            self.outFeatures = outFeatures
            self.scale = scale
            self.a = a
            self.b = b
            self.magnitude = magnitude
        }

        public var isDoRA: Bool { magnitude != nil }
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
            var doraScale: [Float]?
            if let mag = m.magnitude {
                let w = model.weights.layers[m.layer].matrix(m.target)
                doraScale = try DoRA.scales(magnitude: mag, a: m.a, b: m.b, scale: m.scale, rank: m.rank,
                                            inFeatures: m.inFeatures, outFeatures: m.outFeatures,
                                            module: m.target.hfPath(layer: m.layer)) { row in
                    var out = [Float](repeating: 0, count: w.cols)
                    out.withUnsafeMutableBufferPointer { w.decodeRow(row, into: $0.baseAddress!) }
                    return out
                }
            }
            return (m.layer, m.target, LoRAModule(rank: m.rank, inFeatures: m.inFeatures, outFeatures: m.outFeatures,
                                                  a: m.a, b: m.b, scale: m.scale, doraScale: doraScale, magnitude: m.magnitude))
        }
        return LoRAAdapter(name: name, layerCount: layerCount, source: source, modules: built, declaredBase: declaredBase,
                           contentDigest: contentDigest)
    }

    /// The index in `modules` of (layer, target), if the adapter has that module.
    public func index(layer: Int, target: LoRATarget) -> Int? {
        modules.firstIndex { $0.layer == layer && $0.target == target }
    }

    /// The number of trainable floats.
    public var parameterCount: Int { modules.reduce(0) { $0 + $1.a.count + $1.b.count } }
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
