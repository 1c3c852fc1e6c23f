// `lorad bench --kernels quick|full`: the matmul paths on SmolLM2-135M's real matrix shapes and the
// compute pool's call overhead, on random weights (no model file). These ran as tests
// (MatMulBenchmarkTests, ComputePoolBenchmarkTests) until the suite stopped timing things; the
// figures and their meaning are unchanged.
//
// - The pass table: 30 layers × {q 576×576, k 192×576, v 192×576, o 576×576, gate 1536×576,
//   up 1536×576, down 576×1536} in Q4_1 plus the 49152×576 Q8_0 output matrix, each layer its own
//   memory (66 MB + 30 MB, far beyond the caches, as in a real forward pass): ms per pass, tokens/s,
//   weight GB/s and GFLOP/s per path (fused, sgemm, q8, portable), token count and thread count.
//   quick: T = 1 on 2 threads; full: T = 1, 16, 128, 512 on 1 and 2 threads (the table behind
//   MatMulTuning).
// - The fused/sgemm crossover by token count on the layer matrices, one thread, thread CPU time
//   (robust to other processes on a shared machine): MatMulTuning.sgemmMinTokens.
// - In-cache kernel speed: one 576×576 matrix (Q4_1 and Q8_0) run 300 times, one thread, thread CPU
//   time: each path's compute cost without memory effects.
// - ComputePool.parallelFor(2) overhead with trivial bodies, DispatchQueue.concurrentPerform beside it:
//   a decode step makes ~211 such calls, so 5 µs each would be ~1 ms per token.

import Dispatch
import Foundation
import Kernels
import Synchronization

public enum KernelBenchmark {
    public enum Mode: String, CaseIterable, Sendable { case quick, full }

    struct Matrix {
        let type: TensorType
        let rows: Int
        let cols: Int
        let data: UnsafeMutableRawPointer
        var weight: WeightMatrix { WeightMatrix(type: type, rows: rows, cols: cols, data: data) }
        var bytes: Int { weight.rowBytes * rows }
    }

