// `lorad ask "question"`: streams one chat answer from a running daemon over its Unix socket.
import ArgumentParser
import Foundation
import LoradClient
import JSON
import Server

struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask a running lorad daemon a question; the answer streams to stdout.")

    @Option(name: .long, help: ArgumentHelp("The daemon's socket (default: $LORAD_SOCKET, else \(LocalDefaults.checkoutSocket) if it exists, else \(LocalDefaults.systemSocket)).", valueName: "path"))
    var socket: String = LocalDefaults.clientSocket()
    @Option(name: .long, help: ArgumentHelp("An adapter name, or the base's served name.", valueName: "name"))
    var model: String = "base"
    @Option(name: .long, help: ArgumentHelp("A system message to send first.", valueName: "text"))
    var system: String?
    @Option(name: .customLong("max-tokens"), help: "Stop after this many tokens.")
    var maxTokens: Int?
    @Option(name: .long, help: "Sampling temperature (0 = greedy).")
    var temperature: Double?
    @Argument(help: "The question.")
    var question: String

    func run() throws {
        var messages: [JSONValue] = []
        if let system { messages.append(.object([("role", .string("system")), ("content", .string(system))])) }
        messages.append(.object([("role", .string("user")), ("content", .string(question))]))
        var fields: [(String, JSONValue)] = [("model", .string(model)), ("messages", .array(messages)), ("stream", .bool(true))]
        if let maxTokens { fields.append(("max_tokens", .int(maxTokens))) }
        if let temperature { fields.append(("temperature", .double(temperature))) }
        do {
            let client = try DaemonClient(socket: socket)
            try client.request(method: "POST", path: "/v1/chat/completions", body: Array(JSONValue.object(fields).serialized().utf8))
            let head = try client.readHead()
            guard head.status == 200 else {
                let body = try client.readBody()
                let message = (try? JSONValue.parse(body))?["error"]?["message"]?.stringValue ?? String(decoding: body, as: UTF8.self)
                fail("\(head.status): \(message)")
            }
            try client.readEvents { data in
                guard data != "[DONE]" else { return }
                guard let v = try? JSONValue.parse(Array(data.utf8)) else { return }
                if let e = v["error"]?["message"]?.stringValue { fail(e) }
                if case .array(let choices)? = v["choices"], let delta = choices.first?["delta"],
                   let content = delta["content"]?.stringValue {
                    emit(content)
                }
            }
            emit("\n")
        } catch {
            fail("\(error)")
        }
    }
}
