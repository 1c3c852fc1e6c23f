// JSONSchemaCompiler against Python's jsonschema: for each schema in the fixture
// (scripts/goldens/json_schema_cases.py), the DFA accepts the compact serialization of every
// instance jsonschema calls valid and rejects every one it calls invalid. Instances marked
// "differs" are valid but of a kind the compiler deliberately does not generate (key order, extra
// properties, 1.0 for an integer, ...): they must be rejected, which shows the documented
// difference is the only one. With flexible whitespace, the indent-2 form of each valid instance is
// accepted too, and the compact one still is.
import Grammar
import JSON
import Testing

struct JSONSchemaGoldenTests {
    @Test func compactSerializationsAgreeWithJSONSchema() throws {
        for c in try SchemaFixtures.load() {
            let dfa = try JSONSchemaCompiler.dfa(for: c.schema)
            for instance in c.instances {
                let accepted = dfa.matches(Array(instance.json.utf8))
                if instance.valid && instance.differs == nil {
                    #expect(accepted, "\(c.name): valid instance \(instance.json) is rejected")
                } else {
                    #expect(!accepted, "\(c.name): \(instance.valid ? "instance (\(instance.differs!))" : "invalid instance") \(instance.json) is accepted")
                }
            }
        }
    }

    @Test func flexibleWhitespaceAcceptsIndentedForms() throws {
        let options = JSONSchemaOptions(whitespace: JSONSchemaOptions.flexibleWhitespace)
        for c in try SchemaFixtures.load() {
            let dfa = try JSONSchemaCompiler.dfa(for: c.schema, options: options)
            for instance in c.instances {
                let accepted = dfa.matches(Array(instance.json.utf8))
                if instance.valid && instance.differs == nil {
                    #expect(accepted, "\(c.name): valid instance \(instance.json) is rejected with flexible whitespace")
                    if let pretty = instance.pretty {
                        #expect(dfa.matches(Array(pretty.utf8)), "\(c.name): indented \(pretty) is rejected")
                    }
                } else {
                    #expect(!accepted, "\(c.name): \(instance.json) is accepted with flexible whitespace")
                }
            }
        }
    }

    @Test func compactModeRefusesWhitespace() throws {
        let cases = try SchemaFixtures.load()
        let triage = try #require(cases.first { $0.name == "triage" })
        let dfa = try JSONSchemaCompiler.dfa(for: triage.schema)
        #expect(dfa.matches(Array(#"{"category":"billing","priority":"low","escalate":true}"#.utf8)))
        #expect(!dfa.matches(Array(#"{"category": "billing","priority":"low","escalate":true}"#.utf8)))
        #expect(!dfa.matches(Array(#" {"category":"billing","priority":"low","escalate":true}"#.utf8)))
        let flexible = try JSONSchemaCompiler.dfa(for: triage.schema, options: JSONSchemaOptions(whitespace: .flexible(maxRun: 2)))
        #expect(flexible.matches(Array("{ \"category\" :\t\"billing\" ,\n\"priority\":\"low\",\"escalate\":true }".utf8)))
        #expect(!flexible.matches(Array("{   \"category\":\"billing\",\"priority\":\"low\",\"escalate\":true}".utf8)))
        // Empty objects and arrays have one run of whitespace inside, not two.
        let empty = try JSONSchemaCompiler.dfa(for: try JSONValue.parse(#"{"type":"array","items":{"type":"object","properties":{"a":{"type":"null"}}}}"#),
                                               options: JSONSchemaOptions(whitespace: .flexible(maxRun: 2)))
        #expect(empty.matches(Array("[  {  }  ]".utf8)))
        #expect(!empty.matches(Array("[   {}]".utf8)))
        #expect(!empty.matches(Array("[{   }]".utf8)))
    }
}
