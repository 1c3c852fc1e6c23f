// The official `openai` Python client (PyPI, pinned in scripts/test-venv) talks to a live daemon over
// its Unix socket through httpx's `uds=` transport: models, chat with and without streaming,
// chat logprobs, completions with echo and logprobs, errors. The checks are in
// scripts/tests/openai_client.py; `make test` provides the interpreter as LORAD_TEST_PYTHON.

import Foundation
import Testing
@testable import Server

@Suite struct LiveOpenAIClientTests {
    @Test func officialClientOverTheUnixSocket() throws {
        guard let python = ProcessInfo.processInfo.environment["LORAD_TEST_PYTHON"], !python.isEmpty else {
            Issue.record("LORAD_TEST_PYTHON is not set: run `make test` (scripts/test-venv makes the environment)")
            return
        }
        let d = try LiveDaemon()
        let script = LiveFixtures.root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/tests/openai_client.py").path
        let out = d.dir.appendingPathComponent("client.log").path
        let pid = try spawn([python, script, d.socket], environment: ProcessInfo.processInfo.environment, log: out)
        let code = waitExit(pid, timeout: 120)
        let log = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(code == 0, "the OpenAI client failed (exit \(String(describing: code))):\n\(log)\n--- daemon log:\n\(d.logText)")
        #expect(log.contains("\"ok\": true"))
    }
}
