// Options shared by the commands that generate text: the model's runtime settings and sampling.
import ArgumentParser
import Llama
import Sampling

struct RuntimeOptions: ParsableArguments {
    @Option(help: "Worker threads for the matrix products (default: one per core).")
    var threads: Int?

    @Option(help: ArgumentHelp("Chat template: a built-in name (chatml, llama3, gemma) or a Jinja file; default: the model's own.",
                               valueName: "name|file"))
    var chatTemplate: String?

    @Option(help: ArgumentHelp("Activation numerics: f32 (exact), q8 (Q8 activations, as llama.cpp; much faster) or llama.cpp (Q8 activations and f16 attention, as llama.cpp rounds).",
                               valueName: "f32|q8|llama.cpp"))
    var numerics: String = "f32"

    @Option(help: "Context size in tokens (default: 4096 or the model's, whichever is smaller).")
    var context: Int?

    @Option(name: .customLong("adapter"), help: ArgumentHelp(
        "A LoRA adapter: a PEFT directory or a llama.cpp GGUF LoRA file, with an optional scale (repeatable).",
        valueName: "path[:scale]"))
    var adapters: [String] = []

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let context, context < 2 { throw ValidationError("--context must be at least 2") }
        guard LlamaModel.Numerics(rawValue: numerics) != nil else {
            throw ValidationError("--numerics must be f32, q8 or llama.cpp, not '\(numerics)'")
        }
    }

    var resolvedNumerics: LlamaModel.Numerics { LlamaModel.Numerics(rawValue: numerics) ?? .f32 }
}

struct SamplingOptions: ParsableArguments {
    @Option(help: "Most tokens to generate.")
    var maxTokens = 256

    @Option(help: "Temperature; 0 is greedy.")
    var temperature: Float = 0.8

    @Option(help: "Keep the K most likely tokens (0: off).")
    var topK = 40

    @Option(help: "Nucleus sampling: keep the smallest set with this much probability (1: off).")
    var topP: Float = 0.95

    @Option(help: "Drop tokens less likely than P times the most likely one (0: off).")
    var minP: Float = 0.05

    @Option(help: "Repetition penalty over the last --repeat-last-n tokens (1: off).")
    var repeatPenalty: Float = 1.0

    @Option(help: "Tokens the repetition penalties look back over.")
    var repeatLastN = 64

    @Option(help: "Frequency penalty (-2 to 2).")
    var frequencyPenalty: Float = 0

    @Option(help: "Presence penalty (-2 to 2).")
    var presencePenalty: Float = 0

    @Option(help: "Seed for reproducible sampling (default: random).")
    var seed: UInt64?

    @Option(help: "Stop when this text appears (repeatable); it is not printed.")
    var stop: [String] = []

    func validate() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        do {
            try parameters.validate()
        } catch {
            throw ValidationError("\(error)")
        }
    }

    var parameters: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP,
                           repeatPenalty: repeatPenalty, repeatLastN: repeatLastN,
                           frequencyPenalty: frequencyPenalty, presencePenalty: presencePenalty,
                           seed: seed, maxTokens: maxTokens, stop: stop)
    }
}
