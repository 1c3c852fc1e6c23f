// Standard base64 (RFC 4648 §4) for adapter uploads in JSON bodies. Strict where it matters and
// lenient only where common tools differ: line breaks (CR, LF) are skipped, since `base64` wraps
// at 76 columns, and the final `=` padding may be left out; any other byte outside the alphabet,
// data after padding, or a lone trailing character is refused with its offset, so a corrupt
// upload fails here with a message rather than as a confusing tensor error later.
//
// Its own decoder rather than Foundation's: Foundation either refuses line breaks or, with
// `.ignoreUnknownCharacters`, silently skips garbage, and says nothing about where.

struct Base64DecodeError: Error, Equatable, CustomStringConvertible {
    let message: String
    var description: String { message }
}

enum Base64 {
    /// Byte → 6-bit value; 0xFF for bytes outside the alphabet.
    private static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    static func decode(_ text: String) throws(Base64DecodeError) -> [UInt8] {
        var text = text
        // withUTF8 rethrows untyped: carry the result out instead.
        let result = text.withUTF8 { buffer in Result { () throws(Base64DecodeError) in try decode(buffer) } }
        return try result.get()
    }

    static func decode(_ text: UnsafeBufferPointer<UInt8>) throws(Base64DecodeError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3 + 2)
        var group: UInt32 = 0
        var inGroup = 0
        var padding = 0
        for i in 0..<text.count {
            let b = text[i]
            if b == 0x0D || b == 0x0A { continue }
            if b == UInt8(ascii: "=") {
                padding += 1
                guard padding <= 2 else { throw Base64DecodeError(message: "more than two '=' of padding at offset \(i)") }
                continue
            }
            let v = values[Int(b)]
            guard v != 0xFF else {
                throw Base64DecodeError(message: "found \(describe(b)) at offset \(i); expected base64 (A-Z, a-z, 0-9, '+', '/', '=' padding at the end)")
            }
            guard padding == 0 else { throw Base64DecodeError(message: "data after the '=' padding at offset \(i)") }
            group = group << 6 | UInt32(v)
            inGroup += 1
            if inGroup == 4 {
                out.append(UInt8(truncatingIfNeeded: group >> 16))
                out.append(UInt8(truncatingIfNeeded: group >> 8))
                out.append(UInt8(truncatingIfNeeded: group))
                group = 0
                inGroup = 0
            }
        }
        switch (inGroup, padding) {
        case (0, 0): break
        case (2, 0), (2, 2): out.append(UInt8(truncatingIfNeeded: group >> 4))
        case (3, 0), (3, 1):
            out.append(UInt8(truncatingIfNeeded: group >> 10))
            out.append(UInt8(truncatingIfNeeded: group >> 2))
        case (1, _):
            throw Base64DecodeError(message: "the text ends with a lone base64 character: it was cut short (its length without line breaks must not be 1 more than a multiple of 4)")
        default:
            throw Base64DecodeError(message: "\(padding) '=' of padding after \(inGroup == 0 ? 4 : inGroup) characters of the last group; expected '=' only to fill a group to 4 characters")
        }
        return out
    }

    private static func describe(_ b: UInt8) -> String {
        b >= 0x21 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16, uppercase: true))"
    }
}
