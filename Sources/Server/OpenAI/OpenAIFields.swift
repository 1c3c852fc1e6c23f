// Typed reads of request-body fields, each failing with a 400 that names the field and says what
// was expected and what was found. An explicit `null` counts as absent, as in vLLM (pydantic
// Optional fields) and the OpenAI API: many clients send every optional field, unset ones as null.
// Integer fields also take integral numbers written with a fraction or exponent (16.0, 1e2), as
// pydantic's lax mode does.

import JSON

/// The members of one JSON object (a request body or a nested object such as a message), read by
/// name. `path` prefixes the names in errors (`messages[2].`).
struct OpenAIFields {
    let members: [(String, JSONValue)]
    let path: String

    /// Parses a request body that must be one JSON object.
    init(body: [UInt8]) throws(OpenAIError) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch {
            throw .badRequest(param: nil, message: "the request body is not valid JSON: \(error)")
        }
        guard case .object(let members) = value else {
            throw .badRequest(param: nil, message: "the request body must be a JSON object, found \(value.kindDescription)")
        }
        self.members = members
        self.path = ""
    }

    /// Reads a nested object; `name` is its full parameter name (`messages[1]`).
    init(_ value: JSONValue, name: String) throws(OpenAIError) {
        guard case .object(let members) = value else {
            throw .invalid(name, expected: "an object", found: value)
        }
        self.members = members
        self.path = name + "."
    }

    func param(_ key: String) -> String { path + key }

    /// The value of `key`, nil when absent or null.
    subscript(_ key: String) -> JSONValue? {
        for (k, v) in members where k == key {
            if case .null = v { return nil }
            return v
        }
        return nil
    }

    func has(_ key: String) -> Bool { self[key] != nil }

    func string(_ key: String, expected: String = "a string") throws(OpenAIError) -> String? {
        guard let v = self[key] else { return nil }
        guard case .string(let s) = v else { throw .invalid(param(key), expected: expected, found: v) }
        return s
    }

    func bool(_ key: String) throws(OpenAIError) -> Bool? {
        guard let v = self[key] else { return nil }
        guard case .bool(let b) = v else { throw .invalid(param(key), expected: "true or false", found: v) }
        return b
    }

    /// A number in `range`; `expected` describes the range in words for the error.
    func number(_ key: String, in range: ClosedRange<Double>, expected: String) throws(OpenAIError) -> Double? {
        guard let v = self[key] else { return nil }
        guard let d = v.doubleValue, range.contains(d) else { throw .invalid(param(key), expected: expected, found: v) }
        return d
    }

    /// An integer in `range` (integral doubles accepted); `expected` describes the range in words.
    func integer(_ key: String, in range: ClosedRange<Int>, expected: String) throws(OpenAIError) -> Int? {
        guard let v = self[key] else { return nil }
        guard let i = Self.integer(v), range.contains(i) else { throw .invalid(param(key), expected: expected, found: v) }
        return i
    }

    /// `value` as an Int when it is an integer, or a double with no fractional part inside Int's range.
    static func integer(_ value: JSONValue) -> Int? {
        switch value {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e18: return Int(d)
        default: return nil
        }
    }
}
