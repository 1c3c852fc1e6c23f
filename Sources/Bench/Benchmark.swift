// `lorad bench`: the standard speed figures of a model, measured the way llama.cpp's llama-bench and
// llama-batched-bench measure theirs, so bench/compare can put them side by side.
//
// - pp128, pp512: prompt processing, tokens/s, one forward pass over N random tokens in a fresh cache.
// - tg: generation, tokens/s, 128 tokens decoded one at a time after a 16-token prompt (not timed).
// - batch4/16/32: aggregate generation, tokens/s, 64 decode steps of N sequences in one batched pass
//   each (after a 16-token prompt per sequence, not timed).
// - ttft_ms: time to the first token after a 128-token prompt (prefill + sampling one token).
// - tg_peak_rss_bytes: the resident-set high-water mark (VmHWM) right after tg, the first figure:
//   the model's mapped pages that were touched, one sequence's KV cache and the scratch buffers.
// - peak_rss_bytes: the high-water mark after all of the above.
// - With --synthetic-adapters N: adapter1_tg and adapter1_pp512 (tg and pp512 with one random rank-8
//   adapter on all seven projections), baseN and adaptersN (N sequences decoding together, on the base
//   or each on its own adapter), and adapter1_tg_ratio, adaptersN_ratio: the medians of the per-pair
//   ratios adapter/base, the pairs measured in alternation (`paired`).
// - tokenizer (only when asked for by name, `--only tokenizer`): encode throughput in MB/s on prose
//   and pathological texts, 64 KiB to 8 MiB (TokenizerBenchmark.swift). It needs `tokenizer`.
// Tokens are drawn at random from the vocabulary (llama-bench does the same); greedy argmax picks
// the next token, so sampling cost is included the way a server would pay it.

import Foundation
import Kernels
import Llama
import LoRA
import Tokenizer

public struct BenchmarkReport: Sendable {
    public var model: String
    public var threads: Int
    public var numerics: String
    /// Metric name → value, in the order they were measured.
    public var metrics: [(String, Double)] = []

    public subscript(_ key: String) -> Double? { metrics.first { $0.0 == key }?.1 }
}

public struct Benchmark {
    public let model: LlamaModel
    /// The model's tokenizer, for the `tokenizer` figure.
    public let tokenizer: Tokenizer?
    public var repetitions: Int
    private var rng = SplitMix64(seed: 0x10AD)

    public init(model: LlamaModel, tokenizer: Tokenizer? = nil, repetitions: Int = 1) {
        self.model = model
        self.tokenizer = tokenizer
        self.repetitions = max(1, repetitions)
    }

    mutating func randomTokens(_ n: Int) -> [Int32] {
        (0..<n).map { _ in Int32(truncatingIfNeeded: rng.next() % UInt64(model.config.vocabularySize)) }
    }

    /// The median over `repetitions` runs of `body` (each returns a rate or a time).
    mutating func median(_ body: (inout Benchmark) throws -> Double) rethrows -> Double {
        var xs: [Double] = []
        for _ in 0..<repetitions { xs.append(try body(&self)) }
        return middle(xs)
    }

    public mutating func promptProcessing(_ n: Int, adapters: [AdapterUse] = []) throws -> Double {
        try median { b in
            let tokens = b.randomTokens(n)
            let cache = b.model.makeCache(contextLimit: n + 1)
            let t0 = DispatchTime.now()
            _ = try b.model.forward(tokens, cache: cache, adapters: adapters)
            return Double(n) / seconds(since: t0)
        }
    }

    /// The medians over `repetitions` alternating runs of `base` and `adapted`, and the median of the
    /// per-pair ratios adapted/base. Why alternate: on a shared machine the load drifts over seconds,
    /// so two medians measured one after the other can compare two different machines; a pair's two
    /// runs are a fraction of a second apart.
    mutating func paired(_ base: (inout Benchmark) throws -> Double, _ adapted: (inout Benchmark) throws -> Double)
        rethrows -> (base: Double, adapted: Double, ratio: Double) {
        var b: [Double] = [], a: [Double] = [], r: [Double] = []
        for _ in 0..<repetitions {
            b.append(try base(&self))
            a.append(try adapted(&self))
            r.append(a.last! / b.last!)
        }
        return (middle(b), middle(a), middle(r))
    }

