// Pattern text → RegexNode. A recursive-descent parser over the pattern's Unicode scalars for the
// subset structured output needs (vLLM's guided_regex, JSON Schema `pattern`): literals, escapes
// (\d \w \s \D \W \S, \n \t \r \f \v \0, \xHH, \uXXXX with surrogate pairs, \u{...}, escaped
// punctuation), classes with ranges and negation, `.`, groups `( )` `(?: )` `(?P<n> )` `(?<n> )`,
// alternation, `* + ?` (a lazy `?` after them is accepted: it does not change what matches whole),
// `{m}` `{m,}` `{m,n}`. Matching is always of the whole string, so `^` at the very start and `$` at
// the very end are accepted as no-ops; anything that needs context (backreferences, lookaround,
// \b, anchors elsewhere) is refused with its offset, since a DFA over bytes cannot express it.

public enum RegexParser {
    /// The largest count `{m,n}` accepts; past this a DFA would be unreasonably large anyway.
    public static let repetitionLimit = 1000
    /// How deep groups may nest.
    public static let nestingLimit = 100

    public static func parse(_ pattern: String) throws(RegexError) -> RegexNode {
        var parser = State(scalars: Array(pattern.unicodeScalars))
        return try parser.parseWhole()
    }

    struct State {
        let scalars: [Unicode.Scalar]
        var i = 0
        var depth = 0

        init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

        var atEnd: Bool { i >= scalars.count }
        var peek: Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

        mutating func parseWhole() throws(RegexError) -> RegexNode {
            if peek == "^" { i += 1 }
            let node = try parseAlternation()
            if !atEnd {
                // Only an unmatched ')' can stop the top-level alternation early.
                throw .syntax(message: "unmatched ')'", offset: i)
            }
            return node
        }

