// `lorad generate PROMPT`: one completion, streamed to stdout; diagnostics on stderr.
import ArgumentParser
import Foundation
import Generation
import JSON
import Llama
import ChatTemplate
import Sampling

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a reply to PROMPT (a user message, or raw text with --raw).")

    @Argument(help: "The prompt.")
    var prompt: String

    @Flag(help: "Send the prompt as it is (special tokens such as <|im_start|> are parsed) instead of as a chat message.")
    var raw = false

    @Flag(name: .shortAndLong, help: "Print timings to stderr.")
    var verbose = false

    @Option(help: ArgumentHelp("Constrain the output to match this regular expression (the whole output; as the API's guided_regex).",
                               valueName: "regex"))
    var regex: String?

    @Option(help: ArgumentHelp("Constrain the output to JSON valid under the JSON Schema in this file (as the API's response_format json_schema: compact, properties in the schema's order).",
                               valueName: "file"))
    var jsonSchema: String?

    @Option(help: ArgumentHelp("Constrain the output to a sentence of the GBNF grammar in this file (llama.cpp's format, from rule root; as the API's grammar).",
                               valueName: "file"))
    var grammar: String?

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var sampling: SamplingOptions

    func run() throws {
        let bundle = loadBundle(modelOptions, runtime)
        let ids: [Int32]
        do {
            ids = raw ? bundle.tokenizer.encode(prompt, parseSpecial: true)
                      : try bundle.chatPrompt([ChatMessage(role: "user", content: prompt)])
        } catch {
            fail("\(error)")
        }
        var parameters = sampling.parameters
        if [regex, jsonSchema, grammar].compactMap({ $0 }).count > 1 {
            fail("--regex, --json-schema and --grammar each constrain the output; give one of them")
        }
        if let grammar {
            do {
                let text = try String(decoding: Data(contentsOf: URL(fileURLWithPath: grammar)), as: UTF8.self)
                parameters.constraint = try bundle.constraints.compile(.grammar(text))
            } catch {
                fail("--grammar \(grammar): \(error)")
            }
        }
        if let jsonSchema {
            do {
                let schema = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: jsonSchema))))
                parameters.constraint = try bundle.constraints.compile(.jsonSchema(schema))
            } catch {
                fail("--json-schema \(jsonSchema): \(error)")
            }
        }
        if let regex {
            do {
                parameters.constraint = try bundle.constraints.compile(regex)
            } catch {
                fail("--regex: \(error)")
            }
        }
        let generator = Generator(model: bundle.model, tokenizer: bundle.tokenizer, parameters: parameters,
                                  adapters: loadAdapters(bundle, runtime))
        let result: GenerationResult
        do {
            result = try generator.generate(prompt: ids, cache: bundle.model.makeCache(contextLimit: runtime.context)) { text in
                emit(text)
                return true
            }
        } catch {
            fail("\(error)")
        }
        emit("\n")
        if verbose {
            let pp = Double(result.promptTokens) / max(result.prefillSeconds, 1e-9)
            let tg = Double(result.tokens.count) / max(result.decodeSeconds, 1e-9)
            FileHandle.standardError.write(Data(String(
                format: "prompt: %d tokens in %.2f s (%.1f tokens/s); generated %d tokens in %.2f s (%.1f tokens/s); finish: %@\n",
                result.promptTokens, result.prefillSeconds, pp, result.tokens.count, result.decodeSeconds, tg,
                result.finishReason.rawValue).utf8))
        }
    }
}

/// Loads every `--adapter`, or exits with the first one's validation error.
func loadAdapters(_ bundle: ModelBundle, _ runtime: RuntimeOptions) -> [AdapterUse] {
    runtime.adapters.map { spec in
        do {
            return try bundle.loadAdapter(spec: spec)
        } catch {
            fail("adapter \(spec): \(error)")
        }
    }
}

/// Opens the model or exits with its load error.
func loadBundle(_ model: ModelOptions, _ runtime: RuntimeOptions) -> ModelBundle {
    let path = model.resolvedPath
    do {
        return try ModelBundle(path: path, threads: runtime.threads, numerics: runtime.resolvedNumerics,
                               chatTemplate: runtime.chatTemplate)
    } catch {
        fail("\(path): \(error)")
    }
}
