// Whole-string matching against an independent engine: Foundation's NSRegularExpression (ICU),
// anchored as `\A(?:P)\z` so that alternation order cannot stop a full match early. Strings come
// from three sources per pattern: random strings over an alphabet that covers the patterns'
// characters, random matches drawn from our DFA (a wrong accept shows up as ICU saying no), and
// one-character edits of those matches (near misses).
//
// ICU's \d, \w and \s are Unicode-aware and ours are ASCII, and ICU's `.` refuses every line
// terminator (\n \v \f \r U+0085 U+2028 U+2029) where ours refuses only \n (Python's rule), so
// where a pattern uses them the ICU side gets our meaning spelled out.
import Foundation
import Grammar
import Testing

struct RegexMatchTests {
    /// (ours, ICU's spelling when it differs).
    static let patterns: [(String, String?)] = [
        (#"\d{3}-\d{4}"#, "[0-9]{3}-[0-9]{4}"),
        ("(yes|no|maybe)", nil),
        (#"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,4}"#, nil),
        ("[A-Z][a-z]+( [A-Z][a-z]+)*", nil),
        (#""([^"\\]|\\.)*""#, #""([^"\\]|\\[^\n])*""#),
        ("(a|ab)(c|bcd)(d*)", nil),
        ("a{2,3}(b|c){0,2}d?", nil),
        ("[à-ÿ]+x?", nil),
        (".{2,5}", #"[^\n]{2,5}"#),
        (#"(\w+\s?)+"#, #"([A-Za-z0-9_]+[\t\n\x{0B}\f\r ]?)+"#),
        (#"[^a-c\d]*z"#, "[^a-c0-9]*z"),
        (#"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?"#, "-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?"),
        (#"\u00e9\x41+"#, "\\x{e9}A+"),
        ("(|a)b*", nil),
        (#"[\]\-^]+"#, nil),
        ("日本(語|人)?", nil),
        ("(?:ab|cd)*?e??", nil),
        (#"[\D]{1,2}\S\W"#, #"[^0-9]{1,2}[^\t\n\x{0B}\f\r ][^A-Za-z0-9_]"#),
        ("😀+|[^😀]", nil),
        ("x*y*z*", nil),
        ("", nil),
    ]

    static let alphabet: [Character] = Array("aAbBcdezZ019-_.@ \"\\\n\téàÿ日本語人xyE+😀")

    @Test(arguments: Array(patterns.indices))
    func matchesAsICUDoes(_ index: Int) throws {
        let (pattern, icuSpelling) = Self.patterns[index]
        let dfa = try ByteDFA(pattern: pattern)
        let icu = try NSRegularExpression(pattern: "\\A(?:" + (icuSpelling ?? pattern) + ")\\z")
        func icuMatches(_ s: String) -> Bool {
            icu.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
        }

        var rng = SeededRandom(seed: UInt64(index) &* 7919 &+ 1)
        var strings: [String] = [""]
        for _ in 0..<600 {
            let length = Int(rng.next() % 9)
            strings.append(String((0..<length).map { _ in Self.alphabet.randomElement(using: &rng)! }))
        }
        var matched = 0
        for _ in 0..<300 {
            guard let bytes = sampleMatch(dfa, rng: &rng) else { continue }
            // A DFA match is valid UTF-8 by construction; if not, the comparison below says so.
            let s = String(decoding: bytes, as: UTF8.self)
            strings.append(s)
            matched += 1
            var chars = Array(s)
            guard !chars.isEmpty else { continue }
            let at = Int(rng.next() % UInt64(chars.count))
            switch rng.next() % 3 {
            case 0: chars.remove(at: at)
            case 1: chars.insert(Self.alphabet.randomElement(using: &rng)!, at: at)
            default: chars[at] = Self.alphabet.randomElement(using: &rng)!
            }
            strings.append(String(chars))
        }
        if pattern != "" { #expect(matched > 0, "no random match of \(pattern) was drawn") }

        var mismatches: [String] = []
        var accepted = 0
        for s in strings {
            let ours = dfa.matches(Array(s.utf8))
            if ours { accepted += 1 }
            if ours != icuMatches(s) { mismatches.append("\(s.debugDescription): ours \(ours)") }
        }
        #expect(mismatches.isEmpty, "pattern \(pattern.debugDescription) disagrees with ICU on \(mismatches.count) strings: \(mismatches.prefix(8))")
        // Both outcomes must be exercised, or the comparison proves little.
        #expect(accepted > 0 && accepted < strings.count, "pattern \(pattern.debugDescription): \(accepted) of \(strings.count) accepted")
    }
}
