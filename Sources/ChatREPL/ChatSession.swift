// The `lorad chat` loop: read a line, run a slash command or send the conversation to the backend,
// stream the reply. Ctrl-C (Interrupt) means "stop what is happening now": at the prompt it drops
// the line being typed; during a reply it stops that reply, which stays in the conversation as far
// as it got (a reply stopped before its first word is dropped with the message that asked for it,
// so Up and Enter asks again). The flag is cleared before every prompt, so a Ctrl-C at the prompt
// can never stop the next reply.
//
// Replies go to stdout; the banner, command answers and errors to stderr, so `lorad chat < questions
// > answers` keeps only the answers.

import Foundation
import ChatTemplate

package final class ChatSession {
    private let backend: ChatBackend
    private let reader: LineReader
    private var system: String?
    private var messages: [ChatMessage] = []

    package init(backend: ChatBackend, reader: LineReader, system: String?) {
        self.backend = backend
        self.reader = reader
        self.system = system
        messages = startOfConversation
    }

    private var startOfConversation: [ChatMessage] {
        system.map { [ChatMessage(role: "system", content: $0)] } ?? []
    }

    /// Runs until /bye, Ctrl-D on an empty line or the end of the input.
    package func run() {
        Interrupt.install()
        note("\(backend.banner): type a message; /help lists the commands, Ctrl-C stops a reply, Ctrl-D quits.")
        while true {
            Interrupt.clear()
            switch reader.readLine() {
            case .end:
                write("\n")
                return
            case .interrupted:
                write("^C\n")
            case .line(let line):
                switch SlashCommand.parse(line) {
                case .empty:
                    continue
                case .message(let text):
                    converse(text)
                case .command(let command):
                    guard perform(command) else { return }
                }
            }
        }
    }

    private func converse(_ text: String) {
        messages.append(ChatMessage(role: "user", content: text))
        do {
            let reply = try backend.reply(to: messages, shouldStop: { Interrupt.isSet }, onText: write)
            write(reply.stopped ? " [stopped]\n" : "\n")
            if reply.stopped && reply.text.isEmpty {
                messages.removeLast()
            } else {
                messages.append(ChatMessage(role: "assistant", content: reply.text))
            }
        } catch {
            messages.removeLast()
            write("\n")
            note("Error: \(error) (/clear starts the conversation over)")
        }
    }

    /// Runs a slash command; false to quit.
    private func perform(_ command: SlashCommand) -> Bool {
        switch command {
        case .help:
            note(SlashCommand.helpText)
        case .bye:
            return false
        case .clear:
            messages = startOfConversation
            backend.reset()
            note("cleared the conversation" + (system == nil ? "" : " (the system message stays)"))
        case .adapter(nil):
            note("adapter: \(backend.adapterDescription)")
        case .adapter(let name?):
            do {
                note("adapter: \(try backend.selectAdapter(name))")
            } catch {
                note("Error: \(error)")
            }
        case .system(nil):
            note(system.map { "system: \($0)" } ?? "no system message (/system TEXT sets one)")
        case .system(let text?):
            system = text
            if messages.first?.role == "system" { messages.removeFirst() }
            messages.insert(ChatMessage(role: "system", content: text), at: 0)
            note("system message set")
        case .unknown(let word):
            note("unknown command \(word): /help lists the commands (//text sends a line that starts with /)")
        }
        return true
    }

    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    private func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// Where chat history is kept by default: $XDG_STATE_HOME/lorad/chat_history, else
/// ~/.local/state/lorad/chat_history (the XDG base directory rule); nil without a home.
package func defaultChatHistoryPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
    if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
        return state + "/lorad/chat_history"
    }
    guard let home = environment["HOME"], !home.isEmpty else { return nil }
    return home + "/.local/state/lorad/chat_history"
}
