// Request bodies of /v1/chat/completions and /v1/completions to GenerationRequest.
//
// Field names, types and ranges follow the OpenAI API reference (temperature 0–2, penalties −2…2,
// logit_bias −100…100, stop up to 4 strings, top_logprobs 0–20, completions' logprobs as a count)
// plus the extensions vLLM and llama.cpp's server accept (top_k, min_p, repetition_penalty or
// repeat_penalty, repeat_last_n) and lorad's own `adapters`. Unknown fields are ignored, as vLLM
// does by default, except those that would silently change what the client gets (tools, structured
// output that is not implemented yet: GBNF; several choices, suffix), which are rejected with a 400
// that says so. Constraints: `guided_regex` (alias `regex`), `guided_choice`, `response_format`
// (json_object, json_schema) and `guided_json`, compiled during preparation (Preparation.swift).
// Sampling ranges are
// checked once more by SamplingParameters.validate, whose errors are renamed to the request's field
// names.

import JSON
import Llama
import ModelFormats
import Sampling
import Tokenizer

public enum OpenAIDecode {
    /// OpenAI's defaults: temperature 1, top_p 1, and the llama.cpp-only stages (top_k, min_p,
    /// repetition penalty) off, so that a plain OpenAI request samples from the model's
    /// distribution as OpenAI's API would. (llama.cpp's own defaults are SamplingParameters().)
    public static let defaultSampling = SamplingParameters(temperature: 1, topK: 0, topP: 1, minP: 0, repeatPenalty: 1)

    /// OpenAI's limit on stop sequences.
    public static let maxStopSequences = 4

    /// Decodes a generation request. `vocabularySize`, when given, bounds the token ids of
    /// `prompt` and `logit_bias`.
    public static func generationRequest(body: [UInt8], endpoint: GenerationRequest.Endpoint,
                                         vocabularySize: Int? = nil) throws(OpenAIError) -> GenerationRequest {
        let f = try OpenAIFields(body: body)
        try rejectUnsupported(f, endpoint: endpoint)
        guard let model = try readModel(f) else {
            throw .badRequest(param: "model", message: "model is required: the base model's name or an adapter's name")
        }
        let prompt: OpenAIPrompt = endpoint == .chat
            ? .chat(try readMessages(f))
            : try readPrompt(f, vocabularySize: vocabularySize)

        var names = SamplingNames(endpoint: endpoint)
        var s = defaultSampling
        if let t = try f.number("temperature", in: 0...2, expected: "a number between 0 and 2") { s.temperature = Float(t) }
        if let p = try f.number("top_p", in: 0...1, expected: "a number greater than 0 and at most 1") {
            if p == 0 { throw .invalid("top_p", expected: "a number greater than 0 and at most 1", found: .int(0), hint: "use temperature 0 for greedy decoding") }
            s.topP = Float(p)
        }
        // vLLM spells "no top-k" as -1, llama.cpp as 0; both mean off here.
        if let k = try f.integer("top_k", in: -1...Int(Int32.max), expected: "an integer >= 0 (0 or -1 = off)") { s.topK = max(k, 0) }
        if let m = try f.number("min_p", in: 0...1, expected: "a number between 0 and 1 (0 = off)") { s.minP = Float(m) }
        if let r = try readRepetitionPenalty(f, names: &names) { s.repeatPenalty = r }
        if let n = try f.integer("repeat_last_n", in: 0...Int(Int32.max), expected: "an integer >= 0 (0 = no penalties)") { s.repeatLastN = n }
        if let p = try f.number("frequency_penalty", in: -2...2, expected: "a number between -2 and 2") { s.frequencyPenalty = Float(p) }
        if let p = try f.number("presence_penalty", in: -2...2, expected: "a number between -2 and 2") { s.presencePenalty = Float(p) }
        // Any 64-bit integer is a seed; negative ones by their bit pattern, so every value is reproducible.
        if let seed = try f.integer("seed", in: Int.min...Int.max, expected: "an integer") { s.seed = UInt64(bitPattern: Int64(seed)) }
        s.logitBias = try readLogitBias(f, vocabularySize: vocabularySize)
        s.maxTokens = try readMaxTokens(f, endpoint: endpoint, names: &names)
        s.stop = try readStop(f)

        let (logprobs, topLogprobs) = try readLogprobs(f, endpoint: endpoint)
        s.topLogprobs = logprobs ? topLogprobs : nil

        let stream = try f.bool("stream") ?? false
        var includeUsage = false
        if let options = f["stream_options"] {
            guard stream else {
                throw .badRequest(param: "stream_options", message: "stream_options is only allowed when stream is true")
            }
            includeUsage = try OpenAIFields(options, name: "stream_options").bool("include_usage") ?? false
        }
        let echo = endpoint == .completion ? (try f.bool("echo") ?? false) : false

        do {
            try s.validate(vocabularySize: vocabularySize)
        } catch {
            throw names.openAIError(error)
        }
        var request = GenerationRequest(endpoint: endpoint, model: model, prompt: prompt, sampling: s, stream: stream,
                                        includeUsage: includeUsage, logprobs: logprobs, topLogprobs: topLogprobs, echo: echo,
                                        adapters: try readAdapters(f), user: try f.string("user"), n: 1)
        request.constraint = try readConstraint(f)
        if endpoint == .completion {
            request.parseSpecial = try f.bool("parse_special") ?? false
        } else if f.has("parse_special") {
            throw .badRequest(param: "parse_special",
                              message: "parse_special applies to /v1/completions only; chat message contents are always plain text (the chat template alone makes control tokens)")
        }
        return request
    }

