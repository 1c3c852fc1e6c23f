// The chat backend that runs the model in this process (`lorad chat` without --socket).
//
// One KV cache holds the conversation so far; each turn the rendered conversation is compared with
// the cached tokens and only the new tail is computed (the rendering only grows at its end, except
// after /clear, /system or an adapter switch). The main thread runs every forward pass.

import Generation
import Llama
import ChatTemplate
import Sampling

package final class LocalChatBackend: ChatBackend {
    private let bundle: ModelBundle
    private var generator: Generator
    /// Every `--adapter` given, by name; the generator runs with all of them at the start.
    private let loaded: [AdapterUse]
    private let cache: KVCache
    /// The tokens whose keys and values are in `cache`.
    private var cached: [Int32] = []
    package let banner: String

    package init(bundle: ModelBundle, parameters: SamplingParameters, adapters: [AdapterUse],
                 contextLimit: Int?, modelName: String) {
        self.bundle = bundle
        generator = Generator(model: bundle.model, tokenizer: bundle.tokenizer, parameters: parameters, adapters: adapters)
        loaded = adapters
        cache = bundle.model.makeCache(contextLimit: contextLimit)
        banner = "lorad chat on \(modelName)"
    }

    package var adapterDescription: String {
        generator.adapters.isEmpty ? "none (the base model)" : generator.adapters.map(\.adapter.name).joined(separator: " + ")
    }

    package func selectAdapter(_ name: String?) throws -> String {
        let chosen: [AdapterUse]
        if let name, !isBaseName(name) {
            guard let use = loaded.first(where: { $0.adapter.name == name }) else {
                let names = loaded.map(\.adapter.name)
                throw ChatError("no adapter named '\(name)': "
                    + (names.isEmpty ? "none was loaded (start chat with --adapter PATH)"
                                     : "loaded are \(names.joined(separator: ", ")) (and base)"))
            }
            chosen = [use]
        } else {
            chosen = []
        }
        generator.adapters = chosen
        // The cached keys and values were computed with the previous adapters.
        reset()
        return adapterDescription
    }

    package func reset() {
        cache.truncate(to: 0)
        cached = []
    }

    package func reply(to messages: [ChatMessage], shouldStop: () -> Bool, onText: (String) -> Void) throws -> ChatReply {
        let ids = try bundle.chatPrompt(messages)
        var common = 0
        while common < min(ids.count, cached.count) && ids[common] == cached[common] { common += 1 }
        if common == ids.count { common -= 1 }  // at least one token must be run
        cache.truncate(to: common)
        cached = Array(ids[..<common])
        let fresh = Array(ids[common...])
        let result: GenerationResult
        do {
            result = try generator.generate(prompt: fresh, cache: cache) { text in
                onText(text)
                return !shouldStop()
            }
        } catch {
            reset()  // whatever the cache holds now is not known to match `cached`
            throw error
        }
        // The last sampled token was never run through the model, so the cache ends before it.
        cached += fresh + result.tokens.dropLast()
        return ChatReply(text: result.text, stopped: result.cancelled)
    }
}
