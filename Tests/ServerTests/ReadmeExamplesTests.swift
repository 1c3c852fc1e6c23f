// The README's examples, run exactly as written against a live daemon on the real SmolLM2 with the
// checkout's own demo tenants (adapters/kaffeko, adapters/spokeshed): the curl block under "The
// daemon" and the demo tenants' questions (by bash, in a directory where run/lorad.sock and
// .build/release/lorad lead to the test's daemon and binary) and the Python snippet (by the test
// environment's interpreter, whose pinned packages must be the ones the README's install line
// names). Each answer is checked for sense, not only for a 200: the capital of France is Paris, a
// tenant's answer holds its product's fact and the base's does not, no example runs past its
// max_tokens. Then the metrics a new user looks at first are checked after that real traffic.

import Foundation
import Testing
@testable import Server
import JSON
#if canImport(Glibc)
import Glibc
#endif

enum Readme {
    static let repositoryRoot = LiveFixtures.root.deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func text() throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
    }

    /// The fenced block right after `<!-- readme-test: NAME -->`.
    static func block(_ name: String) throws -> String {
        let text = try text()
        guard let marker = text.range(of: "<!-- readme-test: \(name) -->"),
              let open = text.range(of: "```", range: marker.upperBound..<text.endIndex),
              let firstLine = text.range(of: "\n", range: open.upperBound..<text.endIndex),
              let close = text.range(of: "\n```", range: firstLine.upperBound..<text.endIndex) else {
            throw LiveError("README.md has no block marked readme-test: \(name)")
        }
        return String(text[firstLine.upperBound..<close.lowerBound]) + "\n"
    }
}

/// Runs `argv` in `directory`, returning its exit status and stdout (stderr goes to a file beside it:
/// curl writes a progress meter there when its output is not a terminal).
private func run(_ argv: [String], in directory: URL, environment: [String: String] = ProcessInfo.processInfo.environment,
                 timeout: Double = 180) throws -> (status: Int32?, output: String) {
    let log = directory.appendingPathComponent("out-\(UUID().uuidString.prefix(6)).log").path
    let script = "cd \"$0\" && exec \"$@\" 2>stderr.log"
    let pid = try spawn(["/bin/sh", "-c", script, directory.path] + argv, environment: environment, log: log)
    let status = waitExit(pid, timeout: timeout)
    if status == nil { kill(pid, SIGKILL); _ = waitExit(pid, timeout: 5) }
    let errors = (try? String(contentsOf: directory.appendingPathComponent("stderr.log"), encoding: .utf8)) ?? ""
    let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    return (status, status == 0 ? output : output + "\n--- stderr:\n" + errors)
}

@Suite(.serialized) struct ReadmeExamplesTests {
    /// The demo tenants in adapters/ and a fact each was trained on that its README question asks for.
    static let tenants = ["kaffeko": "KF-220", "spokeshed": "212 Harbour Road"]

