// A read-only view of a stored weight matrix: ggml's row-major layout, rows of whole blocks, pointing
// into the mapped file (or into a merged copy), optionally with its 8-row repacked copy
// (RepackedWeights.swift) for the products that read one.

public struct WeightMatrix: @unchecked Sendable {
    // @unchecked: `data` points into an immutable mapped region that outlives every user.
    public let type: TensorType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer
    /// A copy in the 8-row interleaved layout (RepackedWeights.swift), used by the Q8 and sgemm paths
    /// when present; set with `withRepackedCopy()` (which `ProductPlan.prepare` calls).
    public internal(set) var repacked: RepackedWeights?

    public init(type: TensorType, rows: Int, cols: Int, data: UnsafeRawPointer) {
        precondition(cols % type.blockSize == 0, "rows must be whole blocks")
        self.type = type
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    public var rowBytes: Int { cols / type.blockSize * type.blockBytes }

    public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }

    /// Decodes row `r` into `dst` (`cols` floats).
    public func decodeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        dequantize(type, row(r), count: cols, into: dst)
    }
}
