// The chat backend that talks to a running daemon (`lorad chat --socket PATH`): each turn POSTs the
// whole conversation to /v1/chat/completions with "stream": true and prints the deltas. Ctrl-C
// closes that request's connection, which the daemon takes as a cancel (it stops generating and
// frees the sequence). Nothing is kept between turns but the model name.

import ChatTemplate
import Foundation
import Sampling
import LoradClient
import JSON

package final class DaemonChatBackend: ChatBackend {
    private let socket: String
    private let parameters: SamplingParameters
    /// The daemon's base model (the /v1/models entry without a parent), for `/adapter base`.
    private let baseName: String
    private var model: String
    package let banner: String

    /// Asks the daemon for its models, so that a wrong socket or name fails before the first prompt.
    package init(socket: String, model: String?, parameters: SamplingParameters) throws {
        self.socket = socket
        self.parameters = parameters
        let (status, list) = try Self.get("/v1/models", socket: socket)
        guard status == 200, case .array(let entries)? = list?["data"] else {
            throw ChatError("\(socket) answered GET /v1/models with \(status): is it a lorad daemon?")
        }
        baseName = entries.first { $0["parent"] == nil || $0["parent"] == .null }?["id"]?.stringValue ?? "base"
        self.model = baseName
        banner = "lorad chat through \(socket)"
        if let model { _ = try selectAdapter(model) }
    }

    package var adapterDescription: String {
        model == baseName ? "none (the base model, \(baseName))" : model
    }

    package func selectAdapter(_ name: String?) throws -> String {
        guard let name, !isBaseName(name), name != baseName else {
            model = baseName
            return adapterDescription
        }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~@"))
        let (status, _) = try Self.get("/v1/models/" + (name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name), socket: socket)
        guard status == 200 else {
            let (_, list) = try Self.get("/v1/models", socket: socket)
            var ids: [String] = []
            if case .array(let entries)? = list?["data"] { ids = entries.compactMap { $0["id"]?.stringValue } }
            throw ChatError("the daemon serves no model '\(name)'; it serves \(ids.joined(separator: ", ")) (base or none: \(baseName))")
        }
        model = name
        return adapterDescription
    }

    package func reset() {}

    package func reply(to messages: [ChatMessage], shouldStop: () -> Bool, onText: (String) -> Void) throws -> ChatReply {
        let client = try DaemonClient(socket: socket, timeoutSeconds: 600)
        try client.request(method: "POST", path: "/v1/chat/completions", body: Array(body(messages).serialized().utf8))
        var text = ""
        do {
            let head = try client.readHead()
            guard head.status == 200 else {
                let body = try client.readBody()
                let message = (try? JSONValue.parse(body))?["error"]?["message"]?.stringValue ?? String(decoding: body, as: UTF8.self)
                throw ChatError("\(head.status): \(message)")
            }
            try client.readEvents { data in
                if shouldStop() { throw Stopped() }
                guard data != "[DONE]", let event = try? JSONValue.parse(Array(data.utf8)) else { return }
                if let message = event["error"]?["message"]?.stringValue { throw ChatError(message) }
                if case .array(let choices)? = event["choices"], let piece = choices.first?["delta"]?["content"]?.stringValue {
                    text += piece
                    onText(piece)
                }
            }
        } catch {
            // Ctrl-C interrupts a blocked read (EINTR) or is seen at the next event; returning drops
            // the client, whose close tells the daemon to cancel.
            if shouldStop() { return ChatReply(text: text, stopped: true) }
            throw error
        }
        return ChatReply(text: text, stopped: false)
    }

    private struct Stopped: Error {}

    private func body(_ messages: [ChatMessage]) -> JSONValue {
        let p = parameters
        var fields: [(String, JSONValue)] = [
            ("model", .string(model)),
            ("messages", .array(messages.map { .object([("role", .string($0.role)), ("content", .string($0.content))]) })),
            ("stream", .bool(true)),
            ("temperature", .double(Double(p.temperature))),
            ("top_k", .int(p.topK)),
            ("top_p", .double(Double(p.topP))),
            ("min_p", .double(Double(p.minP))),
            ("repeat_penalty", .double(Double(p.repeatPenalty))),
            ("repeat_last_n", .int(p.repeatLastN)),
            ("frequency_penalty", .double(Double(p.frequencyPenalty))),
            ("presence_penalty", .double(Double(p.presencePenalty))),
        ]
        if let maxTokens = p.maxTokens { fields.append(("max_tokens", .int(maxTokens))) }
        if let seed = p.seed { fields.append(("seed", .int(Int(bitPattern: UInt(seed))))) }
        if !p.stop.isEmpty { fields.append(("stop", .array(p.stop.map(JSONValue.string)))) }
        return .object(fields)
    }

    private static func get(_ path: String, socket: String) throws -> (Int, JSONValue?) {
        let client = try DaemonClient(socket: socket, timeoutSeconds: 30)
        try client.request(method: "GET", path: path)
        let head = try client.readHead()
        return (head.status, try? JSONValue.parse(try client.readBody()))
    }
}