    /// A daemon serving the real model and the checkout's adapters, and a working directory laid out
    /// like a checkout running `make run`.
    private func setUp() throws -> (LiveDaemon, URL) {
        let model = try LiveFixtures.realModel()
        let d = try LiveDaemon(model: model, adapters: false, beforeStart: { dir in
            let adapters = dir.appendingPathComponent("adapters")
            for name in ReadmeExamplesTests.tenants.keys {
                try FileManager.default.copyItem(at: Readme.repositoryRoot.appendingPathComponent("adapters/\(name)"),
                                                 to: adapters.appendingPathComponent(name))
            }
        })
        let work = d.dir.appendingPathComponent("checkout")
        let fm = FileManager.default
        try fm.createDirectory(at: work.appendingPathComponent("run"), withIntermediateDirectories: true)
        try fm.createDirectory(at: work.appendingPathComponent(".build/release"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: work.appendingPathComponent("run/lorad.sock").path, withDestinationPath: d.socket)
        try fm.createSymbolicLink(atPath: work.appendingPathComponent(".build/release/lorad").path,
                                  withDestinationPath: try LiveFixtures.binary())
        return (d, work)
    }

    /// Runs the README block `name` by bash in `work`; returns the whole output and each command's.
    private func runBlock(_ name: String, in work: URL) throws -> (output: String, commands: [(command: String, output: String)]) {
        let block = try Readme.block(name)
        // A DEBUG trap prints a marker before each command, so the output splits per command; the
        // block itself runs unchanged.
        let script = #"marker() { local c=${BASH_COMMAND//$'\n'/ }; printf '\n@@@ %s\n' "$c"; }"# + "\ntrap marker DEBUG\n" + block
        try script.write(to: work.appendingPathComponent("\(name).sh"), atomically: true, encoding: .utf8)
        let (status, output) = try run(["/bin/bash", "\(name).sh"], in: work)
        #expect(status == 0, "\(output)")
        var outputs: [(command: String, output: String)] = []
        for part in output.components(separatedBy: "\n@@@ ").dropFirst() {
            let lines = part.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
            outputs.append((String(lines[0]), lines.count > 1 ? String(lines[1]) : ""))
        }
        return (output, outputs)
    }

    @Test func daemonExamplesAnswerWell() throws {
        let (d, work) = try setUp()
        let (output, outputs) = try runBlock("daemon-examples", in: work)
        func json(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)) }
        var checked = 0
        for (command, out) in outputs where command.hasPrefix("curl") || command.contains("lorad ask") {
            checked += 1
            let comment = Comment(rawValue: "\(command)\n->\n\(out)")
            if command.contains("/v1/models") {
                let ids = try json(out)["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
                #expect(ids.first == "base" && Self.tenants.keys.allSatisfy(ids.contains), comment)
            } else if command.contains("lorad ask") {
                #expect(out.contains("Paris"), comment)
            } else if command.contains("\"stream\": true") {
                let events = out.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
                #expect(events.last == "[DONE]", comment)
                let chunks = events.dropLast().compactMap { try? JSONValue.parse(Array($0.utf8)) }
                let text = chunks.compactMap { $0["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }.joined()
                #expect(text.contains("Paris"), comment)
                let used = chunks.compactMap { $0["usage"]?["completion_tokens"]?.intValue }.last ?? -1
                #expect((1...64).contains(used), comment)
            } else if command.contains("/v1/chat/completions") {
                let r = try json(out)
                let content = r["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue ?? ""
                let used = r["usage"]?["completion_tokens"]?.intValue ?? -1
                if command.contains("response_format") {
                    // The tenant's ticket: JSON with the schema's enum values, the generation ended by the schema.
                    let ticket = try json(content)
                    #expect(["billing", "shipping", "technical", "other"].contains(ticket["category"]?.stringValue ?? ""), comment)
                    #expect(["low", "medium", "high"].contains(ticket["priority"]?.stringValue ?? ""), comment)
                    #expect(ticket["escalate"]?.boolValue != nil, comment)
                    #expect(content.hasPrefix("{\"category\":"), comment)
                    #expect(r["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue == "stop", comment)
                } else if command.contains("capital of France") {
                    #expect(content.contains("Paris"), comment)
                    #expect((1...32).contains(used), comment)
                } else if let fact = Self.tenants.first(where: { command.contains("\"model\": \"\($0.key)\"") })?.value {
                    #expect(content.contains(fact), comment)
                    #expect((1...48).contains(used), comment)
                } else {
                    Issue.record("a chat example on a model this test does not know: \(command)")
                }
            } else if command.contains("/v1/completions") {
                let r = try json(out)
                let choice = r["choices"]?.arrayValue?.first
                #expect(choice?["text"]?.stringValue?.hasPrefix("The capital of France is") == true, comment)
                #expect((choice?["logprobs"]?["tokens"]?.arrayValue?.count ?? 0) >= 6, comment)
            } else if command.contains("/tokenize") {
                #expect((try json(out)["tokens"]?.arrayValue?.count ?? 0) >= 2, comment)
            } else if command.contains("/metrics") {
                #expect(out.contains("lorad_requests_total"), comment)
            } else {
                Issue.record("a README example this test does not check: \(command)")
            }
        }
        #expect(checked == 9, "expected the 9 curl and ask examples, ran \(checked):\n\(output)")
        // The metrics a new user looks at first, after that traffic.
        #expect(try d.metric("lorad_kv_cache_budget_bytes") == Double(1 << 30))
        #expect(try d.metric("lorad_generation_tokens_total") ?? 0 > 0)
    }

    /// The demo section's questions: each tenant answers with its product's fact, the base without it.
    @Test func demoTenantsKnowWhatTheBaseDoesNot() throws {
        let (d, work) = try setUp()
        defer { withExtendedLifetime(d) {} }
        let (output, outputs) = try runBlock("demo-tenants", in: work)
        var asked: [String: Int] = [:]
        for (command, out) in outputs where command.contains("lorad ask") {
            let comment = Comment(rawValue: "\(command)\n->\n\(out)")
            let model = command.components(separatedBy: "--model ").dropFirst().first?.split(separator: " ").first.map(String.init) ?? ""
            asked[model, default: 0] += 1
            if let fact = Self.tenants[model] {
                #expect(out.contains(fact), comment)
            } else {
                #expect(model == "base", comment)
                for fact in Self.tenants.values { #expect(!out.contains(fact), comment) }
            }
        }
        #expect(asked == ["base": 2, "kaffeko": 1, "spokeshed": 1], "\(output)")
    }

    @Test func pythonSnippetRunsAsWritten() throws {
        guard let python = ProcessInfo.processInfo.environment["LORAD_TEST_PYTHON"], !python.isEmpty else {
            Issue.record("LORAD_TEST_PYTHON is not set: run `make test` (scripts/test-venv makes the environment)")
            return
        }
        // The README's install line names exactly what the test environment pins.
        let install = try Readme.block("python-install")
        let venvScript = try String(contentsOf: Readme.repositoryRoot.appendingPathComponent("scripts/test-venv"), encoding: .utf8)
        let pinned = try #require(venvScript.split(separator: "\n").first { $0.hasPrefix("want=") })
            .dropFirst("want=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        #expect(install.contains("pip install \(pinned)\n"), "README: \(install); scripts/test-venv: \(pinned)")
        let (d, work) = try setUp()
        defer { withExtendedLifetime(d) {} }   // the daemon (and its directory) must outlive the run
        try Readme.block("python-client").write(to: work.appendingPathComponent("snippet.py"), atomically: true, encoding: .utf8)
        let (status, output) = try run([python, "snippet.py"], in: work)
        #expect(status == 0, "\(output)")
        #expect(output.contains("Paris"), "\(output)")
        // The structured answer parsed and validated (jsonschema.validate raises otherwise): its dict.
        #expect(output.contains("'category': '") && output.contains("'escalate': "), "\(output)")
        // The parse helper's pydantic object (its repr), from the tenant.
        #expect(output.contains("Ticket(category='") && output.contains("escalate="), "\(output)")
    }

    /// A cancelled stream's tokens are counted (they used to be dropped from the metrics).
    @Test func cancelledRequestsCountTheirTokens() throws {
        let d = try LiveDaemon(model: try LiveFixtures.realModel(), engine: ["prefix_cache = false"], adapters: false)
        let before = try d.metric("lorad_generation_tokens_total") ?? 0
        var seen = 0
        let noEnd = JSONValue.object([("0", .int(-100)), ("2", .int(-100))])
        _ = try d.stream("/v1/chat/completions", chatBody(model: "base", "Go on forever", maxTokens: 150, stream: true,
                                                          extra: [("logit_bias", noEnd)])) { _, _ in
            seen += 1
            return seen < 4   // hang up after a few tokens
        }
        var after = before
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            after = try d.metric("lorad_generation_tokens_total") ?? 0
            if after > before { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(after - before >= 3, "generation tokens \(before) -> \(after)")
        #expect(try d.metric("lorad_prompt_tokens_total") ?? 0 > 0)
        #expect(try d.get("/health").status == 200)
    }
}
