// `lorad eval`: an adapter version, its parent version and the base side by side on a JSONL file:
// loss and perplexity on assistant tokens, and exact-match / contains rates of the greedy answers for
// rows with "expected" / "must_contain" (Training's AdapterEvaluation does the work).

import ArgumentParser
import Foundation
import JSON
import LoRA
import Registry
import Training

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate an adapter, its parent version and the base on a JSONL file.",
        discussion: """
            Loss and perplexity over assistant tokens; for chat rows with "expected" (the greedy answer \
            must equal it) or "must_contain" (a substring it must contain), the exact-match and contains \
            rates.
            """)

    @OptionGroup var registry: RegistryOptions
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: ArgumentHelp("The adapter: NAME (its active version) or NAME@vN.", valueName: "name[@vN]")) var adapter: String
    @Option(help: ArgumentHelp("Chat JSONL (or prompt/completion) to evaluate on.", valueName: "file")) var data: String
    @Option(help: "Most tokens of a greedy answer.") var maxTokens: Int = 128
    @Option(help: "Worker threads for the matrix products (default: one per core).") var threads: Int?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard AdapterReference(adapter) != nil else { throw ValidationError(RegistryError.badReference(adapter).description) }
    }

    func run() throws {
        let bundle = loadTrainingBundle(modelOptions, threads: threads)
        let reference = AdapterReference(adapter)!
        let r = registry.open()
        var evaluation: AdapterEvaluation
        do { evaluation = try AdapterEvaluation(bundle: bundle, path: data) } catch { fail("\(error)") }
        evaluation.maxAnswerTokens = maxTokens
        var rows: [(String, EvaluationScores)] = []
        do {
            let info = try bundle.baseInfo()
            let version = try r.resolve(reference)
            let loaded = try LoRAAdapter.load(path: version.loadPath, name: reference.name, base: info)
            rows.append(("\(reference.name)@v\(version.version)", try evaluation.scores(loaded)))
            if let parent = version.manifest?.parent, let pv = try? r.resolve(AdapterReference(name: reference.name, version: parent)) {
                let p = try LoRAAdapter.load(path: pv.loadPath, name: reference.name, base: info)
                rows.append(("\(reference.name)@v\(parent) (parent)", try evaluation.scores(p)))
            }
            rows.append(("base", try evaluation.scores(nil)))
        } catch {
            fail("\(error)")
        }
        func rate(_ v: Double?) -> String { v.map { String(format: "%.1f%%", 100 * $0) } ?? "-" }
        if json {
            let items: [JSONValue] = rows.map { name, s in
                .object([("model", .string(name)), ("loss", .double(s.loss)), ("perplexity", .double(s.perplexity)),
                         ("tokens", .int(s.tokens)), ("exact_match", s.exactMatch.map { .double($0) } ?? .null),
                         ("exact_rows", .int(s.exactCount)), ("contains", s.contains.map { .double($0) } ?? .null),
                         ("contains_rows", .int(s.containsCount))])
            }
            print(JSONValue.object([("data", .string(data)), ("examples", .int(evaluation.dataset.examples.count)),
                                    ("results", .array(items))]).serialized())
            return
        }
        print("\(data): \(evaluation.dataset.examples.count) examples, \(rows.first?.1.tokens ?? 0) assistant tokens, "
              + "\(evaluation.checks.count) rows with an expected answer")
        print("MODEL".padding(toLength: 28, withPad: " ", startingAt: 0) + "    LOSS  PERPLEXITY  EXACT  CONTAINS")
        for (name, s) in rows {
            print(name.padding(toLength: 28, withPad: " ", startingAt: 0)
                  + String(format: "%8.4f  %10.3f", s.loss, s.perplexity)
                  + rate(s.exactMatch).leftPadded(7) + rate(s.contains).leftPadded(10))
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}
