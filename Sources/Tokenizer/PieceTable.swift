// The bytes each token stands for (FORMATS.md §6.3; llama.cpp llama-vocab.cpp `token_to_piece`, BPE
// case, and `llama_decode_text`), computed once for the whole vocabulary:
// - control, unknown and user-defined tokens: their text as is;
// - normal tokens: each character mapped back through the byte-to-unicode table. A character outside
//   the table (never in a well-formed byte-level vocabulary) gives llama.cpp's marker
//   "[UNK_BYTE_0x<hex of its UTF-8><the token's text>]";
// - byte tokens: the byte written in hex at offset 3 of the text ("<0x41>"), as llama.cpp reads it;
// - unused and undefined tokens: nothing.
// Control and unknown tokens render as nothing unless special rendering is asked for; user-defined
// tokens always render (llama.cpp does the same). smollm does no space clean-up (clean_spaces = false).

struct PieceTable: Sendable {
    private let bytes: [UInt8]
    private let offsets: [Int]        // piece i is bytes[offsets[i]..<offsets[i + 1]]
    private let hiddenUnlessSpecial: [Bool]

    init(vocabulary: Vocabulary) {
        var bytes: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(vocabulary.count + 1)
        for (text, attributes) in zip(vocabulary.tokens, vocabulary.attributes) {
            bytes += Self.piece(text: text, attributes: attributes)
            offsets.append(bytes.count)
        }
        self.bytes = bytes
        self.offsets = offsets
        self.hiddenUnlessSpecial = vocabulary.attributes.map { !$0.isDisjoint(with: [.control, .unknown]) }
    }

    var count: Int { offsets.count - 1 }

    /// The piece of `id`; empty for ids outside the vocabulary and for hidden tokens when not rendering specials.
    func piece(_ id: Int32, renderSpecial: Bool) -> ArraySlice<UInt8> {
        guard id >= 0 && Int(id) < count else { return [] }
        if !renderSpecial && hiddenUnlessSpecial[Int(id)] { return [] }
        return bytes[offsets[Int(id)]..<offsets[Int(id) + 1]]
    }

    static func piece(text: String, attributes: TokenAttributes) -> [UInt8] {
        if !attributes.isDisjoint(with: [.control, .unknown, .userDefined]) {
            return Array(text.utf8)
        }
        if attributes.contains(.normal) {
            var out: [UInt8] = []
            for scalar in text.unicodeScalars {
                if let byte = ByteEncoding.byte(for: scalar) {
                    out.append(byte)
                } else {
                    out += Array("[UNK_BYTE_0x".utf8)
                    for b in String(scalar).utf8 { out += Array(hex2(b).utf8) }
                    out += Array(text.utf8) + [UInt8(ascii: "]")]
                }
            }
            return out
        }
        if attributes.contains(.byte) {
            // strtol(text.substr(3, 2), 16): the leading hex digits of those two characters, 0 if none.
            let utf8 = Array(text.utf8)
            guard utf8.count >= 3 else { return [] }  // llama.cpp would throw here; nothing is safer
            var value = 0
            for c in utf8[3..<min(5, utf8.count)] {
                guard let digit = Int(String(UnicodeScalar(c)), radix: 16) else { break }
                value = value * 16 + digit
            }
            return [UInt8(value)]
        }
        return []
    }

    private static func hex2(_ b: UInt8) -> String {
        let s = String(b, radix: 16)
        return s.count == 1 ? "0" + s : s
    }
}
