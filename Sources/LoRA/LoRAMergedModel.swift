// A whole merged model file: the base GGUF with every matrix an adapter touches replaced by its
// merged copy (LoRAMerge.swift: W + s·B·A, DoRA row factors applied), and every other tensor and
// every metadata key copied byte for byte in the base's order. The result is a plain model that
// any GGUF Llama loader runs without the adapter; `lorad adapter merge` writes it.

import Kernels
import ModelFormats

/// One replaced tensor of a merged model file.
public struct MergedTensorReport: Sendable {
    public let name: String
    public let type: TensorType
    /// max |stored value − exact f32 merged value| (0 for F32 storage).
    public let maxAbsError: Float
}

extension LoRAAdapter {
    /// Writes `gguf` (the base this adapter was validated against, described by `info`) to `path`
    /// with the adapter merged in. Merged matrices are stored as `storage` says; the base's own
    /// type for `.baseType`. Returns one report per replaced tensor, in tensor order.
    public func writeMergedModel(base gguf: GGUFFile, info: BaseModelInfo, to path: String,
                                 storage: MergeStorage, userScale: Float = 1) throws -> [MergedTensorReport] {
        guard info.layerCount == layerCount else {
            throw LoRAError.incompatible("'\(name)' is for \(layerCount) layers, the base model has \(info.layerCount)")
        }
        let merged = try self.merged(base: info, storage: storage, userScale: userScale)
        var byName: [String: MergedWeight] = [:]
        for m in merged { byName[m.target.ggufTensor(layer: m.layer)] = m }
        var w = GGUFWriter(alignment: gguf.alignment)
        for key in gguf.metadataKeys {
            if let v = gguf.metadata[key] { w.set(key, v) }
        }
        var reports: [MergedTensorReport] = []
        do {
            for t in gguf.tensors {
                if let m = byName[t.name] {
                    // ggml order: ne = [in, out], as the base tensor (checked by BaseModelInfo(gguf:)).
                    guard t.shape == [m.cols, m.rows] else {
                        throw LoRAError.shapeMismatch(tensor: t.name, expected: t.shape, found: [m.cols, m.rows])
                    }
                    try w.addTensor(name: t.name, type: m.type, shape: t.shape, data: m.data)
                    reports.append(MergedTensorReport(name: t.name, type: m.type, maxAbsError: m.maxAbsError))
                } else {
                    try w.addTensor(name: t.name, type: t.type, shape: t.shape, data: Array(gguf.data(of: t)))
                }
            }
        } catch let e as GGUFWriterError {
            throw LoRAError.cannotExport(format: "merged GGUF model", reason: e.description)
        }
        do { try w.write(to: path) } catch let e as GGUFWriterError { throw LoRAError.io(path: path, reason: e.description) }
        return reports
    }
}
