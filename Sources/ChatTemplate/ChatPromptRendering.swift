// Chat prompts whose message contents cannot forge control tokens: `Tokenizer.renderChat` renders
// with a ChatTemplate after `Tokenizer.protectContents` (Tokenizer/ChatPromptEncoding.swift, whose
// header explains the mechanism) has replaced the contents' control-token texts by placeholders;
// `Tokenizer.encode(_: ChatPrompt)` then makes the ids.

import JSON
import Tokenizer

extension Tokenizer {
    /// Renders `messages` with `template` (add_generation_prompt, bos_token and eos_token from this
    /// tokenizer) with the contents protected: see Tokenizer/ChatPromptEncoding.swift. Throws the
    /// template's errors (ChatTemplateError) and ChatPromptError.
    public func renderChat(_ messages: [ChatMessage], template: ChatTemplate, addGenerationPrompt: Bool = true,
                           extra: [String: JSONValue] = [:], now: Double? = nil) throws -> ChatPrompt {
        let bosText = bos.flatMap(tokenText) ?? "", eosText = eos.flatMap(tokenText) ?? ""
        guard let protection = try protectContents(
            messages.map(\.content), avoiding: [template.source, bosText, eosText] + messages.map(\.role)) else {
            let text = try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                           bosToken: bosText, eosToken: eosText, extra: extra, now: now)
            return ChatPrompt(protectedText: text, placeholders: [:])
        }
        var protected = messages
        for index in protected.indices { protected[index].content = protection.contents[index] }
        let text = try template.render(messages: protected, addGenerationPrompt: addGenerationPrompt,
                                       bosToken: bosText, eosToken: eosText, extra: extra, now: now)
        return ChatPrompt(protectedText: text, placeholders: protection.placeholders)
    }

    /// Renders and encodes in one call: `encode(renderChat(...))`.
    public func encodeChat(_ messages: [ChatMessage], template: ChatTemplate, addGenerationPrompt: Bool = true,
                           extra: [String: JSONValue] = [:], now: Double? = nil) throws -> [Int32] {
        encode(try renderChat(messages, template: template, addGenerationPrompt: addGenerationPrompt,
                              extra: extra, now: now))
    }
}