    public mutating func generation(prompt: Int = 16, tokens: Int = 128, adapters: [AdapterUse] = []) throws -> Double {
        try median { try $0.generationOnce(prompt: prompt, tokens: tokens, adapters: adapters) }
    }

    mutating func generationOnce(prompt: Int = 16, tokens: Int = 128, adapters: [AdapterUse] = []) throws -> Double {
        let cache = model.makeCache(contextLimit: prompt + tokens + 1)
        var logits = try model.forward(randomTokens(prompt), cache: cache, adapters: adapters)
        let t0 = DispatchTime.now()
        for _ in 0..<tokens {
            logits = try model.forward([argmax(logits)], cache: cache, adapters: adapters)
        }
        return Double(tokens) / seconds(since: t0)
    }

    /// Aggregate tokens/s of `sequences` sequences decoding together; `adapters(i)` gives sequence i's.
    public mutating func batched(sequences: Int, prompt: Int = 16, tokens: Int = 64,
                                 adapters: (Int) -> [AdapterUse] = { _ in [] }) throws -> Double {
        try median { try $0.batchedOnce(sequences: sequences, prompt: prompt, tokens: tokens, adapters: adapters) }
    }

    mutating func batchedOnce(sequences: Int, prompt: Int = 16, tokens: Int = 64,
                              adapters: (Int) -> [AdapterUse] = { _ in [] }) throws -> Double {
        let caches = (0..<sequences).map { _ in model.makeCache(contextLimit: prompt + tokens + 1) }
        var items = (0..<sequences).map { i in
            BatchItem(tokens: [], cache: caches[i], adapters: adapters(i))
        }
        for i in items.indices { items[i].tokens = randomTokens(prompt) }
        var logits = try model.forward(batch: items)
        let t0 = DispatchTime.now()
        for _ in 0..<tokens {
            for i in items.indices { items[i].tokens = [argmax(logits[i])] }
            logits = try model.forward(batch: items)
        }
        return Double(sequences * tokens) / seconds(since: t0)
    }

    public mutating func timeToFirstToken(prompt: Int = 128) throws -> Double {
        try median { b in
            let tokens = b.randomTokens(prompt)
            let cache = b.model.makeCache(contextLimit: prompt + 2)
            let t0 = DispatchTime.now()
            _ = argmax(try b.model.forward(tokens, cache: cache))
            return seconds(since: t0) * 1000
        }
    }

    /// A random rank-`rank` adapter on every projection of every layer (B non-zero, so it changes
    /// the output and its cost is real). Values are f16 numbers, as in adapters trained and saved in
    /// f16 (PEFT's usual dtype, llama.cpp's converter's default), so it runs on the f16 path.
    public mutating func syntheticAdapter(name: String, rank: Int = 8) -> LoRAAdapter {
        let c = model.config
        var modules: [(layer: Int, target: LoRATarget, module: LoRAModule)] = []
        for layer in 0..<c.layerCount {
            for target in LoRATarget.allCases {
                let (inF, outF): (Int, Int)
                switch target {
                case .q: (inF, outF) = (c.embeddingLength, c.qDim)
                case .k, .v: (inF, outF) = (c.embeddingLength, c.kvDim)
                case .o: (inF, outF) = (c.qDim, c.embeddingLength)
                case .gate, .up: (inF, outF) = (c.embeddingLength, c.feedForwardLength)
                case .down: (inF, outF) = (c.feedForwardLength, c.embeddingLength)
                }
                let a = (0..<(rank * inF)).map { _ in f16ToF32(f32ToF16(rng.nextUnitFloat() * 0.02 - 0.01)) }
                let b = (0..<(outF * rank)).map { _ in f16ToF32(f32ToF16(rng.nextUnitFloat() * 0.02 - 0.01)) }
                modules.append((layer, target, LoRAModule(rank: rank, inFeatures: inF, outFeatures: outF, a: a, b: b,
                                                          scale: 2)))
            }
        }
        return LoRAAdapter(name: name, layerCount: c.layerCount, source: "synthetic", modules: modules)
    }

