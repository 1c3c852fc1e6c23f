// DFA size and compile time for the customer-service schemas (issue 20's target: a typical schema
// compiles in ≤ 5 ms), far below ByteDFA.defaultStateLimit. Times are printed for the record; the
// assertion is loose (the test machine is shared) and only catches a blow-up.
import Grammar
import JSON
import Testing

struct JSONSchemaSizeTests {
    static let customerService = ["triage", "order", "refund", "ticket", "contact"]

    @Test func customerServiceSchemasCompileSmallAndFast() throws {
        let cases = try SchemaFixtures.load().filter { Self.customerService.contains($0.name) }
        #expect(cases.count == Self.customerService.count)
        for c in cases {
            for (label, options) in [("compact", JSONSchemaOptions()),
                                     ("flexible", JSONSchemaOptions(whitespace: JSONSchemaOptions.flexibleWhitespace))] {
                var dfa: ByteDFA? = nil
                var best = Duration.seconds(1000)
                for _ in 0..<3 {
                    let started = ContinuousClock.now
                    dfa = try JSONSchemaCompiler.dfa(for: c.schema, options: options)
                    best = min(best, ContinuousClock.now - started)
                }
                let states = dfa!.stateCount
                print("JSONSchemaSize: \(c.name) (\(label)): \(states) DFA states, \(dfa!.classCount) byte classes, compiled in \(best)")
                #expect(states < ByteDFA.defaultStateLimit, "\(c.name) (\(label)): \(states) states")
                #expect(best < .seconds(2), "\(c.name) (\(label)): \(best)")
            }
        }
    }

    /// `{}` grows about 4× per level of nesting: the default depth 3 fits, depth 4 does not.
    @Test func anyValueSizeByDepth() throws {
        for depth in 0...3 {
            let started = ContinuousClock.now
            let dfa = try JSONSchemaCompiler.dfa(for: .object([]), options: JSONSchemaOptions(anyValueDepth: depth))
            print("JSONSchemaSize: {} at depth \(depth): \(dfa.stateCount) DFA states, compiled in \(ContinuousClock.now - started)")
            #expect(dfa.stateCount < ByteDFA.defaultStateLimit)
        }
        #expect(throws: JSONSchemaError.regex(.tooManyStates(limit: ByteDFA.defaultStateLimit), pointer: "")) {
            try JSONSchemaCompiler.dfa(for: .object([]), options: JSONSchemaOptions(anyValueDepth: 4))
        }
    }

    @Test func longStringsReportTheStateLimit() throws {
        // Each counted character costs a handful of states (UTF-8 continuation bytes, escapes).
        for maxLength in [100, 500] {
            let schema = JSONValue.object([("type", .string("string")), ("maxLength", .int(maxLength))])
            let started = ContinuousClock.now
            let dfa = try JSONSchemaCompiler.dfa(for: schema)
            print("JSONSchemaSize: string maxLength \(maxLength): \(dfa.stateCount) DFA states, compiled in \(ContinuousClock.now - started)")
        }
        let huge = JSONValue.object([("type", .string("string")), ("maxLength", .int(1000))])
        do {
            let dfa = try JSONSchemaCompiler.dfa(for: huge)
            print("JSONSchemaSize: string maxLength 1000: \(dfa.stateCount) DFA states")
        } catch {
            guard case .regex(.tooManyStates(_), _) = error else {
                Issue.record("maxLength 1000: expected the state limit, got \(error)")
                return
            }
            print("JSONSchemaSize: string maxLength 1000: over the state limit (\(error))")
        }
    }
}
