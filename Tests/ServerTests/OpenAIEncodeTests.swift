// Every OpenAI/vLLM response encoder, parsed back with the strict JSON parser and compared whole
// (keys, order, types and values) with the shape OpenAI documents: chat completions and their
// chunks with and without usage and logprobs, completions (logprobs with echo, chunks), models,
// tokenize, detokenize, and the error body.

import Testing
import Llama
import JSON
@testable import Server

private func parsed(_ bytes: [UInt8]) throws -> JSONValue { try JSONValue.parse(bytes) }
private func parsed(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

private let usage = Usage(promptTokens: 12, completionTokens: 5, cachedPromptTokens: 8)
private let usageJSON = JSONValue.object([
    ("prompt_tokens", .int(12)), ("completion_tokens", .int(5)), ("total_tokens", .int(17)),
    ("prompt_tokens_details", .object([("cached_tokens", .int(8))])),
])

private func header(_ object: String) -> [(String, JSONValue)] {
    [("id", .string("chatcmpl-1")), ("object", .string(object)), ("created", .int(1_700_000_000)), ("model", .string("acme"))]
}

/// Two generated tokens with alternatives: "Hi" (chosen, most likely) and "é" split over two byte
/// tokens, the second of which the model gave no chance (-infinity, written as -9999).
private let infos = [
    TokenLogprobInfo(token: "Hi", bytes: [72, 105], logprob: -0.1,
                     top: [(token: "Hi", bytes: [72, 105], logprob: -0.1), (token: "Hello", bytes: [72, 101, 108, 108, 111], logprob: -2.5)]),
    TokenLogprobInfo(token: "\u{FFFD}", bytes: [0xC3], logprob: -.infinity, top: []),
]

private let infosJSON = JSONValue.object([("content", .array([
    .object([("token", .string("Hi")), ("logprob", .double(-0.1)), ("bytes", .array([.int(72), .int(105)])),
             ("top_logprobs", .array([
                .object([("token", .string("Hi")), ("logprob", .double(-0.1)), ("bytes", .array([.int(72), .int(105)]))]),
                .object([("token", .string("Hello")), ("logprob", .double(-2.5)),
                         ("bytes", .array([72, 101, 108, 108, 111].map { .int($0) }))]),
             ]))]),
    .object([("token", .string("\u{FFFD}")), ("logprob", .double(-9999)), ("bytes", .array([.int(0xC3)])),
             ("top_logprobs", .array([]))]),
]))])

@Suite struct OpenAIEncodeTests {
    @Test func chatCompletion() throws {
        let body = try parsed(OpenAIEncode.chatCompletion(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", text: "Hi \"you\"\n",
                                                          finishReason: .stop, logprobs: nil, usage: usage))
        #expect(body == .object(header("chat.completion") + [
            ("choices", .array([.object([
                ("index", .int(0)),
                ("message", .object([("role", .string("assistant")), ("content", .string("Hi \"you\"\n"))])),
                ("logprobs", .null),
                ("finish_reason", .string("stop")),
            ])])),
            ("usage", usageJSON),
        ]))
    }

    @Test func chatCompletionWithLogprobs() throws {
        let body = try parsed(OpenAIEncode.chatCompletion(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", text: "Hi\u{FFFD}",
                                                          finishReason: .length, logprobs: infos, usage: usage))
        let choice = try #require(body["choices"]?.arrayValue?.first)
        #expect(choice["logprobs"] == infosJSON)
        #expect(choice["finish_reason"] == .string("length"))
        // Floats print as their shortest decimal, not as the widened double.
        let text = String(decoding: OpenAIEncode.chatCompletion(id: "x", created: 0, model: "m", text: "", finishReason: .stop,
                                                               logprobs: infos, usage: usage), as: UTF8.self)
        #expect(text.contains(#""logprob":-0.1,"#))
        #expect(!text.contains("0.10000000149"))
    }

    @Test func chatStreamWithoutUsage() throws {
        let first = try parsed(OpenAIEncode.chatChunk(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", role: true, content: nil))
        #expect(first == .object(header("chat.completion.chunk") + [
            ("choices", .array([.object([
                ("index", .int(0)),
                ("delta", .object([("role", .string("assistant")), ("content", .string(""))])),
                ("logprobs", .null),
                ("finish_reason", .null),
            ])])),
        ]))
        let middle = try parsed(OpenAIEncode.chatChunk(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", content: "Hel"))
        #expect(middle["choices"]?.arrayValue?.first?["delta"] == .object([("content", .string("Hel"))]))
        #expect(middle["usage"] == nil)
        let last = try parsed(OpenAIEncode.chatChunk(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", content: nil,
                                                     finishReason: .stop))
        #expect(last == .object(header("chat.completion.chunk") + [
            ("choices", .array([.object([
                ("index", .int(0)), ("delta", .object([])), ("logprobs", .null), ("finish_reason", .string("stop")),
            ])])),
        ]))
    }

    @Test func chatStreamWithUsageAndLogprobs() throws {
        let chunk = try parsed(OpenAIEncode.chatChunk(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", content: "Hi",
                                                      logprobs: [infos[0]], usage: .some(nil)))
        #expect(chunk == .object(header("chat.completion.chunk") + [
            ("choices", .array([.object([
                ("index", .int(0)),
                ("delta", .object([("content", .string("Hi"))])),
                ("logprobs", .object([("content", .array([infosJSON["content"]!.arrayValue![0]]))])),
                ("finish_reason", .null),
            ])])),
            ("usage", .null),
        ]))
        // A chunk may also carry the usage itself (and the role with content).
        let withUsage = try parsed(OpenAIEncode.chatChunk(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", role: true,
                                                          content: "x", usage: .some(usage)))
        #expect(withUsage["usage"] == usageJSON)
        #expect(withUsage["choices"]?.arrayValue?.first?["delta"] == .object([("role", .string("assistant")), ("content", .string("x"))]))

        let final = try parsed(OpenAIEncode.chatUsageChunk(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", usage: usage))
        #expect(final == .object(header("chat.completion.chunk") + [("choices", .array([])), ("usage", usageJSON)]))
    }

    @Test func completion() throws {
        let body = try parsed(OpenAIEncode.completion(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", text: " there",
                                                      finishReason: .length, logprobs: nil, usage: usage))
        #expect(body == .object(header("text_completion") + [
            ("choices", .array([.object([
                ("text", .string(" there")), ("index", .int(0)), ("logprobs", .null), ("finish_reason", .string("length")),
            ])])),
            ("usage", usageJSON),
        ]))
    }

    @Test func completionLogprobsWithEcho() throws {
        // Echoed prompt "Hé" (first token unscored) then generated " yo".
        let logprobs = CompletionLogprobs(entries: [
            .init(token: "H", logprob: nil, top: [(token: "The", logprob: -1)]),
            .init(token: "é", logprob: -0.5, top: [(token: "e", logprob: -0.25), (token: "é", logprob: -0.5)]),
            .init(token: " yo", logprob: -1.5, top: [(token: " you", logprob: -0.75), (token: " you", logprob: -3)]),
        ])
        #expect(logprobs.textOffsets == [0, 1, 2])
        let body = try parsed(OpenAIEncode.completion(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", text: "Hé yo",
                                                      finishReason: .stop, logprobs: logprobs, usage: usage))
        let choice = try #require(body["choices"]?.arrayValue?.first)
        #expect(choice["text"] == .string("Hé yo"))
        #expect(choice["logprobs"] == .object([
            ("tokens", .array([.string("H"), .string("é"), .string(" yo")])),
            ("token_logprobs", .array([.null, .double(-0.5), .double(-1.5)])),
            ("top_logprobs", .array([
                .null,
                // The chosen token is among the alternatives already: not repeated.
                .object([("e", .double(-0.25)), ("é", .double(-0.5))]),
                // The chosen token is added; a repeated text keeps its first (most likely) value.
                .object([(" you", .double(-0.75)), (" yo", .double(-1.5))]),
            ])),
            ("text_offset", .array([.int(0), .int(1), .int(2)])),
        ]))
    }

    @Test func completionLogprobsFromChatForm() {
        let l = CompletionLogprobs(tokens: infos, textOffsetStart: 10)
        #expect(l.entries.map(\.token) == ["Hi", "\u{FFFD}"])
        #expect(l.entries.map(\.logprob) == [-0.1, -.infinity])
        #expect(l.entries[0].top.map(\.token) == ["Hi", "Hello"])
        #expect(l.textOffsets == [10, 12])
        #expect(l == CompletionLogprobs(entries: [
            .init(token: "Hi", logprob: -0.1, top: [("Hi", -0.1), ("Hello", -2.5)]), .init(token: "\u{FFFD}", logprob: -.infinity),
        ], textOffsetStart: 10))
    }

    @Test func completionChunks() throws {
        let plain = try parsed(OpenAIEncode.completionChunk(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", text: "ab"))
        #expect(plain == .object(header("text_completion") + [
            ("choices", .array([.object([
                ("text", .string("ab")), ("index", .int(0)), ("logprobs", .null), ("finish_reason", .null),
            ])])),
        ]))
        let lp = CompletionLogprobs(entries: [.init(token: "c", logprob: -2, top: [])], textOffsetStart: 2)
        let withAll = try parsed(OpenAIEncode.completionChunk(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", text: "c",
                                                              finishReason: .length, logprobs: lp, usage: .some(nil)))
        #expect(withAll == .object(header("text_completion") + [
            ("choices", .array([.object([
                ("text", .string("c")), ("index", .int(0)),
                ("logprobs", .object([
                    ("tokens", .array([.string("c")])), ("token_logprobs", .array([.double(-2)])),
                    ("top_logprobs", .array([.object([("c", .double(-2))])])), ("text_offset", .array([.int(2)])),
                ])),
                ("finish_reason", .string("length")),
            ])])),
            ("usage", .null),
        ]))
        let final = try parsed(OpenAIEncode.completionUsageChunk(id: "chatcmpl-1", created: 1_700_000_000, model: "acme", usage: usage))
        #expect(final == .object(header("text_completion") + [("choices", .array([])), ("usage", usageJSON)]))
    }

    @Test func models() throws {
        let entries = [
            ModelEntry(id: "smollm2", created: 100, parent: nil, root: "/models/smollm2.gguf", maxModelLength: 8192),
            ModelEntry(id: "acme", created: 200, ownedBy: "tenant", parent: "smollm2", root: "/adapters/acme/v2"),
        ]
        let body = try parsed(OpenAIEncode.models(entries))
        let base = JSONValue.object([
            ("id", .string("smollm2")), ("object", .string("model")), ("created", .int(100)), ("owned_by", .string("lorad")),
            ("root", .string("/models/smollm2.gguf")), ("parent", .null), ("max_model_len", .int(8192)),
        ])
        let adapter = JSONValue.object([
            ("id", .string("acme")), ("object", .string("model")), ("created", .int(200)), ("owned_by", .string("tenant")),
            ("root", .string("/adapters/acme/v2")), ("parent", .string("smollm2")), ("max_model_len", .null),
        ])
        #expect(body == .object([("object", .string("list")), ("data", .array([base, adapter]))]))
        #expect(try parsed(OpenAIEncode.model(entries[1])) == adapter)
        #expect(try parsed(OpenAIEncode.models([])) == .object([("object", .string("list")), ("data", .array([]))]))
    }

    @Test func tokenizeAndDetokenize() throws {
        #expect(try parsed(OpenAIEncode.tokenize(tokens: [1, 504, 2], maxModelLength: 8192)) == .object([
            ("count", .int(3)), ("max_model_len", .int(8192)), ("tokens", .array([.int(1), .int(504), .int(2)])), ("token_strs", .null),
        ]))
        #expect(try parsed(OpenAIEncode.tokenize(tokens: [504], maxModelLength: 10, tokenStrings: ["Ġhi"]))["token_strs"]
                == .array([.string("Ġhi")]))
        #expect(try parsed(OpenAIEncode.detokenize(prompt: "a \"b\"\n😀")) == .object([("prompt", .string("a \"b\"\n😀"))]))
    }

    @Test func numbersForLogprobs() {
        #expect(OpenAIEncode.number(-0.1) == .double(-0.1))
        #expect(OpenAIEncode.number(0) == .double(0))
        #expect(OpenAIEncode.number(-1e-30) == .double(-1e-30))
        #expect(OpenAIEncode.number(-.infinity) == .double(-9999))
        #expect(OpenAIEncode.number(.nan) == .double(-9999))
        // Whatever the value, the Float reads back exactly.
        for f: Float in [-0.1, -3.4028235e38, -1.1754944e-38, -12.345678, -0.6931472] {
            #expect(Float(OpenAIEncode.number(f).doubleValue!) == f)
        }
    }
}
