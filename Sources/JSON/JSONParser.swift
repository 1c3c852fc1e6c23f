// lorad's one JSON reader: a strict RFC 8259 parser for bytes from outside (HTTP request bodies,
// safetensors headers, adapter_config.json, the daemon's replies to `lorad ask`), producing JSONValue.
//
// Strict means: exactly one value with only JSON whitespace (space, tab, LF, CR) around it; no
// trailing commas, comments, NaN/Infinity, leading zeros, single quotes, byte order mark or
// unescaped control characters; valid UTF-8 only (no overlongs, no encoded surrogates); \uXXXX
// escapes must pair surrogates correctly. Two choices RFC 8259 leaves open are made here:
// duplicate keys in one object are rejected (parsers disagree on which one wins, so a request that
// has them is ambiguous), and numbers whose magnitude overflows a Double are rejected rather than
// turned into infinity (which JSON cannot carry back out). An integer without fraction or exponent
// that fits Int becomes .int; every other number becomes .double (correctly rounded by the standard
// library's decimal conversion).
//
// The parser is iterative with an explicit stack of open containers, so the nesting limit, not
// the thread's stack size, bounds how deep a document may go. Every error carries the byte offset
// where the input stopped making sense and says what was expected there and what was found.

/// Why a JSON text was rejected: what was expected, what was found, and at which byte.
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Byte offset into the input (0-based) where the problem was detected.
    public var offset: Int
    /// What was expected and what was found, without the offset.
    public var message: String
    /// Set when the text was rejected for a key repeated in one object, so a format with a message of
    /// its own for that (safetensors: a tensor named twice) can say it.
    public var duplicateKey: DuplicateKey?

    /// A key found twice in one object, and how many arrays and objects enclose it (1 for a key of
    /// the top-level object).
    public struct DuplicateKey: Equatable, Sendable {
        public var key: String
        public var depth: Int

        public init(key: String, depth: Int) {
            self.key = key
            self.depth = depth
        }
    }

    public init(offset: Int, message: String, duplicateKey: DuplicateKey? = nil) {
        self.offset = offset
        self.message = message
        self.duplicateKey = duplicateKey
    }

    public var description: String { "\(message) at byte \(offset)" }
}

extension JSONValue {
    /// Parses exactly one JSON value (RFC 8259, strict; see the file header).
    /// `maxDepth` bounds how many arrays and objects may be nested inside each other. The parser
    /// itself does not recurse, but JSONValue's `==`, `serialized()` and release do, so keep the
    /// limit modest (the default suits request bodies).
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes.bindMemory(to: UInt8.self), maxDepth: maxDepth)
        return try parser.parseDocument()
    }

    /// Parses exactly one JSON value from any byte collection (contiguous ones are not copied).
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes, maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError>
        if let r = bytes.withContiguousStorageIfAvailable({ buffer in
            Result { () throws(JSONParseError) in try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth) }
        }) {
            result = r
        } else {
            result = Array(bytes).withUnsafeBytes { buffer in
                Result { () throws(JSONParseError) in try parse(buffer, maxDepth: maxDepth) }
            }
        }
        return try result.get()
    }

    /// Parses exactly one JSON value from the UTF-8 of `text`.
    public static func parse(_ text: String, maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }
}

// MARK: - Accessors

extension JSONValue {
    /// The value of the first member named `key` when this is an object (parsed objects have no
    /// duplicate keys), otherwise nil.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self {
            for (k, v) in members where k == key { return v }
        }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// Only .int; a number written with a fraction or exponent is not an integer here.
    public var intValue: Int? {
        if case .int(let i) = self { return i }
        return nil
    }

    /// Any number, .int converted.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let xs) = self { return xs }
        return nil
    }

    public var objectMembers: [(String, JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The JSON type in words, for error messages ("a string", "an object", ...).
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

// MARK: - The parser

private let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), slash = UInt8(ascii: "/")
private let comma = UInt8(ascii: ","), colon = UInt8(ascii: ":")
private let openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}")
private let openBracket = UInt8(ascii: "["), closeBracket = UInt8(ascii: "]")
private let minus = UInt8(ascii: "-"), plus = UInt8(ascii: "+"), dot = UInt8(ascii: ".")
private let zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")

/// One open array or object. Containers are filled in place on the stack (`stack[top].x.append`)
/// so that no array is ever copied while it grows.
private struct OpenContainer {
    var isObject: Bool
    var elements: [JSONValue] = []
    var members: [(String, JSONValue)] = []
    /// The key whose value is being parsed (objects only).
    var pendingKey = ""
    /// Keys seen so far, built only once an object is large enough that a linear scan would cost.
    var keySet: Set<String>? = nil
}

