// Token ids and loss masks of multi-turn conversations against an independent implementation
// (Fixtures/train_data_smollm2.json, written by scripts/goldens/train_data.py: jinja2 with
// transformers' environment, the HF tokenizer built from the same GGUF, and a mask found from the
// assistant turns' character spans rather than by rendering prefixes). Exact match required.

import Foundation
import JSON
import Testing
@testable import Training

struct TrainingDataGoldenTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var line: String
        var ids: [Int32]
        var mask: [Bool]
        var testDescription: String { name }
    }

    static func cases() throws -> [Case] {
        let url = try #require(Bundle.module.url(forResource: "train_data_smollm2", withExtension: "json", subdirectory: "Fixtures"))
        let json = try JSONValue.parse(Array(try Data(contentsOf: url)))
        return try #require(json["cases"]?.arrayValue).map { c in
            Case(name: c["name"]!.stringValue!, line: c["line"]!.stringValue!,
                 ids: c["ids"]!.arrayValue!.map { Int32($0.intValue!) },
                 mask: c["mask"]!.arrayValue!.map { $0.intValue! == 1 })
        }
    }

    @Test func fixtureHasTheCases() throws {
        #expect(try Self.cases().count == 8)
    }

    @Test(arguments: try cases())
    func idsAndMaskMatchTransformers(_ golden: Case) throws {
        let data = try loadJSONL(golden.line + "\n")
        let example = try #require(data.examples.first)
        #expect(example.tokens == golden.ids)
        #expect(example.mask == golden.mask)
        if example.mask != golden.mask {
            let differ = zip(example.mask, golden.mask).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
            Issue.record("\(golden.name): masks differ at tokens \(differ)")
        }
    }
}