        mutating func parseAlternation() throws(RegexError) -> RegexNode {
            var branches = [try parseConcatenation()]
            while peek == "|" {
                i += 1
                branches.append(try parseConcatenation())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseConcatenation() throws(RegexError) -> RegexNode {
            var items: [RegexNode] = []
            while let c = peek, c != "|", c != ")" {
                if c == "$" {
                    // A trailing `$` is the implicit end anchor; anywhere else it needs context.
                    if i == scalars.count - 1 && depth == 0 { i += 1; break }
                    throw .unsupported(construct: "'$' anchor inside the pattern", offset: i,
                                       hint: "matching is always of the whole output; remove it, or escape it as \\$ for a dollar sign")
                }
                if c == "^" {
                    throw .unsupported(construct: "'^' anchor inside the pattern", offset: i,
                                       hint: "matching is always of the whole output; remove it, or escape it as \\^")
                }
                var atom = try parseAtom()
                atom = try parseQuantifiers(atom)
                items.append(atom)
            }
            switch items.count {
            case 0: return .empty
            case 1: return items[0]
            default: return .concatenation(items)
            }
        }

        /// At most one quantifier after an atom, then at most one lazy `?`: `a*?` is lazy (the same
        /// language), `a*+` possessive (a different language, refused), `a**` an error as in Python.
        mutating func parseQuantifiers(_ atom: RegexNode) throws(RegexError) -> RegexNode {
            func isQuantifier(_ c: Unicode.Scalar?) -> Bool { c == "*" || c == "+" || c == "?" || c == "{" }
            guard isQuantifier(peek) else { return atom }
            let node: RegexNode
            switch peek! {
            case "*": i += 1; node = .repetition(atom, min: 0, max: nil)
            case "+": i += 1; node = .repetition(atom, min: 1, max: nil)
            case "?": i += 1; node = .repetition(atom, min: 0, max: 1)
            default:
                let (lo, hi) = try parseCount()
                node = .repetition(atom, min: lo, max: hi)
            }
            if peek == "?" {
                i += 1
            } else if peek == "+" {
                throw .unsupported(construct: "possessive quantifier", offset: i,
                                   hint: "possessive matching refuses strings a DFA would accept; use a plain quantifier")
            }
            if isQuantifier(peek) {
                throw .syntax(message: "multiple repeat ('\(peek!)' after a quantifier; group the inner part first)", offset: i)
            }
            return node
        }

        /// `{m}`, `{m,}`, `{m,n}` at `i`.
        mutating func parseCount() throws(RegexError) -> (Int, Int?) {
            let open = i
            i += 1
            func number(_ s: inout State) throws(RegexError) -> Int? {
                var value: Int? = nil
                while let c = s.peek, ("0"..."9").contains(c) {
                    let digit = Int(c.value - 0x30)
                    value = (value ?? 0) * 10 + digit
                    if value! > RegexParser.repetitionLimit {
                        throw .invalidRepetition(message: "repetition count larger than \(RegexParser.repetitionLimit)",
                                                 offset: open, limit: RegexParser.repetitionLimit)
                    }
                    s.i += 1
                }
                return value
            }
            guard let lo = try number(&self) else {
                throw .syntax(message: "expected a count after '{' (write \\{ for a literal brace)", offset: open)
            }
            var hi: Int? = lo
            if peek == "," {
                i += 1
                hi = try number(&self)
            }
            guard peek == "}" else {
                throw .syntax(message: "expected '}' to close the repetition count", offset: i)
            }
            i += 1
            if let hi, hi < lo {
                throw .invalidRepetition(message: "{\(lo),\(hi)} has its maximum below its minimum", offset: open,
                                         limit: RegexParser.repetitionLimit)
            }
            return (lo, hi)
        }

        mutating func parseAtom() throws(RegexError) -> RegexNode {
            let at = i
            let c = scalars[i]
            switch c {
            case "(":
                return try parseGroup()
            case "[":
                return .set(try parseClass())
            case ".":
                i += 1
                return .set(ScalarSet.dot)
            case "\\":
                return .set(try parseEscape(inClass: false))
            case "*", "+", "?":
                throw .syntax(message: "nothing to repeat before '\(c)'", offset: at)
            case "{":
                throw .syntax(message: "nothing to repeat before '{' (write \\{ for a literal brace)", offset: at)
            case "]", "}":
                // Python reads a stray ']' or '}' as a literal; ICU and JavaScript's /u refuse it.
                // Refusing keeps one meaning across engines.
                throw .syntax(message: "unescaped '\(c)' (write \\\(c) for the character)", offset: at)
            default:
                i += 1
                return .set(.scalar(c.value))
            }
        }

        mutating func parseGroup() throws(RegexError) -> RegexNode {
            let open = i
            i += 1
            if peek == "?" {
                i += 1
                let kind = peek
                switch kind {
                case ":":
                    i += 1
                case "P" where i + 1 < scalars.count && scalars[i + 1] == "<":
                    i += 2
                    try skipGroupName(open: open)
                case "<" where i + 1 < scalars.count && scalars[i + 1] != "=" && scalars[i + 1] != "!":
                    i += 1
                    try skipGroupName(open: open)
                case "=", "!":
                    throw .unsupported(construct: "lookahead (?\(kind!)", offset: open,
                                       hint: "a DFA cannot look ahead; write the constraint into the pattern itself")
                case "<":
                    throw .unsupported(construct: "lookbehind (?<\(scalars[i + 1])", offset: open,
                                       hint: "a DFA cannot look behind; write the constraint into the pattern itself")
                case ">":
                    throw .unsupported(construct: "atomic group (?>", offset: open,
                                       hint: "atomic groups change what matches; use a plain group")
                case "P" where i + 1 < scalars.count && scalars[i + 1] == "=":
                    throw .unsupported(construct: "named backreference (?P=", offset: open,
                                       hint: "backreferences are not regular; spell the repeated text out")
                case "#":
                    throw .unsupported(construct: "comment group (?#", offset: open, hint: "remove the comment")
                default:
                    throw .unsupported(construct: "inline flags or group syntax '(?\(kind.map { String($0) } ?? "")'", offset: open,
                                       hint: "only ( ), (?: ), (?P<name> ) and (?<name> ) groups are supported")
                }
            }
            depth += 1
            // The parse, and every pass over the tree after it, recurses once per level: a bound keeps
            // a hostile pattern ("(((((...") from overflowing a thread's stack.
            guard depth <= RegexParser.nestingLimit else {
                throw .unsupported(construct: "groups nested more than \(RegexParser.nestingLimit) deep", offset: open,
                                   hint: "flatten the pattern")
            }
            let inner = try parseAlternation()
            depth -= 1
            guard peek == ")" else {
                throw .syntax(message: "'(' is never closed", offset: open)
            }
            i += 1
            return inner
        }

        mutating func skipGroupName(open: Int) throws(RegexError) {
            let start = i
            while let c = peek, c != ">" {
                guard c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" else {
                    throw .syntax(message: "invalid character in a group name", offset: i)
                }
                i += 1
            }
            guard peek == ">", i > start else {
                throw .syntax(message: "expected a group name and '>'", offset: open)
            }
            i += 1
        }

        /// `[...]` at `i`.
        mutating func parseClass() throws(RegexError) -> ScalarSet {
            let open = i
            i += 1
            var negated = false
            if peek == "^" { negated = true; i += 1 }
            var set = ScalarSet()
            var first = true
            while true {
                guard let c = peek else {
                    throw .syntax(message: "'[' is never closed", offset: open)
                }
                if c == "]" && !first { i += 1; break }
                first = false
                if c == "[" {
                    throw .unsupported(construct: "'[' inside a class", offset: i,
                                       hint: "nested classes and POSIX [:name:] are not supported; write \\[ for a bracket")
                }
                let itemStart = i
                let low = try parseClassItem()
                if peek == "-", i + 1 < scalars.count, scalars[i + 1] != "]" {
                    // A range needs single characters at both ends.
                    guard let lowScalar = low.single else {
                        throw .syntax(message: "a class shorthand cannot start a range", offset: itemStart)
                    }
                    i += 1
                    let highStart = i
                    guard peek != "[" else {
                        throw .unsupported(construct: "'[' inside a class", offset: i,
                                           hint: "write \\[ for a bracket")
                    }
                    let high = try parseClassItem()
                    guard let highScalar = high.single else {
                        throw .syntax(message: "a class shorthand cannot end a range", offset: highStart)
                    }
                    guard lowScalar <= highScalar else {
                        throw .invalidRange(low: describe(lowScalar), high: describe(highScalar), offset: itemStart)
                    }
                    set.insert(lowScalar...highScalar)
                } else {
                    set.formUnion(low.set)
                }
            }
            return negated ? set.inverted() : set
        }

        enum ClassItem {
            case scalar(UInt32)
            case shorthand(ScalarSet)
            var single: UInt32? { if case .scalar(let v) = self { return v } else { return nil } }
            var set: ScalarSet {
                switch self {
                case .scalar(let v): return .scalar(v)
                case .shorthand(let s): return s
                }
            }
        }

        mutating func parseClassItem() throws(RegexError) -> ClassItem {
            let c = scalars[i]
            if c == "\\" {
                let set = try parseEscape(inClass: true)
                if set.ranges.count == 1, set.ranges[0].lowerBound == set.ranges[0].upperBound {
                    return .scalar(set.ranges[0].lowerBound)
                }
                return .shorthand(set)
            }
            i += 1
            return .scalar(c.value)
        }

        /// A backslash escape at `i`, as the set of scalars it stands for.
        mutating func parseEscape(inClass: Bool) throws(RegexError) -> ScalarSet {
            let at = i
            i += 1
            guard let c = peek else {
                throw .syntax(message: "pattern ends with a lone backslash", offset: at)
            }
            i += 1
            switch c {
            case "d": return ScalarSet.digit
            case "D": return ScalarSet.digit.inverted()
            case "w": return ScalarSet.word
            case "W": return ScalarSet.word.inverted()
            case "s": return ScalarSet.space
            case "S": return ScalarSet.space.inverted()
            case "n": return .scalar(0x0A)
            case "t": return .scalar(0x09)
            case "r": return .scalar(0x0D)
            case "f": return .scalar(0x0C)
            case "v": return .scalar(0x0B)
            case "0": return .scalar(0)
            case "x":
                return .scalar(try hexDigits(count: 2, escapeAt: at))
            case "u":
                if peek == "{" {
                    i += 1
                    var value: UInt32 = 0
                    var digits = 0
                    while let h = peek, let d = hexValue(h) {
                        value = value * 16 + d; digits += 1; i += 1
                        if digits > 6 { break }
                    }
                    guard digits > 0, digits <= 6, peek == "}" else {
                        throw .syntax(message: "expected 1 to 6 hex digits and '}' in \\u{...}", offset: at)
                    }
                    i += 1
                    return try scalarSet(value, escapeAt: at)
                }
                let value = try hexDigits(count: 4, escapeAt: at)
                // A UTF-16 surrogate pair written as two escapes (as JSON writes one) is one scalar.
                if (0xD800...0xDBFF).contains(value), i + 1 < scalars.count, scalars[i] == "\\", scalars[i + 1] == "u" {
                    let save = i
                    i += 2
                    if let low = try? hexDigits(count: 4, escapeAt: save), (0xDC00...0xDFFF).contains(low) {
                        return .scalar(0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00))
                    }
                    i = save
                }
                return try scalarSet(value, escapeAt: at)
            case "1"..."9":
                throw .unsupported(construct: "backreference \\\(c)", offset: at,
                                   hint: "backreferences are not regular; spell the repeated text out")
            case "b" where inClass:
                throw .unsupported(construct: "\\b (backspace) in a class", offset: at, hint: "write \\x08")
            case "b", "B":
                throw .unsupported(construct: "word boundary \\\(c)", offset: at,
                                   hint: "a DFA over bytes has no boundaries; spell out the characters on each side")
            case "A", "z", "Z", "G":
                throw .unsupported(construct: "anchor \\\(c)", offset: at,
                                   hint: "matching is always of the whole output; remove it")
            case "p", "P":
                throw .unsupported(construct: "Unicode property \\\(c)", offset: at,
                                   hint: "write the property as explicit ranges, e.g. [a-zA-Zà-ÿ]")
            case "k":
                throw .unsupported(construct: "named backreference \\k", offset: at,
                                   hint: "backreferences are not regular; spell the repeated text out")
            default:
                // Any escaped ASCII punctuation or space is itself; an escaped letter or digit we do
                // not know is an error rather than a guess (engines disagree about them).
                if c.isASCII, !c.properties.isAlphabetic, !("0"..."9").contains(c) {
                    return .scalar(c.value)
                }
                if !c.isASCII { return .scalar(c.value) }
                throw .unsupported(construct: "escape \\\(c)", offset: at,
                                   hint: "supported escapes are \\d \\w \\s \\D \\W \\S \\n \\t \\r \\f \\v \\0 \\xHH \\uXXXX \\u{...} and escaped punctuation")
            }
        }

