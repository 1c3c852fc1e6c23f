// Response bodies in OpenAI's shapes: chat.completion and its stream chunks
// (chat.completion.chunk), text_completion (whole and streamed), usage, logprobs in both the chat
// form and completions' legacy form; and /v1/models, /tokenize and /detokenize in vLLM's shapes.
//
// Streaming (OpenAI): the first chat chunk carries `delta: {"role": "assistant", "content": ""}`,
// then `{"content": ...}` deltas, then a chunk with `delta: {}` and the finish_reason. With
// `stream_options.include_usage`, every chunk has `"usage": null` and one last chunk has
// `"choices": []` and the usage. Chunk encoders return the JSON text of one event; the SSE framing
// (`data: ...\n\n`, the final `data: [DONE]`) is the HTTP layer's.
//
// Log-probabilities are Floats written with their shortest round-trip decimal (-0.1, not
// -0.10000000149011612); a non-finite one (a token the model gives no chance) is written as -9999,
// as vLLM does, since JSON has no -infinity.

import Llama
import JSON
import Sampling

public enum OpenAIEncode {
    // MARK: - Chat

    public static func chatCompletion(id: String, created: Int, model: String, text: String, finishReason: FinishReason,
                                      logprobs: [TokenLogprobInfo]?, usage: Usage) -> [UInt8] {
        let choice = JSONValue.object([
            ("index", .int(0)),
            ("message", .object([("role", .string("assistant")), ("content", .string(text))])),
            ("logprobs", chatLogprobs(logprobs)),
            ("finish_reason", .string(finishReason.rawValue)),
        ])
        return bytes(header(id: id, object: "chat.completion", created: created, model: model)
            + [("choices", .array([choice])), ("usage", usageJSON(usage))])
    }

    /// One chat stream chunk. `role`: this is the first chunk (delta carries the role and
    /// `content ?? ""`). `content` nil and `role` false: an empty delta (the closing chunk).
    /// `usage`: nil when the request did not ask for usage (no key); `.some(nil)` when it did, for
    /// every chunk but the last (`"usage": null`); the last one is `chatUsageChunk`.
    public static func chatChunk(id: String, created: Int, model: String, role: Bool = false, content: String?,
                                 finishReason: FinishReason? = nil, logprobs: [TokenLogprobInfo]? = nil,
                                 usage: Usage?? = nil) -> String {
        var delta: [(String, JSONValue)] = []
        if role { delta.append(("role", .string("assistant"))) }
        if let content { delta.append(("content", .string(content))) } else if role { delta.append(("content", .string(""))) }
        let choice = JSONValue.object([
            ("index", .int(0)),
            ("delta", .object(delta)),
            ("logprobs", chatLogprobs(logprobs)),
            ("finish_reason", finishReason.map { .string($0.rawValue) } ?? .null),
        ])
        var fields = header(id: id, object: "chat.completion.chunk", created: created, model: model)
        fields.append(("choices", .array([choice])))
        if let usage { fields.append(("usage", usage.map(usageJSON) ?? .null)) }
        return JSONValue.object(fields).serialized()
    }

    /// The last chat chunk of a stream with `include_usage`: no choices, the usage.
    public static func chatUsageChunk(id: String, created: Int, model: String, usage: Usage) -> String {
        JSONValue.object(header(id: id, object: "chat.completion.chunk", created: created, model: model)
            + [("choices", .array([])), ("usage", usageJSON(usage))]).serialized()
    }

    /// `{"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}`, or null.
    static func chatLogprobs(_ entries: [TokenLogprobInfo]?) -> JSONValue {
        guard let entries else { return .null }
        return .object([("content", .array(entries.map { e in
            .object([
                ("token", .string(e.token)),
                ("logprob", number(e.logprob)),
                ("bytes", byteArray(e.bytes)),
                ("top_logprobs", .array(e.top.map { a in
                    .object([("token", .string(a.token)), ("logprob", number(a.logprob)), ("bytes", byteArray(a.bytes))])
                })),
            ])
        }))])
    }

    // MARK: - Completions

    public static func completion(id: String, created: Int, model: String, text: String, finishReason: FinishReason,
                                  logprobs: CompletionLogprobs?, usage: Usage) -> [UInt8] {
        bytes(header(id: id, object: "text_completion", created: created, model: model)
            + [("choices", .array([completionChoice(text: text, finishReason: finishReason, logprobs: logprobs)])),
               ("usage", usageJSON(usage))])
    }

    /// One completions stream chunk (OpenAI streams `text_completion` objects with the new text).
    /// `usage` as in `chatChunk`.
    public static func completionChunk(id: String, created: Int, model: String, text: String,
                                       finishReason: FinishReason? = nil, logprobs: CompletionLogprobs? = nil,
                                       usage: Usage?? = nil) -> String {
        var fields = header(id: id, object: "text_completion", created: created, model: model)
        fields.append(("choices", .array([completionChoice(text: text, finishReason: finishReason, logprobs: logprobs)])))
        if let usage { fields.append(("usage", usage.map(usageJSON) ?? .null)) }
        return JSONValue.object(fields).serialized()
    }

