// TOMLPrecheck: the inputs that make toml++ (inside TOMLKit) abort are refused first, with a line and
// column; valid TOML with the same characters inside strings, comments and nested arrays is not.
// Each hazard below aborted this very test process before the precheck existed (the test build
// compiles toml++ with assertions on).

import Foundation
import Testing
@testable import Server

@Suite struct ConfigPrecheckTests {
    @Test(arguments: [
        ("[\n", 1, 2, "table name"),
        ("[model]\npath = \"/m\"\n[ ,a]\n", 3, 3, "table name"),
        ("[[\tx]]\n", nil, nil, nil),
        ("\t[ =x]", 1, 4, "found '='"),
        ("x = [}", 1, 6, "found '}'"),
        ("x = [1, }", 1, 9, "found '}'"),
        ("x = [\n  1, # one\n  }\n", 3, 3, "found '}'"),
        ("x = { a = [ } }", 1, 13, "found '}'"),
        ("x = 1979-05-27T:", 1, 5, "dates and times"),
        ("x = 1979-05-27 1,", 1, 5, "dates and times"),
        ("x = [07:32:00]", 1, 6, "dates and times"),
        ("x = { a = 1979-05-27 }", 1, 11, "dates and times"),
        ("x = \"a\u{0}b\"", 1, 7, "NUL"),
    ] as [(String, Int?, Int?, String?)])
    func hazardsAreSyntaxErrors(text: String, line: Int?, column: Int?, gist: String?) throws {
        let hazard = TOMLPrecheck.firstHazard(in: text)
        if let line, let column, let gist {
            let h = try #require(hazard)
            #expect(h.line == line && h.column == column, "\(h)")
            #expect(h.message.contains(gist), "\(h.message)")
            let error = try #require(throws: ConfigError.self) { try ServerConfig.parse(toml: text, source: "x") }
            #expect(error.problems == [.syntax(line: line, column: column, message: h.message)])
        } else {
            #expect(hazard == nil)
        }
    }

    /// Valid TOML that holds the hazards' characters where they are harmless.
    @Test(arguments: [
        "a = \"[}\"\nb = '[}'\nc = \"1979-05-27 1,\"",
        "a = \"\"\"\n[\n}\n\"\"\"\nb = '''\n[[ ,\n'''",
        "a = \"\"\"x\"\"\"\"\nb = [1, 2]",       // a closing run of four quotes
        "a = \"\"\"\\\n  [}\\\n\"\"\"",          // line continuations
        "a = \"esc \\\" [}\"",
        "# [ }\n# x = [}\na = 1 # [}",
        "a = [\n  [1, 2],\n  [3],\n]\n[t]\nb = 2",
        "a = [ { b = [1, 2] }, { c = 3 } ]",
        "a = -1\nb = +5\nc = 1e-5\nd = -1_000\ne = 0x1F\nf = [ -1, -2 ]",
        "[\"quoted [} key\"]\n[ spaced ]\n[[ arr ]]\n[2024-05-27]",
        "a = []\nb = [ ]\nc = [\n]\nd = {}",
    ])
    func validTOMLPassesThePrecheck(text: String) throws {
        #expect(TOMLPrecheck.firstHazard(in: text) == nil)
        // And toml++ reads it (only unknown keys to report, no syntax error).
        do {
            _ = try ServerConfig.parse(toml: text, source: "x")
        } catch {
            #expect(error.problems.allSatisfy { if case .unknownKey = $0 { true } else { false } }, "\(error)")
        }
    }

    @Test func shippedExamplePassesThePrecheck() throws {
        let text = try String(contentsOfFile: opsRepositoryRoot + "/config/lorad.toml", encoding: .utf8)
        #expect(TOMLPrecheck.firstHazard(in: text) == nil)
    }
}
