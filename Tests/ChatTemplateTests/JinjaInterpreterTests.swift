// Hand-written tests of the Jinja interpreter: where errors point (line and column), what they
// say, the Python formatting helpers against values from the Python documentation, and behaviour
// the jinja2 goldens cannot show (nesting limits, concurrent rendering).
// Rendering semantics themselves are checked against jinja2 in JinjaGoldenTests.

import JSON
import Testing
@testable import ChatTemplate

@Suite struct JinjaInterpreterTests {
    private func render(_ source: String, _ context: [String: JSONValue] = [:]) throws -> String {
        try ChatTemplate(source: source).render(context: context, now: 0)
    }

    private func error(_ source: String, _ context: [String: JSONValue] = [:],
                       sourceLocation: SourceLocation = #_sourceLocation) -> ChatTemplateError? {
        chatTemplateError("\(source.debugDescription)", sourceLocation: sourceLocation) {
            _ = try render(source, context)
        }
    }

    // MARK: - Error locations and messages

    @Test func syntaxErrorsPointAtTheToken() {
        let e = error("line one\n  {{ 1 + }}")
        #expect(e == .syntax(message: "unexpected '}}'", at: TemplateLocation(line: 2, column: 10)))
        #expect(e?.description == "chat template syntax error at line 2, column 10: unexpected '}}'")

        #expect(error("{% if x %}\n{% endfor %}")?.location == TemplateLocation(line: 2, column: 4))
        #expect(error("{% if x %}\n{% endfor %}")?.message.contains("'elif' or 'else' or 'endif'") == true)
        #expect(error("ab {{ 'x' | nosuch }}") == .syntax(message: "no filter named 'nosuch'",
                                                          at: TemplateLocation(line: 1, column: 13)))
        #expect(error("{{ x is nosuch }}") == .syntax(message: "no test named 'nosuch'",
                                                      at: TemplateLocation(line: 1, column: 9)))
    }

    @Test func lexerErrorsPointAtTheOpening() {
        #expect(error("ok\n  {# open") == .syntax(message: "missing end of comment tag: the comment opened here has no '#}'",
                                                  at: TemplateLocation(line: 2, column: 3)))
        #expect(error("{{ 'abc }}")?.location == TemplateLocation(line: 1, column: 4))
        #expect(error("{% if true %}{{ x ! y }}{% endif %}")?.location == TemplateLocation(line: 1, column: 19))
        #expect(error("{{ (1 ] }}")?.message == "unexpected ']', expected ')'")
        #expect(error("x\n{% for a in b")?.message.contains("never closed") == true)
    }

    @Test func unsupportedConstructsNameThemselves() {
        let macro = error("Hello\n  {% macro greet(n) %}hi {{ n }}{% endmacro %}")
        #expect(macro == .unsupported(construct: "the '{% macro %}' tag", at: TemplateLocation(line: 2, column: 6)))
        #expect(macro?.description.contains("line 2, column 6") == true)
        #expect(macro?.description.contains("--chat-template") == true)

        #expect(error("{{ x | sort }}") == .unsupported(construct: "the filter 'sort'",
                                                         at: TemplateLocation(line: 1, column: 8)))
        if case .unsupported(let what, let at)? = error("\n\n{{ 'a %s' % 'b' }}") {
            #expect(what.contains("printf-style"))
            #expect(at == TemplateLocation(line: 3, column: 4))
        } else {
            Issue.record("printf-style formatting should be unsupported")
        }
        if case .unsupported(let what, _)? = error("{{ 9223372036854775807 + 1 }}") {
            #expect(what.contains("beyond 64 bits"))
        } else {
            Issue.record("overflow should be unsupported")
        }
        if case .unsupported(let what, _)? = error("{{ 99999999999999999999 }}") {
            #expect(what.contains("beyond 64 bits"))
        } else {
            Issue.record("a huge literal should be unsupported")
        }
        #expect(error("{{ messages.append(1) }}", ["messages": .array([])])?.message.contains("list method 'append'") == true)
        #expect(error("{{ x.__class__ }}", ["x": .string("s")])?.message.contains("'__class__'") == true)
    }

    @Test func renderErrorsPointAtTheExpression() {
        let e = error("{{ 'ok' }}\n{{ 'a' + 1 }}")
        #expect(e == .render(message: "unsupported operand type(s) for +: 'str' and 'int'",
                             at: TemplateLocation(line: 2, column: 4)))
        // The innermost failing expression wins.
        #expect(error("{{ [1, 2, nothing.x] }}")?.location == TemplateLocation(line: 1, column: 11))
        #expect(error("{{ nothing.x }}")?.message == "'nothing' is undefined")
        #expect(error("{% for m in [] %}{% endfor %}{{ e[0].role }}", ["e": .array([])])?.message
                == "list object has no element 0")
    }

    @Test func raiseExceptionCarriesTheTemplatesMessage() {
        let source = "{% for m in messages %}\n  {% if m.role == 'system' %}{{ raise_exception('no system, got ' ~ m.content) }}{% endif %}\n{% endfor %}"
        let e = error(source, ["messages": .array([ChatMessage(role: "system", content: "S").jsonValue])])
        #expect(e == .raised(message: "no system, got S", at: TemplateLocation(line: 2, column: 33)))
        #expect(e?.description.contains("rejected the conversation") == true)
    }

    // MARK: - Whitespace (also covered against jinja2; these name the rules)

    @Test func trimAndLstripBlocks() throws {
        #expect(try render("a\n    {% if true %}\n    b\n    {% endif %}\nc") == "a\n    b\nc")
        #expect(try render("a\n    {%+ if true %}b{% endif +%}\nc") == "a\n    b\nc")
        #expect(try render("a  {{- 'b' -}}  \n c") == "abc")
        #expect(try render("  {{ 'x' }}\n") == "  x")  // variables are never lstripped; one final newline goes
        #expect(try render("{# c #}\nx") == "x")
    }

    // MARK: - Python formatting

    @Test func floatReprMatchesPython() {
        // Values and their repr() from the Python documentation and CPython's test_float.
        let cases: [(Double, String)] = [
            (0.1, "0.1"), (1.0, "1.0"), (-0.0, "-0.0"), (1e16, "1e+16"), (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"), (0.0001, "0.0001"), (123.456, "123.456"), (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (0.1 + 0.2, "0.30000000000000004"),
            (2.5e-7, "2.5e-07"), (12345678901234567.0, "1.2345678901234568e+16"), (.infinity, "inf"),
            (-.infinity, "-inf"), (1e100, "1e+100"), (9999999999999998.0, "9999999999999998.0"),
        ]
        for (value, expected) in cases {
            #expect(PythonText.floatRepr(value) == expected, "\(value)")
        }
        #expect(PythonText.floatRepr(.nan) == "nan")
    }

    @Test func stringReprMatchesPython() {
        #expect(PythonText.repr("it's") == "\"it's\"")
        #expect(PythonText.repr("a'b\"c") == "'a\\'b\"c'")
        #expect(PythonText.repr("\u{1}\n\t\\") == "'\\x01\\n\\t\\\\'")
        #expect(PythonText.repr("\u{A0}é\u{2028}😀") == "'\\xa0é\\u2028😀'")
    }

    @Test func pythonStringOperationsWorkOnCodePoints() {
        let decomposed = "e\u{301}"  // Swift sees one Character; Python sees two code points
        #expect(PythonText.length(decomposed) == 2)
        #expect(!PythonText.equal(decomposed, "\u{E9}"))
        #expect(PythonText.hasPrefix(decomposed, "e"))
        #expect(PythonText.split(" a  b ", separator: nil, maxSplit: 1) == ["a", "b "])
        #expect(PythonText.rsplit("a,b,c", separator: ",", maxSplit: 1) == ["a,b", "c"])
        #expect(PythonText.lower("ΣΑΣ Σ") == "σας σ")
        #expect(PythonText.strip("\u{1C}x\u{3000}", chars: nil) == "x")
    }

    // MARK: - Globals

    @Test func strftimeNowUsesTheGivenClock() throws {
        // 2024-07-26 12:00:00 UTC: the date is the same in every time zone within ±11 hours.
        let template = try ChatTemplate(source: "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%%%z%Z') }}")
        #expect(try template.render(context: [:], now: 1_721_995_200) == "26 Jul 2024|%")
    }

    @Test func rangeIsCappedLikeTheSandbox() throws {
        #expect(try render("{{ range(100000) | length }}") == "100000")
        #expect(error("{{ range(100001) | length }}")?.message.contains("100000") == true)
    }

    // MARK: - Robustness

    @Test func deepNestingFailsCleanly() {
        let deep = "{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}"
        #expect(error(deep)?.message.contains("nested more than") == true)
        let deepIfs = String(repeating: "{% if true %}", count: 1000) + String(repeating: "{% endif %}", count: 1000)
        #expect(error(deepIfs)?.message.contains("nested more than") == true)
    }

    @Test func hugeRepetitionFailsInsteadOfExhaustingMemory() throws {
        #expect(try render("{{ ('ab' * 3) ~ ([0] * 2) | length }}") == "ababab2")
        #expect(error("{{ 'x' * 9999999999999 }}")?.message.contains("too large") == true)
        #expect(error("{{ [1, 2] * 4611686018427387904 }}")?.message.contains("too large") == true)
    }

    @Test func renderingIsThreadSafe() async throws {
        let template = try ChatTemplate.load(nameOrPath: "gemma")
        let messages = (0..<8).map { ChatMessage(role: $0 % 2 == 0 ? "user" : "assistant", content: "turn \($0)") }
        let expected = try template.render(messages: messages, addGenerationPrompt: true, bosToken: "<bos>")
        let results = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<16 {
                group.addTask { try template.render(messages: messages, addGenerationPrompt: true, bosToken: "<bos>") }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(results.count == 16 && results.allSatisfy { $0 == expected })
        #expect(expected.hasPrefix("<bos><start_of_turn>user\nturn 0<end_of_turn>\n<start_of_turn>model\nturn 1"))
    }
}
