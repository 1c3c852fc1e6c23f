// A token's piece as one printable line, for `lorad tokenize --pieces` and for logs. Pieces are raw
// bytes and can hold newlines, tabs or half a character, so they are escaped reversibly: backslash as
// \\, newline/tab/carriage return as \n \t \r, other control characters and every byte that is not
// part of valid UTF-8 as \xHH. Everything else (including non-ASCII text) is printed as is.

extension Tokenizer {
    /// The piece of `id` (control tokens rendered), escaped for display on one line.
    public func displayPiece(_ id: Int32) -> String {
        Self.escapedForDisplay(piece(id, renderSpecial: true))
    }

    public static func escapedForDisplay(_ bytes: [UInt8]) -> String {
        var out = ""
        var i = 0
        while i < bytes.count {
            let length = validSequenceLength(bytes, at: i)
            guard length > 0 else {
                out += hexEscape(bytes[i])
                i += 1
                continue
            }
            if length == 1 {
                switch bytes[i] {
                case 0x5C: out += "\\\\"
                case 0x0A: out += "\\n"
                case 0x09: out += "\\t"
                case 0x0D: out += "\\r"
                case 0x00..<0x20, 0x7F: out += hexEscape(bytes[i])
                default: out.unicodeScalars.append(Unicode.Scalar(bytes[i]))
                }
            } else {
                out += String(decoding: bytes[i..<(i + length)], as: UTF8.self)
            }
            i += length
        }
        return out
    }

    private static func hexEscape(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".unicodeScalars)
        return "\\x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)])
    }

    /// The length of the well-formed UTF-8 sequence starting at `i`, or 0 if none starts there.
    private static func validSequenceLength(_ bytes: [UInt8], at i: Int) -> Int {
        let lead = bytes[i]
        if lead < 0x80 { return 1 }
        let need: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0: need = 3; secondRange = 0xA0...0xBF
        case 0xED: need = 3; secondRange = 0x80...0x9F
        case 0xE1...0xEF: need = 3
        case 0xF0: need = 4; secondRange = 0x90...0xBF
        case 0xF4: need = 4; secondRange = 0x80...0x8F
        case 0xF1...0xF3: need = 4
        default: return 0
        }
        guard i + need <= bytes.count, secondRange.contains(bytes[i + 1]) else { return 0 }
        for k in 2..<need where bytes[i + k] & 0xC0 != 0x80 { return 0 }
        return need
    }
}