    // MARK: - Fields that change what the client gets, which lorad cannot do

    static func rejectUnsupported(_ f: OpenAIFields, endpoint: GenerationRequest.Endpoint) throws(OpenAIError) {
        let noTools = "lorad generates plain text only and has no function calling"
        for key in ["tools", "functions"] {
            if let v = f[key], v != .array([]) {
                throw .badRequest(param: key, message: "\(key) is not supported: \(noTools); remove \(key) from the request")
            }
        }
        for key in ["tool_choice", "function_call"] {
            if let v = f[key], v != .string("none"), v != .string("auto") {
                throw .badRequest(param: key, message: "\(key) \(OpenAIError.describe(v)) is not supported: \(noTools)")
            }
        }
        // Structured output lorad has not implemented yet: refused rather than silently ignored.
        if f.has("structured_outputs") {
            throw .badRequest(param: "structured_outputs", message: "structured_outputs is not supported yet; send the same constraint "
                                + "as guided_json, guided_regex, guided_choice, grammar or response_format")
        }
        if let v = f["n"], OpenAIFields.integer(v) != 1 {
            throw .invalid("n", expected: "1", found: v, hint: "lorad returns one choice per request; send several requests for several choices")
        }
        if let v = f["best_of"], OpenAIFields.integer(v) != 1 {
            throw .invalid("best_of", expected: "1", found: v, hint: "best-of sampling is not supported")
        }
        if endpoint == .completion, let v = f["suffix"], v != .string("") {
            throw .invalid("suffix", expected: "absent", found: v, hint: "insertion (text after the completion) is not supported")
        }
    }

    // MARK: - model

    /// `model` as a non-empty string, nil when absent.
    static func readModel(_ f: OpenAIFields) throws(OpenAIError) -> String? {
        guard let model = try f.string("model", expected: "a model name (a non-empty string)") else { return nil }
        guard !model.isEmpty else { throw .invalid("model", expected: "a model name (a non-empty string)", found: .string("")) }
        return model
    }

    // MARK: - Sampling fields

    /// `repetition_penalty` (vLLM) or `repeat_penalty` (llama.cpp): > 0, 1 = off.
    static func readRepetitionPenalty(_ f: OpenAIFields, names: inout SamplingNames) throws(OpenAIError) -> Float? {
        let expected = "a number greater than 0 (1 = off)"
        var value: (String, Double)?
        for key in ["repetition_penalty", "repeat_penalty"] {
            guard let r = try f.number(key, in: 0...Double(Float.greatestFiniteMagnitude), expected: expected) else { continue }
            if r == 0 { throw .invalid(key, expected: expected, found: .int(0)) }
            if case let (first, other)? = value, other != r {
                throw .badRequest(param: key, message: "\(first) (\(other)) and \(key) (\(r)) disagree; send one of them")
            }
            value = (key, r)
        }
        guard case let (key, r)? = value else { return nil }
        names.repeatPenalty = key
        return Float(r)
    }

