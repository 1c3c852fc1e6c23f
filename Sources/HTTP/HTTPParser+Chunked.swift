// The chunk-size line of a chunked body (RFC 9112 §7.1):
//   chunk-size [ chunk-ext ] CRLF
//   chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
// Sizes are 1 to 16 hex digits (16 fill a UInt64, so no overflow is possible and more digits are
// refused rather than wrapped). Extensions are checked for syntax and ignored; their length is bounded
// by `maxChunkLineBytes`. The data, its CRLF and the trailers are handled by the state machine.

extension HTTPParser {
    static func parseChunkSizeLine(_ line: [UInt8]) throws(HTTPParseError) -> UInt64 {
        var k = 0
        var size: UInt64 = 0
        while k < line.count, let digit = ByteClass.hexValue(line[k]) {
            if k == 16 {
                throw .badRequest("a chunk size has more than 16 hex digits in \(ByteClass.describe(line)); sizes must fit 64 bits")
            }
            size = size << 4 | UInt64(digit)
            k += 1
        }
        if k == 0 {
            throw .badRequest("expected a hex chunk size, found \(ByteClass.describe(line))")
        }
        try checkChunkExtensions(line, from: k)
        return size
    }

    static func checkChunkExtensions(_ line: [UInt8], from start: Int) throws(HTTPParseError) {
        var k = start
        func skipWhitespace() { while k < line.count && ByteClass.isWhitespace(line[k]) { k += 1 } }
        func token() -> Bool {
            let s = k
            while k < line.count && ByteClass.isTchar(line[k]) { k += 1 }
            return k > s
        }
        func fail(_ expected: String) -> HTTPParseError {
            let found = k < line.count ? ByteClass.describe(byte: line[k]) : "the end of the line"
            return .badRequest("expected \(expected) in the chunk-size line \(ByteClass.describe(line)), found \(found) at byte \(k)")
        }
        while k < line.count {
            skipWhitespace()
            guard k < line.count, line[k] == UInt8(ascii: ";") else { throw fail("';' starting a chunk extension") }
            k += 1
            skipWhitespace()
            guard token() else { throw fail("a chunk extension name (a token)") }
            let afterName = k
            skipWhitespace()
            guard k < line.count, line[k] == UInt8(ascii: "=") else {
                k = afterName
                continue
            }
            k += 1
            skipWhitespace()
            if k < line.count && line[k] == UInt8(ascii: "\"") {
                k += 1
                var closed = false
                while k < line.count {
                    let b = line[k]
                    if b == UInt8(ascii: "\"") { closed = true; k += 1; break }
                    if b == UInt8(ascii: "\\") { k += 1; guard k < line.count else { break } }
                    guard ByteClass.isFieldValueByte(line[k]) else { throw fail("a quoted-string character") }
                    k += 1
                }
                guard closed else { throw fail("'\"' closing a quoted chunk extension value") }
            } else {
                guard token() else { throw fail("a chunk extension value (a token or a quoted-string)") }
            }
        }
    }
}
