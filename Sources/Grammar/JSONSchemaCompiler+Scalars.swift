// The scalar types of JSONSchemaCompiler: strings (characters, escapes, lengths, `pattern`,
// `format`), integers as exact decimal ranges, numbers with integer bounds.

import JSON

private let hexDigit = ScalarSet([0x30...0x39, 0x41...0x46, 0x61...0x66])
private let digit = ScalarSet([0x30...0x39])

private func set(_ ranges: [ClosedRange<UInt32>]) -> RegexNode { .set(ScalarSet(ranges)) }
private func chars(_ s: String) -> RegexNode { .set(ScalarSet(s.unicodeScalars.map { $0.value...$0.value })) }
private func optional(_ n: RegexNode) -> RegexNode { .repetition(n, min: 0, max: 1) }
private func digits(_ min: Int, _ max: Int?) -> RegexNode { .repetition(.set(digit), min: min, max: max) }

/// A scalar a JSON string may hold unescaped: anything but `"`, `\` and the controls U+0000...U+001F.
let unescapedStringScalars = ScalarSet([0x20...0x21, 0x23...0x5B, 0x5D...ScalarSet.maxScalar])

extension Compiler {
    /// One character of a JSON string's content: a scalar written as it is (UTF-8), or an escape for
    /// one scalar. `\uXXXX` is offered for the controls U+0000...U+001F only: every other scalar has
    /// its plain spelling, and each escape form costs DFA states at every counted position of a
    /// string with a maxLength (the model writes é, not \u00e9; Python's ensure_ascii=False form).
    func stringCharacter() -> RegexNode {
        .alternation([
            .set(unescapedStringScalars),
            lit("\\") + .alternation([chars("\"\\/bfnrt"), lit("u00") + chars("01") + .set(hexDigit)]),
        ])
    }

    func stringNode() -> RegexNode {
        lit("\"") + .repetition(stringCharacter(), min: 0, max: nil) + lit("\"")
    }

    func compileString(_ kvs: [(String, JSONValue)], pointer: String) throws(JSONSchemaError) -> RegexNode {
        let minLength = try count(kvs, "minLength", pointer: pointer)
        let maxLength = try count(kvs, "maxLength", pointer: pointer)
        var content: RegexNode? = nil
        var source: String? = nil
        if let p = kvs.first(where: { $0.0 == "pattern" })?.1 {
            guard case .string(let pattern) = p else { throw .invalid(message: "pattern must be a string", pointer: pointer + "/pattern") }
            do {
                content = jsonEncoded(try RegexParser.parse(pattern))
            } catch {
                throw .regex(error, pointer: pointer + "/pattern")
            }
            source = "pattern"
        }
        if let f = kvs.first(where: { $0.0 == "format" })?.1 {
            guard case .string(let format) = f else { throw .invalid(message: "format must be a string", pointer: pointer + "/format") }
            if source != nil {
                throw .unsupported(keyword: "format", pointer: pointer + "/format", hint: "use either pattern or format, not both")
            }
            guard let node = formatNode(format) else {
                throw .unsupported(keyword: "format", pointer: pointer + "/format",
                                   hint: "format '\(format)' is not implemented; supported: date, date-time, email, uuid (or give a pattern)")
            }
            content = node
            source = "format"
        }
        if let source, minLength != nil || maxLength != nil {
            let key = minLength != nil ? "minLength" : "maxLength"
            throw .unsupported(keyword: key, pointer: pointer + "/" + key,
                               hint: "a length together with \(source) needs an intersection, which is not implemented; put the length into a pattern, e.g. ^[a-z]{1,20}$")
        }
        if let content { return lit("\"") + content + lit("\"") }
        let lo = minLength ?? 0
        if let maxLength, maxLength < lo { return .set(ScalarSet()) }
        let limit = RegexParser.repetitionLimit
        if lo > limit || (maxLength ?? 0) > limit {
            let key = lo > limit ? "minLength" : "maxLength"
            throw .unsupported(keyword: key, pointer: pointer + "/" + key, hint: "lengths above \(limit) are not supported")
        }
        return lit("\"") + .repetition(stringCharacter(), min: lo, max: maxLength) + lit("\"")
    }

