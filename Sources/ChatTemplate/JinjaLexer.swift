// Jinja lexer: template source -> tokens, with the whitespace rules Hugging Face's chat templates
// are rendered with (jinja2 Environment(trim_blocks=True, lstrip_blocks=True),
// keep_trailing_newline=False, default delimiters).
//
// Follows jinja2 3.1's lexer.py rule by rule, because chat templates depend on its exact
// whitespace behaviour:
// - newlines ("\r\n", "\r", "\n") become "\n" and one trailing newline of the source is dropped;
// - `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all whitespace after;
// - trim_blocks: one "\n" right after `%}` or `#}` is removed (`+%}` keeps it);
// - lstrip_blocks: spaces and tabs between the start of a line and `{%` or `{#` are removed
//   (`{%+` keeps them); never before `{{`;
// - `{% raw %}...{% endraw %}` is copied verbatim;
// - inside a tag, `%}`/`}}` only end the tag when (), [] and {} are balanced.
// "Whitespace" is Python's str.isspace(), which is what jinja2's `\s` and `rstrip()` use.

struct JinjaToken: Sendable {
    enum Kind: Sendable, Equatable {
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        /// An operator or bracket, spelled as in the source: "+", "//", "==", "(", ...
        case op(String)
        case eof
    }

    var kind: Kind
    var at: TemplateLocation
}

struct JinjaLexer {
    private let src: [Unicode.Scalar]
    private let lineStarts: [Int]
    private var tokens: [JinjaToken] = []

    /// Tokenizes a whole template.
    static func tokenize(_ source: String) throws -> [JinjaToken] {
        var lexer = JinjaLexer(source: source)
        try lexer.run()
        return lexer.tokens
    }

    private init(source: String) {
        // Newline normalization and dropping one trailing newline (keep_trailing_newline=False),
        // as jinja2's tokeniter does before anything else.
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(source.unicodeScalars.count)
        var previousWasCR = false
        for s in source.unicodeScalars {
            if s == "\r" {
                out.append("\n")
                previousWasCR = true
                continue
            }
            if s == "\n" && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = false
            out.append(s)
        }
        if out.last == "\n" { out.removeLast() }
        src = out
        var starts = [0]
        for (i, s) in out.enumerated() where s == "\n" { starts.append(i + 1) }
        lineStarts = starts
    }

    private func location(_ index: Int) -> TemplateLocation {
        // The last line start <= index.
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return TemplateLocation(line: lo + 1, column: index - lineStarts[lo] + 1)
    }

    private func syntaxError(_ message: String, at index: Int) -> ChatTemplateError {
        .syntax(message: message, at: location(index))
    }

    private func text(_ range: Range<Int>, droppingUnderscores: Bool = false) -> String {
        var s = String.UnicodeScalarView()
        for c in src[range] where !(droppingUnderscores && c == "_") { s.append(c) }
        return String(s)
    }

    private func matches(_ literal: String, at index: Int) -> Bool {
        var i = index
        for s in literal.unicodeScalars {
            guard i < src.count, src[i] == s else { return false }
            i += 1
        }
        return true
    }

    private func skipSpace(from index: Int) -> Int {
        var i = index
        while i < src.count, PythonText.isSpace(src[i]) { i += 1 }
        return i
    }

    // MARK: - Root state

    private mutating func run() throws {
        var pos = 0
        // jinja2's `line_starting`: did the previous match end with "\n"? (True at the start.)
        var lineStarting = true
        while pos < src.count {
            guard let tagStart = nextTagStart(from: pos) else {
                emitData(pos..<src.count)
                break
            }
            let kind = src[tagStart + 1]
            var afterDelimiter = tagStart + 2
            var sign: Unicode.Scalar? = nil
            if afterDelimiter < src.count, src[afterDelimiter] == "-" || src[afterDelimiter] == "+" {
                sign = src[afterDelimiter]
                afterDelimiter += 1
            }
            let rawEnd = kind == "%" ? rawBeginEnd(at: tagStart) : nil

            // Whitespace control on the text before the tag.
            var textEnd = tagStart
            if sign == "-" {
                while textEnd > pos, PythonText.isSpace(src[textEnd - 1]) { textEnd -= 1 }
            } else if sign != "+" && kind != "{" {
                textEnd = lstripped(pos..<tagStart, lineStarting: lineStarting)
            }
            emitData(pos..<textEnd)

            if let rawEnd {
                (pos, lineStarting) = try lexRaw(bodyStart: rawEnd, lineStarting: rawEnd > 0 && src[rawEnd - 1] == "\n",
                                                 openedAt: tagStart)
                continue
            }
            switch kind {
            case "#":
                (pos, lineStarting) = try lexComment(from: afterDelimiter, openedAt: tagStart)
            case "%":
                tokens.append(JinjaToken(kind: .blockBegin, at: location(tagStart)))
                (pos, lineStarting) = try lexTag(from: afterDelimiter, isBlock: true, openedAt: tagStart)
            default:
                tokens.append(JinjaToken(kind: .variableBegin, at: location(tagStart)))
                (pos, lineStarting) = try lexTag(from: afterDelimiter, isBlock: false, openedAt: tagStart)
            }
        }
        tokens.append(JinjaToken(kind: .eof, at: location(src.count)))
    }

