// What JSONSchemaCompiler refuses, and how: unsupported keywords name the keyword and its JSON
// pointer (the API's 400), recursive references say recursion needs the grammar layer.
import Grammar
import JSON
import Testing

struct JSONSchemaErrorTests {
    func compileError(_ schema: String) throws -> JSONSchemaError? {
        let value = try JSONValue.parse(schema)
        do {
            _ = try JSONSchemaCompiler.dfa(for: value)
            return nil
        } catch {
            return error
        }
    }

    @Test func unsupportedKeywordNamesKeywordAndPointer() throws {
        let error = try compileError(##"{"type":"object","properties":{"age":{"type":"integer","multipleOf":5}}}"##)
        guard case .unsupported(let keyword, let pointer, _)? = error else {
            Issue.record("expected .unsupported, got \(String(describing: error))")
            return
        }
        #expect(keyword == "multipleOf")
        #expect(pointer == "/properties/age/multipleOf")
        #expect(error!.description.contains("'multipleOf' at '/properties/age/multipleOf'"))
    }

    @Test func pointersEscapeSlashAndTilde() throws {
        let error = try compileError(##"{"properties":{"a/b~c":{"items":{"uniqueItems":true}}}}"##)
        #expect(error == .unsupported(keyword: "uniqueItems", pointer: "/properties/a~1b~0c/items/uniqueItems",
                                      hint: "use 'items' with one schema for every element"))
    }

