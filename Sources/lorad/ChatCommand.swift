// `lorad chat`: an interactive conversation. Ctrl-C stops the reply being written, Ctrl-D quits.
import ArgumentParser
import Foundation
import Llama
import Tokenizer

#if canImport(Glibc)
import Glibc
#endif

/// Set by the SIGINT handler, read by the generation loop (a plain flag: the handler may only
/// store to it).
nonisolated(unsafe) private let interrupted = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with the model interactively (Ctrl-C stops a reply, Ctrl-D quits).")

    @Option(help: "A system message to start the conversation with.")
    var system: String?

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var sampling: SamplingOptions

    func run() throws {
        let bundle = loadBundle(modelOptions, runtime)
        let generator = Generator(model: bundle.model, tokenizer: bundle.tokenizer, parameters: sampling.parameters,
                                  adapters: loadAdapters(bundle, runtime))
        interrupted.pointee = 0
        signal(SIGINT) { _ in interrupted.pointee = 1 }

        var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        // The cache keeps the conversation so far; each turn only the new tokens are computed.
        let cache = bundle.model.makeCache(contextLimit: runtime.context)
        var cached: [Int32] = []
        let name = URL(fileURLWithPath: modelOptions.resolvedPath).lastPathComponent
        FileHandle.standardError.write(Data("lorad chat on \(name): type a message; Ctrl-C stops a reply, Ctrl-D quits.\n".utf8))
        while true {
            emit("> ")
            interrupted.pointee = 0
            guard let line = readLine() else {
                emit("\n")
                return
            }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            messages.append(ChatMessage(role: "user", content: text))
            var ids: [Int32]
            do {
                ids = try bundle.chatPrompt(messages)
            } catch {
                fail("\(error)")
            }
            // Reuse the cached prefix: the rendered conversation only grows at its end.
            var common = 0
            while common < min(ids.count, cached.count) && ids[common] == cached[common] { common += 1 }
            if common == ids.count { common -= 1 }  // at least one token must be run
            cache.truncate(to: common)
            cached = Array(ids[..<common])
            let fresh = Array(ids[common...])
            do {
                let result = try generator.generate(prompt: fresh, cache: cache) { piece in
                    emit(piece)
                    return interrupted.pointee == 0
                }
                emit(result.cancelled ? " [stopped]\n" : "\n")
                // The last sampled token was never run through the model, so the cache ends before it.
                cached += fresh + result.tokens.dropLast()
                messages.append(ChatMessage(role: "assistant", content: result.text))
            } catch let error as GenerationError {
                FileHandle.standardError.write(Data("error: \(error) (start a new chat to clear the context)\n".utf8))
                messages.removeLast()
            } catch {
                fail("\(error)")
            }
        }
    }
}
