// Micro-benchmark of the matmul paths on SmolLM2-135M's real matrix shapes (random weights, so no
// model file is needed): 30 layers × {q 576×576, k 192×576, v 192×576, o 576×576, gate 1536×576,
// up 1536×576, down 576×1536} in Q4_1 plus the 49152×576 Q8_0 output matrix, each layer its own
// memory (66 MB + 30 MB, far beyond the caches, as in a real forward pass).
//
// It prints ms per pass, tokens/s, weight GB/s and GFLOP/s and asserts nothing about speed (timings
// depend on the machine and its load). By default it runs a quick subset (T = 1, 2 threads);
// LORAD_BENCH=1 runs the full table (T = 1, 16, 128, 512; 1 and 2 threads; fused, sgemm, Q8,
// portable) and the fused/sgemm crossover scan used for MatMulTuning. LORAD_BENCH_THREADS=n and
// LORAD_BENCH_TOKENS=1,16 pick a subset. Release build:
//   LORAD_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter MatMulBenchmarkTests --disable-xctest

import Foundation
import Kernels
import Testing

@Suite(.serialized) struct MatMulBenchmarkTests {
    struct Matrix {
        let type: TensorType
        let rows: Int
        let cols: Int
        let data: UnsafeMutableRawPointer
        var weight: WeightMatrix { WeightMatrix(type: type, rows: rows, cols: cols, data: data) }
        var bytes: Int { weight.rowBytes * rows }
    }

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

    static func model(rng: inout SplitMix64) -> [Matrix] {
        var ms: [Matrix] = []
        let shapes = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]
        for _ in 0..<30 {
            for (r, c) in shapes { ms.append(makeMatrix(.q4_1, rows: r, cols: c, rng: &rng)) }
        }
        ms.append(makeMatrix(.q8_0, rows: 49152, cols: 576, rng: &rng))
        return ms
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
    /// cores (the machine this was tuned on was shared), though not to their cache and memory traffic.
    static func threadCPUSeconds(_ body: () -> Void) -> Double {
        var a = timespec(), b = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a)
        body()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b)
        return Double(b.tv_sec - a.tv_sec) + Double(b.tv_nsec - a.tv_nsec) / 1e9
    }

    @Test func smolLM2Shapes() {
        let full = ProcessInfo.processInfo.environment["LORAD_BENCH"] == "1"
        var rng = SplitMix64(seed: 2024)
        let ms = Self.model(rng: &rng)
        defer { for m in ms { m.data.deallocate() } }
        let weightBytes = ms.reduce(0) { $0 + $1.bytes }
        let macs = ms.reduce(0) { $0 + $1.rows * $1.cols }
        let maxT = full ? 512 : 16
        let x = (0..<(maxT * 1536)).map { _ in rng.normal() }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: maxT * 49152)
        defer { y.deallocate() }
        print(String(format: "matmul benchmark: %.1f MB of weights, %.1f M MAC per token, kernels %@",
                     Double(weightBytes) / 1e6, Double(macs) / 1e6, "\(KernelPath.best)"))
        let threadCounts = ProcessInfo.processInfo.environment["LORAD_BENCH_THREADS"].map { [Int($0) ?? 1] } ?? (full ? [1, 2] : [2])
        let tokenCounts = ProcessInfo.processInfo.environment["LORAD_BENCH_TOKENS"].map { $0.split(separator: ",").compactMap { Int($0) } } ?? (full ? [1, 16, 128, 512] : [1])
        var ran = 0
        x.withUnsafeBufferPointer { xb in
            for threads in threadCounts {
                let pool = ComputePool(threads: threads)
                for T in tokenCounts {
                    var paths: [Path] = [.fused, .q8]
                    if T >= 16 { paths.append(.sgemm) }
                    if T == 1 { paths.append(.portable) }
                    if T >= 128 && !full { paths.removeAll { $0 == .fused } }
                    for path in paths {
                        let reps = T == 1 ? 5 : T == 16 ? 3 : 1
                        Self.run(ms, path: path, tokens: T, pool: pool, x: xb.baseAddress!, y: y)  // warm-up
                        var best = Double.infinity, bestCPU = Double.infinity
                        for _ in 0..<reps {
                            best = min(best, Self.seconds { Self.run(ms, path: path, tokens: T, pool: pool, x: xb.baseAddress!, y: y) })
                            if threads == 1 {
                                bestCPU = min(bestCPU, Self.threadCPUSeconds { Self.run(ms, path: path, tokens: T, pool: pool, x: xb.baseAddress!, y: y) })
                            }
                        }
                        ran += 1
                        print(String(format: "  threads=%d T=%3d %-8@ %8.2f ms/pass  %7.1f tok/s  %5.2f GB/s  %6.2f GFLOP/s%@",
                                     threads, T, path.rawValue, best * 1e3, Double(T) / best,
                                     Double(weightBytes) / best / 1e9, 2 * Double(macs) * Double(T) / best / 1e9,
                                     threads == 1 ? String(format: "  (thread CPU %.2f ms)", bestCPU * 1e3) : ""))
                    }
                }
            }
        }
        #expect(ran > 0)
    }

    /// Fused and sgemm by token count on the layer matrices only, one thread, thread CPU time
    /// (robust to a shared machine): the crossover for MatMulTuning.sgemmMinTokens.
    @Test func fusedSgemmCrossover() {
        let full = ProcessInfo.processInfo.environment["LORAD_BENCH"] == "1"
        var rng = SplitMix64(seed: 7)
        let shapes = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]
        var ms: [Matrix] = []
        for _ in 0..<(full ? 8 : 1) { for (r, c) in shapes { ms.append(Self.makeMatrix(.q4_1, rows: r, cols: c, rng: &rng)) } }
        defer { for m in ms { m.data.deallocate() } }
        let macs = ms.reduce(0) { $0 + $1.rows * $1.cols }
        let counts = full ? [8, 16, 24, 32, 48, 64, 96, 128] : [16, 64]
        let x = (0..<(128 * 1536)).map { _ in rng.normal() }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: 128 * 1536)
        defer { y.deallocate() }
        let pool: ComputePool? = nil
        var ran = 0
        x.withUnsafeBufferPointer { xb in
            for T in counts {
                var line = String(format: "  crossover T=%3d", T)
                for path in [Path.fused, .sgemm] {
                    Self.run(ms, path: path, tokens: T, pool: pool, x: xb.baseAddress!, y: y)
                    var best = Double.infinity
                    for _ in 0..<3 {
                        best = min(best, Self.threadCPUSeconds { Self.run(ms, path: path, tokens: T, pool: pool, x: xb.baseAddress!, y: y) })
                    }
                    line += String(format: "  %@ %6.2f GFLOP/s", path.rawValue, 2 * Double(macs) * Double(T) / best / 1e9)
                    ran += 1
                }
                print(line)
            }
        }
        #expect(ran > 0)
    }
}

