// The in-memory LoRA adapter: the contract between the loaders (PEFT, GGUF), merge/combine/export,
// and the forward pass. Every module is already in lorad's convention: A is rank × in (PEFT's lora_A
// layout), B is out × rank with rows in GGUF order (the Q/K permutation of FORMATS.md §3.4 applied),
// and `scale` has every PEFT/llama.cpp scaling rule folded in. The forward computes
//     y = W·x + userScale·scale·B·(A·x)
// and, for DoRA (FORMATS.md §5.4), y = doraScale ⊙ (W·x + scale·B·(A·x)).
// Immutable after load, so one adapter is shared by every sequence that uses it.

import Crypto
import Kernels

public struct LoRAModule: Sendable, Equatable {
    public let rank: Int
    public let inFeatures: Int
    public let outFeatures: Int
    /// rank × inFeatures, row-major (PEFT lora_A layout).
    public let a: [Float]
    /// outFeatures × rank, row-major, rows in GGUF order (q/k already permuted).
    public let b: [Float]
    /// Everything folded: alpha/r or alpha/sqrt(r), rank_pattern/alpha_pattern, llama.cpp's alpha/rank.
    public let scale: Float
    /// DoRA: per GGUF-order output row, m / ‖W + scale·B·A‖_row; nil for plain LoRA.
    public let doraScale: [Float]?
    /// DoRA: the magnitude vector m in GGUF row order (kept so PEFT export needs no base); nil for plain LoRA.
    public let magnitude: [Float]?

    public init(rank: Int, inFeatures: Int, outFeatures: Int, a: [Float], b: [Float], scale: Float,
                doraScale: [Float]? = nil, magnitude: [Float]? = nil) {
        precondition(a.count == rank * inFeatures && b.count == outFeatures * rank, "LoRAModule: A/B sizes do not match the shape")
        precondition(doraScale.map { $0.count == outFeatures } ?? true, "LoRAModule: doraScale needs one value per output row")
        precondition(magnitude.map { $0.count == outFeatures } ?? true, "LoRAModule: magnitude needs one value per output row")
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.a = a
        self.b = b
        self.scale = scale
        self.doraScale = doraScale
        self.magnitude = magnitude
    }

    public var isDoRA: Bool { doraScale != nil }

    /// Bytes held by the module's arrays (the adapter adds its kernel copy).
    public var byteCount: Int { 4 * (a.count + b.count + (doraScale?.count ?? 0) + (magnitude?.count ?? 0)) }
}

public final class LoRAAdapter: Sendable {
    public let name: String
    /// The base model's layer count (modules exist only for some layers).
    public let layerCount: Int
    /// Where the adapter came from, for logs and manifests ("PEFT directory /x", "GGUF file /y", "cat of a, b").
    public let source: String
    private let entries: [Entry]
    private let index: [Int: Int]
    /// What the forward pass reads: every module's A and Bᵀ in one block, in the narrowest exact
    /// element type, found by `slot(layer:target:)` without a lookup (Kernels/LoRA/LoRAKernelWeights.swift).
    public let kernel: LoRAKernelWeights
    /// The identity of what the forward pass computes with; the prefix cache keys KV by it, so a
    /// republish with other weights can never hit the old entries, and an adapter unloaded and
    /// loaded again finds its entries. By default the sha256 of each module's layer, target, shape,
    /// folded scale, A, B and DoRA scales (every config rule is in it; the name, source and file
    /// layout are not). A loader may be given one instead (`LoRALoadOptions.contentDigest`): the
    /// registry passes its manifest's sha256 of the files, which names the same content without
    /// hashing the weights again on every load.
    public let contentDigest: String

    private struct Entry: Sendable {
        let layer: Int
        let target: LoRATarget
        let module: LoRAModule
    }

    /// Modules must have distinct (layer, target) keys with 0 <= layer < layerCount (checked: a
    /// violation is a bug in lorad's own loaders).
    /// The base model the adapter says it was trained for (PEFT `base_model_name_or_path`, a GGUF
    /// LoRA's `general.base_model.0.name`), if it says.
    public let declaredBase: String?

    public init(name: String, layerCount: Int, source: String,
                modules: [(layer: Int, target: LoRATarget, module: LoRAModule)], declaredBase: String? = nil,
                contentDigest: String? = nil) {
        self.name = name
        self.declaredBase = declaredBase
        self.layerCount = layerCount
        self.source = source
        let sorted = modules.sorted { ($0.layer, $0.target.order) < ($1.layer, $1.target.order) }
        entries = sorted.map { Entry(layer: $0.layer, target: $0.target, module: $0.module) }
        var index: [Int: Int] = [:]
        for (i, e) in entries.enumerated() {
            precondition(e.layer >= 0 && e.layer < layerCount, "LoRAAdapter: layer \(e.layer) out of range")
            precondition(index.updateValue(i, forKey: Self.slot(layer: e.layer, target: e.target)) == nil, "LoRAAdapter: duplicate module")
        }
        self.index = index
        self.contentDigest = contentDigest ?? Self.digest(entries)
        kernel = LoRAKernelWeights(slotCount: layerCount * 8, modules: entries.map { e in
            let m = e.module
            return (Self.slot(layer: e.layer, target: e.target),
                    LoRAKernelWeights.Module(rank: m.rank, inDim: m.inFeatures, outDim: m.outFeatures, a: m.a, b: m.b,
                                             scale: m.scale, dora: m.doraScale))
        })
    }

    private static func digest(_ entries: [Entry]) -> String {
        var h = SHA256()
        func add(_ values: [Float]) { values.withUnsafeBytes { h.update(bufferPointer: $0) } }
        for e in entries {
            let m = e.module
            [Int64(e.layer), Int64(e.target.order), Int64(m.rank), Int64(m.inFeatures), Int64(m.outFeatures),
             Int64(m.scale.bitPattern), m.doraScale == nil ? 0 : 1].withUnsafeBytes { h.update(bufferPointer: $0) }
            add(m.a)
            add(m.b)
            if let d = m.doraScale { add(d) }
        }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The index of (layer, target) in `kernel`: layer·8 + position in q, k, v, o, gate, up, down.
    public static func slot(layer: Int, target: LoRATarget) -> Int { layer * 8 + target.order }

    public func module(layer: Int, target: LoRATarget) -> LoRAModule? {
        index[Self.slot(layer: layer, target: target)].map { entries[$0].module }
    }

    /// Every module, ordered by layer then q, k, v, o, gate, up, down.
    public var modules: [(layer: Int, target: LoRATarget, module: LoRAModule)] {
        entries.map { ($0.layer, $0.target, $0.module) }
    }

    public var isDoRA: Bool { entries.contains { $0.module.isDoRA } }
    public var byteCount: Int { entries.reduce(kernel.byteCount) { $0 + $1.module.byteCount } }

    /// Bytes one module holds: its f32 arrays and its part of the kernel copy.
    public func byteCount(layer: Int, target: LoRATarget) -> Int {
        (module(layer: layer, target: target)?.byteCount ?? 0) + kernel.byteCount(slot: Self.slot(layer: layer, target: target))
    }
}

public struct LoRALoadOptions: Sendable {
    /// Adapters with a larger rank in any module are refused.
    public var maxRank: Int = 256
    /// The loaded adapter's `contentDigest`, when the caller already knows one for these files
    /// (nil: computed from the weights).
    public var contentDigest: String? = nil

    public init(maxRank: Int = 256, contentDigest: String? = nil) {
        self.maxRank = maxRank
        self.contentDigest = contentDigest
    }
}
