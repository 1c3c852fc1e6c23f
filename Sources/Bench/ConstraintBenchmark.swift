// `lorad bench --constraints FILE[,FILE...]`: the cost of constrained decoding (issue 20's targets),
// measured the way MaskBench (guidance-ai/jsonschemabench) measures llguidance and llama.cpp: take
// valid instances of each schema (or sentences of each grammar), tokenize them, and time the mask at
// every token position while walking their tokens.
//
// - compile: time to compile each schema or grammar to its automata and matcher (the vocabulary's
//   token trie is built once beforehand and not counted, as llguidance's is not).
// - mask (cold): a fresh compile per instance, so every position's mask is computed, none cached:
//   mean, p50, p99 and max per token, one core. This is the figure MaskBench reports.
// - mask (warm): the same walks again on the compiled constraints, as a server sees a schema it has
//   served before: cached positions cost a lookup.
// - advance: moving the position past the token (every constrained token pays it too).
// - batch16 ratio: aggregate greedy decode tokens/s of 16 sequences in one batched pass, each
//   sampling through SequenceSampling, all constrained (json_object: the grammar path; and the
//   first workload's constraint) over all unconstrained, the two measured in alternation. A
//   sequence whose constraint has only end of generation left starts its constraint again, so all
//   16 stay constrained for every step.
//
// The files are lorad's committed fixtures: Tests/GrammarTests/Fixtures/json_schema_cases.json
// ({"cases": [{name, schema, instances: [{json, valid}]}]}), json_schema_suite.json ({"groups":
// [{name, schema, tests: [{json, valid}]}]}) and gbnf_llama_cpp.json ({"grammars": [{name, text,
// cases: [{text, tokens, rejected_at}]}]}). Only valid instances and accepted sentences are walked;
// a token the constraint refuses (an instance lorad's policy never generates) ends that walk.

import Dispatch
import Foundation
import Grammar
import JSON
import Kernels
import Llama
import Sampling
import Tokenizer

public struct ConstraintBenchmark {
    public struct Workload {
        public let name: String
        public let source: ConstraintSource
        /// Token ids of each valid instance.
        public let instances: [[Int32]]
    }

    public struct MaskStats {
        public var count = 0
        public var mean = 0.0, p50 = 0.0, p99 = 0.0, max = 0.0  // microseconds