        mutating func hexDigits(count: Int, escapeAt: Int) throws(RegexError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<count {
                guard let h = peek, let d = hexValue(h) else {
                    throw .syntax(message: "expected \(count) hex digits in the escape", offset: escapeAt)
                }
                value = value * 16 + d
                i += 1
            }
            return value
        }

        func scalarSet(_ value: UInt32, escapeAt: Int) throws(RegexError) -> ScalarSet {
            guard value <= ScalarSet.maxScalar, !ScalarSet.surrogates.contains(value) else {
                throw .syntax(message: "escape names U+\(String(value, radix: 16, uppercase: true)), which is not a Unicode scalar "
                    + "(a lone surrogate or beyond U+10FFFF)", offset: escapeAt)
            }
            return .scalar(value)
        }

        func hexValue(_ c: Unicode.Scalar) -> UInt32? {
            switch c {
            case "0"..."9": return c.value - 0x30
            case "a"..."f": return c.value - 0x61 + 10
            case "A"..."F": return c.value - 0x41 + 10
            default: return nil
            }
        }

        func describe(_ v: UInt32) -> String {
            if let s = Unicode.Scalar(v), v >= 0x20, v != 0x7F { return "'\(Character(s))'" }
            return "U+" + String(v, radix: 16, uppercase: true)
        }
    }
}