    /// A pattern over decoded characters → the same over their JSON spelling: `"` and `\` escaped,
    /// controls as Python's json.dumps writes them (\n \r \t \b \f, others \u00xx).
    func jsonEncoded(_ node: RegexNode) -> RegexNode {
        switch node {
        case .empty: return .empty
        case .nonterminal: return node  // a pattern has no rules
        case .concatenation(let xs): return .concatenation(xs.map(jsonEncoded))
        case .alternation(let xs): return .alternation(xs.map(jsonEncoded))
        case .repetition(let x, let lo, let hi): return .repetition(jsonEncoded(x), min: lo, max: hi)
        case .set(let s):
            var plain = ScalarSet()
            var escaped: [RegexNode] = []
            for r in s.ranges {
                if r.upperBound >= 0x20 { plain.insert(max(r.lowerBound, 0x20)...r.upperBound) }
                for v in r.lowerBound...max(min(r.upperBound, 0x5C), r.lowerBound) where v < 0x20 || v == 0x22 || v == 0x5C {
                    let quoted = JSONValue.quoted(String(Unicode.Scalar(v)!))
                    escaped.append(lit(String(quoted.dropFirst().dropLast())))
                }
            }
            // The unescaped part: without `"` and `\`.
            var kept = ScalarSet()
            for r in plain.ranges {
                var lo = r.lowerBound
                for special: UInt32 in [0x22, 0x5C] where r.contains(special) {
                    if lo < special { kept.insert(lo...(special - 1)) }
                    lo = special + 1
                }
                if lo <= r.upperBound { kept.insert(lo...r.upperBound) }
            }
            if escaped.isEmpty { return .set(kept) }
            return .alternation([.set(kept)] + escaped)
        }
    }

    /// The string formats with a regular form (the quotes excluded). Dates are real calendar dates
    /// (leap years included) from 0001 on, as Python's date.fromisoformat and RFC 3339 checkers demand.
    func formatNode(_ format: String) -> RegexNode? {
        let d = RegexNode.set(digit)
        func two(_ first: String, _ second: [ClosedRange<UInt32>]) -> RegexNode { chars(first) + set(second) }
        switch format {
        case "date":
            return dateNode()
        case "date-time":
            let hour = RegexNode.alternation([two("01", [0x30...0x39]), two("2", [0x30...0x33])])
            let minute = set([0x30...0x35]) + d
            let time = hour + lit(":") + minute + lit(":") + minute + optional(lit(".") + digits(1, 6))
            let offset = RegexNode.alternation([lit("Z"), chars("+-") + hour + lit(":") + minute])
            return dateNode() + lit("T") + time + offset
        case "email":
            // A dot-atom local part (RFC 5321): dots only between runs, never first, last or doubled;
            // at most 3 runs of 20, so at most 62 characters (the limit is 64).
            let run = RegexNode.repetition(set([0x30...0x39, 0x41...0x5A, 0x61...0x7A]).alternated(with: chars("_%+-")), min: 1, max: 20)
            let local = run + .repetition(lit(".") + run, min: 0, max: 2)
            let label = RegexNode.repetition(set([0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D...0x2D]), min: 1, max: 63)
            let tld = RegexNode.repetition(set([0x41...0x5A, 0x61...0x7A]), min: 2, max: 24)
            return local + lit("@") + .repetition(label + lit("."), min: 1, max: 4) + tld
        case "uuid":
            let h = RegexNode.set(hexDigit)
            func hexes(_ n: Int) -> RegexNode { .repetition(h, min: n, max: n) }
            return hexes(8) + lit("-") + hexes(4) + lit("-") + hexes(4) + lit("-") + hexes(4) + lit("-") + hexes(12)
        default:
            return nil
        }
    }

    func dateNode() -> RegexNode {
        let d = RegexNode.set(digit)
        let nonZero = set([0x31...0x39])
        // 0001...9999
        let year = RegexNode.alternation([
            lit("000") + nonZero, lit("00") + nonZero + d, lit("0") + nonZero + d + d, nonZero + d + d + d,
        ])
        // Leap years: divisible by 4 and not by 100, or divisible by 400 (0000 excluded).
        let leapTail = RegexNode.alternation([lit("0") + chars("48"), chars("2468") + chars("048"), chars("13579") + chars("26")])
        let leapYear = RegexNode.alternation([
            d + d + leapTail,
            .alternation([lit("0") + chars("48"), chars("2468") + chars("048"), chars("13579") + chars("26")]) + lit("00"),
        ])
        let day28 = RegexNode.alternation([lit("0") + nonZero, lit("1") + d, lit("2") + set([0x30...0x38])])
        let day30 = RegexNode.alternation([day28, lit("29"), lit("30")])
        let day31 = RegexNode.alternation([day30, lit("31")])
        let month31 = RegexNode.alternation(["01", "03", "05", "07", "08", "10", "12"].map(lit))
        let month30 = RegexNode.alternation(["04", "06", "09", "11"].map(lit))
        return .alternation([
            year + lit("-") + .alternation([month31 + lit("-") + day31, month30 + lit("-") + day30, lit("02-") + day28]),
            leapYear + lit("-02-29"),
        ])
    }

