// GBNF text (llama.cpp's grammar format, as its server's `grammar` field takes it) → a
// ContextFreeGrammar. The syntax follows llama.cpp's grammar parser:
//
//     root  ::= answer ws ("," ws answer)*     # a comment runs to the end of the line
//     answer ::= "yes" | "no" | [0-9]{1,3}
//     ws    ::= [ \t\n]*
//
// - A rule is `name ::= alternatives`; names are letters, digits and '-'. A rule ends at a newline,
//   except after `::=` or `|` and inside parentheses, where newlines are whitespace.
// - Terms: `"literal"`, `[class]` / `[^class]` with ranges, `.` (any character), a rule name,
//   `( ... )`; after a term `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`, `{,n}`.
// - Escapes in literals and classes: \n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH.
// - Characters are Unicode scalars (the automata read their UTF-8); `.` and negated classes match
//   any scalar, newline included, as in llama.cpp.
// Generation starts from `root` unless another root is named. Token references (`<[id]>`,
// `<name>`), which recent llama.cpp accepts, are refused: lorad's constraints are over text.

public enum GBNF {
    public static func parse(_ text: String, root: String = "root") throws(GrammarError) -> ContextFreeGrammar {
        var parser = GBNFParser(scalars: Array(text.unicodeScalars))
        try parser.parseRules()
        return try parser.grammar(root: root)
    }
}

struct GBNFParser {
    let scalars: [Unicode.Scalar]
    var i = 0
    var names: [String] = []
    var index: [String: Int] = [:]
    var bodies: [RegexNode?] = []
    /// Where each rule was first used (a scalar offset: `position` counts lines only when an
    /// error needs them, since counting per reference made a large grammar quadratic).
    var firstUse: [Int: Int] = [:]
    var nesting = 0

    init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

    var peek: Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

