// Small dense linear algebra in double for the svd combination: Householder QR and a one-sided
// Jacobi SVD (Hestenes; Demmel & Veselić, "Jacobi's method is more accurate than QR", 1992).
//
// A rank-R product B·A (B out × R, A R × in) never needs the out × in matrix: with B = Q_b·R_b and
// Aᵀ = Q_a·R_a (thin QR), B·A = Q_b·(R_b·R_aᵀ)·Q_aᵀ, so the SVD of the R × R core gives the SVD of
// the product. R is a sum of adapter ranks (tens), so plain loops are fast enough and keep the LoRA
// module free of C dependencies.

enum SmallLinalg {
    /// Row-major m × n matrix in double.
    struct Matrix {
        var rows: Int
        var cols: Int
        var v: [Double]
        init(rows: Int, cols: Int, v: [Double]? = nil) {
            self.rows = rows
            self.cols = cols
            self.v = v ?? [Double](repeating: 0, count: rows * cols)
        }
        subscript(r: Int, c: Int) -> Double {
            get { v[r * cols + c] }
            set { v[r * cols + c] = newValue }
        }
        var transposed: Matrix {
            var t = Matrix(rows: cols, cols: rows)
            for r in 0..<rows { for c in 0..<cols { t[c, r] = self[r, c] } }
            return t
        }
        static func * (x: Matrix, y: Matrix) -> Matrix {
            precondition(x.cols == y.rows)
            var out = Matrix(rows: x.rows, cols: y.cols)
            for i in 0..<x.rows {
                for k in 0..<x.cols {
                    let xik = x[i, k]
                    if xik == 0 { continue }
                    for j in 0..<y.cols { out.v[i * y.cols + j] += xik * y.v[k * y.cols + j] }
                }
            }
            return out
        }
    }

    /// Thin Householder QR of an m × n matrix with m >= n: Q (m × n, orthonormal columns) and R (n × n).
    static func qr(_ a: Matrix) -> (q: Matrix, r: Matrix) {
        let m = a.rows, n = a.cols
        precondition(m >= n)
        var work = a
        var vs: [[Double]] = []
        for k in 0..<n {
            var norm = 0.0
            for i in k..<m { norm += work[i, k] * work[i, k] }
            norm = norm.squareRoot()
            var v = [Double](repeating: 0, count: m)
            if norm > 0 {
                let alpha = work[k, k] > 0 ? -norm : norm
                for i in k..<m { v[i] = work[i, k] }
                v[k] -= alpha
                var vn = 0.0
                for i in k..<m { vn += v[i] * v[i] }
                if vn > 0 {
                    for j in k..<n {
                        var d = 0.0
                        for i in k..<m { d += v[i] * work[i, j] }
                        let f = 2 * d / vn
                        for i in k..<m { work[i, j] -= f * v[i] }
                    }
                    let s = vn.squareRoot()
                    for i in k..<m { v[i] /= s }
                } else {
                    v = [Double](repeating: 0, count: m)
                }
            }
            vs.append(v)
        }
        var r = Matrix(rows: n, cols: n)
        for i in 0..<n { for j in i..<n { r[i, j] = work[i, j] } }
        // Q = H_0 H_1 … H_{n-1} applied to the first n columns of the identity.
        var q = Matrix(rows: m, cols: n)
        for j in 0..<n { q[j, j] = 1 }
        for k in stride(from: n - 1, through: 0, by: -1) {
            let v = vs[k]
            for j in 0..<n {
                var d = 0.0
                for i in k..<m { d += v[i] * q[i, j] }
                if d == 0 { continue }
                for i in k..<m { q[i, j] -= 2 * d * v[i] }
            }
        }
        return (q, r)
    }