    /// The last completions chunk of a stream with `include_usage`: no choices, the usage.
    public static func completionUsageChunk(id: String, created: Int, model: String, usage: Usage) -> String {
        JSONValue.object(header(id: id, object: "text_completion", created: created, model: model)
            + [("choices", .array([])), ("usage", usageJSON(usage))]).serialized()
    }

    static func completionChoice(text: String, finishReason: FinishReason?, logprobs: CompletionLogprobs?) -> JSONValue {
        .object([
            ("text", .string(text)),
            ("index", .int(0)),
            ("logprobs", logprobs.map(completionLogprobs) ?? .null),
            ("finish_reason", finishReason.map { .string($0.rawValue) } ?? .null),
        ])
    }

    static func completionLogprobs(_ l: CompletionLogprobs) -> JSONValue {
        .object([
            ("tokens", .array(l.entries.map { .string($0.token) })),
            ("token_logprobs", .array(l.entries.map { $0.logprob.map(number) ?? .null })),
            ("top_logprobs", .array(l.entries.map { e in
                guard let chosen = e.logprob else { return .null }
                // A JSON object cannot hold one key twice, and two token ids can decode to the same
                // text (pieces of one character): keep the first, most likely, of each.
                var seen = Set<String>()
                var members: [(String, JSONValue)] = []
                for a in e.top + [(token: e.token, logprob: chosen)] where seen.insert(a.token).inserted {
                    members.append((a.token, number(a.logprob)))
                }
                return .object(members)
            })),
            ("text_offset", .array(l.textOffsets.map(JSONValue.int))),
        ])
    }

    // MARK: - Models, tokenize, detokenize (vLLM shapes)

    /// `{"object": "list", "data": [{"id", "object": "model", "created", "owned_by", "root", "parent", "max_model_len"}]}`.
    public static func models(_ entries: [ModelEntry]) -> [UInt8] {
        bytes([
            ("object", .string("list")),
            ("data", .array(entries.map(modelJSON))),
        ])
    }

    /// One model object, for GET /v1/models/{id}.
    public static func model(_ entry: ModelEntry) -> [UInt8] {
        Array(modelJSON(entry).serialized().utf8)
    }

    static func modelJSON(_ m: ModelEntry) -> JSONValue {
        .object([
            ("id", .string(m.id)),
            ("object", .string("model")),
            ("created", .int(m.created)),
            ("owned_by", .string(m.ownedBy)),
            ("root", m.root.map(JSONValue.string) ?? .null),
            ("parent", m.parent.map(JSONValue.string) ?? .null),
            ("max_model_len", m.maxModelLength.map(JSONValue.int) ?? .null),
        ])
    }

    /// vLLM's /tokenize answer: `{"count", "max_model_len", "tokens", "token_strs"}` (token_strs
    /// null unless asked for).
    public static func tokenize(tokens: [Int32], maxModelLength: Int, tokenStrings: [String]? = nil) -> [UInt8] {
        bytes([
            ("count", .int(tokens.count)),
            ("max_model_len", .int(maxModelLength)),
            ("tokens", .array(tokens.map { .int(Int($0)) })),
            ("token_strs", tokenStrings.map { .array($0.map(JSONValue.string)) } ?? .null),
        ])
    }

    /// vLLM's /detokenize answer: `{"prompt": text}`.
    public static func detokenize(prompt: String) -> [UInt8] {
        bytes([("prompt", .string(prompt))])
    }

    // MARK: - Pieces

    static func header(id: String, object: String, created: Int, model: String) -> [(String, JSONValue)] {
        [("id", .string(id)), ("object", .string(object)), ("created", .int(created)), ("model", .string(model))]
    }

    static func usageJSON(_ u: Usage) -> JSONValue {
        .object([
            ("prompt_tokens", .int(u.promptTokens)),
            ("completion_tokens", .int(u.completionTokens)),
            ("total_tokens", .int(u.totalTokens)),
            ("prompt_tokens_details", .object([("cached_tokens", .int(u.cachedPromptTokens))])),
        ])
    }

    /// A Float as the Double with the same shortest decimal, so that it prints as the Float does.
    static func number(_ f: Float) -> JSONValue {
        guard f.isFinite else { return .double(-9999) }
        return .double(Double(f.description) ?? Double(f))
    }

    static func byteArray(_ b: [UInt8]) -> JSONValue { .array(b.map { .int(Int($0)) }) }

    static func bytes(_ fields: [(String, JSONValue)]) -> [UInt8] {
        Array(JSONValue.object(fields).serialized().utf8)
    }
}