    /// An object of token ids (as strings, as JSON requires of keys) to biases in [-100, 100].
    static func readLogitBias(_ f: OpenAIFields, vocabularySize: Int?) throws(OpenAIError) -> [Int32: Float] {
        guard let v = f["logit_bias"] else { return [:] }
        guard case .object(let members) = v else {
            throw .invalid("logit_bias", expected: "an object mapping token ids (as strings) to numbers between -100 and 100", found: v)
        }
        var bias: [Int32: Float] = [:]
        for (key, value) in members {
            guard !key.isEmpty, key.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let id = Int32(key),
                  vocabularySize.map({ Int(id) < $0 }) ?? true else {
                let range = vocabularySize.map { "0..<\($0)" } ?? "integers >= 0"
                throw .badRequest(param: "logit_bias", message: "logit_bias keys must be token ids (\(range), written as strings), found \(OpenAIError.describe(.string(key)))")
            }
            guard let b = value.doubleValue, (-100...100).contains(b) else {
                throw .badRequest(param: "logit_bias", message: "logit_bias values must be numbers between -100 and 100, found \(OpenAIError.describe(value)) for token \(key)")
            }
            if bias[id] != nil {
                throw .badRequest(param: "logit_bias", message: "logit_bias lists token \(id) twice (as \(OpenAIError.describe(.string(key))) and another spelling)")
            }
            bias[id] = Float(b)
        }
        return bias
    }

    /// `max_tokens`, or for chat also OpenAI's newer `max_completion_tokens` (they must agree when
    /// both are given). nil: no cap.
    static func readMaxTokens(_ f: OpenAIFields, endpoint: GenerationRequest.Endpoint, names: inout SamplingNames) throws(OpenAIError) -> Int? {
        let range = 1...Int(Int32.max)
        let expected = "an integer from 1 to \(range.upperBound) (the prompt and max_tokens together must also fit the context)"
        let legacy = try f.integer("max_tokens", in: range, expected: expected)
        guard endpoint == .chat, let current = try f.integer("max_completion_tokens", in: range, expected: expected) else {
            return legacy
        }
        if let legacy, legacy != current {
            throw .badRequest(param: "max_completion_tokens",
                              message: "max_tokens (\(legacy)) and max_completion_tokens (\(current)) disagree; send one of them")
        }
        names.maxTokens = "max_completion_tokens"
        return current
    }

