// What the chat loop talks to: the model loaded in this process (LocalChatBackend) or a running
// daemon (DaemonChatBackend). Both get the whole conversation each turn and stream the reply.

import ChatTemplate

package struct ChatReply {
    package var text: String
    /// Ctrl-C stopped it; `text` is what was written before.
    package var stopped: Bool
}

package struct ChatError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

package protocol ChatBackend: AnyObject {
    /// A line for the banner: what is answering.
    var banner: String { get }
    /// The adapter in use, for `/adapter`.
    var adapterDescription: String { get }
    /// Switches adapter; nil, "base" or "none" means the base model. Throws with a hint when the
    /// name is unknown. Returns the new description.
    func selectAdapter(_ name: String?) throws -> String
    /// The conversation was cleared or rewritten from its start.
    func reset()
    /// Streams the reply to `messages` through `onText`, stopping early once `shouldStop` says so.
    func reply(to messages: [ChatMessage], shouldStop: () -> Bool, onText: (String) -> Void) throws -> ChatReply
}