    // MARK: integers and numbers

    func bound(_ kvs: [(String, JSONValue)], _ key: String, pointer: String) throws(JSONSchemaError) -> Double? {
        guard let v = kvs.first(where: { $0.0 == key })?.1 else { return nil }
        switch v {
        case .int(let n): return Double(n)
        case .double(let x) where x.isFinite: return x
        case .bool:
            throw .unsupported(keyword: key, pointer: pointer + "/" + key,
                               hint: "a boolean \(key) is draft 4's form; write the bound itself as \(key) (draft 6 and later)")
        default: throw .invalid(message: "\(key) must be a number", pointer: pointer + "/" + key)
        }
    }

    /// The bounds as an integer interval [low, high] (nil: unbounded, which `decimalRange` caps at
    /// 18 digits). Bounds of 10^18 or more in size are refused.
    func integerBounds(_ kvs: [(String, JSONValue)], pointer: String) throws(JSONSchemaError) -> (Int?, Int?) {
        var low: Int? = nil, high: Int? = nil
        func raise(_ v: Int) { low = low.map { max($0, v) } ?? v }
        func lower(_ v: Int) { high = high.map { min($0, v) } ?? v }
        for key in ["minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"] {
            guard let m = try bound(kvs, key, pointer: pointer) else { continue }
            guard abs(m) < 1e18 else {
                throw .unsupported(keyword: key, pointer: pointer + "/" + key,
                                   hint: "integer bounds must lie within ±10^18 (generated integers have at most 18 digits)")
            }
            switch key {
            case "minimum": raise(Int(m.rounded(.up)))
            case "exclusiveMinimum": raise(Int(m.rounded(.down)) + 1)
            case "maximum": lower(Int(m.rounded(.down)))
            default: lower(Int(m.rounded(.up)) - 1)
            }
        }
        return (low, high)
    }

