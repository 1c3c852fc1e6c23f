// The meaning of a line at `lorad chat`'s prompt, without a terminal or a model.

import Testing
@testable import ChatREPL

@Suite struct SlashCommandTests {
    @Test func messagesAndCommands() {
        #expect(SlashCommand.parse("  hello there ") == .message("hello there"))
        #expect(SlashCommand.parse("   ") == .empty)
        #expect(SlashCommand.parse("/help") == .command(.help))
        #expect(SlashCommand.parse("/?") == .command(.help))
        for quit in ["/bye", "/exit", "/quit", "/BYE"] { #expect(SlashCommand.parse(quit) == .command(.bye)) }
        #expect(SlashCommand.parse("/clear") == .command(.clear))
        #expect(SlashCommand.parse("/adapter") == .command(.adapter(nil)))
        #expect(SlashCommand.parse("/adapter   alpha ") == .command(.adapter("alpha")))
        #expect(SlashCommand.parse("/system You are terse.") == .command(.system("You are terse.")))
        #expect(SlashCommand.parse("/system") == .command(.system(nil)))
    }

    @Test func unknownCommandsAreNotMessages() {
        #expect(SlashCommand.parse("/clea") == .command(.unknown("/clea")))
        #expect(SlashCommand.parse("/etc/passwd is a file") == .command(.unknown("/etc/passwd")))
        // A doubled slash sends the rest as a message.
        #expect(SlashCommand.parse("//etc/passwd is a file") == .message("/etc/passwd is a file"))
    }

    @Test func baseNames() {
        #expect(isBaseName("base") && isBaseName("none") && isBaseName("None"))
        #expect(!isBaseName("alpha"))
    }

    @Test func historyPathFollowsXDG() {
        #expect(defaultChatHistoryPath(environment: ["XDG_STATE_HOME": "/s", "HOME": "/h"]) == "/s/lorad/chat_history")
        // A relative XDG_STATE_HOME is invalid by the spec and ignored.
        #expect(defaultChatHistoryPath(environment: ["XDG_STATE_HOME": "rel", "HOME": "/h"]) == "/h/.local/state/lorad/chat_history")
        #expect(defaultChatHistoryPath(environment: [:]) == nil)
    }
}
