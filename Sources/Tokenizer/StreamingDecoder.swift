// Turns tokens that arrive one at a time into text, emitting only complete UTF-8 (FORMATS.md §6.3).
// A token can end in the middle of a character (emoji and CJK often span two or three tokens), so the
// bytes of an unfinished character at the end are held back until a later token completes them.
//
// Invariant: the concatenation of everything `push` and `flush` return equals
// `tokenizer.decode(allIds)`, including where the bytes are invalid. That holds because bytes are
// held back only from the lead byte of a sequence that can still become valid, and a lead byte is
// never a continuation: whole-text decoding also ends the preceding sequence exactly there, and
// starts the held-back one from the same byte. Anything already invalid is emitted at once, as U+FFFD.

public struct StreamingDecoder: Sendable {
    private let tokenizer: Tokenizer
    private let renderSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
    }

    /// Bytes held back because they may be the start of a character (at most 3).
    public var pendingByteCount: Int { pending.count }

    /// The text `id` completes; empty while a character is still unfinished.
    public mutating func push(_ id: Int32) -> String {
        pending += tokenizer.piece(id, renderSpecial: renderSpecial)
        let keep = Self.incompleteSuffixLength(pending)
        guard keep < pending.count else { return "" }
        let text = String(decoding: pending[..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Whatever is held back, with an unfinished character replaced by U+FFFD (call at end of stream).
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of the suffix of `bytes` that is a proper prefix of a valid UTF-8 sequence (0 if none).
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        // The lead byte can be at most 3 bytes from the end (a 4-byte sequence missing one byte).
        for back in stride(from: 1, through: min(3, bytes.count), by: 1) {
            let lead = bytes[bytes.count - back]
            if lead & 0xC0 == 0x80 { continue }  // continuation byte: keep looking for the lead
            let need: Int
            switch lead {
            case 0xC2...0xDF: need = 2
            case 0xE0...0xEF: need = 3
            case 0xF0...0xF4: need = 4
            default: return 0  // ASCII or a byte that cannot start a sequence
            }
            guard back < need else { return 0 }  // the sequence is complete (or overlong: invalid anyway)
            // The second byte's allowed range depends on the lead (Unicode Table 3-7, well-formed UTF-8).
            if back >= 2 {
                let second = bytes[bytes.count - back + 1]
                let range: ClosedRange<UInt8>
                switch lead {
                case 0xE0: range = 0xA0...0xBF
                case 0xED: range = 0x80...0x9F
                case 0xF0: range = 0x90...0xBF
                case 0xF4: range = 0x80...0x8F
                default: range = 0x80...0xBF
                }
                guard range.contains(second) else { return 0 }
            }
            return back
        }
        return 0
    }
}
