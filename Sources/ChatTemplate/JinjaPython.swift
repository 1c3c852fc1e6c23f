// Python's str and float behaviour that jinja2 templates inherit, reproduced on Unicode scalars
// (Python strings are sequences of code points; Swift's String compares and counts grapheme
// clusters with canonical equivalence, which would give different answers for len, ==, in,
// startswith, slicing and the like).
//
// Sources: CPython 3.11 Objects/unicodeobject.c (isspace, strip, split, replace, case mapping
// with the Final_Sigma rule, repr), Objects/floatobject.c and Python/pystrtod.c (float repr:
// shortest round-trip digits, exponent form when the exponent is < -4 or >= 16).
// Unicode properties come from Swift's tables, which may be a newer Unicode version than
// Python's (3.11 uses Unicode 14): only characters assigned since then could differ.

enum PythonText {
    typealias Scalars = [Unicode.Scalar]

    /// str.isspace() for one code point; also what Python's `re` `\s` matches.
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F,
             0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    static func scalars(_ s: String) -> Scalars { Array(s.unicodeScalars) }

    static func string<C: Collection>(_ scalars: C) -> String where C.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// Code-point equality (Swift's == on String uses canonical equivalence).
    static func equal(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    /// Code-point order, which is what Python's < on str compares.
    static func less(_ a: String, _ b: String) -> Bool {
        // UTF-8 byte order is code-point order.
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    static func length(_ s: String) -> Int { s.unicodeScalars.count }

    // MARK: - Searching (on UTF-8 bytes: a match there is a match of code points)

    /// Byte offsets of non-overlapping occurrences of `needle` (non-empty), left to right.
    static func occurrences(of needle: [UInt8], in hay: [UInt8], limit: Int = Int.max) -> [Int] {
        guard !needle.isEmpty, needle.count <= hay.count else { return [] }
        var result: [Int] = []
        var i = 0
        let last = hay.count - needle.count
        while i <= last && result.count < limit {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) {
                result.append(i)
                i += needle.count
            } else {
                i += 1
            }
        }
        return result
    }

    static func contains(_ hay: String, _ needle: String) -> Bool {
        if needle.isEmpty { return true }
        return !occurrences(of: Array(needle.utf8), in: Array(hay.utf8), limit: 1).isEmpty
    }

    static func hasPrefix(_ s: String, _ prefix: String) -> Bool {
        s.utf8.starts(with: prefix.utf8)
    }

    static func hasSuffix(_ s: String, _ suffix: String) -> Bool {
        s.utf8.reversed().starts(with: suffix.utf8.reversed())
    }

    /// str.count(sub)
    static func count(_ s: String, _ sub: String) -> Int {
        if sub.isEmpty { return length(s) + 1 }
        return occurrences(of: Array(sub.utf8), in: Array(s.utf8)).count
    }

    /// str.find(sub): the code-point index of the first occurrence, or -1.
    static func find(_ s: String, _ sub: String) -> Int {
        if sub.isEmpty { return 0 }
        let hay = Array(s.utf8)
        guard let byte = occurrences(of: Array(sub.utf8), in: hay, limit: 1).first else { return -1 }
        return string(decodingUTF8: hay[..<byte]).unicodeScalars.count
    }

    static func string(decodingUTF8 bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// str.replace(old, new, count); count < 0 means all.
    static func replace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
        let limit = count < 0 ? Int.max : count
        if old.isEmpty {
            // Python inserts `new` before every code point and at the end.
            var out = ""
            var done = 0
            for c in s.unicodeScalars {
                if done < limit {
                    out += new
                    done += 1
                }
                out.unicodeScalars.append(c)
            }
            if done < limit { out += new }
            return out
        }
        let hay = Array(s.utf8)
        let needle = Array(old.utf8)
        let hits = occurrences(of: needle, in: hay, limit: limit)
        if hits.isEmpty { return s }
        var out = [UInt8]()
        out.reserveCapacity(hay.count)
        var last = 0
        for h in hits {
            out += hay[last..<h]
            out += new.utf8
            last = h + needle.count
        }
        out += hay[last...]
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Strip and split

    /// str.strip / lstrip / rstrip; `chars` nil means whitespace.
    static func strip(_ s: String, chars: String?, left: Bool = true, right: Bool = true) -> String {
        let sc = scalars(s)
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isSpace(c) }
        var lo = 0, hi = sc.count
        if left { while lo < hi, strippable(sc[lo]) { lo += 1 } }
        if right { while hi > lo, strippable(sc[hi - 1]) { hi -= 1 } }
        return string(sc[lo..<hi])
    }

    /// str.split(sep, maxsplit). Throws nothing itself; callers reject an empty separator.
    static func split(_ s: String, separator: String?, maxSplit: Int) -> [String] {
        let limit = maxSplit < 0 ? Int.max : maxSplit
        guard let separator else {
            // Runs of whitespace; no empty strings; the remainder after maxsplit keeps its
            // trailing whitespace but not its leading whitespace.
            let sc = scalars(s)
            var parts: [String] = []
            var i = 0
            while i < sc.count {
                while i < sc.count, isSpace(sc[i]) { i += 1 }
                if i == sc.count { break }
                if parts.count == limit {
                    parts.append(string(sc[i...]))
                    return parts
                }
                var j = i
                while j < sc.count, !isSpace(sc[j]) { j += 1 }
                parts.append(string(sc[i..<j]))
                i = j
            }
            return parts
        }
        let hay = Array(s.utf8)
        let needle = Array(separator.utf8)
        var parts: [String] = []
        var last = 0
        for h in occurrences(of: needle, in: hay, limit: limit) {
            parts.append(String(decoding: hay[last..<h], as: UTF8.self))
            last = h + needle.count
        }
        parts.append(String(decoding: hay[last...], as: UTF8.self))
        return parts
    }

    /// str.rsplit(sep, maxsplit).
    static func rsplit(_ s: String, separator: String?, maxSplit: Int) -> [String] {
        if maxSplit < 0 { return split(s, separator: separator, maxSplit: -1) }
        // Splitting the reversed string with the reversed separator is rsplit, for code points.
        let reversed = string(scalars(s).reversed())
        let sep = separator.map { string(scalars($0).reversed()) }
        return split(reversed, separator: sep, maxSplit: maxSplit).reversed().map {
            string(scalars($0).reversed())
        }
    }

    // MARK: - Case

    private static func isCased(_ c: Unicode.Scalar) -> Bool { c.properties.isCased }
    private static func isCaseIgnorable(_ c: Unicode.Scalar) -> Bool { c.properties.isCaseIgnorable }

    /// Python's Final_Sigma test for U+03A3 at index i (unicodeobject.c handle_capital_sigma).
    private static func isFinalSigma(_ sc: Scalars, _ i: Int) -> Bool {
        var j = i - 1
        while j >= 0, isCaseIgnorable(sc[j]) { j -= 1 }
        let precededByCased = j >= 0 && isCased(sc[j])
        var k = i + 1
        while k < sc.count, isCaseIgnorable(sc[k]) { k += 1 }
        let followedByCased = k < sc.count && isCased(sc[k])
        return precededByCased && !followedByCased
    }

    private static func lowerScalar(_ sc: Scalars, _ i: Int, into out: inout String) {
        if sc[i] == "\u{03A3}" {
            out.unicodeScalars.append(isFinalSigma(sc, i) ? "\u{03C2}" : "\u{03C3}")
        } else {
            out += sc[i].properties.lowercaseMapping
        }
    }

    static func lower(_ s: String) -> String {
        let sc = scalars(s)
        var out = ""
        for i in sc.indices { lowerScalar(sc, i, into: &out) }
        return out
    }

    static func upper(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars { out += c.properties.uppercaseMapping }
        return out
    }

    /// str.capitalize(): the first code point titlecased, the rest lowercased.
    static func capitalize(_ s: String) -> String {
        let sc = scalars(s)
        guard let first = sc.first else { return "" }
        var out = first.properties.titlecaseMapping
        for i in sc.indices.dropFirst() { lowerScalar(sc, i, into: &out) }
        return out
    }

    /// str.title(): a code point after a cased one is lowercased, any other titlecased.
    static func title(_ s: String) -> String {
        let sc = scalars(s)
        var out = ""
        var previousCased = false
        for i in sc.indices {
            let c = sc[i]
            if previousCased { lowerScalar(sc, i, into: &out) } else { out += c.properties.titlecaseMapping }
            previousCased = isCased(c)
        }
        return out
    }

    private static func isTitle(_ c: Unicode.Scalar) -> Bool { c.properties.generalCategory == .titlecaseLetter }

    /// str.islower()
    static func isLower(_ s: String) -> Bool {
        var cased = false
        for c in s.unicodeScalars {
            if c.properties.isUppercase || isTitle(c) { return false }
            if c.properties.isLowercase { cased = true }
        }
        return cased
    }

    /// str.isupper()
    static func isUpper(_ s: String) -> Bool {
        var cased = false
        for c in s.unicodeScalars {
            if c.properties.isLowercase || isTitle(c) { return false }
            if c.properties.isUppercase { cased = true }
        }
        return cased
    }

    // MARK: - repr

    /// Python's str.isprintable() for one code point.
    static func isPrintable(_ c: Unicode.Scalar) -> Bool {
        if c == " " { return true }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
             .spaceSeparator:
            return false
        default:
            return true
        }
    }

