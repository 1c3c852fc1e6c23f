// Loads Fixtures/tensor_types.json, written by scripts/goldens/tensor_types.py from gguf-py 0.19.0.
// Floats and bytes are stored as hex of their little-endian bytes, so comparisons can be exact.

import Foundation
import Kernels
import Testing

struct TensorTypesFixture: Decodable {
    struct QuantSize: Decodable {
        let name: String
        let id: UInt32
        let block_size: Int
        let type_size: Int
    }

    /// A type gguf can quantize: input values, gguf's bytes, and gguf's dequantization of those bytes.
    struct QuantizedCase: Decodable {
        let type: String
        let `case`: String
        let input: String
        let bytes: String
        let dequantized: String
    }

    /// A K-quant (gguf cannot quantize them): random valid bytes and gguf's dequantization.
    struct DequantizedCase: Decodable {
        let type: String
        let `case`: String
        let bytes: String
        let dequantized: String
    }

    let gguf_version: String
    let quant_sizes: [QuantSize]
    let quantized: [QuantizedCase]
    let dequantized: [DequantizedCase]

    static func load() throws -> TensorTypesFixture {
        let url = try #require(Bundle.module.url(forResource: "tensor_types", withExtension: "json",
                                                 subdirectory: "Fixtures"),
                               "Fixtures/tensor_types.json is missing: run scripts/goldens/tensor_types.py")
        return try JSONDecoder().decode(TensorTypesFixture.self, from: Data(contentsOf: url))
    }
}

/// The tensor type with ggml name `name` (the fixture uses gguf-py's names, which are ggml's).
func tensorType(named name: String) throws -> TensorType {
    try #require(TensorType.allCases.first { $0.name == name }, "no TensorType named \(name)")
}

func bytes(fromHex hex: String) throws -> [UInt8] {
    let digits = Array(hex.utf8)
    try #require(digits.count % 2 == 0, "odd-length hex string")
    func nibble(_ c: UInt8) throws -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: throw FixtureError.badHex
        }
    }
    return try stride(from: 0, to: digits.count, by: 2).map { try nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

func floats(fromHex hex: String) throws -> [Float] {
    let raw = try bytes(fromHex: hex)
    try #require(raw.count % 4 == 0, "f32 hex is not a whole number of floats")
    return stride(from: 0, to: raw.count, by: 4).map { i in
        Float(bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24)
    }
}

enum FixtureError: Error { case badHex }

/// Bit-exact equality, except that any NaN equals any NaN: NaN payloads differ between numpy and
/// IEEE conversions (see FloatTypes.swift) and carry no meaning for lorad.
func sameFloat(_ a: Float, _ b: Float) -> Bool {
    (a.isNaN && b.isNaN) || a.bitPattern == b.bitPattern
}
