// OpenAI request bodies to GenerationRequest: full requests of both endpoints with every field,
// the defaults, every prompt and message form, and for each invalid field a 400 naming that field.

import Testing
@testable import Sampling
import ModelFormats
@testable import Server

func decode(_ json: String, _ endpoint: GenerationRequest.Endpoint = .chat, vocabularySize: Int? = nil) throws -> GenerationRequest {
    try OpenAIDecode.generationRequest(body: Array(json.utf8), endpoint: endpoint, vocabularySize: vocabularySize)
}

/// The error decoding `json` gives, or nil (recorded as a failure) when it decodes.
func decodeError(_ json: String, _ endpoint: GenerationRequest.Endpoint = .chat, vocabularySize: Int? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation) -> OpenAIError? {
    do {
        let r = try OpenAIDecode.generationRequest(body: Array(json.utf8), endpoint: endpoint, vocabularySize: vocabularySize)
        Issue.record("expected an error, decoded \(r)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// The messages of a chat prompt as (role, content) pairs.
func chatMessages(_ r: GenerationRequest) -> [[String]]? {
    guard case .chat(let messages) = r.prompt else { return nil }
    return messages.map { [$0.role, $0.content] }
}

@Suite struct OpenAIDecodeTests {
    @Test func fullChatRequest() throws {
        let r = try decode(#"""
        {"model": "acme-support@v2",
         "messages": [{"role": "system", "content": "Be brief.", "name": "ignored"},
                      {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]},
                      {"role": "assistant", "content": "Hi!"},
                      {"role": "user", "content": "Again"}],
         "temperature": 0.5, "top_p": 0.9, "top_k": 20, "min_p": 0.1, "repetition_penalty": 1.1, "repeat_last_n": 32,
         "frequency_penalty": 0.5, "presence_penalty": -0.5, "seed": 42, "logit_bias": {"15": -100, "7": 2.5},
         "max_completion_tokens": 64, "stop": ["\n\n", "END"], "logprobs": true, "top_logprobs": 3,
         "stream": true, "stream_options": {"include_usage": true}, "n": 1, "user": "u-1",
         "adapters": [{"name": "tone", "scale": 0.5}, "facts"],
         "tools": [], "tool_choice": "none", "response_format": {"type": "text"}, "some_future_field": {"x": 1}}
        """#)
        #expect(r.endpoint == .chat)
        #expect(r.model == "acme-support@v2")
        #expect(chatMessages(r) == [["system", "Be brief."], ["user", "Hello\nthere"], ["assistant", "Hi!"], ["user", "Again"]])
        let s = r.sampling
        #expect(s.temperature == 0.5 && s.topP == 0.9 && s.topK == 20 && s.minP == 0.1)
        #expect(s.repeatPenalty == 1.1 && s.repeatLastN == 32)
        #expect(s.frequencyPenalty == 0.5 && s.presencePenalty == -0.5)
        #expect(s.seed == 42)
        #expect(s.logitBias == [15: -100, 7: 2.5])
        #expect(s.maxTokens == 64)
        #expect(s.stop == ["\n\n", "END"])
        #expect(s.topLogprobs == 3)
        #expect(r.logprobs && r.topLogprobs == 3)
        #expect(r.stream && r.includeUsage)
        #expect(r.n == 1 && r.user == "u-1" && !r.echo)
        #expect(r.adapters == [AdapterRequest(name: "tone", scale: 0.5), AdapterRequest(name: "facts", scale: 1)])
    }

    @Test func fullCompletionRequest() throws {
        let r = try decode(#"""
        {"model": "base", "prompt": "Once upon a time", "max_tokens": 16, "temperature": 0, "top_p": 1, "top_k": -1,
         "min_p": 0, "repeat_penalty": 1.2, "frequency_penalty": 2, "presence_penalty": -2, "seed": -1,
         "logit_bias": {"0": 100}, "stop": "\n", "logprobs": 5, "echo": true, "stream": true,
         "stream_options": {"include_usage": false}, "n": 1, "best_of": 1, "suffix": null, "user": null,
         "max_completion_tokens": 99}
        """#, .completion)
        #expect(r.endpoint == .completion)
        #expect(r.prompt == .text("Once upon a time"))
        let s = r.sampling
        #expect(s.maxTokens == 16)  // max_completion_tokens belongs to chat; ignored here
        #expect(s.temperature == 0 && s.isGreedy && s.topP == 1 && s.topK == 0 && s.minP == 0)
        #expect(s.repeatPenalty == 1.2)
        #expect(s.frequencyPenalty == 2 && s.presencePenalty == -2)
        #expect(s.seed == UInt64.max)  // -1 by its bit pattern
        #expect(s.logitBias == [0: 100])
        #expect(s.stop == ["\n"])
        #expect(r.logprobs && r.topLogprobs == 5 && s.topLogprobs == 5)
        #expect(r.echo && r.stream && !r.includeUsage)
        #expect(r.user == nil && r.adapters.isEmpty)
    }

    @Test func defaultsAreOpenAIs() throws {
        let chat = try decode(#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#)
        #expect(chat.sampling == OpenAIDecode.defaultSampling)
        let s = chat.sampling
        #expect(s.temperature == 1 && s.topP == 1 && s.topK == 0 && s.minP == 0 && s.repeatPenalty == 1)
        #expect(s.frequencyPenalty == 0 && s.presencePenalty == 0 && s.seed == nil && s.logitBias.isEmpty)
        #expect(s.maxTokens == nil && s.stop.isEmpty && s.topLogprobs == nil)
        #expect(!chat.stream && !chat.includeUsage && !chat.logprobs && chat.topLogprobs == 0 && !chat.echo)
        #expect(chat.adapters.isEmpty && chat.user == nil && chat.n == 1)

        let completion = try decode(#"{"model": "m", "prompt": "x"}"#, .completion)
        #expect(completion.sampling == OpenAIDecode.defaultSampling)
        #expect(!completion.logprobs && !completion.echo)
        // Explicit nulls are the same as absent fields.
        let nulls = try decode(#"""
        {"model": "m", "prompt": "x", "temperature": null, "top_p": null, "max_tokens": null, "stop": null, "seed": null,
         "logit_bias": null, "logprobs": null, "echo": null, "stream": null, "stream_options": null, "n": null,
         "user": null, "adapters": null, "tools": null, "response_format": null, "best_of": null}
        """#, .completion)
        #expect(nulls == completion)
    }

    @Test func constraintFields() throws {
        let chat = #"{"model": "m", "messages": [{"role": "user", "content": "hi"}], "#
        var r = try OpenAIDecode.generationRequest(body: Array((chat + #""guided_regex": "\\d+"}"#).utf8), endpoint: .chat)
        #expect(r.constraint == ConstraintRequest(.regex(#"\d+"#), param: "guided_regex"))
        #expect(r.sampling.constraint == nil, "compiled during preparation, not decoding")
        r = try OpenAIDecode.generationRequest(body: Array((chat + #""regex": "a", "guided_regex": "a"}"#).utf8), endpoint: .chat)
        #expect(r.constraint?.source == .regex("a"))
        r = try OpenAIDecode.generationRequest(body: Array((chat + #""guided_choice": ["a.b", "(c)|d", "e f"]}"#).utf8), endpoint: .chat)
        #expect(r.constraint == ConstraintRequest(.regex(#"a\.b|\(c\)\|d|e f"#), param: "guided_choice"))
        r = try OpenAIDecode.generationRequest(body: Array((chat + #""guided_regex": null, "grammar": null}"#).utf8), endpoint: .chat)
        #expect(r.constraint == nil)
        r = try OpenAIDecode.generationRequest(body: Array((chat + #""grammar": "root ::= \"yes\""}"#).utf8), endpoint: .chat)
        #expect(r.constraint == ConstraintRequest(.grammar(#"root ::= "yes""#), param: "grammar"))
        r = try OpenAIDecode.generationRequest(body: Array((chat + #""guided_grammar": "root ::= \"no\""}"#).utf8), endpoint: .chat)
        #expect(r.constraint == ConstraintRequest(.grammar(#"root ::= "no""#), param: "guided_grammar"))
        r = try OpenAIDecode.generationRequest(body: Array((chat + #""json_schema": {"type": "integer"}}"#).utf8), endpoint: .chat)
        #expect(r.constraint == ConstraintRequest(.jsonSchema(.object([("type", .string("integer"))])), param: "json_schema"))
    }

    @Test func completionPromptForms() throws {
        func prompt(_ p: String) throws -> OpenAIPrompt { try decode(#"{"model":"m","prompt":"# + p + "}", .completion).prompt }
        #expect(try prompt(#""text""#) == .text("text"))
        #expect(try prompt(#"["text"]"#) == .text("text"))
        #expect(try prompt("[1, 2, 3]") == .tokens([1, 2, 3]))
        #expect(try prompt("[[4, 5]]") == .tokens([4, 5]))
        #expect(try prompt("[1.0, 2e0]") == .tokens([1, 2]))  // integral numbers are integers
        #expect(try decode(#"{"model":"m","prompt":[0, 49151]}"#, .completion, vocabularySize: 49152).prompt == .tokens([0, 49151]))
    }

    @Test func messageForms() throws {
        let r = try decode(#"""
        {"model": "m", "messages": [
          {"role": "developer", "content": "rules"},
          {"role": "user", "content": []},
          {"role": "assistant", "content": null},
          {"role": "assistant", "content": "ok", "tool_calls": []},
          {"role": "user", "content": [{"type": "text", "text": "a"}], "name": "bob"}]}
        """#)
        #expect(chatMessages(r) == [["system", "rules"], ["user", ""], ["assistant", ""], ["assistant", "ok"], ["user", "a"]])
    }

    @Test func modelIsRequired() throws {
        let missing = try #require(decodeError(#"{"messages": [{"role": "user", "content": "hi"}]}"#))
        #expect(missing.status == 400 && missing.param == "model" && missing.type == "invalid_request_error")
        #expect(missing.message.hasPrefix("model is required"))
        #expect(decodeError(#"{"model": null, "prompt": "x"}"#, .completion)?.message.hasPrefix("model is required") == true)
        let number = try #require(decodeError(#"{"model": 42, "prompt": "x"}"#, .completion))
        #expect(number.param == "model" && number.message == "model must be a model name (a non-empty string), found 42")
        #expect(decodeError(#"{"model": "", "prompt": "x"}"#, .completion)?.param == "model")
    }

    @Test func bodyMustBeAJSONObject() throws {
        let bad = try #require(decodeError(#"{"model": "m",}"#))
        #expect(bad.status == 400 && bad.param == nil)
        #expect(bad.message.contains("not valid JSON") && bad.message.contains("at byte 14"))
        #expect(decodeError("[1]")?.message == "the request body must be a JSON object, found an array")
        #expect(decodeError("")?.message.contains("not valid JSON") == true)
        #expect(decodeError(#"{"model":"m","model":"n","prompt":"x"}"#, .completion)?.message.contains(#"duplicate key "model""#) == true)
    }

    /// Each invalid field: the param it names and a piece of its message.
    @Test(arguments: [
        // (endpoint, extra JSON members, param, message piece)
        (GenerationRequest.Endpoint.chat, #""temperature": "hot""#, "temperature", #"temperature must be a number between 0 and 2, found "hot""#),
        (.chat, #""temperature": 2.5"#, "temperature", "found 2.5"),
        (.chat, #""temperature": -1"#, "temperature", "found -1"),
        (.chat, #""top_p": 0"#, "top_p", "greater than 0"),
        (.chat, #""top_p": 1.5"#, "top_p", "found 1.5"),
        (.chat, #""top_k": -2"#, "top_k", "found -2"),
        (.chat, #""top_k": 2.5"#, "top_k", "an integer"),
        (.chat, #""min_p": 2"#, "min_p", "between 0 and 1"),
        (.chat, #""repetition_penalty": 0"#, "repetition_penalty", "greater than 0"),
        (.chat, #""repeat_penalty": -1"#, "repeat_penalty", "greater than 0"),
        (.chat, #""repetition_penalty": 1.1, "repeat_penalty": 1.2"#, "repeat_penalty", "disagree"),
        (.chat, #""repeat_last_n": -1"#, "repeat_last_n", "an integer >= 0"),
        (.chat, #""frequency_penalty": 3"#, "frequency_penalty", "between -2 and 2, found 3"),
        (.chat, #""presence_penalty": "high""#, "presence_penalty", "between -2 and 2"),
        (.chat, #""seed": 1.5"#, "seed", "must be an integer, found 1.5"),
        (.chat, #""seed": "7""#, "seed", "an integer"),
        (.chat, #""logit_bias": [1, 2]"#, "logit_bias", "an object mapping token ids"),
        (.chat, #""logit_bias": {"abc": 1}"#, "logit_bias", #"keys must be token ids"#),
        (.chat, #""logit_bias": {"-5": 1}"#, "logit_bias", "keys must be token ids"),
        (.chat, #""logit_bias": {"5": 101}"#, "logit_bias", "between -100 and 100, found 101 for token 5"),
        (.chat, #""logit_bias": {"5": "x"}"#, "logit_bias", "between -100 and 100"),
        (.chat, #""logit_bias": {"5": 1, "05": 2}"#, "logit_bias", "twice"),
        (.chat, #""max_tokens": 0"#, "max_tokens", "an integer from 1 to 2147483647 (the prompt and max_tokens together must also fit the context), found 0"),
        (.chat, #""max_tokens": "many""#, "max_tokens", "an integer from 1 to 2147483647"),
        (.chat, #""max_tokens": 9223372036854775807"#, "max_tokens", "an integer from 1 to 2147483647"),
        (.chat, #""max_completion_tokens": -3"#, "max_completion_tokens", "found -3"),
        (.chat, #""max_tokens": 10, "max_completion_tokens": 20"#, "max_completion_tokens", "disagree"),
        (.chat, #""stop": """#, "stop", "empty stop string"),
        (.chat, #""stop": ["a", ""]"#, "stop", #"stop[1] must be a non-empty string, found """#),
        (.chat, #""stop": ["a", "b", "c", "d", "e"]"#, "stop", "at most 4"),
        (.chat, #""stop": 5"#, "stop", "a string or an array"),
        (.chat, #""stop": [5]"#, "stop", "stop[0] must be a non-empty string, found 5"),
        (.chat, #""logprobs": 1"#, "logprobs", "true or false"),
        (.chat, #""top_logprobs": 3"#, "top_logprobs", "requires logprobs to be true"),
        (.chat, #""logprobs": true, "top_logprobs": 21"#, "top_logprobs", "between 0 and 20, found 21"),
        (.completion, #""logprobs": true"#, "logprobs", "number of alternatives"),
        (.completion, #""logprobs": 21"#, "logprobs", "between 0 and 20"),
        (.completion, #""echo": "yes""#, "echo", "true or false"),
        (.chat, #""stream": 1"#, "stream", "true or false"),
        (.chat, #""stream_options": {"include_usage": true}"#, "stream_options", "only allowed when stream is true"),
        (.chat, #""stream": false, "stream_options": {"include_usage": true}"#, "stream_options", "only allowed when stream is true"),
        (.chat, #""stream": true, "stream_options": {"include_usage": "y"}"#, "stream_options.include_usage", "true or false"),
        (.chat, #""stream": true, "stream_options": 1"#, "stream_options", "an object"),
        (.chat, #""n": 2"#, "n", "n must be 1, found 2"),
        (.completion, #""n": 0"#, "n", "found 0"),
        (.completion, #""best_of": 3"#, "best_of", "found 3"),
        (.completion, #""suffix": "end""#, "suffix", "not supported"),
        (.chat, #""tools": [{"type": "function", "function": {"name": "f"}}]"#, "tools", "not supported"),
        (.chat, #""functions": [{"name": "f"}]"#, "functions", "not supported"),
        (.chat, #""tool_choice": "required""#, "tool_choice", "not supported"),
        (.chat, #""function_call": {"name": "f"}"#, "function_call", "not supported"),
        (.chat, #""response_format": {"type": "xml"}"#, "response_format.type", #"must be "text", "json_object" or "json_schema", found "xml""#),
        (.chat, #""response_format": "json""#, "response_format", #"{"type": "json_object"}"#),
        (.completion, #""response_format": {"type": "json_schema"}"#, "response_format.json_schema", #"{"name": ..., "schema": {...}}"#),
        (.chat, #""response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": 5}}"#, "response_format.json_schema.schema", "a JSON Schema (an object)"),
        (.chat, #""guided_json": 5"#, "guided_json", "an object, or a string holding one"),
        (.chat, #""guided_json": "{not json""#, "guided_json", "an object, or a string holding one"),
        (.chat, #""response_format": {"type": "json_object"}, "guided_json": {}"#, "guided_json", "response_format and guided_json both"),
        (.chat, #""guided_json": {}, "guided_regex": "a""#, "guided_regex", "guided_json and guided_regex both"),
        (.chat, #""guided_json": {}, "guided_choice": ["a"]"#, "guided_choice", "guided_json and guided_choice both"),
        (.chat, #""grammar": 3"#, "grammar", "a GBNF grammar (a string)"),
        (.completion, #""guided_grammar": "root ::= \"a\"", "guided_json": {}"#, "guided_grammar", "both constrain the output"),
        (.completion, #""json_schema": [1]"#, "json_schema", "a JSON Schema"),
        (.chat, #""structured_outputs": {"regex": "a"}"#, "structured_outputs", "not supported yet"),
        (.chat, #""guided_regex": 5"#, "guided_regex", "a regular expression"),
        (.chat, #""guided_regex": "a", "regex": "b""#, "regex", "disagree"),
        (.chat, #""guided_choice": []"#, "guided_choice", "non-empty array"),
        (.chat, #""guided_choice": ["a", ""]"#, "guided_choice", "guided_choice[1] must be a non-empty string"),
        (.completion, #""regex": "a", "guided_choice": ["a"]"#, "guided_choice", "regex and guided_choice both"),
        (.chat, #""user": 5"#, "user", "a string"),
        (.chat, #""adapters": "tone""#, "adapters", "an array"),
        (.chat, #""adapters": [{"scale": 1}]"#, "adapters[0].name", "required"),
        (.chat, #""adapters": [{"name": ""}]"#, "adapters[0].name", "non-empty"),
        (.chat, #""adapters": [{"name": "a", "scale": "big"}]"#, "adapters[0].scale", "a number between -100 and 100"),
        (.chat, #""adapters": ["a", {"name": "a"}]"#, "adapters", "twice"),
        (.chat, #""adapters": [5]"#, "adapters[0]", "an object"),
    ] as [(GenerationRequest.Endpoint, String, String, String)])
    func invalidField(endpoint: GenerationRequest.Endpoint, members: String, param: String, message: String) throws {
        let prompt = endpoint == .chat ? #""messages": [{"role": "user", "content": "hi"}]"# : #""prompt": "hi""#
        let e = try #require(decodeError(#"{"model": "m", "# + prompt + ", " + members + "}", endpoint))
        #expect(e.status == 400)
        #expect(e.type == "invalid_request_error")
        #expect(e.param == param, "\(members): \(e)")
        #expect(e.message.contains(message), "\(members): \(e)")
    }

    @Test(arguments: [
        (#""prompt": """#, "prompt", "prompt must not be empty"),
        (#""prompt": []"#, "prompt", "must not be empty"),
        (#""prompt": [""]"#, "prompt", "must not be empty"),
        (#""prompt": [[]]"#, "prompt", "must not be empty"),
        (#""prompt": ["a", "b"]"#, "prompt", "batched prompts are not supported (found 2 prompts); send one request per prompt"),
        (#""prompt": [[1], [2]]"#, "prompt", "batched prompts"),
        (#""prompt": [1, "a"]"#, "prompt", "a string, an array of token ids"),
        (#""prompt": [[1], 2]"#, "prompt", "a string, an array of token ids"),
        (#""prompt": 5"#, "prompt", "found 5"),
        (#""prompt": {"text": "a"}"#, "prompt", "found {\"text\":\"a\"}"),
        (#""prompt": [1, -2]"#, "prompt", "prompt[1] must be a token id (an integer >= 0), found -2"),
        (#""prompt": [[1, 2.5]]"#, "prompt[0]", "prompt[0][1] must be a token id"),
        (#""prompt": [4294967296]"#, "prompt", "prompt[0] must be a token id"),
        (#""messages": [{"role": "user", "content": "hi"}]"#, "prompt", "messages go to /v1/chat/completions"),
    ])
    func invalidPrompt(members: String, param: String, message: String) throws {
        let e = try #require(decodeError(#"{"model": "m", "# + members + "}", .completion))
        #expect(e.status == 400 && e.param == param, "\(members): \(e)")
        #expect(e.message.contains(message), "\(members): \(e)")
    }

    @Test func promptTokenIdsAgainstTheVocabulary() throws {
        let e = try #require(decodeError(#"{"model": "m", "prompt": [1, 49152]}"#, .completion, vocabularySize: 49152))
        #expect(e.param == "prompt" && e.message == "prompt[1] must be a token id (an integer in 0..<49152), found 49152")
        let bias = try #require(decodeError(#"{"model": "m", "prompt": "x", "logit_bias": {"50000": 1}}"#, .completion, vocabularySize: 49152))
        #expect(bias.param == "logit_bias" && bias.message.contains("0..<49152"))
    }

    @Test(arguments: [
        (#"[]"#, "messages", "a non-empty array"),
        (#""hi""#, "messages", "a non-empty array"),
        (#"[5]"#, "messages[0]", "messages[0] must be an object, found 5"),
        (#"[{"content": "hi"}]"#, "messages[0].role", "messages[0].role is required"),
        (#"[{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]"#, "messages[1].role", #"found "bot""#),
        (#"[{"role": "tool", "content": "42", "tool_call_id": "x"}]"#, "messages[0].role", "no function calling"),
        (#"[{"role": "function", "content": "42"}]"#, "messages[0].role", "not supported"),
        (#"[{"role": 1, "content": "a"}]"#, "messages[0].role", "one of"),
        (#"[{"role": "user"}]"#, "messages[0].content", "messages[0].content is required"),
        (#"[{"role": "user", "content": null}]"#, "messages[0].content", "is required"),
        (#"[{"role": "user", "content": 5}]"#, "messages[0].content", "a string or an array of"),
        (#"[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]"#, "messages[0].content[0].type", "this model reads text only"),
        (#"[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_audio"}]}]"#, "messages[0].content[1].type", "text only"),
        (#"[{"role": "user", "content": [{"type": "weird"}]}]"#, "messages[0].content[0].type", "only text parts"),
        (#"[{"role": "user", "content": [{"text": "a"}]}]"#, "messages[0].content[0].type", "is required"),
        (#"[{"role": "user", "content": [{"type": "text"}]}]"#, "messages[0].content[0].text", "is required"),
        (#"[{"role": "user", "content": [{"type": "text", "text": 5}]}]"#, "messages[0].content[0].text", "a string, found 5"),
        (#"[{"role": "user", "content": ["a"]}]"#, "messages[0].content[0]", "an object"),
        (#"[{"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]}]"#, "messages[0].tool_calls", "no function calling"),
    ])
    func invalidMessages(messages: String, param: String, message: String) throws {
        let e = try #require(decodeError(#"{"model": "m", "messages": "# + messages + "}"))
        #expect(e.status == 400 && e.param == param, "\(messages): \(e)")
        #expect(e.message.contains(message), "\(messages): \(e)")
    }

    @Test func chatWithoutMessagesHints() throws {
        let e = try #require(decodeError(#"{"model": "m", "prompt": "hi"}"#))
        #expect(e.param == "messages" && e.message.contains("a plain prompt goes to /v1/completions"))
    }

    @Test func longFoundValuesAreCut() throws {
        let long = String(repeating: "x", count: 200)
        let e = try #require(decodeError(#"{"model": "m", "prompt": "x", "temperature": ""# + long + #""}"#, .completion))
        #expect(e.message.hasSuffix("…"))
        #expect(e.message.count < 120)
    }

    /// SamplingParameters.validate is the last check; its field names become the request's.
    @Test func samplingErrorsNameTheRequestField() {
        let e = SamplingParameterError(field: "repeat_penalty", allowed: "a finite number > 0", found: "0.0", hint: "try 1")
        var names = SamplingNames(endpoint: .completion)
        #expect(names.openAIError(e) == .badRequest(param: "repetition_penalty", message: "repetition_penalty must be a finite number > 0, found 0.0 (try 1)"))
        names.repeatPenalty = "repeat_penalty"
        #expect(names.openAIError(e).param == "repeat_penalty")
        let top = SamplingParameterError(field: "top_logprobs", allowed: "0...20", found: "30", hint: nil)
        #expect(names.openAIError(top).param == "logprobs")
        #expect(SamplingNames(endpoint: .chat).openAIError(top).param == "top_logprobs")
        let max = SamplingParameterError(field: "max_tokens", allowed: "an integer >= 1", found: "0", hint: nil)
        names.maxTokens = "max_completion_tokens"
        #expect(names.openAIError(max).message == "max_completion_tokens must be an integer >= 1, found 0")
        let other = SamplingParameterError(field: "top_p", allowed: "(0, 1]", found: "2", hint: nil)
        #expect(names.openAIError(other).param == "top_p")
    }
}