    private func nextTagStart(from pos: Int) -> Int? {
        var p = pos
        while p + 1 < src.count {
            if src[p] == "{" {
                let next = src[p + 1]
                if next == "{" || next == "%" || next == "#" { return p }
            }
            p += 1
        }
        return nil
    }

    private mutating func emitData(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        tokens.append(JinjaToken(kind: .data(text(range)), at: location(range.lowerBound)))
    }

    /// lstrip_blocks: if only whitespace stands between the last line start and the tag, drop it.
    /// jinja2 also counts the start of the text as a line start when the previous match ended
    /// with a newline.
    private func lstripped(_ range: Range<Int>, lineStarting: Bool) -> Int {
        var lineStart = range.lowerBound
        var hasNewline = false
        var i = range.upperBound
        while i > range.lowerBound {
            if src[i - 1] == "\n" {
                lineStart = i
                hasNewline = true
                break
            }
            i -= 1
        }
        guard hasNewline || lineStarting, lineStart < range.upperBound else { return range.upperBound }
        for j in lineStart..<range.upperBound where !PythonText.isSpace(src[j]) { return range.upperBound }
        return lineStart
    }

    // MARK: - Comments and raw blocks

    private func lexComment(from start: Int, openedAt: Int) throws -> (Int, Bool) {
        var q = start
        while q < src.count {
            if src[q] == "+" && matches("#}", at: q + 1) {
                return (q + 3, false)
            }
            if src[q] == "-" && matches("#}", at: q + 1) {
                let end = skipSpace(from: q + 3)
                return (end, src[end - 1] == "\n")
            }
            if src[q] == "#" && matches("}", at: q + 1) {
                var end = q + 2
                if end < src.count, src[end] == "\n" { end += 1 }  // trim_blocks
                return (end, src[end - 1] == "\n")
            }
            q += 1
        }
        throw syntaxError("missing end of comment tag: the comment opened here has no '#}'", at: openedAt)
    }

    /// If `{%[-+]? raw (-%}|%})` starts at `index`, the index after it (jinja2 applies no
    /// trim_blocks here, only the `-%}` strip).
    private func rawBeginEnd(at index: Int) -> Int? {
        var i = index + 2
        if i < src.count, src[i] == "-" || src[i] == "+" { i += 1 }
        i = skipSpace(from: i)
        guard matches("raw", at: i) else { return nil }
        i = skipSpace(from: i + 3)
        if matches("-%}", at: i) { return skipSpace(from: i + 3) }
        if matches("%}", at: i) { return i + 2 }
        return nil
    }

    private mutating func lexRaw(bodyStart: Int, lineStarting: Bool, openedAt: Int) throws -> (Int, Bool) {
        var q = bodyStart
        while q + 1 < src.count {
            if src[q] == "{" && src[q + 1] == "%" {
                var i = q + 2
                var sign: Unicode.Scalar? = nil
                if i < src.count, src[i] == "-" || src[i] == "+" {
                    sign = src[i]
                    i += 1
                }
                i = skipSpace(from: i)
                if matches("endraw", at: i) {
                    i = skipSpace(from: i + 6)
                    var end: Int? = nil
                    if matches("+%}", at: i) {
                        end = i + 3
                    } else if matches("-%}", at: i) {
                        end = skipSpace(from: i + 3)
                    } else if matches("%}", at: i) {
                        end = i + 2
                        if end! < src.count, src[end!] == "\n" { end! += 1 }
                    }
                    if let end {
                        var textEnd = q
                        if sign == "-" {
                            while textEnd > bodyStart, PythonText.isSpace(src[textEnd - 1]) { textEnd -= 1 }
                        } else if sign != "+" {
                            textEnd = lstripped(bodyStart..<q, lineStarting: lineStarting)
                        }
                        emitData(bodyStart..<textEnd)
                        return (end, src[end - 1] == "\n")
                    }
                }
            }
            q += 1
        }
        throw syntaxError("missing end of raw directive: '{% raw %}' here has no '{% endraw %}'", at: openedAt)
    }

