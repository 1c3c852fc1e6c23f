// A guard in front of TOMLKit. The toml++ parser inside TOMLKit 0.6.0 asserts (aborts the process in
// debug builds; undefined behaviour through __builtin_assume in release builds) on some broken
// inputs instead of reporting them. Fuzzing toml++ itself (a debug build, one fork per input, tens
// of thousands of mutated documents) found three shapes, and ConfigFuzzTests keeps checking:
//   1. a table header whose "[" or "[[" is followed by something that cannot start a key:
//      "[\n", "[,a]", "[ =x]";
//   2. a "}" where an array expects its next element: "x = [}", "x = [1, }", "x = { a = [ }";
//   3. malformed dates and times: "x = 1979-05-27T:", "x = 1979-05-27 1,".
// None is valid TOML except well-formed dates and times, which lorad's configuration never uses;
// so this scanner refuses those shapes (outside strings and comments), and any unquoted value
// that starts like a date or a time (digits then "-" or ":"), as syntax errors with their position,
// before toml++ sees the text. It also refuses NUL, which toml++ would read as the end of the
// document. It is not a TOML parser: everything else, every other error included, is left to toml++.

enum TOMLPrecheck {
    struct Hazard: Equatable {
        var line: Int
        var column: Int
        var message: String
        /// For a date or time given to a plain `key = value` line: the key's full path as written
        /// ("server.idle_timeout_seconds") and the value, so the caller can name the key.
        var key: String? = nil
        var value: String? = nil
    }

    static func firstHazard(in text: String) -> Hazard? {
        let bytes = Array(text.utf8)
        var i = 0
        var line = 1
        var lineStartIndex = 0
        /// Open arrays ("[") and inline tables ("{") of the value being scanned.
        var stack: [UInt8] = []
        /// Only spaces and tabs since the last newline, outside any value: a "[" here opens a header.
        var atLineStart = true
        /// Just after an array's "[" or a "," inside an array: the next token must not be "}".
        var expectingElement = false
        /// Just after "=" or where an array element goes: a value starts at the next token.
        var expectingValue = false
        /// The current table header's name and the key of the top-level `key = value` being read,
        /// as written, only to name them in a message.
        var table = ""
        var key: String? = nil
        func slice(_ from: Int, _ to: Int) -> String {
            let blank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            var a = from, b = to
            while a < b, blank(bytes[a]) { a += 1 }
            while b > a, blank(bytes[b - 1]) { b -= 1 }
            return String(decoding: bytes[a..<b], as: UTF8.self)
        }

        func column(_ at: Int) -> Int {
            // 1-based, in characters (UTF-8 continuation bytes do not count), as toml++ counts.
            1 + bytes[lineStartIndex..<at].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
        }
        func byte(_ at: Int) -> UInt8? { at < bytes.count ? bytes[at] : nil }
        func isKeyStart(_ b: UInt8) -> Bool {
            (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: "\"") || b == UInt8(ascii: "'")
        }
        func describe(_ b: UInt8) -> String {
            switch b {
            case UInt8(ascii: "\n"): "a line break"
            case UInt8(ascii: "\r"): "a carriage return"
            case UInt8(ascii: "\t"): "a tab"
            case 0x20...0x7E: "'\(Character(Unicode.Scalar(b)))'"
            default: "byte 0x\(String(b, radix: 16))"
            }
        }

        if let nul = bytes.firstIndex(of: 0) {
            // Anywhere, strings included: toml++ receives a C string and would stop there.
            let before = bytes[..<nul]
            let start = (before.lastIndex(of: UInt8(ascii: "\n")) ?? -1) + 1
            lineStartIndex = start
            return Hazard(line: 1 + before.count { $0 == UInt8(ascii: "\n") }, column: column(nul),
                          message: "NUL character; a configuration is text")
        }
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\n"):
                line += 1
                i += 1
                lineStartIndex = i
                atLineStart = stack.isEmpty
                continue
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                i += 1
                continue
            case UInt8(ascii: "#"):
                while i < bytes.count, bytes[i] != UInt8(ascii: "\n") { i += 1 }
                continue
            default:
                break
            }
            if expectingElement && b == UInt8(ascii: "}") {
                return Hazard(line: line, column: column(i), message: "expected a value or ']' in the array, found '}'")
            }
            if expectingValue {
                // Digits (after an optional sign) then "-" or ":": a date or a time.
                var j = i
                if b == UInt8(ascii: "+") || b == UInt8(ascii: "-") { j += 1 }
                let digits = j
                while let c = byte(j), c >= 0x30 && c <= 0x39 { j += 1 }
                if j > digits, let c = byte(j), c == UInt8(ascii: "-") || c == UInt8(ascii: ":") {
                    var end = j
                    while let c = byte(end), !" \t\r\n,]}#".utf8.contains(c) { end += 1 }
                    return Hazard(line: line, column: column(i),
                                  message: "dates and times are not configuration values; quote the value if it is text",
                                  key: stack.isEmpty ? key.map { table.isEmpty ? $0 : "\(table).\($0)" } : nil,
                                  value: slice(i, end))
                }
            }
            expectingElement = false
            expectingValue = false

