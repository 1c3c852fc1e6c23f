// Merging one adapter into copies of the base matrices it touches: W' = W + s·B·A, and for DoRA
// W' = (m/‖W + s·B·A‖)[:,None] ⊙ (W + s·B·A) (FORMATS.md §5.3-§5.4). The base stays untouched;
// merged matrices are separate copies, stored as F32, F16, or re-quantized to the base's own type
// with the largest absolute error of that storage reported (it is the price of running merged).

import Kernels

public enum MergeStorage: Sendable, Equatable {
    case f32
    case f16
    /// Re-quantized to the base matrix's stored type (ggml's reference quantizers).
    case baseType
}

public struct MergedWeight: Sendable {
    public let layer: Int
    public let target: LoRATarget
    /// Stored type of `data`.
    public let type: TensorType
    /// out (GGUF row order) × in, like the base tensor (ggml ne = [in, out]).
    public let rows: Int
    public let cols: Int
    public let data: [UInt8]
    /// max |stored value − exact f32 merged value| over the matrix (0 for F32).
    public let maxAbsError: Float
}

extension LoRAModule {
    /// userScale·scale·B·A as an out × in row-major matrix (GGUF row order): what the adapter adds to W
    /// (before DoRA's row factors). Accumulated in f32 over the rank, in rank order.
    public func delta(userScale: Float = 1) -> [Float] {
        var out = [Float](repeating: 0, count: outFeatures * inFeatures)
        let s = userScale * scale
        for r in 0..<outFeatures {
            for k in 0..<rank {
                let bk = s * b[r * rank + k]
                if bk == 0 { continue }
                let aRow = k * inFeatures, oRow = r * inFeatures
                for c in 0..<inFeatures { out[oRow + c] += bk * a[aRow + c] }
            }
        }
        return out
    }

    /// The merged matrix in f32: W + delta, times doraScale per row for DoRA. `baseRow(r)` gives row r
    /// of W in GGUF order.
    public func mergedRows(userScale: Float = 1, baseRow: (Int) -> [Float]) -> [Float] {
        var m = delta(userScale: userScale)
        for r in 0..<outFeatures {
            let w = baseRow(r)
            let f = doraScale?[r] ?? 1
            for c in 0..<inFeatures { m[r * inFeatures + c] = f * (w[c] + m[r * inFeatures + c]) }
        }
        return m
    }
}

extension LoRAAdapter {
    /// Merged copies of every matrix the adapter touches.
    public func merged(base: BaseModelInfo, storage: MergeStorage, userScale: Float = 1) throws -> [MergedWeight] {
        guard userScale.isFinite else { throw LoRAError.incompatible("merge scale is \(userScale)") }
        if isDoRA && userScale != 1 {
            throw LoRAError.incompatible("a DoRA adapter merges only at scale 1 (its m/‖W+sBA‖ factors were computed for the trained scale)")
        }
        return try modules.map { layer, target, module in
            let probe = base.baseRow(layer, target, 0).count
            guard probe == module.inFeatures else {
                throw LoRAError.incompatible("merging \(target.hfPath(layer: layer)) needs base rows of \(module.inFeatures) values, the base model info gave \(probe)")
            }
            let exact = module.mergedRows(userScale: userScale) { base.baseRow(layer, target, $0) }
            let type: TensorType
            switch storage {
            case .f32: type = .f32
            case .f16: type = .f16
            case .baseType: type = base.baseType(layer, target)
            }
            guard type.isQuantizable, type.isComputable else {
                throw LoRAError.cannotExport(format: "merged \(type.name)", reason: "lorad has no quantizer for \(type.name); merge as F16 or F32")
            }
            if module.inFeatures % type.blockSize != 0 {
                throw LoRAError.cannotExport(format: "merged \(type.name)", reason: "rows of \(module.inFeatures) are not whole \(type.name) blocks")
            }
            let data: [UInt8]
            do { data = try quantize(type, exact) } catch {
                throw LoRAError.cannotExport(format: "merged \(type.name)", reason: "\(error)")
            }
            var err: Float = 0
            if type != .f32 {
                let back = (try? dequantize(type, bytes: data)) ?? []
                for i in 0..<min(back.count, exact.count) { err = max(err, abs(back[i] - exact[i])) }
            }
            return MergedWeight(layer: layer, target: target, type: type, rows: module.outFeatures,
                                cols: module.inFeatures, data: data, maxAbsError: err)
        }
    }
}
