// An adapter merged into copies of the base matrices it touches (W' = W + s·B·A, DESIGN.md §1.4):
// a heavy-traffic tenant's rows then run one product on W' instead of W plus the two thin LoRA
// products. The base stays untouched; dropping the MergedAdapter frees the copies (unmerge).
// The daemon builds one on the loader thread (`POST /v1/adapters/NAME/merge`, `adapters.merge`, a
// manifest's `merge`) and the forward pass runs a sequence's rows on it (`BatchItem.merged`).

import Kernels
import LoRA

public final class MergedAdapter: @unchecked Sendable {
    // @unchecked: the matrices point into `storage`, owned here and never written after init.
    public let adapter: LoRAAdapter
    /// The user scale the merge baked in.
    public let scale: Float
    public let storageType: TensorType
    /// Largest |stored − exact merged value| over every matrix (0 for F32).
    public let maxAbsError: Float
    public let byteCount: Int
    private let matrices: [Int: WeightMatrix]
    private let storage: [UnsafeMutableRawPointer]

    public init(adapter: LoRAAdapter, base: BaseModelInfo, storage kind: MergeStorage = .f16, scale: Float = 1) throws {
        let merged = try adapter.merged(base: base, storage: kind, userScale: scale)
        var matrices: [Int: WeightMatrix] = [:]
        var storage: [UnsafeMutableRawPointer] = []
        var bytes = 0
        for m in merged {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(m.data.count, 1), alignment: 64)
            m.data.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: m.data.count) }
            storage.append(p)
            bytes += m.data.count
            matrices[Self.key(m.layer, m.target)] = WeightMatrix(type: m.type, rows: m.rows, cols: m.cols, data: UnsafeRawPointer(p))
        }
        self.adapter = adapter
        self.scale = scale
        self.storageType = merged.first?.type ?? .f32
        self.maxAbsError = merged.map(\.maxAbsError).max() ?? 0
        self.byteCount = bytes
        self.matrices = matrices
        self.storage = storage
    }

    deinit {
        for p in storage { p.deallocate() }
    }

    static func key(_ layer: Int, _ target: LoRATarget) -> Int { layer * 8 + LoRATarget.allCases.firstIndex(of: target)! }

    func matrix(layer: Int, target: LoRATarget) -> WeightMatrix? { matrices[Self.key(layer, target)] }
}