    /// repr(str): single quotes unless the text has a single quote and no double quote.
    static func repr(_ s: String) -> String {
        let quote: Unicode.Scalar = s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"") ? "\"" : "'"
        var out = String.UnicodeScalarView()
        out.append(quote)
        for c in s.unicodeScalars {
            switch c {
            case quote, "\\":
                out.append("\\")
                out.append(c)
            case "\t": out.append(contentsOf: "\\t".unicodeScalars)
            case "\n": out.append(contentsOf: "\\n".unicodeScalars)
            case "\r": out.append(contentsOf: "\\r".unicodeScalars)
            default:
                if c.value < 0x20 || c.value == 0x7F {
                    out.append(contentsOf: hexEscape("x", c.value, width: 2).unicodeScalars)
                } else if c.value < 0x7F || isPrintable(c) {
                    out.append(c)
                } else if c.value <= 0xFF {
                    out.append(contentsOf: hexEscape("x", c.value, width: 2).unicodeScalars)
                } else if c.value <= 0xFFFF {
                    out.append(contentsOf: hexEscape("u", c.value, width: 4).unicodeScalars)
                } else {
                    out.append(contentsOf: hexEscape("U", c.value, width: 8).unicodeScalars)
                }
            }
        }
        out.append(quote)
        return String(out)
    }

    static func hexEscape(_ letter: String, _ value: UInt32, width: Int) -> String {
        let hex = String(value, radix: 16)
        return "\\" + letter + String(repeating: "0", count: max(0, width - hex.count)) + hex
    }

    // MARK: - float repr

    /// repr(float) / str(float): the shortest digits that round-trip, in positional notation
    /// when -4 < exponent < 16 (always with a fractional part), else `d.ddde±XX`.
    static func floatRepr(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x < 0 ? "-inf" : "inf" }
        if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description also prints the shortest round-trip digits; only the layout
        // differs from Python's, so take the digits and exponent from it and lay them out again.
        let text = "\(x.magnitude)"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var digits = ""
        var pointPosition = mantissa.count
        for (i, ch) in mantissa.enumerated() {
            if ch == "." { pointPosition = i } else { digits.append(ch) }
        }
        // Leading zeros move the point; trailing zeros are not significant.
        var decimalPoint = pointPosition + exponent
        while digits.first == "0" {
            digits.removeFirst()
            decimalPoint -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        if digits.isEmpty { return x.sign == .minus ? "-0.0" : "0.0" }
        let sign = x.sign == .minus ? "-" : ""
        if decimalPoint <= -4 || decimalPoint > 16 {
            let e = decimalPoint - 1
            var out = sign + String(digits.first!)
            if digits.count > 1 { out += "." + digits.dropFirst() }
            let magnitude = String(abs(e))
            return out + "e" + (e < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" : "") + magnitude
        }
        if decimalPoint <= 0 {
            return sign + "0." + String(repeating: "0", count: -decimalPoint) + digits
        }
        if decimalPoint >= digits.count {
            return sign + digits + String(repeating: "0", count: decimalPoint - digits.count) + ".0"
        }
        let cut = digits.index(digits.startIndex, offsetBy: decimalPoint)
        return sign + digits[..<cut] + "." + digits[cut...]
    }
}
