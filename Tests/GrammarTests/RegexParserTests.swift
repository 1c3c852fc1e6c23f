// The parser's refusals (each a typed error naming the construct and where it is) and the shapes it
// builds for the constructs whose meaning is easy to get subtly wrong.
import Grammar
import Testing

struct RegexParserTests {
    static let refusals: [(pattern: String, offset: Int, mentions: String)] = [
        (#"(a)\1"#, 3, "backreference"),
        ("a(?=b)", 1, "lookahead"),
        ("a(?!b)", 1, "lookahead"),
        ("(?<=a)b", 0, "lookbehind"),
        ("(?<!a)b", 0, "lookbehind"),
        ("(?i)abc", 0, "inline flags"),
        ("(?>ab)", 0, "atomic"),
        (#"a\bc"#, 1, "word boundary"),
        (#"\p{L}"#, 0, "Unicode property"),
        ("a^b", 1, "'^' anchor"),
        ("a$b", 1, "'$' anchor"),
        ("(a$)", 2, "'$' anchor"),
        ("a*+", 2, "possessive"),
        (#"x\k<n>"#, 1, "backreference"),
        ("[[:alpha:]]", 1, "'[' inside a class"),
        (#"\q"#, 0, "escape \\q"),
    ]

    @Test(arguments: Array(refusals.indices))
    func unsupportedSyntaxNamesConstructAndOffset(_ index: Int) {
        let (pattern, offset, mentions) = Self.refusals[index]
        do {
            _ = try RegexParser.parse(pattern)
            Issue.record("\(pattern) parsed; expected an unsupported-construct error")
        } catch {
            guard case .unsupported(let construct, let at, let hint) = error else {
                Issue.record("\(pattern): expected .unsupported, got \(error)"); return
            }
            #expect(at == offset, "\(pattern): offset \(at), expected \(offset)")
            #expect(construct.contains(mentions), "\(pattern): '\(construct)' should mention \(mentions)")
            #expect(!hint.isEmpty)
            #expect(error.description.contains("offset \(offset)"))
        }
    }

    static let malformed: [(pattern: String, offset: Int)] = [
        ("(ab", 0), ("ab)", 2), ("[ab", 0), ("*a", 0), ("a**", 2), ("a{", 1), ("a{2", 3), ("{2}", 0),
        (#"ab\"#, 2), (#"\x4"#, 0), (#"\uD800"#, 0), ("a]", 1), ("(?P<>a)", 0),
    ]

    @Test(arguments: Array(malformed.indices))
    func malformedPatternsSayWhere(_ index: Int) {
        let (pattern, offset) = Self.malformed[index]
        do {
            _ = try RegexParser.parse(pattern)
            Issue.record("\(pattern) parsed; expected a syntax error")
        } catch {
            guard case .syntax(_, let at) = error else { Issue.record("\(pattern): expected .syntax, got \(error)"); return }
            #expect(at == offset, "\(pattern): offset \(at), expected \(offset) (\(error))")
        }
    }

    @Test func rangesAndCountsAreChecked() {
        #expect(throws: RegexError.invalidRange(low: "'z'", high: "'a'", offset: 1)) { try RegexParser.parse("[z-a]") }
        #expect(throws: RegexError.self) { try RegexParser.parse("a{3,2}") }
        #expect(throws: RegexError.self) { try RegexParser.parse("a{1001}") }
        #expect(throws: RegexError.self) { try RegexParser.parse(#"[\d-z]"#) }
    }

    @Test func anchorsAtTheEndsAreNoOps() throws {
        #expect(try RegexParser.parse("^abc$") == RegexParser.parse("abc"))
        #expect(try RegexParser.parse(#"a\$"#) == .concatenation([.set(.scalar(0x61)), .set(.scalar(0x24))]))
    }

    @Test func classesAndEscapes() throws {
        // A surrogate pair written as two \u escapes is one scalar; \u{...} names any scalar.
        #expect(try RegexParser.parse(#"\uD83D\uDE00"#) == .set(.scalar(0x1F600)))
        #expect(try RegexParser.parse(#"\u{1F600}"#) == .set(.scalar(0x1F600)))
        // ']' first in a class and '-' at either end are literals.
        #expect(try RegexParser.parse("[]a-]") == .set(ScalarSet([0x5D...0x5D, 0x61...0x61, 0x2D...0x2D])))
        // Negation covers every scalar but never a surrogate.
        guard case .set(let notA) = try RegexParser.parse("[^a]") else { Issue.record("not a set"); return }
        #expect(notA.ranges == [0...0x60, 0x62...0xD7FF, 0xE000...0x10FFFF])
        #expect(try RegexParser.parse("a|") == .alternation([.set(.scalar(0x61)), .empty]))
    }

    @Test func stateLimitIsAClearError() {
        // (a|b)*a(a|b){n} needs 2^(n+1) DFA states: a classic blow-up.
        do {
            _ = try ByteDFA(pattern: "(a|b)*a(a|b){14}", stateLimit: 5000)
            Issue.record("expected tooManyStates")
        } catch {
            #expect(error == .tooManyStates(limit: 5000))
            #expect(error.description.contains("5000"))
        }
        #expect(throws: Never.self) { try ByteDFA(pattern: "(a|b)*a(a|b){8}", stateLimit: 5000) }
    }

    @Test func nfaSizeLimitIsAClearError() {
        // 1000 × 1000 copies of '.' (about ten byte-range nodes each) is far past the NFA limit.
        do {
            _ = try ByteDFA(pattern: "(.{1000}){1000}")
            Issue.record("expected tooLarge")
        } catch {
            guard case .tooLarge(_, let limit) = error else { Issue.record("expected tooLarge, got \(error)"); return }
            #expect(limit == 1_000_000)  // ByteNFA.defaultNodeLimit
        }
    }

    /// A pattern nested 20,000 groups deep (a hostile guided_regex) is refused at the limit instead
    /// of overflowing the stack of the thread that compiles it.
    @Test func deepNestingIsRefusedAtTheLimit() throws {
        let deep = String(repeating: "(", count: 20_000) + "a" + String(repeating: ")", count: 20_000)
        #expect(throws: RegexError.unsupported(construct: "groups nested more than \(RegexParser.nestingLimit) deep",
                                               offset: RegexParser.nestingLimit, hint: "flatten the pattern")) {
            try RegexParser.parse(deep)
        }
        let limit = String(repeating: "(", count: RegexParser.nestingLimit) + "a" + String(repeating: ")", count: RegexParser.nestingLimit)
        #expect(try ByteDFA(pattern: limit).matches(Array("a".utf8)))
    }
}

