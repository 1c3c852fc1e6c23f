// `lorad chat`: an interactive conversation with the model loaded here or, with --socket, with a
// running daemon. The loop, the line editor, the slash commands and both backends are in ChatREPL.
import ArgumentParser
import ChatREPL
import Foundation

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with the model interactively (Ctrl-C stops a reply, Ctrl-D quits).",
        discussion: """
            On a terminal, lines are edited with emacs keys (libedit; ~/.editrc is read, `bind -v` \
            for vi keys) and Up/Down recall earlier lines, kept in --history-file. Ctrl-C at the \
            prompt clears the line; during a reply it stops the reply, which stays in the \
            conversation as far as it got. Ctrl-D on an empty line quits. When standard input is not \
            a terminal, lines are read as they come (one message per line).

            Commands: /help, /bye (also /exit, /quit), /clear (forget the conversation, keep the \
            system message), /adapter [NAME] (show or switch: an --adapter's name, with --socket a \
            model the daemon serves; base or none for the base model), /system [TEXT] (show or \
            replace the system message). //text sends "/text".

            With --socket the daemon answers: each turn sends the whole conversation to its \
            /v1/chat/completions, streamed, and Ctrl-C closes that request (the daemon cancels it).
            """)

    @Option(help: ArgumentHelp("A system message to start the conversation with.", valueName: "text"))
    var system: String?

    @Option(help: ArgumentHelp("Chat through a running daemon's socket instead of loading the model here.",
                               valueName: "path"))
    var socket: String?

    @Option(name: .customLong("model-name"), help: ArgumentHelp(
        "With --socket: an adapter name, or the base's served name (default: the daemon's base model).",
        valueName: "name"))
    var modelName: String?

    @Option(help: ArgumentHelp(
        "Where line history is kept (default: $XDG_STATE_HOME/lorad/chat_history, else ~/.local/state/lorad/chat_history).",
        valueName: "path"))
    var historyFile: String?

    @Flag(help: "Keep line history for this session only.")
    var noHistoryFile = false

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var sampling: SamplingOptions

    func validate() throws {
        if socket == nil, modelName != nil {
            throw ValidationError("--model-name names one of a daemon's models: use it with --socket PATH (here, load adapters with --adapter PATH)")
        }
        if socket != nil, modelOptions.model != nil || !runtime.adapters.isEmpty || runtime.threads != nil
            || runtime.context != nil || runtime.chatTemplate != nil {
            throw ValidationError("with --socket the daemon's model answers: --model, --adapter, --threads, --context and --chat-template apply to a model loaded here; pick the daemon's adapter with --model-name NAME")
        }
    }

    func run() throws {
        let backend: ChatBackend
        if let socket {
            do {
                backend = try DaemonChatBackend(socket: socket, model: modelName, parameters: sampling.parameters)
            } catch {
                fail("\(error)")
            }
        } else {
            let bundle = loadBundle(modelOptions, runtime)
            backend = LocalChatBackend(bundle: bundle, parameters: sampling.parameters,
                                       adapters: loadAdapters(bundle, runtime), contextLimit: runtime.context,
                                       modelName: URL(fileURLWithPath: modelOptions.resolvedPath).lastPathComponent)
        }
        let history = noHistoryFile ? nil : (historyFile ?? defaultChatHistoryPath())
        ChatSession(backend: backend, reader: makeLineReader(prompt: "> ", historyFile: history), system: system).run()
    }
}
