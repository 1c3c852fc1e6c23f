// A base model opened for use: the mapped GGUF, the forward pass, its tokenizer and chat template,
// all from one file. Immutable and shared.

import ChatTemplate
import Foundation
import Llama
import LoRA
import ModelFormats
import Sampling
import Tokenizer

public final class ModelBundle: Sendable {
    public let gguf: GGUFFile
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    /// The model's own template, or the override given at load; nil if the file has none.
    public let chatTemplate: ChatTemplate?
    /// Compiles and caches regex constraints over this tokenizer's vocabulary (the token trie is
    /// built once, on first use, and shared by every pattern).
    public let constraints: ConstraintCompiler

    /// Opens `path`. `chatTemplate` overrides the model's template: a built-in name (chatml,
    /// llama3, gemma) or a file path.
    public init(path: String, threads: Int? = nil, numerics: LlamaModel.Numerics = .f32,
                chatTemplate: String? = nil) throws {
        gguf = try GGUFFile(path: path)
        model = try LlamaModel(gguf: gguf, threads: threads, numerics: numerics)
        tokenizer = try Tokenizer(gguf: gguf)
        constraints = ConstraintCompiler(tokenizer: tokenizer)
        if let chatTemplate {
            self.chatTemplate = try ChatTemplate.load(nameOrPath: chatTemplate)
        } else {
            self.chatTemplate = try ChatTemplate.fromModel(metadata: gguf.metadata)
        }
    }

    /// What adapters are checked against: this model's shapes and weights.
    public func baseInfo() throws -> BaseModelInfo { try BaseModelInfo(gguf: gguf) }

    /// Loads `PATH[:SCALE]` (a PEFT directory or a llama.cpp GGUF LoRA file, scale 1 by default),
    /// validated against this model. The adapter is named after the file or directory.
    public func loadAdapter(spec: String, options: LoRALoadOptions = LoRALoadOptions()) throws -> AdapterUse {
        var path = spec
        var scale: Float = 1
        // PATH:SCALE - only when what follows the last colon is a number, so paths may hold colons.
        if let colon = spec.lastIndex(of: ":"), let s = Float(spec[spec.index(after: colon)...]) {
            path = String(spec[..<colon])
            scale = s
        }
        guard scale.isFinite else { throw ModelBundleError.badAdapterSpec(spec) }
        var name = URL(fileURLWithPath: path).lastPathComponent
        if name.hasSuffix(".gguf") { name.removeLast(5) }
        return AdapterUse(try LoRAAdapter.load(path: path, name: name, base: baseInfo(), options: options), scale: scale)
    }

    /// Renders `messages` with the chat template, the contents protected (special-token text in a
    /// message is plain text; the template's own control tokens stay), ready to encode or to bound.
    public func renderChat(_ messages: [ChatMessage]) throws -> ChatPrompt {
        guard let chatTemplate else { throw ModelBundleError.noChatTemplate }
        return try tokenizer.renderChat(messages, template: chatTemplate)
    }

    /// The ids of `messages` rendered with the chat template, the contents protected (see `renderChat`).
    public func chatPrompt(_ messages: [ChatMessage]) throws -> [Int32] {
        tokenizer.encode(try renderChat(messages))
    }
}

public enum ModelBundleError: Error, CustomStringConvertible {
    case noChatTemplate
    case badAdapterSpec(String)

    public var description: String {
        switch self {
        case .noChatTemplate:
            return "the model has no chat template (tokenizer.chat_template); pass --chat-template NAME|FILE "
                + "(built-in: chatml, llama3, gemma) or use --raw"
        case .badAdapterSpec(let spec):
            return "'\(spec)' is not PATH or PATH:SCALE with a finite scale"
        }
    }
}