        init(_ nanoseconds: [UInt64]) {
            guard !nanoseconds.isEmpty else { return }
            let sorted = nanoseconds.sorted()
            count = sorted.count
            mean = Double(sorted.reduce(0, +)) / Double(sorted.count) / 1000
            p50 = Double(sorted[sorted.count / 2]) / 1000
            p99 = Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) / 1000
            max = Double(sorted.last!) / 1000
        }
    }

    public let tokenizer: Tokenizer
    public let compiler: ConstraintCompiler

    public init(tokenizer: Tokenizer) throws {
        self.tokenizer = tokenizer
        compiler = ConstraintCompiler(tokenizer: tokenizer)
        _ = try compiler.tokenTrie()
    }

    /// The workloads in lorad's fixture files (see the header for their shapes).
    public func loadWorkloads(_ paths: [String]) throws -> [Workload] {
        var out: [Workload] = []
        for path in paths {
            let root = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
            let file = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            if let cases = root["cases"]?.arrayValue ?? root["groups"]?.arrayValue {
                for c in cases {
                    guard let schema = c["schema"], let name = c["name"]?.stringValue,
                          let rows = c["instances"]?.arrayValue ?? c["tests"]?.arrayValue else { continue }
                    let valid = rows.filter { $0["valid"] == .bool(true) }.compactMap { $0["json"]?.stringValue }
                    guard !valid.isEmpty else { continue }
                    out.append(Workload(name: "\(file)/\(name)", source: .jsonSchema(schema),
                                        instances: valid.map { tokenizer.encode($0, parseSpecial: false) }))
                }
            } else if let grammars = root["grammars"]?.arrayValue {
                for g in grammars {
                    guard let name = g["name"]?.stringValue, let text = g["text"]?.stringValue,
                          let cases = g["cases"]?.arrayValue else { continue }
                    let sentences = cases.filter { $0["rejected_at"] == .null }.compactMap { c in
                        c["tokens"]?.arrayValue?.compactMap { v -> Int32? in if case .int(let i) = v { Int32(i) } else { nil } }
                    }
                    out.append(Workload(name: "\(file)/\(name)", source: .grammar(text), instances: sentences))
                }
            } else {
                throw BenchmarkInputError(description: "\(path): expected lorad's json_schema_cases, json_schema_suite or gbnf_llama_cpp fixture")
            }
        }
        return out
    }

    public struct MaskReport {
        public var workloads = 0, refused = 0, contextFree = 0
        public var compileMilliseconds: [Double] = []
        public var cold = MaskStats([]), warm = MaskStats([]), advance = MaskStats([])
        /// The slowest workloads by cold mean, for profiling.
        public var slowest: [(name: String, meanMicroseconds: Double, tokens: Int)] = []
        /// The slowest compiles.
        public var slowestCompiles: [(name: String, milliseconds: Double)] = []
    }

    /// Compile times and per-token mask costs over every workload (one thread).
    public func maskCost(_ workloads: [Workload]) -> MaskReport {
        var report = MaskReport()
        var cold: [UInt64] = [], warm: [UInt64] = [], advance: [UInt64] = []
        var perWorkload: [(String, Double, Int)] = []
        var compiles: [(String, Double)] = []
        for w in workloads {
            report.workloads += 1
            let t0 = DispatchTime.now().uptimeNanoseconds
            guard let compiled = try? compiler.compileUncached(w.source) else {
                report.refused += 1
                continue
            }
            report.compileMilliseconds.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            compiles.append((w.name, report.compileMilliseconds.last!))
            if case .contextFree = compiled.automaton { report.contextFree += 1 }
            var mine: [UInt64] = []
            for tokens in w.instances {
                // A fresh compile per instance: nothing cached.
                guard let fresh = try? compiler.compileUncached(w.source) else { continue }
                walk(fresh, tokens, masks: &mine, advances: &advance)
            }
            cold += mine
            perWorkload.append((w.name, mine.isEmpty ? 0 : Double(mine.reduce(0, +)) / Double(mine.count) / 1000, mine.count))
            var ignored: [UInt64] = [], alsoIgnored: [UInt64] = []
            for tokens in w.instances { walk(compiled, tokens, masks: &ignored, advances: &alsoIgnored) }  // fills the cache
            for tokens in w.instances { walk(compiled, tokens, masks: &warm, advances: &ignored) }
        }
        report.cold = MaskStats(cold)
        report.warm = MaskStats(warm)
        report.advance = MaskStats(advance)
        report.slowest = perWorkload.sorted { $0.1 > $1.1 }.prefix(5).map { ($0.0, $0.1, $0.2) }
        report.slowestCompiles = compiles.sorted { $0.1 > $1.1 }.prefix(3).map { ($0.0, $0.1) }
        return report
    }

    private func walk(_ constraint: TokenConstraint, _ tokens: [Int32], masks: inout [UInt64], advances: inout [UInt64]) {
        var state = constraint.makeState()
        for token in tokens {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let allowed = state.allowed()
            let t1 = DispatchTime.now().uptimeNanoseconds
            masks.append(t1 - t0)
            guard allowed.contains(token) else { return }
            state.advance(token)
            advances.append(DispatchTime.now().uptimeNanoseconds - t1)
        }
        // The end-of-generation decision after the last token costs a mask too.
        let t0 = DispatchTime.now().uptimeNanoseconds
        _ = state.allowed()
        masks.append(DispatchTime.now().uptimeNanoseconds - t0)
    }

    /// Aggregate greedy tokens/s of `sequences` sequences decoding `tokens` steps together, each
    /// through SequenceSampling, constrained by `constraint` or free.
    public func batched(model: LlamaModel, sequences: Int = 16, prompt: Int = 16, tokens: Int = 64,
                        constraint: TokenConstraint?, seed: UInt64) throws -> Double {
        var rng = SplitMix64(seed: seed)
        var parameters = SamplingParameters(temperature: 0)
        parameters.constraint = constraint
        parameters.maxTokens = nil
        let caches = (0..<sequences).map { _ in model.makeCache(contextLimit: prompt + tokens + 1) }
        var items = (0..<sequences).map { i in BatchItem(tokens: [], cache: caches[i], adapters: []) }
        for i in items.indices {
            items[i].tokens = (0..<prompt).map { _ in Int32(truncatingIfNeeded: rng.next() % UInt64(model.config.vocabularySize)) }
        }
        let n = model.config.vocabularySize
        var samplers = try items.map { item in
            try SequenceSampling(parameters: parameters, vocabularySize: n, prompt: item.tokens, tokenizer: tokenizer)
        }
        var logits = try model.forward(batch: items)
        let t0 = DispatchTime.now()
        for _ in 0..<tokens {
            for i in items.indices {
                let token = logits[i].withUnsafeBufferPointer { samplers[i].sample(logits: $0) }.id
                if case .finish = samplers[i].accept(token, contextFull: false) {
                    // Only end of generation was left: start the constraint over, keep decoding.
                    samplers[i] = try SequenceSampling(parameters: parameters, vocabularySize: n, prompt: [], tokenizer: tokenizer)
                }
                items[i].tokens = [token]
            }
            logits = try model.forward(batch: items)
        }
        return Double(sequences * tokens) / Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) * 1e9
    }
}

public struct BenchmarkInputError: Error, CustomStringConvertible {
    public let description: String
}
