// A base model opened for use: the mapped GGUF, the forward pass, its tokenizer and chat template,
// all from one file. Immutable and shared.

import ModelFormats
import Tokenizer

public final class ModelBundle: Sendable {
    public let gguf: GGUFFile
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    /// The model's own template, or the override given at load; nil if the file has none.
    public let chatTemplate: ChatTemplate?

    /// Opens `path`. `chatTemplate` overrides the model's template: a built-in name (chatml,
    /// llama3, gemma) or a file path.
    public init(path: String, threads: Int? = nil, numerics: LlamaModel.Numerics = .f32,
                chatTemplate: String? = nil) throws {
        gguf = try GGUFFile(path: path)
        model = try LlamaModel(gguf: gguf, threads: threads, numerics: numerics)
        tokenizer = try Tokenizer(gguf: gguf)
        if let chatTemplate {
            self.chatTemplate = try ChatTemplate.load(nameOrPath: chatTemplate)
        } else {
            self.chatTemplate = try ChatTemplate.fromModel(metadata: gguf.metadata)
        }
    }

    /// Renders `messages` with the chat template and tokenizes the result with special tokens on.
    public func chatPrompt(_ messages: [ChatMessage]) throws -> [Int32] {
        guard let chatTemplate else { throw ModelBundleError.noChatTemplate }
        let text = try chatTemplate.render(messages: messages, addGenerationPrompt: true,
                                           bosToken: tokenizer.bos.flatMap(tokenizer.tokenText) ?? "",
                                           eosToken: tokenizer.eos.flatMap(tokenizer.tokenText) ?? "")
        return tokenizer.encode(text, parseSpecial: true)
    }
}

public enum ModelBundleError: Error, CustomStringConvertible {
    case noChatTemplate

    public var description: String {
        "the model has no chat template (tokenizer.chat_template); pass --chat-template NAME|FILE "
            + "(built-in: chatml, llama3, gemma) or use --raw"
    }
}