private struct JSONParser {
    let p: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var i = 0
    var stack: [OpenContainer] = []
    /// Reused for strings with escapes.
    var scratch: [UInt8] = []

    init(_ p: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.p = p
        self.maxDepth = maxDepth
    }

    // MARK: Errors

    func fail(_ message: String, at offset: Int) -> JSONParseError {
        JSONParseError(offset: offset, message: message)
    }

    /// "expected X, found Y" at the current byte.
    func expected(_ what: String) -> JSONParseError {
        fail("expected \(what), found \(foundDescription(at: i))", at: i)
    }

    func foundDescription(at offset: Int) -> String {
        guard offset < p.count else { return "end of input" }
        let b = p[offset]
        switch b {
        case 0x20: return "a space"
        case 0x21...0x7E:
            let c = Character(Unicode.Scalar(b))
            return c == "'" ? "\"'\"" : "'\(c)'"
        default: return "byte 0x" + hex2(b)
        }
    }

    // MARK: Document and values

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        if p.count >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF {
            throw fail("expected a JSON value, found a UTF-8 byte order mark (JSON text must not start with one)", at: 0)
        }
        let value = try parseNested()
        skipWhitespace()
        if i < p.count {
            throw fail("expected end of input after the JSON value, found \(foundDescription(at: i))", at: i)
        }
        return value
    }

    /// Parses one value (with everything nested in it) starting after optional whitespace.
    mutating func parseNested() throws(JSONParseError) -> JSONValue {
        var afterComma = false
        parsing: while true {
            skipWhitespace()
            var value: JSONValue
            guard i < p.count else { throw expected("a JSON value") }
            switch p[i] {
            case openBracket:
                try checkDepth(at: i)
                i += 1
                skipWhitespace()
                if i < p.count && p[i] == closeBracket {
                    i += 1
                    value = .array([])
                } else {
                    stack.append(OpenContainer(isObject: false))
                    afterComma = false
                    continue parsing
                }
            case openBrace:
                try checkDepth(at: i)
                i += 1
                skipWhitespace()
                if i < p.count && p[i] == closeBrace {
                    i += 1
                    value = .object([])
                } else {
                    stack.append(OpenContainer(isObject: true))
                    stack[stack.count - 1].pendingKey = try parseKey(firstInObject: true)
                    continue parsing
                }
            case quote:
                value = .string(try parseString())
            case UInt8(ascii: "t"): try literal("true"); value = .bool(true)
            case UInt8(ascii: "f"): try literal("false"); value = .bool(false)
            case UInt8(ascii: "n"): try literal("null"); value = .null
            case minus, zero...nine:
                value = try parseNumber()
            case closeBracket where afterComma, closeBrace where afterComma:
                throw fail("expected a value after ',', found '\(Character(Unicode.Scalar(p[i])))' (trailing commas are not allowed in JSON)", at: i)
            case UInt8(ascii: "'"):
                throw fail("expected a JSON value, found \"'\" (JSON strings use double quotes)", at: i)
            case UInt8(ascii: "N"), UInt8(ascii: "I"):
                throw fail("expected a JSON value, found \(foundDescription(at: i)) (NaN and Infinity are not JSON numbers)", at: i)
            case plus, dot:
                throw fail("expected a JSON value, found \(foundDescription(at: i)) (a JSON number starts with '-' or a digit)", at: i)
            default:
                throw expected("a JSON value")
            }
            afterComma = false

            // The value is complete: add it to the innermost open container, closing containers
            // for as long as their closing bracket follows.
            while !stack.isEmpty {
                let top = stack.count - 1
                skipWhitespace()
                if stack[top].isObject {
                    let key = stack[top].pendingKey
                    stack[top].members.append((key, value))
                    guard i < p.count else { throw expected("',' or '}' after an object member") }
                    if p[i] == comma {
                        i += 1
                        stack[top].pendingKey = try parseKey(firstInObject: false)
                        continue parsing
                    } else if p[i] == closeBrace {
                        i += 1
                        value = .object(stack.removeLast().members)
                    } else {
                        throw expected("',' or '}' after an object member")
                    }
                } else {
                    stack[top].elements.append(value)
                    guard i < p.count else { throw expected("',' or ']' after an array element") }
                    if p[i] == comma {
                        i += 1
                        afterComma = true
                        continue parsing
                    } else if p[i] == closeBracket {
                        i += 1
                        value = .array(stack.removeLast().elements)
                    } else {
                        throw expected("',' or ']' after an array element")
                    }
                }
            }
            return value
        }
    }

    /// An array or object opening at `offset` would be one level deeper than those open now
    /// (empty ones count too: they are a level of the value tree).
    func checkDepth(at offset: Int) throws(JSONParseError) {
        if stack.count >= maxDepth {
            throw fail("expected at most \(maxDepth) nested arrays and objects, found deeper nesting", at: offset)
        }
    }

    /// Parses `"key" :` after whitespace, rejecting a key the innermost object already has.
    mutating func parseKey(firstInObject: Bool) throws(JSONParseError) -> String {
        skipWhitespace()
        guard i < p.count, p[i] == quote else {
            if i < p.count && p[i] == closeBrace && !firstInObject {
                throw fail("expected an object key after ',', found '}' (trailing commas are not allowed in JSON)", at: i)
            }
            if i < p.count && p[i] == UInt8(ascii: "'") {
                throw fail("expected an object key in double quotes, found \"'\" (JSON strings use double quotes)", at: i)
            }
            throw expected(firstInObject ? "an object key (a string) or '}'" : "an object key (a string)")
        }
        let keyStart = i
        let key = try parseString()
        let top = stack.count - 1
        if stack[top].keySet == nil && stack[top].members.count >= 16 {
            stack[top].keySet = Set(stack[top].members.map(\.0))
        }
        // Swift String equality (canonical equivalence) is what a Dictionary built from this object
        // would use, so two keys that compare equal here would collide there too.
        let duplicate: Bool
        if stack[top].keySet != nil {
            duplicate = !stack[top].keySet!.insert(key).inserted
        } else {
            duplicate = stack[top].members.contains { $0.0 == key }
        }
        if duplicate {
            var error = fail("duplicate key \(JSONValue.quoted(key)) in an object (each key may appear once)", at: keyStart)
            error.duplicateKey = JSONParseError.DuplicateKey(key: key, depth: stack.count)
            throw error
        }
        skipWhitespace()
        guard i < p.count, p[i] == colon else { throw expected("':' after an object key") }
        i += 1
        return key
    }

    mutating func skipWhitespace() {
        while i < p.count {
            switch p[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        for k in 0..<n where i + k >= p.count || p[i + k] != word.utf8Start[k] {
            throw fail("expected '\(word)', found \(foundDescription(at: i + k))", at: i + k)
        }
        i += n
    }

    // MARK: Numbers

    /// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = i
        var negative = false
        if p[i] == minus {
            negative = true
            i += 1
        }
        guard i < p.count, isDigit(p[i]) else {
            throw fail("expected a digit after '-', found \(foundDescription(at: i))", at: i)
        }
        var integer = true
        // Accumulate negatively so that Int.min fits.
        var value = 0
        var overflow = false
        if p[i] == zero {
            i += 1
            if i < p.count && isDigit(p[i]) {
                throw fail("expected '.', 'e' or the end of the number after a leading 0, found \(foundDescription(at: i)) (leading zeros are not allowed)", at: i)
            }
        } else {
            while i < p.count && isDigit(p[i]) {
                if !overflow {
                    let (m, o1) = value.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.subtractingReportingOverflow(Int(p[i] - zero))
                    if o1 || o2 { overflow = true } else { value = s }
                }
                i += 1
            }
        }
        if i < p.count && p[i] == dot {
            integer = false
            i += 1
            guard i < p.count, isDigit(p[i]) else {
                throw fail("expected a digit after the decimal point, found \(foundDescription(at: i))", at: i)
            }
            while i < p.count && isDigit(p[i]) { i += 1 }
        }
        if i < p.count && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            integer = false
            i += 1
            if i < p.count && (p[i] == plus || p[i] == minus) { i += 1 }
            guard i < p.count, isDigit(p[i]) else {
                throw fail("expected a digit in the exponent, found \(foundDescription(at: i))", at: i)
            }
            while i < p.count && isDigit(p[i]) { i += 1 }
        }
        if integer && !overflow {
            if negative { return .int(value) }
            if value != Int.min { return .int(-value) }
        }
        // The standard library's conversion is correctly rounded; the text is ASCII by construction.
        let text = String(decoding: UnsafeBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
        guard let d = Double(text), d.isFinite else {
            throw fail("expected a number within the range of a double, found \(text)", at: start)
        }
        return .double(d)
    }

    func isDigit(_ b: UInt8) -> Bool { b >= zero && b <= nine }

    // MARK: Strings

    /// Parses a string starting at its opening quote.
    mutating func parseString() throws(JSONParseError) -> String {
        i += 1
        let start = i
        // Fast path: no escapes, the bytes between the quotes are the string.
        while i < p.count {
            let b = p[i]
            if b == quote {
                let s = String(decoding: UnsafeBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
                i += 1
                return s
            } else if b == backslash {
                break
            } else if b < 0x20 {
                throw controlCharacter(b)
            } else if b < 0x80 {
                i += 1
            } else {
                try skipUTF8Sequence()
            }
        }
        guard i < p.count else { throw fail("expected '\"' to close the string that starts at byte \(start - 1), found end of input", at: i) }

        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<i]))
        while i < p.count {
            let b = p[i]
            if b == quote {
                i += 1
                return String(decoding: scratch, as: UTF8.self)
            } else if b == backslash {
                try parseEscape()
            } else if b < 0x20 {
                throw controlCharacter(b)
            } else if b < 0x80 {
                scratch.append(b)
                i += 1
            } else {
                let s = i
                try skipUTF8Sequence()
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: p[s..<i]))
            }
        }
        throw fail("expected '\"' to close the string that starts at byte \(start - 1), found end of input", at: i)
    }

    func controlCharacter(_ b: UInt8) -> JSONParseError {
        fail("expected a string character, found control character 0x\(hex2(b)) (escape it, e.g. as \\u00\(hex2(b)))", at: i)
    }

    /// Appends the UTF-8 of one escape sequence starting at its backslash.
    mutating func parseEscape() throws(JSONParseError) {
        let start = i
        i += 1
        guard i < p.count else { throw fail("expected an escape character after '\\', found end of input", at: i) }
        let e = p[i]
        i += 1
        switch e {
        case quote, backslash, slash: scratch.append(e)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            var v = try hex4()
            if v >= 0xDC00 && v <= 0xDFFF {
                throw fail("expected a high surrogate before the low surrogate \\u\(hex4Text(v)) (lone surrogates are not text)", at: start)
            }
            if v >= 0xD800 && v <= 0xDBFF {
                guard i + 1 < p.count, p[i] == backslash, p[i + 1] == UInt8(ascii: "u") else {
                    throw fail("expected a \\u low surrogate after the high surrogate \\u\(hex4Text(v)), found \(foundDescription(at: i)) (lone surrogates are not text)", at: i)
                }
                let lowStart = i
                i += 2
                let low = try hex4()
                guard low >= 0xDC00 && low <= 0xDFFF else {
                    throw fail("expected a low surrogate (\\uDC00-\\uDFFF) after the high surrogate \\u\(hex4Text(v)), found \\u\(hex4Text(low))", at: lowStart)
                }
                v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
            }
            appendUTF8(v)
        default:
            throw fail("expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u after a backslash, found \(foundDescription(at: i - 1))", at: i - 1)
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < p.count else { throw fail("expected 4 hex digits after \\u, found end of input", at: i) }
            let b = p[i]
            let d: UInt8
            switch b {
            case zero...nine: d = b - zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw fail("expected 4 hex digits after \\u, found \(foundDescription(at: i))", at: i)
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    mutating func appendUTF8(_ v: UInt32) {
        switch v {
        case 0..<0x80:
            scratch.append(UInt8(v))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | v >> 6))
            scratch.append(UInt8(0x80 | v & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | v >> 12))
            scratch.append(UInt8(0x80 | v >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | v & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | v >> 18))
            scratch.append(UInt8(0x80 | v >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | v >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | v & 0x3F))
        }
    }

    /// Steps over one well-formed multi-byte UTF-8 sequence starting at a byte >= 0x80
    /// (Unicode 15 table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
    mutating func skipUTF8Sequence() throws(JSONParseError) {
        let lead = p[i]
        let length: Int
        var low: UInt8 = 0x80, high: UInt8 = 0xBF  // allowed range of the second byte
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default:
            throw fail("expected UTF-8 text, found invalid byte 0x\(hex2(lead))" + (lead >= 0x80 && lead <= 0xBF ? " (a continuation byte without a lead byte)" : ""), at: i)
        }
        for k in 1..<length {
            let at = i + k
            guard at < p.count else { throw fail("expected UTF-8 text, found a sequence cut short by the end of input", at: at) }
            let b = p[at]
            let (lo, hi) = k == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
            guard b >= lo && b <= hi else {
                throw fail("expected UTF-8 text, found invalid byte 0x\(hex2(b)) in the sequence that starts with 0x\(hex2(lead)) at byte \(i)", at: at)
            }
        }
        i += length
    }
}

private func hex2(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
}

private func hex4Text(_ v: UInt32) -> String {
    hex2(UInt8(v >> 8)) + hex2(UInt8(v & 0xFF))
}