    // MARK: - Inside {{ }} and {% %}

    private mutating func lexTag(from start: Int, isBlock: Bool, openedAt: Int) throws -> (Int, Bool) {
        var pos = start
        var brackets: [Unicode.Scalar] = []
        while true {
            guard pos < src.count else {
                throw syntaxError("unexpected end of template: the tag opened here is never closed with "
                                  + (isBlock ? "'%}'" : "'}}'"), at: openedAt)
            }
            if brackets.isEmpty {
                if let (end, lineStarting) = tagEnd(at: pos, isBlock: isBlock) {
                    tokens.append(JinjaToken(kind: isBlock ? .blockEnd : .variableEnd, at: location(pos)))
                    return (end, lineStarting)
                }
            }
            let c = src[pos]
            if PythonText.isSpace(c) {
                pos = skipSpace(from: pos)
                continue
            }
            if let (token, end) = try number(at: pos) {
                tokens.append(JinjaToken(kind: token, at: location(pos)))
                pos = end
                continue
            }
            if c == "_" || c.properties.isXIDStart {
                var end = pos + 1
                while end < src.count, src[end] == "_" || src[end].properties.isXIDContinue { end += 1 }
                tokens.append(JinjaToken(kind: .name(text(pos..<end)), at: location(pos)))
                pos = end
                continue
            }
            if c == "'" || c == "\"" {
                let (value, end) = try string(at: pos)
                tokens.append(JinjaToken(kind: .string(value), at: location(pos)))
                pos = end
                continue
            }
            if let op = JinjaLexer.operators.first(where: { matches($0, at: pos) }) {
                switch op {
                case "(": brackets.append(")")
                case "[": brackets.append("]")
                case "{": brackets.append("}")
                case ")", "]", "}":
                    guard let expected = brackets.popLast() else {
                        throw syntaxError("unexpected '\(op)'", at: pos)
                    }
                    if String(expected) != op {
                        throw syntaxError("unexpected '\(op)', expected '\(expected)'", at: pos)
                    }
                default: break
                }
                tokens.append(JinjaToken(kind: .op(op), at: location(pos)))
                pos += op.unicodeScalars.count
                continue
            }
            throw syntaxError("unexpected character '\(c.escaped(asASCII: false))' inside a tag", at: pos)
        }
    }

    /// Longest first, as jinja2's operator regex orders them.
    private static let operators = ["**", "//", "==", "!=", ">=", "<=",
                                    "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
                                    ">", "<", "=", ".", ":", "|", ",", ";"]

    private func tagEnd(at pos: Int, isBlock: Bool) -> (Int, Bool)? {
        if isBlock {
            if matches("+%}", at: pos) { return (pos + 3, false) }
            if matches("-%}", at: pos) {
                let end = skipSpace(from: pos + 3)
                return (end, src[end - 1] == "\n")
            }
            if matches("%}", at: pos) {
                var end = pos + 2
                if end < src.count, src[end] == "\n" { end += 1 }  // trim_blocks
                return (end, src[end - 1] == "\n")
            }
        } else {
            if matches("-}}", at: pos) {
                let end = skipSpace(from: pos + 3)
                return (end, src[end - 1] == "\n")
            }
            if matches("}}", at: pos) { return (pos + 2, false) }
        }
        return nil
    }

    // MARK: - Literals

    private func isDigit(_ i: Int) -> Bool {
        i < src.count && src[i].value >= 48 && src[i].value <= 57
    }

    /// `(\d+_)*\d+` at i: the end index, or nil.
    private func digitRun(at i: Int) -> Int? {
        guard isDigit(i) else { return nil }
        var j = i
        while true {
            while isDigit(j) { j += 1 }
            if j < src.count, src[j] == "_", isDigit(j + 1) { j += 1; continue }
            return j
        }
    }

