// OpenAI error bodies and the helper constructors; and the vLLM-style /tokenize and /detokenize
// request decoders.

import Testing
import JSON
@testable import Server

@Suite struct OpenAIErrorTests {
    @Test func bodyShape() throws {
        let e = OpenAIError.badRequest(param: "temperature", message: #"temperature must be a number between 0 and 2, found "hot""#)
        #expect(try JSONValue.parse(e.body()) == .object([("error", .object([
            ("message", .string(#"temperature must be a number between 0 and 2, found "hot""#)),
            ("type", .string("invalid_request_error")),
            ("param", .string("temperature")),
            ("code", .null),
        ]))]))
        #expect(e.status == 400)
        let internalError = OpenAIError.internal("the forward pass failed")
        #expect(try JSONValue.parse(internalError.body()) == .object([("error", .object([
            ("message", .string("the forward pass failed")), ("type", .string("server_error")), ("param", .null), ("code", .null),
        ]))]))
        #expect(internalError.status == 500)
        #expect(e.description == #"400 invalid_request_error (temperature): temperature must be a number between 0 and 2, found "hot""#)
    }

    @Test func helpers() throws {
        let nf = OpenAIError.notFound(model: "acme")
        #expect(nf.status == 404 && nf.code == "model_not_found" && nf.param == nil)
        #expect(nf.message == "The model `acme` does not exist or you do not have access to it.")
        #expect(try JSONValue.parse(nf.body())["error"]?["code"] == .string("model_not_found"))

        let busy = OpenAIError.tooManyRequests(retryAfter: 2)
        #expect(busy.status == 429 && busy.retryAfter == 2 && busy.code == "rate_limit_exceeded")
        #expect(busy.message.contains("retry in 2 seconds"))
        #expect(OpenAIError.tooManyRequests(retryAfter: 1).message.contains("retry in 1 second."))
        // Retry-After is a header, not part of the body.
        #expect(try JSONValue.parse(busy.body())["error"]?.objectMembers?.map(\.0) == ["message", "type", "param", "code"])

        #expect(OpenAIError.unavailable("draining", retryAfter: 5).status == 503)
        #expect(OpenAIError.unauthorized().status == 401)
        #expect(OpenAIError.notFound(path: "/v2/x").status == 404)
    }

    @Test func contextTooLongStatesBothNumbers() {
        let chat = OpenAIError.contextTooLong(promptTokens: 8000, maxTokens: 300, limit: 8192)
        #expect(chat.status == 400 && chat.code == "context_length_exceeded" && chat.param == "messages")
        #expect(chat.message == "This model's maximum context length is 8192 tokens. However, you requested 8300 tokens "
            + "(8000 in the messages, 300 in the completion). Please reduce the length of the messages or completion.")
        let prompt = OpenAIError.contextTooLong(promptTokens: 9000, limit: 8192, endpoint: .completion)
        #expect(prompt.param == "prompt")
        #expect(prompt.message == "This model's maximum context length is 8192 tokens. However, your prompt resulted in 9000 tokens. "
            + "Please reduce the length of the prompt.")
    }

    @Test func tokenizeRequests() throws {
        func tokenize(_ json: String) throws(OpenAIError) -> TokenizeRequest { try OpenAIDecode.tokenizeRequest(body: Array(json.utf8)) }
        let p = try tokenize(#"{"model": "acme", "prompt": "Hello"}"#)
        #expect(p == TokenizeRequest(model: "acme", input: .text("Hello"), addSpecialTokens: true, addGenerationPrompt: true))
        let m = try tokenize(#"{"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": false, "return_token_strs": true}"#)
        #expect(m.model == nil && !m.addSpecialTokens && !m.addGenerationPrompt && m.returnTokenStrings)
        guard case .chat(let messages) = m.input else { Issue.record("expected messages"); return }
        #expect(messages.map(\.role) == ["user"] && messages.map(\.content) == ["hi"])
        #expect(try tokenize(#"{"prompt": "", "add_special_tokens": false}"#).addSpecialTokens == false)

        func error(_ json: String) -> OpenAIError? {
            do { _ = try tokenize(json); return nil } catch { return error }
        }
        #expect(error(#"{"model": "m"}"#)?.param == "prompt")
        #expect(error(#"{"prompt": "a", "messages": []}"#)?.message == "send either prompt or messages, not both")
        #expect(error(#"{"prompt": 5}"#)?.param == "prompt")
        #expect(error(#"{"model": 5, "prompt": "a"}"#)?.param == "model")
        #expect(error(#"{"messages": [{"role": "tool", "content": "x"}]}"#)?.param == "messages[0].role")
        #expect(error(#"{"prompt": "a", "add_special_tokens": "yes"}"#)?.param == "add_special_tokens")
        #expect(error("nope")?.status == 400)
    }

    @Test func detokenizeRequests() throws {
        func detokenize(_ json: String, vocabularySize: Int? = nil) throws(OpenAIError) -> DetokenizeRequest {
            try OpenAIDecode.detokenizeRequest(body: Array(json.utf8), vocabularySize: vocabularySize)
        }
        #expect(try detokenize(#"{"model": "m", "tokens": [1, 2, 3]}"#) == DetokenizeRequest(model: "m", tokens: [1, 2, 3]))
        #expect(try detokenize(#"{"tokens": []}"#) == DetokenizeRequest(model: nil, tokens: []))
        func error(_ json: String, vocabularySize: Int? = nil) -> OpenAIError? {
            do { _ = try detokenize(json, vocabularySize: vocabularySize); return nil } catch { return error }
        }
        #expect(error("{}")?.message == "tokens is required: an array of token ids")
        #expect(error(#"{"tokens": "1 2"}"#)?.param == "tokens")
        #expect(error(#"{"tokens": [1, -1]}"#)?.message == "tokens[1] must be a token id (an integer >= 0), found -1")
        #expect(error(#"{"tokens": [1, 10]}"#, vocabularySize: 10)?.message == "tokens[1] must be a token id (an integer in 0..<10), found 10")
    }
}
