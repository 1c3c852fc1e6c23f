// Tensor types against gguf-py (Fixtures/tensor_types.json, scripts/goldens/tensor_types.py):
// block geometry, dequantization of every computable type, and the reference quantizers' bytes.
//
// Tolerance: none. gguf-py and Kernels do the same f32 operations in the same order (f16 fields widened
// exactly, then the products/sums listed in Dequantize+*.swift and Quantize+Legacy.swift, no fused
// multiply-add on either side), so every value and byte must be identical. Decoded NaNs compare only as
// "is NaN" (see `sameFloat`); the fixture's NaN inputs are quiet, so their quantized bytes agree exactly.

import Kernels
import Testing

@Suite struct GoldenTests {
    let fixture: TensorTypesFixture

    init() throws {
        fixture = try TensorTypesFixture.load()
    }

    @Test func fixtureCoversTheTypesWeClaim() {
        let quantized = Set(fixture.quantized.map(\.type))
        let dequantized = Set(fixture.dequantized.map(\.type))
        #expect(quantized == ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
        #expect(dequantized == ["Q4_K", "Q5_K", "Q6_K"])
        // Every computable type is covered by one of the two lists.
        let computable = Set(TensorType.allCases.filter(\.isComputable).map(\.name))
        #expect(computable == quantized.union(dequantized))
    }

    /// TensorType's ids, names and geometry against gguf-py's GGML_QUANT_SIZES, for every type in both.
    @Test func blockGeometryMatchesGGUFPy() throws {
        let byID = Dictionary(uniqueKeysWithValues: fixture.quant_sizes.map { ($0.id, $0) })
        for type in TensorType.allCases {
            let entry = try #require(byID[type.rawValue], "gguf-py has no type with id \(type.rawValue) (\(type))")
            #expect(entry.name == type.name)
            #expect(entry.block_size == type.blockSize, "\(type) block size")
            if type == .q8_1 {
                // gguf-py still lists Q8_1 with an old f32 d/s layout (40 bytes); ggml's block_q8_1 has
                // two f16 fields (36 bytes), which is what llama.cpp computes with (FORMATS.md §2.1).
                #expect(entry.type_size == 40 && type.blockBytes == 36)
            } else {
                #expect(entry.type_size == type.blockBytes, "\(type) bytes per block")
            }
        }
    }

    @Test func dequantizeMatchesGGUFPy() throws {
        var checked = 0
        for c in fixture.quantized {
            let type = try tensorType(named: c.type)
            try expectDequantized(type, bytes: bytes(fromHex: c.bytes), equal: floats(fromHex: c.dequantized),
                                  label: "\(c.type) \(c.case)")
            checked += 1
        }
        for c in fixture.dequantized {
            let type = try tensorType(named: c.type)
            try expectDequantized(type, bytes: bytes(fromHex: c.bytes), equal: floats(fromHex: c.dequantized),
                                  label: "\(c.type) \(c.case)")
            checked += 1
        }
        #expect(checked == fixture.quantized.count + fixture.dequantized.count && checked > 30)
    }

    @Test func quantizeMatchesGGUFPyBytes() throws {
        for c in fixture.quantized {
            let type = try tensorType(named: c.type)
            let input = try floats(fromHex: c.input)
            let ours = try quantize(type, input)
            let theirs = try bytes(fromHex: c.bytes)
            let firstBad = zip(ours, theirs).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(ours == theirs, """
                \(c.type) \(c.case): \(ours.count) bytes vs gguf-py's \(theirs.count), \
                first difference at byte \(firstBad.map(String.init) ?? "none")
                """)
        }
    }

    private func expectDequantized(_ type: TensorType, bytes: [UInt8], equal expected: [Float],
                                   label: String) throws {
        let got = try dequantize(type, bytes: bytes)
        try #require(got.count == expected.count, "\(label): \(got.count) values, gguf-py has \(expected.count)")
        let mismatches = got.indices.filter { !sameFloat(got[$0], expected[$0]) }
        #expect(mismatches.isEmpty, """
            \(label): \(mismatches.count) values differ from gguf-py; first at \(mismatches.first ?? -1): \
            \(mismatches.first.map { "\(got[$0]) vs \(expected[$0])" } ?? "")
            """)
    }
}