extension MatMulBenchmarkTests {
    /// Kernel speed with the weights in L2 (one 576×576 matrix, 207 KB as Q4_1, 352 KB as Q8_0, run
    /// 300 times), one thread, thread CPU time: each path's compute cost without memory effects.
    @Test(arguments: [TensorType.q4_1, .q8_0])
    func inCacheKernelSpeed(type: TensorType) {
        var rng = SplitMix64(seed: 11)
        let m = Self.makeMatrix(type, rows: 576, cols: 576, rng: &rng)
        defer { m.data.deallocate() }
        let x = (0..<(16 * 576)).map { _ in rng.normal() }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: 16 * 576)
        defer { y.deallocate() }
        var ran = 0
        x.withUnsafeBufferPointer { xb in
            for T in [1, 2, 4, 16] {
                var line = String(format: "  in-cache 576x576 %@ T=%2d", "\(type)", T)
                for path in [Path.fused, .q8, .sgemm] {
                    var best = Double.infinity
                    for _ in 0..<5 {
                        best = min(best, Self.threadCPUSeconds {
                            for _ in 0..<300 { Self.run([m], path: path, tokens: T, pool: nil, x: xb.baseAddress!, y: y) }
                        })
                    }
                    line += String(format: "  %@ %5.1f GFLOP/s", path.rawValue, 2 * 576 * 576 * Double(T) * 300 / best / 1e9)
                    ran += 1
                }
                print(line)
            }
        }
        #expect(ran > 0)
    }
}
