// What a line typed at `lorad chat`'s prompt means: a message for the model, or one of the slash
// commands. Pure parsing, so the table is tested without a terminal or a model.

import Foundation

package enum ChatInput: Equatable {
    case message(String)
    case command(SlashCommand)
    /// Nothing but spaces: a fresh prompt.
    case empty
}

package enum SlashCommand: Equatable {
    case help
    case bye
    case clear
    /// `/adapter` alone: show the current one.
    case adapter(String?)
    /// `/system` alone: show the current system message.
    case system(String?)
    case unknown(String)

    /// The /help text, one command a line.
    package static let helpText = """
        /help              this list
        /bye               quit (also /exit, /quit, or Ctrl-D on an empty line)
        /clear             forget the conversation, keep the system message
        /adapter [NAME]    show the adapter in use, or switch to NAME (base or none: the base model)
        /system [TEXT]     show the system message, or replace it with TEXT
        //text             send "/text" as a message
        Ctrl-C stops a reply (what was written stays in the conversation) or clears the line.
        """

    package static func parse(_ line: String) -> ChatInput {
        let text = line.trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return .empty }
        guard text.hasPrefix("/") else { return .message(text) }
        if text.hasPrefix("//") { return .message(String(text.dropFirst())) }
        let word = text.prefix { !$0.isWhitespace }
        let rest = text.dropFirst(word.count).trimmingCharacters(in: .whitespaces)
        let argument = rest.isEmpty ? nil : rest
        switch word.lowercased() {
        case "/help", "/?": return .command(.help)
        case "/bye", "/exit", "/quit": return .command(.bye)
        case "/clear": return .command(.clear)
        case "/adapter": return .command(.adapter(argument))
        case "/system": return .command(.system(argument))
        default: return .command(.unknown(String(word)))
        }
    }
}

/// The names `/adapter` takes for "no adapter, the base model".
package func isBaseName(_ name: String) -> Bool {
    ["base", "none"].contains(name.lowercased())
}