    func compileInteger(_ kvs: [(String, JSONValue)], pointer: String) throws(JSONSchemaError) -> RegexNode {
        let (low, high) = try integerBounds(kvs, pointer: pointer)
        if let low, let high, low > high { return .set(ScalarSet()) }
        var branches: [RegexNode] = []
        // Non-negative part: [max(low, 0), high].
        if (high ?? 0) >= 0 {
            branches.append(decimalRange(max(low ?? 0, 0), high))
        }
        // Negative part: -m with m in [max(-high, 1), -low].
        if (low ?? -1) < 0 {
            branches.append(lit("-") + decimalRange(max(-(high ?? -1), 1), low.map { -$0 }))
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    func compileNumber(_ kvs: [(String, JSONValue)], pointer: String) throws(JSONSchemaError) -> RegexNode {
        var bounds: [String: DecimalBound] = [:]
        for key in ["minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"] {
            guard let b = try bound(kvs, key, pointer: pointer) else { continue }
            guard let d = DecimalBound(b) else {
                throw .unsupported(keyword: key, pointer: pointer + "/" + key,
                                   hint: "number bounds must be decimals below 10^18 with at most 18 digits after the point (e.g. 0.5 or 100); \(b) is not")
            }
            bounds[key] = d
        }
        if bounds.isEmpty { return numberNode() }
        // The tightest lower and upper bound, each with whether it is exclusive.
        var low: (DecimalBound, Bool)? = nil, high: (DecimalBound, Bool)? = nil
        if let m = bounds["minimum"] { low = (m, false) }
        if let m = bounds["exclusiveMinimum"], low == nil || m.value >= low!.0.value { low = (m, true) }
        if let m = bounds["maximum"] { high = (m, false) }
        if let m = bounds["exclusiveMaximum"], high == nil || m.value <= high!.0.value { high = (m, true) }
        let zero = DecimalBound(0)!
        var branches: [RegexNode] = []
        // Non-negative values x = m: m >= 0 and the bounds.
        if high == nil || high!.0.value > 0 || (high!.0.value == 0 && !high!.1) {
            let lo = (low == nil || low!.0.value < 0) ? (zero, false) : low!
            branches.append(magnitude(lo, high))
        }
        // Negative values x = -m: m > 0, m <= -low (or <), m >= -high (or >).
        if low == nil || low!.0.value < 0 {
            let lo = (high == nil || high!.0.value >= 0) ? (zero, true) : (high!.0.negated, high!.1)
            branches.append(lit("-") + magnitude(lo, low.map { ($0.0.negated, $0.1) }))
        }
        return branches.isEmpty ? .set(ScalarSet()) : branches.count == 1 ? branches[0] : .alternation(branches)
    }

    /// Non-negative decimals n(.f)? (no exponent) with value in the interval; bounds are
    /// (non-negative value, exclusive).
    func magnitude(_ low: (DecimalBound, Bool), _ high: (DecimalBound, Bool)?) -> RegexNode {
        let (l, lx) = low
        if let (h, _) = high, h.value < l.value { return .set(ScalarSet()) }
        var branches: [RegexNode] = []
        if let (h, hx) = high, h.whole == l.whole {
            branches.append(decimalRange(l.whole, l.whole) + fractionPart(low: l.fraction, lx, high: (h.fraction, hx)))
        } else {
            branches.append(decimalRange(l.whole, l.whole) + fractionPart(low: l.fraction, lx, high: nil))
            if let (h, hx) = high {
                if l.whole + 1 <= h.whole - 1 { branches.append(decimalRange(l.whole + 1, h.whole - 1) + fractionPart(low: [], false, high: nil)) }
                branches.append(decimalRange(h.whole, h.whole) + fractionPart(low: [], false, high: (h.fraction, hx)))
            } else {
                branches.append(decimalRange(l.whole + 1, nil) + fractionPart(low: [], false, high: nil))
            }
        }
        return .alternation(branches)
    }

    /// The optional `.digits` after a whole part, for fractions f (the digits, read as 0.f) with
    /// low ≤ 0.f (< when `lowExclusive`) and 0.f ≤ high (<; nil: below 1). Digits are compared as
    /// decimals: the shorter is padded with zeros, so "5" and "50" are the same fraction.
    func fractionPart(low: [UInt8], _ lowExclusive: Bool, high: ([UInt8], Bool)?) -> RegexNode {
        let (empty, nonEmpty) = fractions(low: low, lowExclusive, high: high)
        let dotted = lit(".") + nonEmpty
        return empty ? .alternation([.empty, dotted]) : dotted
    }

    /// (whether the empty fraction, value 0, qualifies; the non-empty digit strings that do).
    func fractions(low: [UInt8], _ lowExclusive: Bool, high: ([UInt8], Bool)?) -> (Bool, RegexNode) {
        let nothing = RegexNode.set(ScalarSet())
        let lowZero = low.allSatisfy { $0 == 0 }
        let highZero = high.map { $0.0.allSatisfy { $0 == 0 } }
        // The cases that need no more digits of a bound.
        let lowFree = lowZero && !lowExclusive          // any fraction is >= 0
        let lowPositive = lowZero && lowExclusive        // a fraction > 0: some non-zero digit
        let highFree = high == nil                       // any fraction is < 1
        if highZero == true && high!.1 { return (false, nothing) }  // < 0: none
        let highZeros = highZero == true                 // <= 0: zeros only
        if (lowFree || lowPositive) && (highFree || highZeros) {
            switch (lowFree, highFree) {
            case (true, true): return (true, digits(1, nil))
            case (true, false): return (true, .repetition(lit("0"), min: 1, max: nil))
            case (false, true): return (false, digits(0, nil) + set([0x31...0x39]) + digits(0, nil))
            default: return (false, nothing)
            }
        }
        // One digit at a time: d against the bounds' first digits (0 past their end).
        let l1 = low.first ?? 0
        let h1 = high.map { $0.0.first ?? 0 } ?? 9
        let empty = !lowExclusive && lowZero && (high.map { !($0.1 && highZero == true) } ?? true)
        var alternatives: [RegexNode] = []
        for d in UInt8(0)...9 {
            let aboveLow = lowFree || (!lowZero && d > l1) || (lowPositive && d > 0)
            let atLow = !aboveLow && (lowZero ? d == 0 : d == l1)
            let belowHigh = highFree || d < h1
            let atHigh = !belowHigh && d == h1
            guard aboveLow || atLow, belowHigh || atHigh else { continue }
            let nextLow: ([UInt8], Bool) = atLow ? (Array(low.dropFirst()), lowExclusive) : ([], false)
            let nextHigh: ([UInt8], Bool)? = atHigh ? (Array(high!.0.dropFirst()), high!.1) : nil
            let (restEmpty, rest) = fractions(low: nextLow.0, nextLow.1, high: nextHigh)
            let digit = lit(String(d))
            alternatives.append(restEmpty ? digit + .alternation([.empty, rest]) : digit + rest)
        }
        return (empty, alternatives.isEmpty ? nothing : .alternation(alternatives))
    }

    /// A JSON number that every reader can hold in a double: at most 18 digits before the point and
    /// an exponent of at most two digits (so never an overflow to infinity, which strict readers,
    /// lorad's included, refuse).
    func numberNode() -> RegexNode {
        let integer = optional(lit("-")) + .alternation([lit("0"), set([0x31...0x39]) + digits(0, maxIntegerDigits - 1)])
        return integer + optional(lit(".") + digits(1, nil)) + optional(chars("eE") + optional(chars("+-")) + digits(1, 2))
    }
}

extension RegexNode {
    /// One scalar from either set (both must be sets).
    func alternated(with other: RegexNode) -> RegexNode {
        if case .set(var a) = self, case .set(let b) = other { a.formUnion(b); return .set(a) }
        return .alternation([self, other])
    }
}

/// How many digits an integer (or a number's integer part) may have when the schema sets no upper
/// bound: 10^18 - 1 fits an Int64 and a double's range.
let maxIntegerDigits = 18

/// The decimal spellings (no leading zeros) of the integers in [low, high], low >= 0; high nil =
/// up to `maxIntegerDigits` digits.
func decimalRange(_ low: Int, _ high: Int?) -> RegexNode {
    let high = high ?? (pow10(maxIntegerDigits) - 1)
    if high < low { return .set(ScalarSet()) }
    var branches: [RegexNode] = []
    for length in String(low).count...String(high).count {
        let start = length == 1 ? 0 : pow10(length - 1)
        let end = pow10(length) - 1
        let lo = max(low, start)
        let hi = min(high, end)
        if lo <= hi { branches.append(sameLengthRange(Array(String(lo).utf8), Array(String(hi).utf8))) }
    }
    return branches.count == 1 ? branches[0] : .alternation(branches)
}

private func pow10(_ n: Int) -> Int {
    var r = 1
    for _ in 0..<n { r = r &* 10 }
    return r
}

/// Decimal strings of one length between lo and hi (same length, lo <= hi), digit by digit.
private func sameLengthRange(_ lo: [UInt8], _ hi: [UInt8]) -> RegexNode {
    func digitSet(_ a: UInt8, _ b: UInt8) -> RegexNode { .set(ScalarSet([UInt32(a)...UInt32(b)])) }
    let n = lo.count
    if n == 0 { return .empty }
    if n == 1 { return digitSet(lo[0], hi[0]) }
    let restLo = Array(lo.dropFirst()), restHi = Array(hi.dropFirst())
    if lo[0] == hi[0] { return digitSet(lo[0], lo[0]) + sameLengthRange(restLo, restHi) }
    let zeros = [UInt8](repeating: 0x30, count: n - 1), nines = [UInt8](repeating: 0x39, count: n - 1)
    let anyRest = RegexNode.repetition(digitSet(0x30, 0x39), min: n - 1, max: n - 1)
    var branches: [RegexNode] = []
    var firstFull = lo[0]
    if restLo != zeros {
        branches.append(digitSet(lo[0], lo[0]) + sameLengthRange(restLo, nines))
        firstFull += 1
    }
    var lastFull = hi[0]
    let highPartial = restHi != nines
    if highPartial { lastFull -= 1 }
    if firstFull <= lastFull { branches.append(digitSet(firstFull, lastFull) + anyRest) }
    if highPartial { branches.append(digitSet(hi[0], hi[0]) + sameLengthRange(zeros, restHi)) }
    return branches.count == 1 ? branches[0] : .alternation(branches)
}

/// A bound of a number as a decimal: whole part and fraction digits (trailing zeros dropped), from
/// the shortest decimal spelling of the Double the schema held (0.1 is "0.1", not 0.1000000000000000055).
struct DecimalBound {
    let negative: Bool
    let whole: Int
    let fraction: [UInt8]
    let value: Double

    init?(_ x: Double) {
        guard x.isFinite, abs(x) < 1e18 else { return nil }
        var text = "\(abs(x))"
        if text.contains("e") {
            // Swift writes 1e-05 for small values: only whole values may use an exponent here.
            guard x == x.rounded() else { return nil }
            text = String(Int(abs(x)))
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard let w = Int(parts[0]) else { return nil }
        var f = parts.count > 1 ? Array(parts[1].utf8).map { $0 - 48 } : []
        while f.last == 0 { f.removeLast() }
        guard f.count <= 18 else { return nil }
        negative = x < 0 && (w != 0 || !f.isEmpty)
        whole = w
        fraction = f
        value = x
    }

    private init(negative: Bool, whole: Int, fraction: [UInt8], value: Double) {
        self.negative = negative
        self.whole = whole
        self.fraction = fraction
        self.value = value
    }

    /// The same magnitude with the other sign (the compiler only reads whole and fraction).
    var negated: DecimalBound { DecimalBound(negative: !negative, whole: whole, fraction: fraction, value: -value) }
}