    /// jinja2's float_re (tried first) then integer_re.
    private func number(at pos: Int) throws -> (JinjaToken.Kind, Int)? {
        guard isDigit(pos) else { return nil }
        // float_re: (?<!\.) digits ( (\.digits)? e[+-]?digits | \.digits )
        if !(pos > 0 && src[pos - 1] == "."), let intEnd = digitRun(at: pos) {
            var j = intEnd
            var hasFraction = false
            if j < src.count, src[j] == ".", let fracEnd = digitRun(at: j + 1) {
                j = fracEnd
                hasFraction = true
            }
            var end: Int? = hasFraction ? j : nil
            if j < src.count, src[j] == "e" || src[j] == "E" {
                var k = j + 1
                if k < src.count, src[k] == "+" || src[k] == "-" { k += 1 }
                if let expEnd = digitRun(at: k) { end = expEnd }
            }
            if let end {
                let literal = text(pos..<end, droppingUnderscores: true)
                guard let value = Double(literal) else {
                    throw syntaxError("invalid float literal '\(literal)'", at: pos)
                }
                return (.float(value), end)
            }
        }
        // integer_re: 0b / 0o / 0x with optional single underscores, [1-9](_?\d)*, 0(_?0)*.
        if src[pos] == "0", pos + 1 < src.count {
            let prefix = Character(src[pos + 1]).lowercased()
            let radix = prefix == "b" ? 2 : prefix == "o" ? 8 : prefix == "x" ? 16 : 0
            if radix != 0 {
                var j = pos + 2
                var digits = ""
                while true {
                    var k = j
                    if k < src.count, src[k] == "_" { k += 1 }
                    guard k < src.count, let d = Character(src[k]).hexDigitValue, d < radix else { break }
                    digits.unicodeScalars.append(src[k])
                    j = k + 1
                }
                if !digits.isEmpty {
                    guard let value = Int(digits, radix: radix) else {
                        throw ChatTemplateError.unsupported(construct: "integer literals beyond 64 bits", at: location(pos))
                    }
                    return (.integer(value), j)
                }
            }
        }
        var j = pos + 1
        let zero = src[pos] == "0"
        while true {
            var k = j
            if k < src.count, src[k] == "_" { k += 1 }
            guard isDigit(k), !zero || src[k] == "0" else { break }
            j = k + 1
        }
        let literal = text(pos..<j, droppingUnderscores: true)
        guard let value = Int(literal) else {
            throw ChatTemplateError.unsupported(construct: "integer literals beyond 64 bits", at: location(pos))
        }
        return (.integer(value), j)
    }

    /// A quoted string with Python's unicode-escape rules (what jinja2 applies to literals).
    private func string(at pos: Int) throws -> (String, Int) {
        let quote = src[pos]
        var out = String.UnicodeScalarView()
        var i = pos + 1
        while true {
            guard i < src.count else {
                throw syntaxError("unterminated string literal", at: pos)
            }
            let c = src[i]
            if c == quote { return (String(out), i + 1) }
            if c != "\\" {
                out.append(c)
                i += 1
                continue
            }
            guard i + 1 < src.count else { throw syntaxError("unterminated string literal", at: pos) }
            let e = src[i + 1]
            i += 2
            switch e {
            case "\n": break  // line continuation
            case "\\", "'", "\"": out.append(e)
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0B}")
            case "0"..."7":
                var value = e.value - 48
                var count = 1
                while count < 3, i < src.count, src[i].value >= 48, src[i].value <= 55 {
                    value = value * 8 + src[i].value - 48
                    i += 1
                    count += 1
                }
                out.append(Unicode.Scalar(value)!)  // at most 0o777, always a scalar
            case "x", "u", "U":
                let width = e == "x" ? 2 : e == "u" ? 4 : 8
                var value: UInt32 = 0
                for _ in 0..<width {
                    guard i < src.count, let d = Character(src[i]).hexDigitValue, src[i].isASCII else {
                        throw syntaxError("truncated \\\(e) escape in string literal", at: i)
                    }
                    value = value &* 16 &+ UInt32(d)
                    i += 1
                }
                guard let scalar = Unicode.Scalar(value) else {
                    throw syntaxError("escape \\\(e) gives U+\(String(value, radix: 16, uppercase: true)), "
                                      + "which is not a Unicode scalar value", at: i - width - 2)
                }
                out.append(scalar)
            case "N":
                throw syntaxError("\\N{...} escapes are not supported; write the character itself", at: i - 2)
            default:
                if !e.isASCII {
                    // Python turns this into a backslash followed by an escape sequence's text.
                    throw syntaxError("a backslash before a non-ASCII character is not supported", at: i - 2)
                }
                out.append("\\")  // Python keeps unknown escapes as they are
                out.append(e)
            }
        }
    }
}
