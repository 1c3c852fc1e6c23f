// The other direction: random strings the compiled DFA accepts (random accepting walks, compact and
// flexible whitespace) must parse as JSON and validate against the schema with Python's jsonschema
// (scripts/tests/json_schema_validate.py, run through LORAD_TEST_PYTHON as `make test` sets it).
// Each string is also parsed by lorad's own strict JSON reader.
import Grammar
import JSON
import Testing

struct JSONSchemaWalkTests {
    @Test func randomAcceptedStringsValidate() throws {
        guard let python = PythonValidator.python else {
            Issue.record("LORAD_TEST_PYTHON is not set: run `make test` (scripts/test-venv makes the environment)")
            return
        }
        var rng = SeededRandom(seed: 20)
        for c in try SchemaFixtures.load() {
            for whitespace in [JSONSchemaOptions.Whitespace.compact, JSONSchemaOptions.flexibleWhitespace] {
                let dfa = try JSONSchemaCompiler.dfa(for: c.schema, options: JSONSchemaOptions(whitespace: whitespace))
                let distance = distanceToAccept(dfa)
                var outputs: [String] = []
                for _ in 0..<40 {
                    let bytes = acceptingWalk(dfa, distance: distance, rng: &rng)
                    #expect(dfa.matches(bytes))
                    guard let text = String(validating: bytes, as: UTF8.self) else {
                        Issue.record("\(c.name): a walk is not UTF-8: \(bytes)")
                        continue
                    }
                    #expect(throws: Never.self, "\(c.name): lorad's JSON reader refuses \(text)") { _ = try JSONValue.parse(text) }
                    outputs.append(text)
                }
                let results = try PythonValidator.validate(python: python, schema: c.schema, outputs: outputs)
                #expect(results.count == outputs.count)
                for (text, (ok, error)) in zip(outputs, results) where !ok {
                    Issue.record("\(c.name) (\(whitespace)): \(text) does not validate: \(error)")
                }
            }
        }
    }
}
