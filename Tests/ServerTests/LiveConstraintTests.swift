// Live checks of the constraint extensions on the real model (LORAD_TEST_MODEL) over the daemon's
// socket: `guided_choice` answers one of the choices, `guided_regex` (and its alias `regex`) answers
// a whole match of the pattern, whole or streamed, on both endpoints; a pattern lorad cannot compile
// is a 400 in OpenAI's error shape with RegexError's message and offset; structured output that is
// not implemented yet (JSON mode, JSON Schema, GBNF) is a 400 saying so, never silently ignored.

import Foundation
import JSON
import Testing
@testable import Server
import LoradClient

private func chatContent(_ r: LiveDaemon.Reply) -> String? {
    r.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue
}

private func completionText(_ r: LiveDaemon.Reply) -> String? {
    r.json?["choices"]?.arrayValue?.first?["text"]?.stringValue
}

/// Whether `text` is a whole match of `pattern`, by Foundation's regex engine.
private func wholeMatch(_ pattern: String, _ text: String) throws -> Bool {
    let re = try NSRegularExpression(pattern: "^(?:" + pattern + ")$")
    return re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
}

@Suite(.serialized) struct LiveConstraintTests {
    @Test func guidedChoiceAndRegexOverTheSocket() throws {
        let d = try LiveDaemon(model: try LiveFixtures.realModel(), adapters: false)
        // guided_choice, greedy and sampled.
        let choices = ["refund", "exchange", "repair"]
        for (temperature, seed) in [(0, 0), (1, 3), (1, 4)] {
            guard case .object(var members) = chatBody(model: "base", "My toaster broke. What do you offer?", maxTokens: 16) else { return }
            members.removeAll { $0.0 == "temperature" }
            members += [("guided_choice", .array(choices.map(JSONValue.string))), ("temperature", .int(temperature)), ("seed", .int(seed))]
            let r = try d.post("/v1/chat/completions", .object(members))
            #expect(r.status == 200, "\(r.text)")
            let text = try #require(chatContent(r))
            #expect(choices.contains(text), "\(text.debugDescription) is not one of \(choices)")
            #expect(r.json?["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue == "stop")
        }
        // guided_regex on chat, `regex` on completions, and streamed.
        let phone = #"\d{3}-\d{4}"#
        let chat = try d.post("/v1/chat/completions", chatBody(model: "base", "What is your phone number?", maxTokens: 16,
                                                              extra: [("guided_regex", .string(phone))]))
        #expect(chat.status == 200, "\(chat.text)")
        let chatText = try #require(chatContent(chat))
        #expect(try wholeMatch(phone, chatText), "\(chatText.debugDescription)")

        let name = "[A-Z][a-z]+( [A-Z][a-z]+)*"
        let completion = try d.post("/v1/completions", .object([
            ("model", .string("base")), ("prompt", .string("The capital of France is")), ("max_tokens", .int(12)),
            ("temperature", .int(1)), ("seed", .int(7)), ("regex", .string(" " + name)),
        ]))
        #expect(completion.status == 200, "\(completion.text)")
        let completionOut = try #require(completionText(completion))
        if completion.json?["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue == "stop" {
            #expect(try wholeMatch(" " + name, completionOut), "\(completionOut.debugDescription)")
        } else {
            #expect(completionOut.hasPrefix(" ") && completionOut.dropFirst().first?.isUppercase == true, "\(completionOut.debugDescription)")
        }

        let streamed = try d.stream("/v1/chat/completions", chatBody(model: "base", "Pick yes, no or maybe.", maxTokens: 8, stream: true,
                                                                     extra: [("guided_regex", .string("(yes|no|maybe)"))]))
        let parsed = streamed.events.dropLast().compactMap { try? JSONValue.parse(Array($0.utf8)) }
        let text = parsed.compactMap { $0["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }.joined()
        #expect(["yes", "no", "maybe"].contains(text), "\(text.debugDescription)")

        // A body past the inline limit (an unknown field pads it) is prepared on the prompt thread: same rules.
        let big = try d.post("/v1/chat/completions", chatBody(model: "base", "Give me a number.", maxTokens: 8, extra: [
            ("guided_regex", .string(#"[0-9]{2}"#)), ("x_padding", .string(String(repeating: "x", count: 5000))),
        ]))
        #expect(big.status == 200, "\(big.text)")
        #expect(try wholeMatch("[0-9]{2}", try #require(chatContent(big))))
    }

    @Test func badPatternsAndUnsupportedStructuredOutputAre400s() throws {
        let d = try LiveDaemon(model: try LiveFixtures.realModel(), adapters: false)
        func refused(_ path: String, _ extra: [(String, JSONValue)]) throws -> (param: String?, message: String) {
            let body: JSONValue = path == "/v1/chat/completions"
                ? chatBody(model: "base", "hi", maxTokens: 4, extra: extra)
                : .object([("model", .string("base")), ("prompt", .string("hi")), ("max_tokens", .int(4))] + extra)
            let r = try d.post(path, body)
            #expect(r.status == 400, "\(extra.map(\.0)): \(r.text)")
            let error = r.json?["error"]
            #expect(error?["type"]?.stringValue == "invalid_request_error", "\(r.text)")
            return (error?["param"]?.stringValue, error?["message"]?.stringValue ?? "")
        }
        // RegexError's message, with the offset.
        var e = try refused("/v1/chat/completions", [("guided_regex", .string(#"(a|b)\1"#))])
        #expect(e.param == "guided_regex")
        #expect(e.message.contains("backreference") && e.message.contains("offset 5"), "\(e.message)")
        e = try refused("/v1/completions", [("regex", .string("[z-a]"))])
        #expect(e.param == "regex")
        #expect(e.message.contains("runs backwards") && e.message.contains("offset"), "\(e.message)")
        e = try refused("/v1/completions", [("guided_regex", .string("(ab"))])
        #expect(e.message.contains("offset"), "\(e.message)")
        // Malformed fields.
        e = try refused("/v1/chat/completions", [("guided_choice", .array([]))])
        #expect(e.param == "guided_choice")
        e = try refused("/v1/chat/completions", [("guided_regex", .string("a")), ("guided_choice", .array([.string("b")]))])
        #expect(e.param == "guided_choice")
        // Not implemented yet: refused, naming the field and saying so.
        for (path, key, value) in [
            ("/v1/chat/completions", "response_format", JSONValue.object([("type", .string("json_object"))])),
            ("/v1/completions", "response_format", .object([("type", .string("json_schema")),
                                                           ("json_schema", .object([("name", .string("x")), ("schema", .object([]))]))])),
            ("/v1/chat/completions", "grammar", .string("root ::= \"yes\"")),
            ("/v1/completions", "guided_json", .object([("type", .string("object"))])),
        ] {
            let e = try refused(path, [(key, value)])
            #expect(e.param?.hasPrefix(key) == true, "\(key): \(String(describing: e.param))")
            #expect(e.message.contains("not supported yet"), "\(key): \(e.message)")
        }
        // The daemon still serves after all that.
        #expect(try d.post("/v1/chat/completions", chatBody(model: "base", "hi", maxTokens: 2)).status == 200)
    }
}
