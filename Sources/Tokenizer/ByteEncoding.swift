// GPT-2's byte-to-unicode table (FORMATS.md §6.2 step 3; llama.cpp unicode.cpp
// `unicode_byte_to_utf8_map`, from OpenAI's `bytes_to_unicode`). Byte-level BPE vocabularies spell
// every byte as one printable code point, so that token texts never contain spaces or control
// characters: bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF stand for themselves, and the other 68 bytes
// map, in increasing order, to U+0100, U+0101, ... (space 0x20 becomes U+0120 'Ġ').

enum ByteEncoding {
    /// The code point that stands for each byte.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!  // 256...323: always valid scalars
                next += 1
            }
        }
        return table
    }()

    /// The one-character string that stands for each byte.
    static let stringForByte: [String] = scalarForByte.map { String(Character($0)) }

    /// The byte a code point stands for, or nil when it stands for none (only U+0021...U+0143 can).
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        guard v < 0x144 else { return nil }
        return byteForScalar[Int(v)]
    }

    private static let byteForScalar: [UInt8?] = {
        var table = [UInt8?](repeating: nil, count: 0x144)
        for (byte, scalar) in scalarForByte.enumerated() { table[Int(scalar.value)] = UInt8(byte) }
        return table
    }()
}