    /// The timed figures `run` can measure, in its order (the adapter ones need `syntheticAdapters`;
    /// `tokenizer` runs only when named in `only`: it measures the tokenizer, not the model).
    public static let figures = ["tg", "pp128", "pp512", "batch4", "batch16", "batch32", "ttft_ms",
                                 "adapter1_tg", "adapter1_pp512", "baseN", "adaptersN", "tokenizer"]

    /// Every figure of the report, or only those in `only` (names from `figures`; for profiling one
    /// figure). `syntheticAdapters` > 0 adds the adapter figures.
    public mutating func run(modelName: String, syntheticAdapters: Int = 0, only: Set<String>? = nil,
                             progress: (String) -> Void = { _ in }) throws -> BenchmarkReport {
        var report = BenchmarkReport(model: modelName, threads: model.threads, numerics: model.numerics.rawValue)
        func record(_ key: String, _ value: Double) {
            report.metrics.append((key, value))
            progress(key)
        }
        func wanted(_ key: String) -> Bool { only?.contains(key) ?? true }
        // Generation first, so the RSS high-water mark right after it is that of one sequence
        // generating (the figure a one-tenant deployment's memory is judged by), before any large
        // batch runs.
        if wanted("tg") {
            record("tg", try generation())
            record("tg_peak_rss_bytes", Double(peakResidentBytes() ?? 0))
        }
        if wanted("pp128") { record("pp128", try promptProcessing(128)) }
        if wanted("pp512") { record("pp512", try promptProcessing(512)) }
        for n in [4, 16, 32] where wanted("batch\(n)") { record("batch\(n)", try batched(sequences: n)) }
        if wanted("ttft_ms") { record("ttft_ms", try timeToFirstToken()) }
        if syntheticAdapters > 0 {
            let adapters = (0..<syntheticAdapters).map { syntheticAdapter(name: "synthetic-\($0)") }
            let one = [AdapterUse(adapters[0])]
            // The adapter figures alternate with their base figures (see `paired`); the ratios are what
            // the adapter path is held to (adapter1_tg_ratio ≥ 0.9, adaptersN_ratio ≥ 0.8).
            if wanted("adapter1_tg") {
                let m = try paired({ try $0.generationOnce() }, { try $0.generationOnce(adapters: one) })
                record("adapter1_tg", m.adapted)
                record("adapter1_tg_ratio", m.ratio)
            }
            if wanted("adapter1_pp512") {
                record("adapter1_pp512", try promptProcessing(512, adapters: one))
            }
            let n = syntheticAdapters
            if wanted("baseN") && wanted("adaptersN") {
                let m = try paired({ try $0.batchedOnce(sequences: n) },
                                   { try $0.batchedOnce(sequences: n) { [AdapterUse(adapters[$0])] } })
                record("base\(n)", m.base)
                record("adapters\(n)", m.adapted)
                record("adapters\(n)_ratio", m.ratio)
            } else if wanted("baseN") {
                record("base\(n)", try batched(sequences: n))
            } else if wanted("adaptersN") {
                record("adapters\(n)", try batched(sequences: n) { [AdapterUse(adapters[$0])] })
            }
        }
        if only?.contains("tokenizer") == true {
            guard let tokenizer else { throw BenchmarkError.noTokenizer }
            for (key, value) in TokenizerBenchmark(tokenizer: tokenizer, repetitions: repetitions).run(progress: progress) {
                report.metrics.append((key, value))
            }
        }
        record("peak_rss_bytes", Double(peakResidentBytes() ?? 0))
        return report
    }
}

public enum BenchmarkError: Error, CustomStringConvertible {
    case noTokenizer

    public var description: String {
        "the tokenizer figure needs the model's tokenizer (Benchmark(model:tokenizer:))"
    }
}

/// The median of a non-empty list (the upper middle one for an even count).
func middle(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

func argmax(_ xs: [Float]) -> Int32 {
    var best = 0
    for i in 1..<xs.count where xs[i] > xs[best] { best = i }
    return Int32(best)
}

func seconds(since t0: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
}

/// The resident-set high-water mark from /proc/self/status (Linux), in bytes.
public func peakResidentBytes() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first
        return kb.map { $0 * 1024 }
    }
    return nil
}