    /// A string or an array of up to 4 non-empty strings.
    static func readStop(_ f: OpenAIFields) throws(OpenAIError) -> [String] {
        let expected = "a string or an array of at most \(maxStopSequences) non-empty strings"
        guard let v = f["stop"] else { return [] }
        switch v {
        case .string(let s):
            guard !s.isEmpty else {
                throw .invalid("stop", expected: expected, found: v, hint: "an empty stop string would end every generation at once")
            }
            return [s]
        case .array(let items) where items.count <= maxStopSequences:
            var out: [String] = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item, !s.isEmpty else {
                    throw .badRequest(param: "stop", message: "stop[\(i)] must be a non-empty string, found \(OpenAIError.describe(item))")
                }
                out.append(s)
            }
            return out
        default:
            throw .invalid("stop", expected: expected, found: v)
        }
    }

    /// Chat: `logprobs` (bool) and `top_logprobs` (0–20, only with logprobs true).
    /// Completions: `logprobs` is the number of alternatives (OpenAI allows 0–5; lorad up to 20).
    static func readLogprobs(_ f: OpenAIFields, endpoint: GenerationRequest.Endpoint) throws(OpenAIError) -> (Bool, Int) {
        let maxTop = SamplingParameters.maxTopLogprobs
        switch endpoint {
        case .chat:
            let on = try f.bool("logprobs") ?? false
            let top = try f.integer("top_logprobs", in: 0...maxTop, expected: "an integer between 0 and \(maxTop)")
            if top != nil && !on {
                throw .badRequest(param: "top_logprobs", message: "top_logprobs requires logprobs to be true")
            }
            return (on, top ?? 0)
        case .completion:
            if let v = f["logprobs"], case .bool = v {
                throw .invalid("logprobs", expected: "an integer between 0 and \(maxTop)", found: v,
                               hint: "in /v1/completions logprobs is the number of alternatives per token, e.g. \"logprobs\": 1")
            }
            guard let n = try f.integer("logprobs", in: 0...maxTop, expected: "an integer between 0 and \(maxTop)") else {
                return (false, 0)
            }
            return (true, n)
        }
    }

    // MARK: - Constraints (extensions: vLLM's guided_regex and guided_choice)

    /// `guided_regex` (vLLM) or its alias `regex`, or `guided_choice` (a list of strings, which
    /// becomes an alternation of the escaped literals). Only the pattern text here: it is compiled
    /// during preparation, where a bad pattern becomes a 400 with RegexError's message.
    static func readConstraint(_ f: OpenAIFields) throws(OpenAIError) -> ConstraintRequest? {
        var found = try readSchemaConstraint(f)
        for key in ["guided_regex", "regex"] {
            guard let pattern = try f.string(key, expected: "a regular expression (a string)") else { continue }
            if let first = found, case .jsonSchema = first.source {
                throw .badRequest(param: key, message: "\(first.param) and \(key) both constrain the output; send one of them")
            }
            if let first = found, first.source != .regex(pattern) {
                throw .badRequest(param: key, message: "\(first.param) and \(key) disagree; send one of them")
            }
            if found == nil { found = ConstraintRequest(.regex(pattern), param: key) }
        }
        for key in ["grammar", "guided_grammar"] {
            guard let text = try f.string(key, expected: "a GBNF grammar (a string)") else { continue }
            if let first = found {
                throw .badRequest(param: key, message: "\(first.param) and \(key) both constrain the output; send one of them")
            }
            found = ConstraintRequest(.grammar(text), param: key)
        }
        if let v = f["guided_choice"] {
            let expected = "a non-empty array of non-empty strings"
            guard case .array(let items) = v, !items.isEmpty else { throw .invalid("guided_choice", expected: expected, found: v) }
            var choices: [String] = []
            for (i, item) in items.enumerated() {
                guard case .string(let choice) = item, !choice.isEmpty else {
                    throw .badRequest(param: "guided_choice", message: "guided_choice[\(i)] must be a non-empty string, found \(OpenAIError.describe(item))")
                }
                choices.append(choice)
            }
            if let first = found {
                throw .badRequest(param: "guided_choice", message: "\(first.param) and guided_choice both constrain the output; send one of them")
            }
            found = ConstraintRequest(.regex(TokenConstraint.choicePattern(choices)), param: "guided_choice")
        }
        return found
    }

    /// OpenAI's `response_format` (`{"type": "json_schema", "json_schema": {"name", "schema",
    /// "strict"}}`, or `{"type": "json_object"}`: any JSON object, nested without limit), vLLM's
    /// `guided_json` and llama.cpp's top-level `json_schema` (the schema itself). The
    /// output follows OpenAI's strict mode whatever `strict` says: compact, the declared properties in
    /// order, nothing undeclared (docs/architecture.md, Grammar). Compiled during preparation, where
    /// an unsupported keyword becomes a 400 naming it and its JSON pointer.
    static func readSchemaConstraint(_ f: OpenAIFields) throws(OpenAIError) -> ConstraintRequest? {
        var found: ConstraintRequest?
        if let v = f["response_format"], v != .object([("type", .string("text"))]) {
            let expected = #"{"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}"#
            guard case .object(let members) = v, let type = members.first(where: { $0.0 == "type" })?.1 else {
                throw .invalid("response_format", expected: expected, found: v)
            }
            switch type {
            case .string("json_object"):
                found = ConstraintRequest(.jsonSchema(.object([("type", .string("object"))])), param: "response_format")
            case .string("json_schema"):
                guard case .object(let spec)? = members.first(where: { $0.0 == "json_schema" })?.1,
                      let schema = spec.first(where: { $0.0 == "schema" })?.1 else {
                    throw .invalid("response_format.json_schema", expected: #"{"name": ..., "schema": {...}}"#,
                                   found: members.first(where: { $0.0 == "json_schema" })?.1 ?? .null)
                }
                guard case .object = schema else {
                    throw .invalid("response_format.json_schema.schema", expected: "a JSON Schema (an object)", found: schema)
                }
                found = ConstraintRequest(.jsonSchema(schema), param: "response_format.json_schema.schema")
            default:
                throw .invalid("response_format.type", expected: #""text", "json_object" or "json_schema""#, found: type)
            }
        }
        for key in ["guided_json", "json_schema"] {
            guard let schema = f[key] else { continue }
            if let first = found {
                throw .badRequest(param: key, message: "\(first.param) and \(key) both constrain the output; send one of them")
            }
            let parsed: JSONValue
            switch schema {
            case .object: parsed = schema
            case .string(let text):
                // vLLM accepts the schema as a JSON string too.
                guard let p = try? JSONValue.parse(Array(text.utf8)), case .object = p else {
                    throw .invalid(key, expected: "a JSON Schema (an object, or a string holding one)", found: schema)
                }
                parsed = p
            default:
                throw .invalid(key, expected: "a JSON Schema (an object, or a string holding one)", found: schema)
            }
            found = ConstraintRequest(.jsonSchema(parsed), param: key)
        }
        return found
    }

    // MARK: - adapters (extension)

    /// `[{"name": "acme", "scale": 0.5}, ...]`; a bare string stands for `{"name": it}`.
    static func readAdapters(_ f: OpenAIFields) throws(OpenAIError) -> [AdapterRequest] {
        guard let v = f["adapters"] else { return [] }
        guard case .array(let items) = v else {
            throw .invalid("adapters", expected: #"an array of {"name", "scale"} objects"#, found: v)
        }
        var out: [AdapterRequest] = []
        for (i, item) in items.enumerated() {
            let param = "adapters[\(i)]"
            let name: String
            var scale: Float = 1
            if case .string(let s) = item {
                name = s
            } else {
                let a = try OpenAIFields(item, name: param)
                guard let n = try a.string("name", expected: "an adapter name (a non-empty string)") else {
                    throw .badRequest(param: param + ".name", message: "\(param).name is required")
                }
                name = n
                if let s = try a.number("scale", in: -100...100, expected: "a number between -100 and 100") { scale = Float(s) }
            }
            guard !name.isEmpty else { throw .invalid(param + ".name", expected: "an adapter name (a non-empty string)", found: .string("")) }
            if out.contains(where: { $0.name == name }) {
                throw .badRequest(param: "adapters", message: "adapters lists \(OpenAIError.describe(.string(name))) twice; give each adapter once with its combined scale")
            }
            out.append(AdapterRequest(name: name, scale: scale))
        }
        return out
    }
}

/// The request's spelling of the sampling fields whose names vary, so that a SamplingParameterError
/// names the field the client actually sent.
struct SamplingNames {
    var repeatPenalty = "repetition_penalty"
    var maxTokens = "max_tokens"
    var topLogprobs: String

    init(endpoint: GenerationRequest.Endpoint) {
        topLogprobs = endpoint == .chat ? "top_logprobs" : "logprobs"
    }

    func openAIError(_ e: SamplingParameterError) -> OpenAIError {
        let param: String
        switch e.field {
        case "repeat_penalty": param = repeatPenalty
        case "max_tokens": param = maxTokens
        case "top_logprobs": param = topLogprobs
        default: param = e.field
        }
        var message = "\(param) must be \(e.allowed), found \(e.found)"
        if let hint = e.hint { message += " (\(hint))" }
        return .badRequest(param: param, message: message)
    }
}
