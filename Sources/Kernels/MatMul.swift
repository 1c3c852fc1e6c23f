// Weight × activation products on stored (possibly quantized) weights, f32 activations.
//
// A weight matrix is stored row-major as ggml does: `rows` output rows, each `cols` input elements
// long, in blocks along the input (FORMATS.md §1.4). `Y[t][r] = Σ_i W[r][i] · X[t][i]`.
//
// This is the portable f32-activation path: each weight row is decoded once into f32 and dotted with
// every token's activations, so a prefill of T tokens reads the weights once. Rows are shared out over
// threads. The quantized-activation fast paths of the speed issue are tested against this one.

import Dispatch

/// A read-only view of a stored weight matrix.
public struct WeightMatrix: @unchecked Sendable {
    // @unchecked: `data` points into an immutable mapped region that outlives every user.
    public let type: TensorType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer

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

/// Σ a[i]·b[i] in f32 with 8 independent SIMD lanes (order differs from a serial sum by float rounding).
@inline(__always)
public func dotF32(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 16 <= n {
        acc0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        acc1 += ra.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            * rb.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
        i += 16
    }
    var s = (acc0 + acc1).sum()
    while i < n {
        s += a[i] * b[i]
        i += 1
    }
    return s
}

/// Y[t][r] = W[r] · X[t] for t in 0..<tokens; X is `tokens × cols`, Y is `tokens × rows` (row stride
/// `yStride`, default `rows`). Work is split over `threads` by output rows.
public func matmul(_ w: WeightMatrix, _ x: UnsafePointer<Float>, tokens: Int,
                   _ y: UnsafeMutablePointer<Float>, yStride: Int? = nil, threads: Int = 1) {
    let ys = yStride ?? w.rows
    let chunks = max(1, min(threads, w.rows / 16))
    let per = (w.rows + chunks - 1) / chunks
    // Sendable wrappers for the raw pointers: each chunk writes a disjoint set of output columns.
    let xp = UnsafeSendable(x), yp = UnsafeSendable(y)
    let body: @Sendable (Int) -> Void = { (c: Int) in
        let start = c * per, end = min(w.rows, start + per)
        guard start < end else { return }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: w.cols) { buf in
            let row = buf.baseAddress!
            for r in start..<end {
                w.decodeRow(r, into: row)
                for t in 0..<tokens {
                    yp.value[t * ys + r] = dotF32(row, xp.value + t * w.cols, count: w.cols)
                }
            }
        }
    }
    if chunks == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: body) }
}

/// A pointer passed to worker closures that write disjoint parts of it.
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