    /// One-sided Jacobi SVD of an n × n matrix: U (n × n), singular values descending, V (n × n), with
    /// a = U·diag(s)·Vᵀ. Columns for zero singular values are zero in U.
    static func svd(_ a: Matrix) -> (u: Matrix, s: [Double], v: Matrix) {
        let n = a.cols
        var u = a
        var v = Matrix(rows: n, cols: n)
        for i in 0..<n { v[i, i] = 1 }
        for _ in 0..<100 {
            var rotated = false
            for i in 0..<n {
                for j in (i + 1)..<max(n, i + 1) {
                    var alpha = 0.0, beta = 0.0, gamma = 0.0
                    for r in 0..<u.rows {
                        alpha += u[r, i] * u[r, i]
                        beta += u[r, j] * u[r, j]
                        gamma += u[r, i] * u[r, j]
                    }
                    guard abs(gamma) > 1e-15 * (alpha * beta).squareRoot(), gamma != 0 else { continue }
                    rotated = true
                    let zeta = (beta - alpha) / (2 * gamma)
                    let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                    let c = 1 / (1 + t * t).squareRoot(), s = c * t
                    for r in 0..<u.rows {
                        let x = u[r, i], y = u[r, j]
                        u[r, i] = c * x - s * y
                        u[r, j] = s * x + c * y
                    }
                    for r in 0..<n {
                        let x = v[r, i], y = v[r, j]
                        v[r, i] = c * x - s * y
                        v[r, j] = s * x + c * y
                    }
                }
            }
            if !rotated { break }
        }
        var sv = [Double](repeating: 0, count: n)
        for j in 0..<n {
            var norm = 0.0
            for r in 0..<u.rows { norm += u[r, j] * u[r, j] }
            sv[j] = norm.squareRoot()
            if sv[j] > 0 { for r in 0..<u.rows { u[r, j] /= sv[j] } }
        }
        let order = (0..<n).sorted { sv[$0] > sv[$1] }
        var us = Matrix(rows: u.rows, cols: n), vs = Matrix(rows: n, cols: n)
        for (k, j) in order.enumerated() {
            for r in 0..<u.rows { us[r, k] = u[r, j] }
            for r in 0..<n { vs[r, k] = v[r, j] }
        }
        return (us, order.map { sv[$0] }, vs)
    }

    /// The best rank-`k` factorization of b·a (b: out × R, a: R × in, row-major f32) as
    /// (B' out × k, A' R… k × in), with the singular values in B' (PEFT's convention: B = U·S, A = Vh).
    /// Falls back to the dense product when R exceeds min(out, in).
    static func truncatedProduct(b: [Float], a: [Float], out: Int, rank: Int, inFeatures: Int, keep k: Int) -> (b: [Float], a: [Float], singularValues: [Double]) {
        let B = Matrix(rows: out, cols: rank, v: b.map(Double.init))
        let A = Matrix(rows: rank, cols: inFeatures, v: a.map(Double.init))
        let qb: Matrix, qa: Matrix, core: Matrix
        if rank <= out && rank <= inFeatures {
            let (q1, r1) = qr(B)
            let (q2, r2) = qr(A.transposed)
            qb = q1; qa = q2
            core = r1 * r2.transposed
        } else {
            // Tiny matrices only (a rank sum above a dimension): SVD of the dense product, padded square.
            let n = max(out, inFeatures)
            var dense = Matrix(rows: n, cols: n)
            let p = B * A
            for r in 0..<out { for c in 0..<inFeatures { dense[r, c] = p[r, c] } }
            var i1 = Matrix(rows: out, cols: n), i2 = Matrix(rows: inFeatures, cols: n)
            for j in 0..<out { i1[j, j] = 1 }
            for j in 0..<inFeatures { i2[j, j] = 1 }
            qb = i1; qa = i2
            core = dense
        }
        let (u, s, v) = svd(core)
        let kk = min(k, s.count)
        let left = qb * u, right = qa * v  // out × n, in × n
        var newB = [Float](repeating: 0, count: out * k), newA = [Float](repeating: 0, count: k * inFeatures)
        for j in 0..<kk {
            for r in 0..<out { newB[r * k + j] = Float(left[r, j] * s[j]) }
            for c in 0..<inFeatures { newA[j * inFeatures + c] = Float(right[c, j]) }
        }
        return (newB, newA, s)
    }
}
