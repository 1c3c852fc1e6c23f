// The context-free layer: GBNF parsing and its errors, sentences and non-sentences, the pushdown
// walk's mask against brute force (each token's bytes fed through the grammar) on the real and a
// synthetic vocabulary, and random constrained walks that never dead-end.
import Grammar
import Testing

/// JSON as a GBNF grammar written for these tests (llama.cpp's own grammars are checked against
/// llama.cpp in GBNFGoldenTests).
let jsonGBNF = #"""
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"""#

let arithmeticGBNF = #"""
# sums and products of integers in parentheses, nested without limit
root  ::= expr
expr  ::= term (("+" | "-") term)*
term  ::= factor (("*" | "/") factor)*
factor ::= [0-9]+ | "(" expr ")"
"""#

struct GrammarMatcherTests {
    static func byteMatcher(_ text: String) throws -> GrammarMatcher {
        try GrammarMatcher(grammar: GBNF.parse(text), trie: TokenTrie(tokenBytes: (0...255).map { [UInt8($0)] }))
    }

    @Test func sentencesAndNonSentences() throws {
        let json = try Self.byteMatcher(jsonGBNF)
        for yes in [#"{}"#, #"{"a":1}"#, #"{"a":[1,{"b":[[]]}],"c":"x\"y\u00e9"}"#, "{\n  \"k\": [true, false, null]\n}",
                    #"{"deep":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}"#, #"{"é":"日本"}"#] {
            #expect(json.matches(bytes: Array(yes.utf8)), "\(yes) is JSON")
        }
        for no in [#"{"#, #"{"a":}"#, #"{"a":1,}"#, #"[1]"#, #"{"a":01x}"#, #"{"a":[1}"#, "{\"a\":\"\u{1}\"}"] {
            #expect(!json.matches(bytes: Array(no.utf8)), "\(no) is not JSON")
        }
        let arithmetic = try Self.byteMatcher(arithmeticGBNF)
        for yes in ["1", "1+2*3", "((((1))))", "(1+(2*(3-4)))/5"] { #expect(arithmetic.matches(bytes: Array(yes.utf8)), "\(yes)") }
        for no in ["", "1+", "(1", "1)", "()", "1++2"] { #expect(!arithmetic.matches(bytes: Array(no.utf8)), "\(no)") }
        // A prefix is alive exactly when some sentence continues it.
        #expect(!arithmetic.advance(arithmetic.start, bytes: Array("((1+".utf8)).isDead)
        #expect(arithmetic.advance(arithmetic.start, bytes: Array("(1))".utf8)).isDead)
    }

    @Test func ambiguousAndNullableRules() throws {
        // Two parses of "ab" stay alive until they part; a nullable recursive rule (balanced
        // parentheses) finishes without reading.
        let ambiguous = try Self.byteMatcher(#"""
        root ::= x | y
        x ::= "a" "b" "c" | "(" x ")"
        y ::= "a" "b" "d" | "(" y ")"
        """#)
        let ab = ambiguous.advance(ambiguous.start, bytes: Array("((ab".utf8))
        #expect(ab.parseCount == 2)
        #expect(ambiguous.matches(bytes: Array("((abd))".utf8)))
        #expect(!ambiguous.matches(bytes: Array("((abd)".utf8)))
        let balanced = try Self.byteMatcher(#"""
        root ::= b
        b ::= "(" b ")" b |
        """#)
        for yes in ["", "()", "(())()", "((()())())"] { #expect(balanced.matches(bytes: Array(yes.utf8)), "\(yes)") }
        for no in ["(", ")(", "(()"] { #expect(!balanced.matches(bytes: Array(no.utf8)), "\(no)") }
    }

    @Test func malformedGrammarsAreTypedErrors() throws {
        func error(_ text: String) -> GrammarError? {
            do { _ = try GBNF.parse(text).automata(); return nil } catch { return error }
        }
        #expect(error("root ::= foo") == .undefinedRule(name: "foo", line: 1, column: 10))
        #expect(error("start ::= \"a\"") == .missingRoot(name: "root"))
        #expect(error("root ::= \"a\"\nroot ::= \"b\"") == .duplicateRule(name: "root", line: 2, column: 1))
        #expect(error("root ::= a\na ::= a \"x\" | \"y\"") == .leftRecursion(rules: ["a", "a"]))
        #expect(error("root ::= a\na ::= b \"x\"\nb ::= \"\" | a") == .leftRecursion(rules: ["a", "b", "a"]))
        #expect(error("root ::= [^\\x00-\\U0010FFFF]") == .matchesNothing(rule: "root"))
        guard case .syntax(_, 1, 10)? = error("root ::= \"abc") else { Issue.record("unterminated literal"); return }
        guard case .syntax(_, 1, 10)? = error("root ::= [z-a]") else { Issue.record("backwards range"); return }
        guard case .syntax(_, 2, _)? = error("root ::= x\nx ::= \"a\" )") else { Issue.record("stray ')'"); return }
        guard case .syntax(_, 1, _)? = error("root := \"a\"") else { Issue.record("':=' instead of '::='"); return }
        guard case .syntax(_, 1, _)? = error("root ::= \"\\q\"") else { Issue.record("unknown escape"); return }
        guard case .syntax(_, 1, _)? = error("root ::= \"a\"{3,2}") else { Issue.record("{3,2}"); return }
        guard case .unsupported? = error("root ::= <[42]>") else { Issue.record("token reference"); return }
        // Hostile shapes that would recurse once per level in every pass: refused, not a crashed thread.
        guard case .unsupported? = error("root ::= " + String(repeating: "(", count: 20_000) + "\"a\"" + String(repeating: ")", count: 20_000)) else {
            Issue.record("deep groups"); return
        }
        guard case .syntax? = error("root ::= \"a\"" + String(repeating: "?", count: 50_000)) else { Issue.record("stacked quantifiers"); return }
        let chain = "root ::= a0\n" + (0..<300).map { "a\($0) ::= \"x\" a\($0 + 1)" }.joined(separator: "\n") + "\na300 ::= \"y\"\n"
        guard case .tooLarge? = error(chain) else { Issue.record("a 300-rule chain"); return }
        let rules = "root ::= r0\n" + (0..<1000).map { "r\($0) ::= \"x\"" }.joined(separator: "\n") + "\n"
        guard case .tooLarge? = error(rules) else { Issue.record("1,001 rules"); return }
        // Comments, continuation lines inside parentheses and after '|', counted repetition forms.
        let g = try Self.byteMatcher("# a comment\nroot ::= (\n  \"a\"{2} |   # two a\n  \"b\"{,2} \"c\"{1,}\n) \"d\"? # end\n")
        for yes in ["aa", "aad", "c", "bbcccd"] { #expect(g.matches(bytes: Array(yes.utf8)), "\(yes)") }
        for no in ["a", "bbbc", "aac"] { #expect(!g.matches(bytes: Array(no.utf8)), "\(no)") }
    }

    /// Positions reached by random walks over allowed tokens (each walk ends at `steps` tokens or
    /// when only end of generation is left), with the check that no walk ever dead-ends: every
    /// position either allows a token or accepts.
    static func walkPositions(_ matcher: GrammarMatcher, walks: Int, steps: Int, rng: inout SeededRandom) -> [GrammarState] {
        var positions: [GrammarState] = []
        for _ in 0..<walks {
            var state = matcher.start
            for _ in 0..<steps {
                positions.append(state)
                let mask = matcher.mask(state: state)
                let ids = mask.allowedIDs
                if ids.isEmpty {
                    #expect(matcher.accepts(state), "a dead end: no token allowed and the output is not a sentence")
                    break
                }
                state = matcher.advance(state, token: ids.randomElement(using: &rng)!)
                #expect(!state.isDead)
            }
        }
        return positions
    }

    func bruteForce(_ matcher: GrammarMatcher, _ state: GrammarState) -> TokenMask {
        var mask = TokenMask(count: matcher.trie.vocabularySize)
        for id in 0..<matcher.trie.vocabularySize where !matcher.advance(state, token: id).isDead { mask.insert(id) }
        return mask
    }

    @Test func maskEqualsBruteForceOnASyntheticVocabulary() throws {
        let (trie, _, _) = try SyntheticVocabulary.make(seed: 11, extra: 3000)
        var rng = SeededRandom(seed: 5)
        for text in [jsonGBNF, arithmeticGBNF] {
            let matcher = try GrammarMatcher(grammar: GBNF.parse(text), trie: trie)
            let positions = Self.walkPositions(matcher, walks: 6, steps: 40, rng: &rng)
            #expect(positions.count > 60)
            for p in positions.shuffled(using: &rng).prefix(40) {
                #expect(matcher.computeMask(state: p) == bruteForce(matcher, p))
            }
        }
    }

    @Test func maskEqualsBruteForceOnTheRealVocabulary() throws {
        let trie = try RealVocabulary.trie()
        var rng = SeededRandom(seed: 6)
        for text in [jsonGBNF, arithmeticGBNF] {
            let matcher = try GrammarMatcher(grammar: GBNF.parse(text), trie: trie)
            let positions = Self.walkPositions(matcher, walks: 4, steps: 30, rng: &rng)
            // Brute force costs a pass over 49,152 tokens per position: a sample.
            for p in positions.shuffled(using: &rng).prefix(6) {
                let mask = matcher.computeMask(state: p)
                #expect(mask == bruteForce(matcher, p))
                #expect(mask == matcher.mask(state: p))  // the cached path
            }
        }
    }
}