    @Test func otherUnsupportedConstructs() throws {
        let cases: [(String, String, String)] = [
            (##"{"type":"string","format":"hostname"}"##, "format", "/format"),
            (##"{"type":"string","pattern":"^[a-z]+$","maxLength":5}"##, "maxLength", "/maxLength"),
            (##"{"type":"number","minimum":1e-30}"##, "minimum", "/minimum"),
            (##"{"type":"integer","exclusiveMinimum":true}"##, "exclusiveMinimum", "/exclusiveMinimum"),
            (##"{"allOf":[{"type":"string"},{"maxLength":3}]}"##, "allOf", "/allOf"),
            (##"{"type":"object","anyOf":[{"properties":{}}]}"##, "type", "/type"),
            (##"{"type":"array","items":[{"type":"string"}]}"##, "items", "/items"),
            (##"{"$defs":{"a":{"not":{"type":"null"}}},"$ref":"#/$defs/a"}"##, "not", "/$defs/a/not"),
            (##"{"type":"object","properties":{"a":{}},"required":["b"]}"##, "required", "/required/0"),
        ]
        for (schema, keyword, pointer) in cases {
            let error = try compileError(schema)
            guard case .unsupported(let k, let p, _)? = error else {
                Issue.record("\(schema): expected .unsupported, got \(String(describing: error))")
                continue
            }
            #expect(k == keyword, "\(schema)")
            #expect(p == pointer, "\(schema)")
        }
    }

    @Test func recursiveReferenceIsATypedError() throws {
        let tree = ##"{"$defs":{"node":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}"##
        let error = try compileError(tree)
        #expect(error == .recursiveReference(ref: "#/$defs/node", pointer: "/$defs/node/properties/children/items/$ref"))
        #expect(error!.description.contains("grammar layer"))
        let root = ##"{"type":"object","properties":{"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}}}"##
        guard case .recursiveReference(let ref, _)? = try compileError(root) else {
            Issue.record("a reference to the root inside it is recursion")
            return
        }
        #expect(ref == "#")
        // The same definition used twice side by side is not recursion.
        let twice = ##"{"$defs":{"a":{"type":"integer"}},"type":"object","properties":{"x":{"$ref":"#/$defs/a"},"y":{"$ref":"#/$defs/a"}},"required":["x","y"]}"##
        #expect(try compileError(twice) == nil)
    }

    @Test func unresolvedReferences() throws {
        #expect(try compileError(##"{"$ref":"#/$defs/missing"}"##) == .unresolvedReference(ref: "#/$defs/missing", pointer: "/$ref"))
        #expect(try compileError(##"{"$ref":"https://example.com/schema.json"}"##)
            == .unresolvedReference(ref: "https://example.com/schema.json", pointer: "/$ref"))
    }

    @Test func malformedSchemas() throws {
        guard case .invalid(_, let pointer)? = try compileError(##"{"type":"object","properties":{"a":{"type":"strin"}}}"##) else {
            Issue.record("an unknown type is invalid")
            return
        }
        #expect(pointer == "/properties/a/type")
        guard case .invalid? = try compileError(##"{"type":"string","maxLength":-1}"##) else {
            Issue.record("a negative length is invalid")
            return
        }
    }

    @Test func badPatternCarriesItsPointer() throws {
        let error = try compileError(##"{"type":"object","properties":{"code":{"type":"string","pattern":"(a"}}}"##)
        guard case .regex(_, let pointer)? = error else {
            Issue.record("expected .regex, got \(String(describing: error))")
            return
        }
        #expect(pointer == "/properties/code/pattern")
    }

    /// oneOf compiles only when lorad can show no value is valid under two branches; a tagged union
    /// (a required property with different consts: pydantic's discriminated unions) is such a case,
    /// and its outputs carry the tag of the branch they follow.
    @Test func oneOfNeedsExclusiveBranches() throws {
        let tagged = try JSONValue.parse(##"""
            {"$defs": {"refund": {"type": "object", "required": ["kind", "amount"], "properties": {"kind": {"const": "refund"}, "amount": {"type": "integer"}}},
                       "swap": {"type": "object", "required": ["kind", "sku"], "properties": {"kind": {"const": "swap"}, "sku": {"type": "string"}}}},
             "oneOf": [{"$ref": "#/$defs/refund"}, {"$ref": "#/$defs/swap"}],
             "discriminator": {"propertyName": "kind", "mapping": {"refund": "#/$defs/refund", "swap": "#/$defs/swap"}}}
            """##)
        let dfa = try JSONSchemaCompiler.dfa(for: tagged)
        #expect(dfa.matches(Array(#"{"kind":"refund","amount":5}"#.utf8)))
        #expect(!dfa.matches(Array(#"{"kind":"refund","sku":"x"}"#.utf8)))
        for exclusive in [#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#, #"{"oneOf":[{"enum":[1,2]},{"enum":[3,"a"]}]}"#] {
            #expect(try compileError(exclusive) == nil, "\(exclusive)")
        }
        // Overlapping, or not provably exclusive: refused, naming oneOf where it is.
        for overlapping in [#"{"properties":{"x":{"oneOf":[{"type":"integer"},{"minimum":2}]}}}"#,
                            #"{"properties":{"x":{"oneOf":[{"enum":[1]},{"enum":[1.0,2]}]}}}"#,
                            #"{"properties":{"x":{"oneOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},{"type":"object","properties":{"b":{"type":"integer"}}}]}}}"#] {
            guard case .unsupported("oneOf", "/properties/x/oneOf", let hint)? = try compileError(overlapping) else {
                Issue.record("\(overlapping) is not refused as oneOf")
                continue
            }
            #expect(hint.contains("anyOf"), "\(hint)")
        }
    }

    /// `$ref` fragments are URI fragments: percent escapes are decoded before the pointer is followed.
    @Test func referencesArePercentDecoded() throws {
        let schema = try JSONValue.parse(##"{"$defs":{"a b%":{"const":7}},"$ref":"#/$defs/a%20b%25"}"##)
        #expect(try JSONSchemaCompiler.dfa(for: schema).matches(Array("7".utf8)))
    }

    /// Hostile nesting that every pass would recurse through: refused with a typed error, on both
    /// paths, instead of overflowing the thread's stack.
    @Test func deepNestingIsRefused() throws {
        var defs: [(String, JSONValue)] = []
        for i in 0..<200 { defs.append(("d\(i)", .object([("$ref", .string("#/$defs/d\(i + 1)"))]))) }
        defs.append(("d200", .object([("type", .string("integer"))])))
        let chain = JSONValue.object([("$defs", .object(defs)), ("$ref", .string("#/$defs/d0"))])
        #expect(throws: JSONSchemaError.self) { try JSONSchemaCompiler.dfa(for: chain) }
        #expect(throws: JSONSchemaError.self) { try JSONSchemaCompiler.automata(for: chain) }
        let pattern = String(repeating: "(", count: 5_000) + "a" + String(repeating: ")", count: 5_000)
        #expect(throws: JSONSchemaError.self) {
            try JSONSchemaCompiler.dfa(for: .object([("type", .string("string")), ("pattern", .string(pattern))]))
        }
    }
}