    func position(_ at: Int) -> (line: Int, column: Int) {
        var line = 1, column = 1
        for k in 0..<min(at, scalars.count) {
            if scalars[k] == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    func syntax(_ message: String, at: Int? = nil) -> GrammarError {
        let p = position(at ?? i)
        return .syntax(message: message, line: p.line, column: p.column)
    }

    mutating func ruleID(_ name: String) throws(GrammarError) -> Int {
        if let id = index[name] { return id }
        // Refused here rather than after parsing a grammar of a million rule names.
        guard names.count < ContextFreeGrammar.ruleLimit else {
            throw .tooLarge(message: "more than \(ContextFreeGrammar.ruleLimit) rules")
        }
        index[name] = names.count
        names.append(name)
        bodies.append(nil)
        return names.count - 1
    }

    static func isWordChar(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "-"
    }

    /// Spaces, tabs and comments; newlines too when `newlines`.
    mutating func skipSpace(newlines: Bool) {
        while let c = peek {
            if c == " " || c == "\t" {
                i += 1
            } else if c == "#" {
                while let d = peek, d != "\n", d != "\r" { i += 1 }
            } else if newlines && (c == "\n" || c == "\r") {
                i += 1
            } else {
                return
            }
        }
    }

    mutating func parseName() throws(GrammarError) -> String {
        let begin = i
        while let c = peek, GBNFParser.isWordChar(c) { i += 1 }
        guard i > begin else { throw syntax("expected a rule name (letters, digits and '-')") }
        return String(String.UnicodeScalarView(scalars[begin..<i]))
    }

    mutating func parseRules() throws(GrammarError) {
        skipSpace(newlines: true)
        while peek != nil {
            let at = i
            let name = try parseName()
            skipSpace(newlines: false)
            guard i + 3 <= scalars.count, scalars[i] == ":", scalars[i + 1] == ":", scalars[i + 2] == "=" else {
                throw syntax("expected '::=' after the rule name '\(name)'")
            }
            i += 3
            skipSpace(newlines: true)
            let id = try ruleID(name)
            if bodies[id] != nil {
                let p = position(at)
                throw .duplicateRule(name: name, line: p.line, column: p.column)
            }
            bodies[id] = try parseAlternates(nested: false)
            if let c = peek {
                guard c == "\n" || c == "\r" else {
                    throw syntax("expected the end of the line after rule '\(name)', found '\(c)'")
                }
            }
            skipSpace(newlines: true)
        }
    }

    mutating func parseAlternates(nested: Bool) throws(GrammarError) -> RegexNode {
        var branches = [try parseSequence(nested: nested)]
        while peek == "|" {
            i += 1
            skipSpace(newlines: true)
            branches.append(try parseSequence(nested: nested))
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    mutating func parseSequence(nested: Bool) throws(GrammarError) -> RegexNode {
        var items: [RegexNode] = []
        // Whether the last item is a repetition: stacking them ("a"*?{2}...) nests one tree level
        // per quantifier, which a hostile grammar could repeat until the stack overflows.
        var quantified = false
        while let c = peek {
            let at = i
            let isQuantifier = c == "*" || c == "+" || c == "?" || c == "{"
            if c == "\"" {
                i += 1
                var literal: [RegexNode] = []
                while true {
                    guard let d = peek, d != "\n" else { throw syntax("unterminated string literal", at: at) }
                    if d == "\"" { i += 1; break }
                    literal.append(.set(.scalar(try parseChar())))
                }
                items.append(literal.count == 1 ? literal[0] : .concatenation(literal))
            } else if c == "[" {
                i += 1
                var negated = false
                if peek == "^" { negated = true; i += 1 }
                var set = ScalarSet()
                while true {
                    guard let d = peek else { throw syntax("unterminated character class", at: at) }
                    if d == "]" { i += 1; break }
                    let low = try parseChar()
                    if peek == "-", i + 1 < scalars.count, scalars[i + 1] != "]" {
                        i += 1
                        let high = try parseChar()
                        guard low <= high else {
                            throw syntax("character range runs backwards (expected the low end first)", at: at)
                        }
                        set.insert(low...high)
                    } else {
                        set.insert(low...low)
                    }
                }
                items.append(.set(negated ? set.inverted() : set))
            } else if GBNFParser.isWordChar(c) {
                let name = try parseName()
                let id = try ruleID(name)
                if firstUse[id] == nil { firstUse[id] = at }
                items.append(.nonterminal(id))
            } else if c == "(" {
                i += 1
                nesting += 1
                // Every pass over the tree recurses once per level: bounded, as in RegexParser.
                guard nesting <= RegexParser.nestingLimit else {
                    let p = position(at)
                    throw .unsupported(construct: "groups nested more than \(RegexParser.nestingLimit) deep", line: p.line,
                                       column: p.column, hint: "move inner groups into rules of their own")
                }
                skipSpace(newlines: true)
                let inner = try parseAlternates(nested: true)
                guard peek == ")" else { throw syntax("expected ')' to close the group", at: at) }
                i += 1
                nesting -= 1
                items.append(inner)
            } else if c == "." {
                i += 1
                items.append(.set(.all))
            } else if c == "*" || c == "+" || c == "?" {
                guard let last = items.popLast() else { throw syntax("'\(c)' has no item before it to repeat") }
                if quantified { throw syntax("'\(c)' repeats a repetition; group the inner part first, e.g. (\"a\"*)?") }
                i += 1
                items.append(.repetition(last, min: c == "+" ? 1 : 0, max: c == "?" ? 1 : nil))
            } else if c == "{" {
                guard let last = items.popLast() else { throw syntax("'{' has no item before it to repeat") }
                if quantified { throw syntax("'{' repeats a repetition; group the inner part first, e.g. (\"a\"*){2}") }
                i += 1
                skipSpace(newlines: nested)
                var low = 0
                if let d = peek, ("0"..."9").contains(d) { low = try parseCount() }
                else if peek != "," { throw syntax("expected a count after '{'") }
                skipSpace(newlines: nested)
                var high: Int? = low
                if peek == "," {
                    i += 1
                    skipSpace(newlines: nested)
                    high = nil
                    if let d = peek, ("0"..."9").contains(d) {
                        high = try parseCount()
                        skipSpace(newlines: nested)
                    }
                }
                guard peek == "}" else { throw syntax("expected '}' to close the repetition count") }
                i += 1
                if let high, high < low { throw syntax("repetition {\(low),\(high)}: the maximum is below the minimum", at: at) }
                items.append(.repetition(last, min: low, max: high))
            } else if c == "<" {
                let p = position(at)
                throw .unsupported(construct: "a token reference '<...>'", line: p.line, column: p.column,
                                   hint: "write the token's text as a string literal")
            } else {
                break
            }
            quantified = isQuantifier
            skipSpace(newlines: nested)
        }
        return items.count == 1 ? items[0] : items.isEmpty ? .empty : .concatenation(items)
    }

    mutating func parseCount() throws(GrammarError) -> Int {
        let at = i
        var value = 0
        while let d = peek, ("0"..."9").contains(d) {
            value = value * 10 + Int(d.value - 48)
            guard value <= RegexParser.repetitionLimit else {
                throw syntax("a repetition count above \(RegexParser.repetitionLimit)", at: at)
            }
            i += 1
        }
        return value
    }

    /// One character of a literal or class, escapes decoded.
    mutating func parseChar() throws(GrammarError) -> UInt32 {
        let at = i
        guard let c = peek else { throw syntax("unexpected end of the grammar") }
        i += 1
        guard c == "\\" else { return c.value }
        guard let e = peek else { throw syntax("unexpected end of the grammar after '\\'") }
        i += 1
        switch e {
        case "n": return 0x0A
        case "r": return 0x0D
        case "t": return 0x09
        case "x", "u", "U":
            let digits = e == "x" ? 2 : e == "u" ? 4 : 8
            var value: UInt32 = 0
            for _ in 0..<digits {
                guard let h = peek, h.isASCII, let v = UInt32(String(h), radix: 16) else { throw syntax("expected \(digits) hexadecimal digits after '\\\(e)'", at: at) }
                value = value << 4 | v
                i += 1
            }
            guard value <= ScalarSet.maxScalar, !(0xD800...0xDFFF).contains(value) else {
                throw syntax("'\\\(e)' names U+\(String(value, radix: 16, uppercase: true)), which is not a Unicode scalar", at: at)
            }
            return value
        case "\\", "\"", "[", "]", "-", "^", "/", "'", ".", "(", ")", "{", "}", "*", "+", "?", "|", "#", " ":
            return e.value
        default:
            throw syntax("unknown escape '\\\(e)' (expected \\n \\r \\t \\\\ \\\" \\[ \\] \\xHH \\uHHHH or \\UHHHHHHHH)", at: at)
        }
    }

    func grammar(root: String) throws(GrammarError) -> ContextFreeGrammar {
        for (id, body) in bodies.enumerated() where body == nil && names[id] != root {
            let p = firstUse[id].map(position) ?? (line: 0, column: 0)
            throw .undefinedRule(name: names[id], line: p.line, column: p.column)
        }
        guard let rootID = index[root], bodies[rootID] != nil else { throw .missingRoot(name: root) }
        return ContextFreeGrammar(names: names, rules: bodies.map { $0! }, root: rootID)
    }
}
