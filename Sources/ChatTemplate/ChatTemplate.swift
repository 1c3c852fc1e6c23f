// Chat templates: turn a conversation into the prompt text a model was trained on, by rendering
// the model's Jinja template (`tokenizer.chat_template` in GGUF, FORMATS.md §6.4) exactly as
// transformers' apply_chat_template does with jinja2, using lorad's Jinja subset interpreter
// (Jinja*.swift). The template is parsed once; rendering is a pure function of the inputs.
//
// What the template sees, as in transformers (chat_template_utils.render_jinja_template):
// `messages`, `tools` (none), `documents` (none), `add_generation_prompt`, `bos_token`,
// `eos_token`, then any extra variables, plus the globals `raise_exception(message)`,
// `strftime_now(format)`, `range`, `dict` and `namespace`.

import JSON
import ModelFormats
import SystemCalls

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One chat message with plain text content.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// The message as the template sees it: `{"role": ..., "content": ...}`.
    public var jsonValue: JSONValue { .object([("role", .string(role)), ("content", .string(content))]) }
}

/// A parsed chat template. Immutable and Sendable: parse once, render from any thread.
public struct ChatTemplate: Sendable {
    /// The template text as given.
    public let source: String
    let nodes: [JinjaNode]

    /// Parses a Jinja chat template. Throws ChatTemplateError.syntax for invalid Jinja and
    /// .unsupported for constructs outside lorad's subset, naming the construct and its line
    /// and column.
    public init(source: String) throws {
        self.source = source
        nodes = try JinjaParser.parse(source)
    }

    /// The model's own template from GGUF metadata (`tokenizer.chat_template`), or nil when the
    /// file has none.
    public static func fromModel(metadata: [String: GGUFValue]) throws -> ChatTemplate? {
        guard let value = metadata["tokenizer.chat_template"] else { return nil }
        guard let text = value.string else {
            throw ChatTemplateError.unknownTemplate(
                name: "tokenizer.chat_template",
                reason: "the GGUF key holds a \(value.type), expected a string")
        }
        return try ChatTemplate(source: text)
    }

    /// What `--chat-template NAME_OR_FILE` selects: a built-in template by name (see
    /// `builtinNames`), otherwise the file at that path. (Write `./chatml` for a file that
    /// happens to share a built-in name.)
    public static func load(nameOrPath: String) throws -> ChatTemplate {
        if let builtin = try builtin(named: nameOrPath) { return builtin }
        return try ChatTemplate(source: try readTextFile(nameOrPath))
    }

    // MARK: - Rendering

    /// Renders a conversation of plain-text messages.
    /// - Parameters:
    ///   - addGenerationPrompt: append the opening of an assistant turn (for generation).
    ///   - bosToken, eosToken: the text of the model's BOS/EOS tokens, for templates that print them.
    ///   - extra: further template variables (for example `tools`, or flags some templates read);
    ///     they override the defaults above.
    ///   - now: seconds since the Unix epoch for `strftime_now` (nil: the current time).
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "",
                       eosToken: String = "", extra: [String: JSONValue] = [:], now: Double? = nil) throws -> String {
        try render(messageValues: messages.map(\.jsonValue), addGenerationPrompt: addGenerationPrompt,
                   bosToken: bosToken, eosToken: eosToken, extra: extra, now: now)
    }

    /// Renders messages given as JSON values (OpenAI-style messages with content parts,
    /// tool calls and so on are passed through to the template unchanged).
    public func render(messageValues: [JSONValue], addGenerationPrompt: Bool, bosToken: String = "",
                       eosToken: String = "", extra: [String: JSONValue] = [:], now: Double? = nil) throws -> String {
        var context: [String: JSONValue] = [
            "messages": .array(messageValues),
            "tools": .null,
            "documents": .null,
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ]
        for (k, v) in extra { context[k] = v }
        return try render(context: context, now: now)
    }

    /// Renders with exactly the given variables (plus the globals).
    public func render(context: [String: JSONValue], now: Double? = nil) throws -> String {
        var variables: [String: JinjaValue] = [:]
        for (k, v) in context { variables[k] = JinjaValue(json: v) }
        var renderer = JinjaRenderer(context: variables, now: now ?? ChatTemplate.currentTime())
        var out = ""
        do {
            _ = try renderer.render(nodes, into: &out)
        } catch let failure as JinjaFailure {
            // Every evaluation path attaches a location; this is a safety net.
            throw failure.located(TemplateLocation(line: 1, column: 1))
        }
        return out
    }

    static func currentTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func readTextFile(_ path: String) throws -> String {
        let limit = 16 << 20
        let bytes: [UInt8]
        do throws(SystemCallError) {
            let fd = try Posix.open(path, O_RDONLY)
            defer { try? Posix.close(fd) }
            bytes = try Posix.readAll(fd, upTo: limit + 1, path: path)
        } catch {
            throw ChatTemplateError.unknownTemplate(name: path, reason: error.reason)
        }
        if bytes.count > limit {
            throw ChatTemplateError.unknownTemplate(name: path, reason: "larger than 16 MiB; not a chat template")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ChatTemplateError.unknownTemplate(name: path, reason: "the file is not valid UTF-8")
        }
        return text
    }
}

extension JinjaValue {
    /// JSON input as the Python objects json.loads would give the template.
    init(json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .float(d)
        case .string(let s): self = .string(s)
        case .array(let xs): self = .list(xs.map { JinjaValue(json: $0) })
        case .object(let kvs):
            var d = JinjaDict()
            for (k, v) in kvs { d.set(.string(k), JinjaValue(json: v)) }
            self = .dict(d)
        }
    }
}
