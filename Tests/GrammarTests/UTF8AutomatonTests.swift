// The byte automaton reads UTF-8 exactly: a class matches the encodings of its scalars and no other
// byte strings (no overlong forms, no surrogates, nothing past U+10FFFF, no lone continuation
// bytes). Checked exhaustively against Swift's own UTF-8 decoder for every scalar and every 1-, 2-
// and 3-byte string, and on random 4-byte strings.
import Grammar
import Testing

struct UTF8AutomatonTests {
    /// The single scalar `bytes` decodes to, or nil when they are not exactly one valid scalar.
    static func singleScalar(_ bytes: [UInt8]) -> UInt32? {
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        guard case .scalarValue(let s) = decoder.decode(&iterator) else { return nil }
        guard case .emptyInput = decoder.decode(&iterator) else { return nil }
        return s.value
    }

    static let classes: [(pattern: String, member: @Sendable (UInt32) -> Bool)] = [
        (".", { $0 != 0x0A }),
        ("[à-ÿ]", { (0xE0...0xFF).contains($0) }),
        (#"[^"\\]"#, { $0 != 0x22 && $0 != 0x5C }),
        ("[\u{7F}-\u{800}\u{FFFF}-\u{10000}]", { (0x7F...0x800).contains($0) || (0xFFFF...0x10000).contains($0) }),
        ("[\u{D7FF}\u{E000}-\u{E001}\u{10FFFF}]", { $0 == 0xD7FF || $0 == 0xE000 || $0 == 0xE001 || $0 == 0x10FFFF }),
    ]

    @Test(arguments: Array(classes.indices))
    func classesMatchExactlyTheirScalarsEncodings(_ index: Int) throws {
        let (pattern, member) = Self.classes[index]
        let dfa = try ByteDFA(pattern: pattern)
        var wrong: [String] = []
        for v in UInt32(0)...0x10FFFF where !(0xD800...0xDFFF).contains(v) {
            let bytes = Array(String(Unicode.Scalar(v)!).utf8)
            if dfa.matches(bytes) != member(v) { wrong.append("U+\(String(v, radix: 16))") }
            if wrong.count > 10 { break }
        }
        #expect(wrong.isEmpty, "\(pattern) wrong on scalars \(wrong)")

        // Every byte string of length 1 and 2, and of length 3 with a lead byte 0xC0...0xFF (a 3-byte
        // string with any other lead is an ASCII character or a stray continuation byte followed by
        // more: never one scalar, and the 1-byte checks already cover how those leads are read).
        var badStrings: [[UInt8]] = []
        func check(_ bytes: [UInt8]) {
            let expected = Self.singleScalar(bytes).map(member) ?? false
            if dfa.matches(bytes) != expected, badStrings.count < 10 { badStrings.append(bytes) }
        }
        for a in 0...255 { check([UInt8(a)]) }
        for a in 0...255 { for b in 0...255 { check([UInt8(a), UInt8(b)]) } }
        for a in 0xC0...0xFF { for b in 0...255 { for c in 0...255 {
            check([UInt8(a), UInt8(b), UInt8(c)])
        } } }
        var rng = SeededRandom(seed: 99)
        for _ in 0..<200_000 {
            let lead = UInt8(0xF0 + rng.next() % 16)
            check([lead] + (0..<3).map { _ in UInt8(0x70 + rng.next() % 0x60) })
        }
        #expect(badStrings.isEmpty, "\(pattern) wrong on byte strings \(badStrings)")
    }

    @Test func prefixesOfACharacterStayAlive() throws {
        // A token may end halfway through a character: its first bytes must keep the DFA alive.
        let dfa = try ByteDFA(pattern: "[à-ÿ]+")
        let e = Array("é".utf8)
        #expect(dfa.run(e[..<1], from: dfa.start) != ByteDFA.dead)
        #expect(!dfa.isAccepting(dfa.run(e[..<1], from: dfa.start)))
        #expect(dfa.matches(e))
        #expect(dfa.run([0xC3, 0x9F], from: dfa.start) == ByteDFA.dead)  // ß is just below à
        #expect(dfa.run([0xC3, 0xC3], from: dfa.start) == ByteDFA.dead)
    }

    @Test func deadStatesAreFoldedIntoZero() throws {
        // A class that matches nothing: the language is empty, so the start itself is dead.
        let empty = try ByteDFA(pattern: #"a[^\x00-\u{10FFFF}]"#)
        #expect(empty.start == ByteDFA.dead)
        #expect(empty.stateCount == 1)
        // Every live state can still reach acceptance.
        let dfa = try ByteDFA(pattern: "ab(c|d[^\\x00-\\u{10FFFF}])")
        #expect(dfa.run(Array("abd".utf8), from: dfa.start) == ByteDFA.dead)
        #expect(dfa.matches(Array("abc".utf8)))
    }
}