            if b == UInt8(ascii: "[") && atLineStart {
                // A table header: "[" or "[[", optional blanks, then a key must start (or "]",
                // which toml++ reports properly).
                atLineStart = false
                var j = i + 1
                if byte(j) == UInt8(ascii: "[") { j += 1 }
                while let c = byte(j), c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { j += 1 }
                if let c = byte(j), !isKeyStart(c), c != UInt8(ascii: "]") {
                    return Hazard(line: line, column: column(j),
                                  message: "expected a table name after '[', found \(describe(c))")
                }
                // The rest of the header holds only keys (quoted ones are skipped as strings below).
                var close = j
                while let c = byte(close), c != UInt8(ascii: "]"), c != UInt8(ascii: "\n") { close += 1 }
                table = slice(j, close)
                i = j
                continue
            }
            atLineStart = false

            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                i = skipString(bytes, from: i, line: &line, lineStart: &lineStartIndex)
                continue
            case UInt8(ascii: "="):
                expectingValue = true
                key = stack.isEmpty ? slice(lineStartIndex, i) : nil
            case UInt8(ascii: "["):
                stack.append(b)
                expectingElement = true
                expectingValue = true
            case UInt8(ascii: "{"):
                stack.append(b)
            case UInt8(ascii: "]"):
                if stack.last == UInt8(ascii: "[") { stack.removeLast() }
            case UInt8(ascii: "}"):
                if stack.last == UInt8(ascii: "{") { stack.removeLast() }
            case UInt8(ascii: ","):
                expectingElement = stack.last == UInt8(ascii: "[")
                expectingValue = expectingElement
            default:
                break
            }
            i += 1
        }
        return nil
    }

    /// The index just past the string starting at `start` (basic or literal, single- or multi-line).
    /// An unterminated string ends at the end of its line (single-line) or of the text (multi-line);
    /// toml++ reports those.
    static func skipString(_ bytes: [UInt8], from start: Int, line: inout Int, lineStart: inout Int) -> Int {
        let quote = bytes[start]
        let basic = quote == UInt8(ascii: "\"")
        let multiline = start + 2 < bytes.count && bytes[start + 1] == quote && bytes[start + 2] == quote
        var i = start + (multiline ? 3 : 1)
        while i < bytes.count {
            let b = bytes[i]
            if basic && b == UInt8(ascii: "\\") {
                // An escape; in a multi-line string "\" at the end of a line continues it.
                if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\n") {
                    line += 1
                    lineStart = i + 2
                }
                i += 2
                continue
            }
            if b == UInt8(ascii: "\n") {
                if !multiline { return i }
                line += 1
                lineStart = i + 1
            }
            if b == quote {
                if !multiline { return i + 1 }
                if i + 2 < bytes.count && bytes[i + 1] == quote && bytes[i + 2] == quote {
                    // The closing delimiter is the last three of a run of up to five quotes.
                    var end = i + 3
                    while end < bytes.count && end < i + 5 && bytes[end] == quote { end += 1 }
                    return end
                }
            }
            i += 1
        }
        return i
    }
}
