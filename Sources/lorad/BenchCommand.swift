// `lorad bench`: speed figures for a model (see Bench/Benchmark.swift for what each one measures).
import ArgumentParser
import Bench
import Foundation
import Llama
import JSON
import ModelFormats
import Sampling
import Tokenizer

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt processing, generation and batched generation speed.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Worker threads (default: one per core).")
    var threads: Int?

    @Option(help: ArgumentHelp("Activation numerics: f32, q8 or llama.cpp.", valueName: "f32|q8|llama.cpp"))
    var numerics: String = "f32"

    @Option(help: "Runs per figure; the median is reported.")
    var repetitions = 1

    @Option(help: "Also measure N sequences each with its own random rank-8 adapter on all seven projections.")
    var syntheticAdapters = 0

    @Option(help: ArgumentHelp("Measure only these figures, comma-separated (for profiling one): "
                               + Benchmark.figures.joined(separator: ", ") + ".", valueName: "figures"))
    var only: String?

    @Flag(help: "Print only one JSON object on stdout.")
    var json = false

    @Option(help: ArgumentHelp("Instead of a model's figures, time the matmul kernels on SmolLM2-135M's shapes (random "
                               + "weights, no model file) and the compute pool's call overhead: quick (seconds) or "
                               + "full (every path, token count and thread count; minutes).", valueName: "quick|full"))
    var kernels: String?

    @Option(help: ArgumentHelp("Instead of the model's figures, measure constrained decoding on these fixture files "
                               + "(comma-separated; e.g. Tests/GrammarTests/Fixtures/json_schema_suite.json): compile time, "
                               + "per-token mask cost cold and warm, and batch-16 decode constrained over free.", valueName: "files"))
    var constraints: String?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        guard syntheticAdapters >= 0 else { throw ValidationError("--synthetic-adapters must be 0 or more") }
        if let only {
            for f in only.split(separator: ",", omittingEmptySubsequences: false)
            where !Benchmark.figures.contains(String(f)) {
                throw ValidationError("--only: unknown figure '\(f)'; expected some of "
                                      + Benchmark.figures.joined(separator: ", "))
            }
        }
        if let kernels, KernelBenchmark.Mode(rawValue: kernels) == nil {
            throw ValidationError("--kernels must be quick or full, not '\(kernels)'")
        }
        if kernels != nil && (json || only != nil || syntheticAdapters > 0) {
            throw ValidationError("--kernels prints its own table; it takes no --json, --only or --synthetic-adapters")
        }
        guard LlamaModel.Numerics(rawValue: numerics) != nil else {
            throw ValidationError("--numerics must be f32, q8 or llama.cpp, not '\(numerics)'")
        }
    }

    func run() throws {
        if let constraints {
            runConstraints(constraints.split(separator: ",").map(String.init))
            return
        }
        if let kernels {
            KernelBenchmark.run(mode: KernelBenchmark.Mode(rawValue: kernels)!, threads: threads) { print($0) }
            return
        }
        let path = modelOptions.resolvedPath
        let model: LlamaModel
        let tokenizer: Tokenizer
        do {
            let gguf = try GGUFFile(path: path)
            model = try LlamaModel(gguf: gguf, threads: threads, numerics: LlamaModel.Numerics(rawValue: numerics)!)
            tokenizer = try Tokenizer(gguf: gguf)
        } catch {
            fail("\(path): \(error)")
        }
        var bench = Benchmark(model: model, tokenizer: tokenizer, repetitions: repetitions)
        let name = URL(fileURLWithPath: path).lastPathComponent
        let report: BenchmarkReport
        do {
            report = try bench.run(modelName: name, syntheticAdapters: syntheticAdapters,
                               only: only.map { Set($0.split(separator: ",").map(String.init)) }) { key in
                if !json { FileHandle.standardError.write(Data("measured \(key)\n".utf8)) }
            }
        } catch {
            fail("\(error)")
        }
        if json {
            var fields: [(String, JSONValue)] = [("model", .string(report.model)), ("threads", .int(report.threads)),
                                                 ("numerics", .string(report.numerics))]
            for (k, v) in report.metrics {
                let digits = k.hasSuffix("_ratio") ? 1000.0 : 100.0
                fields.append((k, k.hasSuffix("rss_bytes") ? .int(Int(v)) : .double((v * digits).rounded() / digits)))
            }
            print(JSONValue.object(fields).serialized())
        } else {
            print("model \(report.model), \(report.threads) threads, \(report.numerics) numerics")
            for (k, v) in report.metrics {
                let unit = k == "ttft_ms" ? "ms" : k.hasSuffix("rss_bytes") ? "bytes" : k.hasSuffix("_ratio") ? ""
                    : k.hasPrefix("tokenizer_") ? "MB/s" : "tokens/s"
                let value = k.hasSuffix("rss_bytes") ? String(Int(v)) : String(format: k.hasSuffix("_ratio") ? "%.3f" : "%.1f", v)
                print("  " + k.padding(toLength: k.hasPrefix("tokenizer_") ? 34 : 18, withPad: " ", startingAt: 0)
                      + " " + value + " " + unit)
            }
        }
    }

    /// `--constraints`: ConstraintBenchmark's figures, printed as a table.
    func runConstraints(_ files: [String]) {
        let path = modelOptions.resolvedPath
        do {
            let gguf = try GGUFFile(path: path)
            let tokenizer = try Tokenizer(gguf: gguf)
            let bench = try ConstraintBenchmark(tokenizer: tokenizer)
            let workloads = try bench.loadWorkloads(files)
            let r = bench.maskCost(workloads)
            let compile = r.compileMilliseconds.sorted()
            func f(_ x: Double) -> String { String(format: "%.1f", x) }
            print("constraints: \(r.workloads) workloads (\(r.refused) refused, \(r.contextFree) context-free), one core")
            if !compile.isEmpty {
                print("  compile ms: mean \(f(compile.reduce(0, +) / Double(compile.count))) p50 \(f(compile[compile.count / 2])) "
                      + "p99 \(f(compile[min(compile.count - 1, compile.count * 99 / 100)])) max \(f(compile.last!))")
            }
            for (label, s) in [("mask cold", r.cold), ("mask warm", r.warm), ("advance", r.advance)] {
                print("  \(label) us/token: mean \(f(s.mean)) p50 \(f(s.p50)) p99 \(f(s.p99)) max \(f(s.max)) (\(s.count) tokens)")
            }
            for s in r.slowest { print("    slowest cold: \(s.name) mean \(f(s.meanMicroseconds)) us over \(s.tokens) tokens") }
            for s in r.slowestCompiles { print("    slowest compile: \(s.name) \(f(s.milliseconds)) ms") }
            let model = try LlamaModel(gguf: gguf, threads: threads, numerics: LlamaModel.Numerics(rawValue: numerics)!)
            var kinds: [(String, TokenConstraint)] = [("json_object", try bench.compiler.compileUncached(.jsonSchema(.object([("type", .string("object"))]))))]
            if let first = workloads.first, let c = try? bench.compiler.compileUncached(first.source) { kinds.append((first.name, c)) }
            for (name, constraint) in kinds {
                var ratios: [Double] = [], free: [Double] = [], held: [Double] = []
                for rep in 0..<repetitions {
                    let a = try bench.batched(model: model, constraint: nil, seed: UInt64(rep))
                    let b = try bench.batched(model: model, constraint: constraint, seed: UInt64(rep))
                    free.append(a); held.append(b); ratios.append(b / a)
                }
                func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
                print("  batch16 \(name): constrained \(f(median(held))) tok/s, free \(f(median(free))) tok/s, "
                      + "ratio \(String(format: "%.3f", median(ratios))) (median of \(repetitions) alternating pairs)")
            }
        } catch {
            fail("\(error)")
        }
    }
}
