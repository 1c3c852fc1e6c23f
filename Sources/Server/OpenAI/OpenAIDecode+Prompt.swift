// What to generate from: chat `messages` (OpenAI's message objects, text only) and completions'
// `prompt` (a string or token ids, one prompt per request), plus the bodies of vLLM's /tokenize and
// /detokenize, which take the same two kinds of input.
//
// Messages: role system, user or assistant ("developer", OpenAI's newer name for system, is read
// as system); content a string or an array of {"type": "text", "text": ...} parts, joined with "\n"
// as vLLM joins them; `name` is ignored. Tool messages, tool calls and non-text parts are rejected:
// the model would silently see something other than what the client sent.

import Llama
import JSON
import ChatTemplate

extension OpenAIDecode {
    static let roles = #"one of "system", "user", "assistant""#

    static func readMessages(_ f: OpenAIFields) throws(OpenAIError) -> [ChatMessage] {
        guard let v = f["messages"] else {
            let hint = f.has("prompt") ? " (this is /v1/chat/completions; a plain prompt goes to /v1/completions)" : ""
            throw .badRequest(param: "messages", message: #"messages is required: an array of {"role", "content"} objects"# + hint)
        }
        guard case .array(let items) = v, !items.isEmpty else {
            throw .invalid("messages", expected: #"a non-empty array of {"role", "content"} objects"#, found: v)
        }
        var out: [ChatMessage] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            out.append(try readMessage(item, param: "messages[\(i)]"))
        }
        return out
    }

    static func readMessage(_ value: JSONValue, param: String) throws(OpenAIError) -> ChatMessage {
        let m = try OpenAIFields(value, name: param)
        guard var role = try m.string("role", expected: roles) else {
            throw .badRequest(param: param + ".role", message: "\(param).role is required (\(roles))")
        }
        switch role {
        case "system", "user", "assistant": break
        case "developer": role = "system"
        case "tool", "function":
            throw .badRequest(param: param + ".role",
                              message: "\(param).role \"\(role)\" is not supported: lorad has no function calling; send system, user and assistant messages only")
        default:
            throw .invalid(param + ".role", expected: roles, found: .string(role))
        }
        for key in ["tool_calls", "function_call"] {
            if let v = m[key], v != .array([]) {
                throw .badRequest(param: param + "." + key, message: "\(param).\(key) is not supported: lorad has no function calling")
            }
        }
        let contentParam = param + ".content"
        guard let content = m["content"] else {
            // OpenAI allows a null content for assistant messages (those that only called tools).
            if role == "assistant" { return ChatMessage(role: role, content: "") }
            throw .badRequest(param: contentParam, message: "\(contentParam) is required (a string or an array of text parts)")
        }
        switch content {
        case .string(let s):
            return ChatMessage(role: role, content: s)
        case .array(let parts):
            var texts: [String] = []
            for (j, part) in parts.enumerated() {
                let partParam = "\(contentParam)[\(j)]"
                let p = try OpenAIFields(part, name: partParam)
                guard let type = try p.string("type", expected: #""text""#) else {
                    throw .badRequest(param: partParam + ".type", message: "\(partParam).type is required (\"text\")")
                }
                guard type == "text" else {
                    let hint = ["image_url", "input_audio", "file", "image", "audio", "video_url"].contains(type)
                        ? "this model reads text only" : "only text parts are supported"
                    throw .invalid(partParam + ".type", expected: #""text""#, found: .string(type), hint: hint)
                }
                guard let text = try p.string("text") else {
                    throw .badRequest(param: partParam + ".text", message: "\(partParam).text is required (a string)")
                }
                texts.append(text)
            }
            return ChatMessage(role: role, content: texts.joined(separator: "\n"))
        default:
            throw .invalid(contentParam, expected: #"a string or an array of {"type": "text", "text": ...} parts"#, found: content)
        }
    }

    /// Completions' `prompt`: a string, an array of one string, an array of token ids, or an array
    /// of one array of token ids. Several prompts in one request (OpenAI's batching) are refused.
    static func readPrompt(_ f: OpenAIFields, vocabularySize: Int?) throws(OpenAIError) -> OpenAIPrompt {
        let expected = "a string, an array of token ids, or an array holding one of those"
        guard let v = f["prompt"] else {
            let hint = f.has("messages") ? " (this is /v1/completions; messages go to /v1/chat/completions)" : ""
            throw .badRequest(param: "prompt", message: "prompt is required: \(expected)" + hint)
        }
        let empty = OpenAIError.badRequest(param: "prompt", message: "prompt must not be empty")
        switch v {
        case .string(let s):
            guard !s.isEmpty else { throw empty }
            return .text(s)
        case .array(let items):
            guard let first = items.first else { throw empty }
            if case .array = first, items.count == 1 {
                guard case .array(let ids) = first, !ids.isEmpty else { throw empty }
                return .tokens(try tokenIDs(ids, param: "prompt[0]", vocabularySize: vocabularySize))
            }
            if case .string(let s) = first, items.count == 1 {
                guard !s.isEmpty else { throw empty }
                return .text(s)
            }
            if items.count > 1, items.allSatisfy({ $0.stringValue != nil || $0.arrayValue != nil }) {
                throw .badRequest(param: "prompt",
                                  message: "batched prompts are not supported (found \(items.count) prompts); send one request per prompt")
            }
            guard items.allSatisfy({ OpenAIFields.integer($0) != nil }) else {
                throw .invalid("prompt", expected: expected, found: v)
            }
            return .tokens(try tokenIDs(items, param: "prompt", vocabularySize: vocabularySize))
        default:
            throw .invalid("prompt", expected: expected, found: v)
        }
    }

    /// Token ids: integers in 0..<vocabularySize (or 0...Int32.max when the size is not known).
    static func tokenIDs(_ items: [JSONValue], param: String, vocabularySize: Int?) throws(OpenAIError) -> [Int32] {
        let upper = vocabularySize.map { $0 - 1 } ?? Int(Int32.max)
        let expected = vocabularySize.map { "a token id (an integer in 0..<\($0))" } ?? "a token id (an integer >= 0)"
        var ids: [Int32] = []
        ids.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard let id = OpenAIFields.integer(item), (0...upper).contains(id), let id32 = Int32(exactly: id) else {
                throw .badRequest(param: param, message: "\(param)[\(i)] must be \(expected), found \(OpenAIError.describe(item))")
            }
            ids.append(id32)
        }
        return ids
    }

    // MARK: - /tokenize and /detokenize (vLLM)

    /// `{"model"?, "prompt": string}` or `{"model"?, "messages": [...], "add_generation_prompt"?}`,
    /// with `add_special_tokens` (default true for prompt, false for messages) and
    /// `return_token_strs` (default false), as vLLM's /tokenize takes them.
    public static func tokenizeRequest(body: [UInt8]) throws(OpenAIError) -> TokenizeRequest {
        let f = try OpenAIFields(body: body)
        let model = try readModel(f)
        let input: TokenizeRequest.Input
        switch (f.has("prompt"), f.has("messages")) {
        case (true, true):
            throw .badRequest(param: "messages", message: "send either prompt or messages, not both")
        case (true, false):
            guard let prompt = try f.string("prompt") else { throw .badRequest(param: "prompt", message: "prompt must be a string") }
            input = .text(prompt)
        case (false, true):
            input = .chat(try readMessages(f))
        case (false, false):
            throw .badRequest(param: "prompt", message: "prompt (a string) or messages (an array of chat messages) is required")
        }
        let isPrompt = if case .text = input { true } else { false }
        var r = TokenizeRequest(model: model, input: input,
                                addSpecialTokens: try f.bool("add_special_tokens") ?? isPrompt,
                                addGenerationPrompt: try f.bool("add_generation_prompt") ?? true,
                                returnTokenStrings: try f.bool("return_token_strs") ?? false)
        if let p = try f.bool("parse_special") {
            guard isPrompt else {
                throw .badRequest(param: "parse_special", message: "parse_special applies to prompt only; message contents are always plain text")
            }
            r.parseSpecial = p
        }
        return r
    }

    /// `{"model"?, "tokens": [int]}`.
    public static func detokenizeRequest(body: [UInt8], vocabularySize: Int? = nil) throws(OpenAIError) -> DetokenizeRequest {
        let f = try OpenAIFields(body: body)
        let model = try readModel(f)
        guard let v = f["tokens"] else {
            throw .badRequest(param: "tokens", message: "tokens is required: an array of token ids")
        }
        guard case .array(let items) = v else { throw .invalid("tokens", expected: "an array of token ids", found: v) }
        return DetokenizeRequest(model: model, tokens: try tokenIDs(items, param: "tokens", vocabularySize: vocabularySize))
    }
}
