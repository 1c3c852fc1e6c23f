// `lorad eval`'s measurements (issue 17, part 5): on a chat JSONL file, the mean cross-entropy over
// assistant tokens (the same mask training uses) and its perplexity, and for rows that carry
// `"expected"` (the greedy answer must equal it, surrounding whitespace ignored) or `"must_contain"`
// (the greedy answer must contain it) the exact-match and contains rates. The greedy answer is
// Generation's Generator at temperature 0 on the row's messages before its last assistant turn,
// rendered with the chat template as serving renders them. Run once per adapter (nil: the base) so a
// caller can put an adapter, its parent and the base side by side.
//
// The loss runs the inference forward with all logits of one row at a time (rows × vocabulary floats:
// a 512-token row of SmolLM2 is 100 MB), on the caller's thread and the model's ComputePool.

import ChatTemplate
import Foundation
import Generation
import JSON
import Llama
import LoRA
import ModelFormats
import Sampling

/// One row's answer check.
public struct EvaluationCheck: Sendable, Equatable {
    public var line: Int
    /// The messages before the last assistant turn: what the answer is generated from.
    public var prompt: [ChatMessage]
    public var expected: String?
    public var mustContain: String?
}

public struct EvaluationScores: Sendable {
    /// Mean cross-entropy per assistant token (nats) and exp of it.
    public var loss: Double
    public var perplexity: Double
    public var tokens: Int
    /// Rows with "expected", and the fraction whose greedy answer equals it (nil: no such row).
    public var exactCount: Int
    public var exactMatch: Double?
    public var containsCount: Int
    public var contains: Double?
}

public struct AdapterEvaluation {
    public let bundle: ModelBundle
    public let dataset: TrainingDataset
    public let checks: [EvaluationCheck]
    /// Most tokens of a greedy answer.
    public var maxAnswerTokens = 128

    /// Loads `path` (chat or prompt/completion JSONL; "expected"/"must_contain" allowed on chat rows).
    public init(bundle: ModelBundle, path: String, maxSequence: Int = 2048) throws {
        self.bundle = bundle
        dataset = try TrainingDataset.load(path: path, tokenizer: TrainingTokenizer(bundle: bundle),
                                           options: TrainingDataOptions(maxSequence: maxSequence, evaluationKeys: true))
        checks = try Self.checks(path: path)
    }

    static func checks(path: String) throws -> [EvaluationCheck] {
        let region = try ByteRegion(path: path)
        let bytes = region.buffer
        var out: [EvaluationCheck] = []
        var start = 0, line = 0
        while start < bytes.count {
            line += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            let text = bytes[start..<end]
            start = end + 1
            guard let value = try? JSONValue.parse(text), let members = value.objectMembers else { continue }
            let expected = members.first { $0.0 == "expected" }?.1.stringValue
            let mustContain = members.first { $0.0 == "must_contain" }?.1.stringValue
            guard expected != nil || mustContain != nil, let messages = value["messages"]?.arrayValue else { continue }
            let chat = messages.compactMap { m -> ChatMessage? in
                guard let role = m["role"]?.stringValue, let content = m["content"]?.stringValue else { return nil }
                return ChatMessage(role: role, content: content)
            }
            let cut = chat.lastIndex { $0.role == "assistant" } ?? chat.count
            out.append(EvaluationCheck(line: line, prompt: Array(chat[..<cut]), expected: expected, mustContain: mustContain))
        }
        return out
    }

    /// The scores of `adapter` (nil: the base alone).
    public func scores(_ adapter: LoRAAdapter?) throws -> EvaluationScores {
        let model = bundle.model
        let uses = adapter.map { [AdapterUse($0)] } ?? []
        let V = model.config.vocabularySize
        var sum = 0.0, count = 0
        for example in dataset.examples {
            let logits = try model.forward(example.tokens, cache: model.makeCache(contextLimit: example.tokens.count),
                                           logits: .all, adapters: uses)
            for t in 1..<example.tokens.count where example.mask[t] {
                sum += logSumExp(logits, from: (t - 1) * V, count: V) - Double(logits[(t - 1) * V + Int(example.tokens[t])])
                count += 1
            }
        }
        var exact = 0, exactTotal = 0, contains = 0, containsTotal = 0
        for check in checks {
            let answer = try greedyAnswer(check.prompt, adapters: uses).trimmingCharacters(in: .whitespacesAndNewlines)
            if let e = check.expected {
                exactTotal += 1
                if answer == e.trimmingCharacters(in: .whitespacesAndNewlines) { exact += 1 }
            }
            if let c = check.mustContain {
                containsTotal += 1
                if c.isEmpty || answer.contains(c) { contains += 1 }  // Foundation's contains("") is false
            }
        }
        let loss = count > 0 ? sum / Double(count) : .nan
        return EvaluationScores(loss: loss, perplexity: exp(loss), tokens: count,
                                exactCount: exactTotal, exactMatch: exactTotal > 0 ? Double(exact) / Double(exactTotal) : nil,
                                containsCount: containsTotal, contains: containsTotal > 0 ? Double(contains) / Double(containsTotal) : nil)
    }

    /// The greedy reply to `messages`.
    public func greedyAnswer(_ messages: [ChatMessage], adapters: [AdapterUse]) throws -> String {
        let prompt = try bundle.chatPrompt(messages)
        let generator = Generator(model: bundle.model, tokenizer: bundle.tokenizer,
                                  parameters: SamplingParameters(temperature: 0, maxTokens: maxAnswerTokens), adapters: adapters)
        let limit = min(bundle.model.config.trainedContextLength, prompt.count + maxAnswerTokens + 1)
        return try generator.generate(prompt: prompt, cache: bundle.model.makeCache(contextLimit: limit)).text
    }
}
