// Token ids and the loss mask of one training example, rendered exactly as serving renders a chat:
// `Tokenizer.renderChat` with the model's template (the contents protected, so text in a message that
// spells a control token stays text) and `Tokenizer.encode(ChatPrompt)`, the same two calls
// `ModelBundle.renderChat`/`chatPrompt` make. There is no second renderer.
//
// The assistant spans come from the template itself, by rendering prefixes: for assistant message i,
//   before  = messages[0..<i] with the generation prompt ("...<|im_start|>assistant\n"),
//   through = messages[0...i] without it ("...<|im_start|>assistant\nCONTENT<|im_end|>\n"),
// each a text prefix of the whole conversation and `through` a token prefix of it (checked: a
// template that renders a conversation's beginning differently from the whole cannot be masked this
// way, and the example is refused). The turn's tokens start where `before`'s end; a token that holds
// both header and content text (content starting with spaces merges with the header's "\n": "\n  ")
// is not trained. What the template writes after the turn's last end-of-generation token (ChatML's
// "\n") is not trained either: the turn ends at `<|im_end|>`, which the model must learn to emit. So
// a ChatML turn trains its content and `<|im_end|>`, never the header, system or user text.
//
// Prompt/completion examples are raw text, as OpenAI's legacy format was: no chat template. The
// prompt and the completion are tokenized separately (special-token text as plain text), so the
// boundary between context and trained text is exactly where the file puts it, and the tokenizer's
// EOS (`<|im_end|>` for SmolLM2) is appended to the completion and trained, so the adapter learns to
// stop (TRL does the same); BOS only if the tokenizer adds one.
//
// mask[t] says whether token t is a target (the loss at position t-1 predicting token t counts).
// Token 0 is never a target: nothing predicts it.

import ChatTemplate
import Generation
import Tokenizer

/// A tokenized example: ids and, per id, whether it is trained.
public struct TokenizedExample: Sendable, Equatable {
    public var tokens: [Int32]
    public var mask: [Bool]

    public init(tokens: [Int32], mask: [Bool]) {
        precondition(tokens.count == mask.count)
        self.tokens = tokens
        self.mask = mask
    }

    public var trainedTokenCount: Int { mask.reduce(0) { $0 + ($1 ? 1 : 0) } }
}

/// Renders and tokenizes training records with a base model's tokenizer and chat template.
public struct TrainingTokenizer: Sendable {
    public let tokenizer: Tokenizer
    /// Needed for chat examples; prompt/completion examples need none.
    public let template: ChatTemplate?

    public init(tokenizer: Tokenizer, template: ChatTemplate?) {
        self.tokenizer = tokenizer
        self.template = template
    }

    /// The tokenizer and chat template a model serves with.
    public init(bundle: ModelBundle) {
        self.init(tokenizer: bundle.tokenizer, template: bundle.chatTemplate)
    }

    /// Why an example cannot be tokenized (the caller adds the file and line).
    public struct Failure: Error, Equatable {
        public var reason: String
    }

    public func tokenize(_ record: TrainingRecord) throws(Failure) -> TokenizedExample {
        switch record {
        case .chat(let messages): return try tokenizeChat(messages)
        case .completion(let prompt, let completion): return tokenizeCompletion(prompt: prompt, completion: completion)
        }
    }

    func render(_ messages: ArraySlice<TrainingMessage>, generationPrompt: Bool, template: ChatTemplate) throws(Failure)
        -> (text: [UInt8], ids: [Int32]) {
        let chat = messages.map { ChatMessage(role: $0.role, content: $0.content) }
        do {
            let prompt = try tokenizer.renderChat(chat, template: template, addGenerationPrompt: generationPrompt)
            return (Array(prompt.text.utf8), tokenizer.encode(prompt))
        } catch {
            throw Failure(reason: "the chat template cannot render it: \(error)")
        }
    }

    func tokenizeChat(_ messages: [TrainingMessage]) throws(Failure) -> TokenizedExample {
        guard let template else {
            throw Failure(reason: "a chat example, but the model has no chat template; use prompt/completion lines")
        }
        let whole = try render(messages[...], generationPrompt: false, template: template)
        let tokens = whole.ids
        var mask = [Bool](repeating: false, count: tokens.count)
        for (i, message) in messages.enumerated() where message.role == "assistant" {
            let before = try render(messages[..<i], generationPrompt: true, template: template)
            let through = try render(messages[...i], generationPrompt: false, template: template)
            guard through.text.starts(with: before.text), whole.text.starts(with: through.text), tokens.starts(with: through.ids) else {
                throw Failure(reason: "the chat template does not render the conversation up to message \(i) (assistant) as the "
                    + "beginning of the whole, so its tokens cannot be told apart (does the conversation start with an assistant turn?)")
            }
            // The turn's tokens start where the header's end: usually `before` is a token prefix of
            // `through`, but content that starts with whitespace can merge with the header's last
            // "\n" ("\n" + "  12" → "\n ", " ", "12"); a token holding header text is not trained.
            var start = zip(before.ids, through.ids).prefix { $0 == $1 }.count
            if start < before.ids.count {
                let headerBytes = before.ids[start...].reduce(0) { $0 + tokenizer.piece($1).count }
                var covered = 0
                while start < through.ids.count && covered < headerBytes {
                    covered += tokenizer.piece(through.ids[start]).count
                    start += 1
                }
            }
            start = max(start, 1)
            // What the template writes after the turn's end-of-generation token is not trained.
            var end = through.ids.count
            if start < end, let last = through.ids[start...].lastIndex(where: tokenizer.isEndOfGeneration) { end = last + 1 }
            if message.trained, start < end {
                for t in start..<end { mask[t] = true }
            }
        }
        return TokenizedExample(tokens: tokens, mask: mask)
    }

    func tokenizeCompletion(prompt: String, completion: String) -> TokenizedExample {
        var tokens: [Int32] = []
        if tokenizer.vocabulary.addBOS, let bos = tokenizer.bos { tokens.append(bos) }
        tokens += tokenizer.encode(prompt, parseSpecial: false, addBOS: false, addEOS: false)
        let start = tokens.count
        tokens += tokenizer.encode(completion, parseSpecial: false, addBOS: false, addEOS: false)
        if let eos = tokenizer.eos { tokens.append(eos) }
        var mask = [Bool](repeating: false, count: tokens.count)
        if max(start, 1) < tokens.count {
            for t in max(start, 1)..<tokens.count { mask[t] = true }
        }
        return TokenizedExample(tokens: tokens, mask: mask)
    }
}
