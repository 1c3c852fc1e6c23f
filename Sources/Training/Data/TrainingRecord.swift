// One line of a training data file, parsed and checked but not yet tokenized. Two forms, as OpenAI's
// fine-tuning accepts them:
//   chat:       {"messages": [{"role": "system"|"user"|"assistant", "content": "...", "weight": 0|1}, ...]}
//   completion: {"prompt": "...", "completion": "..."}
// `weight` (assistant messages only, default 1) is OpenAI's: 0 means the turn is context, not trained.
// Anything else (another key, role, content type or weight) is refused with what was expected, so a
// file that means something lorad would silently ignore (tool calls, content parts) fails at load.

import JSON

/// A parsed training example: a conversation or a prompt/completion pair.
public enum TrainingRecord: Sendable, Equatable {
    case chat([TrainingMessage])
    /// Raw text, no chat template: `completion` is trained, `prompt` is context.
    case completion(prompt: String, completion: String)
}

/// One message of a conversation; `trained` is false for an assistant turn with `"weight": 0` and for
/// every system and user message.
public struct TrainingMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public var trained: Bool

    public init(role: String, content: String, trained: Bool) {
        self.role = role
        self.content = content
        self.trained = trained
    }
}

extension TrainingRecord {
    static let roles: Set<String> = ["system", "user", "assistant"]
    /// Keys only `lorad eval` reads: the greedy answer's exact text, or a substring it must contain.
    public static let evaluationOnlyKeys: Set<String> = ["expected", "must_contain"]

    /// Parses one JSONL line (without its newline). Throws `TrainingError.badExample` naming `file`
    /// and `line` with what was expected.
    /// With `evaluationKeys`, a chat line may also carry `"expected"` and `"must_contain"` (strings,
    /// read by `lorad eval`; they do not change what is trained).
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes, file: String, line: Int,
                                                      evaluationKeys: Bool = false) throws(TrainingError) -> TrainingRecord {
        func bad(_ reason: String) -> TrainingError { .badExample(file: file, line: line, reason: reason) }
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch {
            throw bad("not JSON (\(error)); expected one JSON object per line")
        }
        guard let members = value.objectMembers else {
            throw bad("\(value.kindDescription), expected an object with \"messages\" or \"prompt\" and \"completion\"")
        }
        let keys = Set(members.map(\.0))
        if keys.contains("messages") {
            for (key, v) in members where evaluationKeys && evaluationOnlyKeys.contains(key) && v.stringValue == nil {
                throw bad("\"\(key)\" is \(v.kindDescription), expected a string")
            }
            if let other = members.first(where: { $0.0 != "messages" && !(evaluationKeys && evaluationOnlyKeys.contains($0.0)) }) {
                throw bad("unexpected key \"\(other.0)\" beside \"messages\" (lorad trains messages only: no tools or functions)")
            }
            return .chat(try parseMessages(value["messages"]!, bad))
        }
        if keys.contains("prompt") || keys.contains("completion") {
            if let other = members.first(where: { $0.0 != "prompt" && $0.0 != "completion" }) {
                throw bad("unexpected key \"\(other.0)\" beside \"prompt\" and \"completion\"")
            }
            guard let promptValue = value["prompt"] else { throw bad("\"completion\" without \"prompt\"; expected both strings") }
            guard let completionValue = value["completion"] else { throw bad("\"prompt\" without \"completion\"; expected both strings") }
            guard let prompt = promptValue.stringValue else { throw bad("\"prompt\" is \(promptValue.kindDescription), expected a string") }
            guard let completion = completionValue.stringValue else {
                throw bad("\"completion\" is \(completionValue.kindDescription), expected a string")
            }
            guard !completion.isEmpty else { throw bad("\"completion\" is empty; expected the text to train on") }
            return .completion(prompt: prompt, completion: completion)
        }
        throw bad("no \"messages\" and no \"prompt\"/\"completion\"; expected {\"messages\": [...]} or {\"prompt\": ..., \"completion\": ...}")
    }

    private static func parseMessages(_ value: JSONValue, _ bad: (String) -> TrainingError) throws(TrainingError) -> [TrainingMessage] {
        guard let items = value.arrayValue else { throw bad("\"messages\" is \(value.kindDescription), expected an array of messages") }
        var messages: [TrainingMessage] = []
        for (index, item) in items.enumerated() {
            let at = "messages[\(index)]"
            guard let members = item.objectMembers else { throw bad("\(at) is \(item.kindDescription), expected an object with role and content") }
            if let other = members.first(where: { !["role", "content", "weight"].contains($0.0) }) {
                throw bad("\(at) has unexpected key \"\(other.0)\"; expected role, content and (assistant only) weight")
            }
            guard let roleValue = item["role"] else { throw bad("\(at) has no \"role\"; expected system, user or assistant") }
            guard let role = roleValue.stringValue else { throw bad("\(at).role is \(roleValue.kindDescription), expected a string") }
            guard roles.contains(role) else { throw bad("\(at) has unknown role \"\(role)\"; expected system, user or assistant") }
            guard let contentValue = item["content"] else { throw bad("\(at) has no \"content\"; expected a string") }
            guard let content = contentValue.stringValue else {
                throw bad("\(at).content is \(contentValue.kindDescription), expected a string")
            }
            var trained = role == "assistant"
            if let weight = item["weight"] {
                guard role == "assistant" else { throw bad("\(at) is a \(role) message with a weight; only assistant messages take one") }
                switch weight {
                case .int(0): trained = false
                case .int(1): trained = true
                default: throw bad("\(at).weight is \(weight.serialized()), expected 0 or 1")
                }
            }
            messages.append(TrainingMessage(role: role, content: content, trained: trained))
        }
        guard messages.contains(where: { $0.role == "assistant" }) else {
            throw bad("no assistant message; expected at least one assistant turn to learn from")
        }
        return messages
    }
}