    static let layerShapes = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]

    /// Random blocks with sane f16 scales (d ≈ 0.01, m ≈ -0.08; random bytes could make NaNs or
    /// subnormals, which run at a different speed).
    static func makeMatrix(_ type: TensorType, rows: Int, cols: Int, rng: inout SplitMix64) -> Matrix {
        let w = WeightMatrix(type: type, rows: rows, cols: cols, data: UnsafeRawPointer(bitPattern: 1)!)
        let n = w.rowBytes * rows
        let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        var i = 0
        while i + 8 <= n {
            p.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < n { p.storeBytes(of: UInt8(truncatingIfNeeded: rng.next()), toByteOffset: i, as: UInt8.self); i += 1 }
        let d = f32ToF16(0.01), m = f32ToF16(-0.08)
        for b in 0..<(n / type.blockBytes) {
            p.storeBytes(of: d, toByteOffset: b * type.blockBytes, as: UInt16.self)
            if type == .q4_1 { p.storeBytes(of: m, toByteOffset: b * type.blockBytes + 2, as: UInt16.self) }
        }
        return Matrix(type: type, rows: rows, cols: cols, data: p)
    }

    enum Path: String { case fused, sgemm, q8, portable }

    static func run(_ ms: [Matrix], path: Path, tokens: Int, pool: ComputePool?,
                    x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        for m in ms {
            switch path {
            case .fused: matmul(m.weight, x, tokens: tokens, y, pool: pool, strategy: .fused)
            case .sgemm: matmul(m.weight, x, tokens: tokens, y, pool: pool, strategy: .sgemm)
            case .portable: matmul(m.weight, x, tokens: tokens, y, pool: pool, strategy: .fused, kernels: .portable)
            case .q8: matmulQ8(m.weight, x, tokens: tokens, y, pool: pool)
            }
        }
    }

    static func seconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// CPU time of the calling thread: with one thread this is robust to other processes sharing the
    /// cores, though not to their cache and memory traffic.
    static func threadCPUSeconds(_ body: () -> Void) -> Double {
        var a = timespec(), b = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a)
        body()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b)
        return Double(b.tv_sec - a.tv_sec) + Double(b.tv_nsec - a.tv_nsec) / 1e9
    }

    /// Standard normal samples (Box-Muller), as the tests' data.
    static func normals(_ n: Int, rng: inout SplitMix64) -> [Float] {
        (0..<n).map { _ in
            let u1 = Double.random(in: Double.ulpOfOne..<1, using: &rng)
            let u2 = Double.random(in: 0..<1, using: &rng)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
        }
    }

    /// Runs every part for `mode`, handing each printed line to `emit`. `threads`, when given, is the
    /// only thread count of the pass table.
    public static func run(mode: Mode, threads: Int? = nil, emit: (String) -> Void) {
        passTable(full: mode == .full, threads: threads, emit: emit)
        crossover(full: mode == .full, emit: emit)
        for type in [TensorType.q4_1, .q8_0] { inCache(type, emit: emit) }
        poolOverhead(emit: emit)
    }

    static func passTable(full: Bool, threads: Int?, emit: (String) -> Void) {
        var rng = SplitMix64(seed: 2024)
        var ms: [Matrix] = []
        for _ in 0..<30 { for (r, c) in layerShapes { ms.append(makeMatrix(.q4_1, rows: r, cols: c, rng: &rng)) } }
        ms.append(makeMatrix(.q8_0, rows: 49152, cols: 576, rng: &rng))
        defer { for m in ms { m.data.deallocate() } }
        let weightBytes = ms.reduce(0) { $0 + $1.bytes }
        let macs = ms.reduce(0) { $0 + $1.rows * $1.cols }
        let maxT = full ? 512 : 16
        let x = normals(maxT * 1536, rng: &rng)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: maxT * 49152)
        defer { y.deallocate() }
        emit(String(format: "matmul benchmark: %.1f MB of weights, %.1f M MAC per token, kernels %@",
                    Double(weightBytes) / 1e6, Double(macs) / 1e6, "\(KernelPath.best)"))
        let threadCounts = threads.map { [$0] } ?? (full ? [1, 2] : [2])
        let tokenCounts = full ? [1, 16, 128, 512] : [1]
        x.withUnsafeBufferPointer { xb in
            for threads in threadCounts {
                let pool = ComputePool(threads: threads)
                for T in tokenCounts {
                    var paths: [Path] = [.fused, .q8]
                    if T >= 16 { paths.append(.sgemm) }
                    if T == 1 { paths.append(.portable) }
                    for path in paths {
                        let reps = T == 1 ? 5 : T == 16 ? 3 : 1
                        run(ms, path: path, tokens: T, pool: pool, x: xb.baseAddress!, y: y)  // warm-up
                        var best = Double.infinity, bestCPU = Double.infinity
                        for _ in 0..<reps {
                            best = min(best, seconds { run(ms, path: path, tokens: T, pool: pool, x: xb.baseAddress!, y: y) })
                            if threads == 1 {
                                bestCPU = min(bestCPU, threadCPUSeconds { run(ms, path: path, tokens: T, pool: pool, x: xb.baseAddress!, y: y) })
                            }
                        }
                        emit(String(format: "  threads=%d T=%3d %-8@ %8.2f ms/pass  %7.1f tok/s  %5.2f GB/s  %6.2f GFLOP/s%@",
                                    threads, T, path.rawValue, best * 1e3, Double(T) / best,
                                    Double(weightBytes) / best / 1e9, 2 * Double(macs) * Double(T) / best / 1e9,
                                    threads == 1 ? String(format: "  (thread CPU %.2f ms)", bestCPU * 1e3) : ""))
                    }
                }
            }
        }
    }

    /// Fused and sgemm by token count on the layer matrices only, one thread, thread CPU time.
    static func crossover(full: Bool, emit: (String) -> Void) {
        var rng = SplitMix64(seed: 7)
        var ms: [Matrix] = []
        for _ in 0..<(full ? 8 : 1) { for (r, c) in layerShapes { ms.append(makeMatrix(.q4_1, rows: r, cols: c, rng: &rng)) } }
        defer { for m in ms { m.data.deallocate() } }
        let macs = ms.reduce(0) { $0 + $1.rows * $1.cols }
        let counts = full ? [8, 16, 24, 32, 48, 64, 96, 128] : [16, 64]
        let x = normals(128 * 1536, rng: &rng)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: 128 * 1536)
        defer { y.deallocate() }
        x.withUnsafeBufferPointer { xb in
            for T in counts {
                var line = String(format: "  crossover T=%3d", T)
                for path in [Path.fused, .sgemm] {
                    run(ms, path: path, tokens: T, pool: nil, x: xb.baseAddress!, y: y)
                    var best = Double.infinity
                    for _ in 0..<3 {
                        best = min(best, threadCPUSeconds { run(ms, path: path, tokens: T, pool: nil, x: xb.baseAddress!, y: y) })
                    }
                    line += String(format: "  %@ %6.2f GFLOP/s", path.rawValue, 2 * Double(macs) * Double(T) / best / 1e9)
                }
                emit(line)
            }
        }
    }

    /// One 576×576 matrix in L2 (207 KB as Q4_1, 352 KB as Q8_0) run 300 times, one thread.
    static func inCache(_ type: TensorType, emit: (String) -> Void) {
        var rng = SplitMix64(seed: 11)
        let m = makeMatrix(type, rows: 576, cols: 576, rng: &rng)
        defer { m.data.deallocate() }
        let x = normals(16 * 576, rng: &rng)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: 16 * 576)
        defer { y.deallocate() }
        x.withUnsafeBufferPointer { xb in
            for T in [1, 2, 4, 16] {
                var line = String(format: "  in-cache 576x576 %@ T=%2d", "\(type)", T)
                for path in [Path.fused, .q8, .sgemm] {
                    var best = Double.infinity
                    for _ in 0..<5 {
                        best = min(best, threadCPUSeconds {
                            for _ in 0..<300 { run([m], path: path, tokens: T, pool: nil, x: xb.baseAddress!, y: y) }
                        })
                    }
                    line += String(format: "  %@ %5.1f GFLOP/s", path.rawValue, 2 * 576 * 576 * Double(T) * 300 / best / 1e9)
                }
                emit(line)
            }
        }
    }

    /// parallelFor(2) with trivial bodies on a 2-thread pool, against concurrentPerform.
    static func poolOverhead(emit: (String) -> Void) {
        let pool = ComputePool(threads: 2)
        let sink = Atomic<Int>(0)
        let calls = 20_000
        for _ in 0..<1000 { pool.parallelFor(2) { i in sink.wrappingAdd(i, ordering: .relaxed) } }
        var start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls { pool.parallelFor(2) { i in sink.wrappingAdd(i, ordering: .relaxed) } }
        let poolNs = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(calls)
        start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls {
            DispatchQueue.concurrentPerform(iterations: 2) { i in sink.wrappingAdd(i, ordering: .relaxed) }
        }
        let dispatchNs = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(calls)
        emit(String(format: "parallelFor(2) overhead: ComputePool %.2f µs/call, concurrentPerform %.2f µs/call",
                    poolNs / 1000, dispatchNs / 1000))
    }
}
