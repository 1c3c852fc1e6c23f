// Integer and number bounds, checked exhaustively on small ranges: the DFA for
// {"type": "integer", minimum..., maximum...} accepts exactly the decimal spellings inside the
// bounds, and the one for "number" with integer bounds accepts exactly the plain decimals (no
// exponent) whose value is inside (except -0 spellings, which are never generated); decimal bounds too.
import Grammar
import JSON
import Testing

struct JSONSchemaNumberTests {
    @Test func integerRangesAreExact() throws {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<60 {
            var kvs: [(String, JSONValue)] = [("type", .string("integer"))]
            var low = Int.min, high = Int.max
            // Bounds drawn so that every digit length up to 4 appears; each side sometimes absent.
            func draw() -> Int { Int(rng.next() % 2400) - 1200 }
            switch rng.next() % 3 {
            case 0: let v = draw(); kvs.append(("minimum", .int(v))); low = v
            case 1: let v = draw(); kvs.append(("exclusiveMinimum", .int(v))); low = v + 1
            default: break
            }
            switch rng.next() % 3 {
            case 0: let v = draw(); kvs.append(("maximum", .int(v))); high = v
            case 1: let v = draw(); kvs.append(("exclusiveMaximum", .int(v))); high = v - 1
            default: break
            }
            let dfa = try JSONSchemaCompiler.dfa(for: .object(kvs))
            for n in -1300...1300 {
                #expect(dfa.matches(Array(String(n).utf8)) == (low <= n && n <= high), "\(JSONValue.object(kvs).serialized()): \(n)")
            }
            #expect(!dfa.matches(Array("-0".utf8)) && !dfa.matches(Array("007".utf8)) && !dfa.matches(Array("1.0".utf8)))
            if high == Int.max { #expect(dfa.matches(Array("123456789012345".utf8))) }
            if low == Int.min { #expect(dfa.matches(Array("-123456789012345".utf8))) }
        }
    }

    @Test func numberBoundsAreExact() throws {
        var rng = SeededRandom(seed: 8)
        let fractions = ["", ".0", ".00", ".5", ".05", ".999", ".001", ".10"]
        for _ in 0..<40 {
            var kvs: [(String, JSONValue)] = [("type", .string("number"))]
            var lower: (Double, Bool)? = nil, upper: (Double, Bool)? = nil
            if rng.next() % 4 != 0 {
                let v = Int(rng.next() % 30) - 15, exclusive = rng.next() % 2 == 0
                kvs.append((exclusive ? "exclusiveMinimum" : "minimum", .int(v)))
                lower = (Double(v), exclusive)
            }
            if rng.next() % 4 != 0 {
                let v = Int(rng.next() % 30) - 15, exclusive = rng.next() % 2 == 0
                kvs.append((exclusive ? "exclusiveMaximum" : "maximum", .int(v)))
                upper = (Double(v), exclusive)
            }
            guard kvs.count > 1 else { continue }  // unbounded numbers (exponents too) are the goldens' business
            let dfa = try JSONSchemaCompiler.dfa(for: .object(kvs))
            for whole in -20...20 {
                for fraction in fractions {
                    let text = (whole < 0 ? "-" : "") + String(abs(whole)) + fraction
                    let value = Double(text)!
                    var inside = true
                    if let (b, x) = lower { inside = inside && (x ? value > b : value >= b) }
                    if let (b, x) = upper { inside = inside && (x ? value < b : value <= b) }
                    #expect(dfa.matches(Array(text.utf8)) == inside, "\(JSONValue.object(kvs).serialized()): \(text)")
                    if whole == 0 {
                        // -0.5 and the like: the negative spellings of the same fractions.
                        let negative = "-0" + fraction
                        let v = Double(negative)!
                        var inside = v != 0
                        if let (b, x) = lower { inside = inside && (x ? v > b : v >= b) }
                        if let (b, x) = upper { inside = inside && (x ? v < b : v <= b) }
                        #expect(dfa.matches(Array(negative.utf8)) == inside, "\(JSONValue.object(kvs).serialized()): \(negative)")
                    }
                }
            }
            #expect(!dfa.matches(Array("1e2".utf8)))
        }
    }

    /// Decimal bounds (0.5, -2.25, 1.125): every plain decimal with up to four fraction digits is
    /// accepted exactly when its value is inside, trailing zeros and all.
    @Test func decimalNumberBoundsAreExact() throws {
        var rng = SeededRandom(seed: 9)
        let fractions = ["", ".0", ".5", ".25", ".250", ".251", ".249", ".05", ".999", ".001", ".1", ".75", ".7501", ".125", ".1249"]
        func draw() -> Double { Double(Int(rng.next() % 1200) - 600) / [1, 2, 4, 8, 100][Int(rng.next() % 5)] / 50 }
        for _ in 0..<60 {
            var kvs: [(String, JSONValue)] = [("type", .string("number"))]
            var lower: (Double, Bool)? = nil, upper: (Double, Bool)? = nil
            if rng.next() % 4 != 0 {
                let v = draw(), exclusive = rng.next() % 2 == 0
                kvs.append((exclusive ? "exclusiveMinimum" : "minimum", .double(v)))
                lower = (v, exclusive)
            }
            if rng.next() % 4 != 0 {
                let v = draw(), exclusive = rng.next() % 2 == 0
                kvs.append((exclusive ? "exclusiveMaximum" : "maximum", .double(v)))
                upper = (v, exclusive)
            }
            guard kvs.count > 1 else { continue }
            let dfa = try JSONSchemaCompiler.dfa(for: .object(kvs))
            for whole in -13...13 {
                for fraction in fractions {
                    for text in [(whole < 0 ? "-" : "") + String(abs(whole)) + fraction] + (whole == 0 && !fraction.isEmpty ? ["-0" + fraction] : []) {
                        let value = Double(text)!
                        var inside = !(text.hasPrefix("-") && value == 0)  // -0 spellings are never generated
                        if let (b, x) = lower { inside = inside && (x ? value > b : value >= b) }
                        if let (b, x) = upper { inside = inside && (x ? value < b : value <= b) }
                        #expect(dfa.matches(Array(text.utf8)) == inside, "\(JSONValue.object(kvs).serialized()): \(text)")
                    }
                }
            }
        }
        // A bound with more digits than a fraction can carry exactly is refused, naming it.
        #expect(throws: JSONSchemaError.self) { try JSONSchemaCompiler.dfa(for: .object([("type", .string("number")), ("minimum", .double(1e-30))])) }
    }
}

