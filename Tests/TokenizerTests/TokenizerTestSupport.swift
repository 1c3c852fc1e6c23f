// Shared by the tokenizer tests: the real model's tokenizer (path from LORAD_TEST_MODEL, loaded once),
// the llama.cpp golden fixture, hex and hash helpers, and tiny hand-made vocabularies.
import Foundation
import ModelFormats
import Testing
@testable import Tokenizer

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
}

enum RealModel {
    /// The SmolLM2 tokenizer, or an error that says how to point the tests at the model.
    static func tokenizer() throws -> Tokenizer { try shared.get() }

    private static let shared: Result<Tokenizer, any Error> = Result {
        guard let path = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !path.isEmpty else {
            throw TestSetupError(description: "LORAD_TEST_MODEL is not set: set it to the SmolLM2-135M-Instruct "
                + "Q4_1 GGUF (e.g. LORAD_TEST_MODEL=$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf; `make model` fetches it)")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw TestSetupError(description: "LORAD_TEST_MODEL=\(path) does not exist (`make model` fetches it)")
        }
        return try Tokenizer(gguf: GGUFFile(path: path))
    }
}

/// Tests/TokenizerTests/Fixtures/tokenizer_ids.json, written by scripts/goldens/tokenizer.py from llama.cpp.
struct GoldenFixture: Decodable, Sendable {
    struct Case: Decodable, Sendable {
        let name: String
        let text: String
        let ids: [Int32]
        let ids_no_special: [Int32]
        let decoded_render_hex: String
        let decoded_plain_hex: String
        let decoded_no_special_hex: String
        let roundtrip: Bool
        let roundtrip_no_special: Bool
    }
    struct Long: Decodable, Sendable {
        let text: String
        let ids: [Int32]
    }
    let llama_cpp_python: String
    let vocab_size: Int
    let bos: Int32
    let eos: Int32
    let eog: [Int32]
    let control: [Int32]
    let pieces_render_fnv1a64: String
    let pieces_plain_fnv1a64: String
    let cases: [Case]
    let long: Long

    static func load() throws -> GoldenFixture { try shared.get() }

    private static let shared: Result<GoldenFixture, any Error> = Result {
        guard let url = Bundle.module.url(forResource: "tokenizer_ids", withExtension: "json", subdirectory: "Fixtures")
        else { throw TestSetupError(description: "Fixtures/tokenizer_ids.json is missing from the test bundle") }
        return try JSONDecoder().decode(GoldenFixture.self, from: Data(contentsOf: url))
    }
}

func bytes(hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    precondition(digits.count % 2 == 0, "odd-length hex in the fixture")
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

/// FNV-1a 64 over `chunks`, each preceded by its length as u32 little-endian (as the golden script hashes pieces).
func fnv1a64(lengthPrefixed chunks: [[UInt8]]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for chunk in chunks {
        let n = UInt32(chunk.count)
        for byte in [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)] + chunk {
            h = (h ^ UInt64(byte)) &* 0x100_0000_01B3
        }
    }
    let s = String(h, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

/// The byte-to-unicode spelling of `text` (how a byte-level vocabulary writes it: " a" is "Ġa").
func spelled(_ text: String) -> String {
    String(String.UnicodeScalarView(text.utf8.map { ByteEncoding.scalarForByte[Int($0)] }))
}

/// A tiny byte-level vocabulary: every byte's character, then `extra` texts (plain spelling), then
/// `controls`; merges in plain spelling "a b". Ids: bytes 0-255 in byte order unless `dropBytes`
/// removes some, then extras, then controls.
func tinyTokenizer(extra: [String] = [], merges: [String] = [], controls: [String] = [],
                   userDefined: [String] = [], dropBytes: Set<UInt8> = [],
                   special: [SpecialToken: Int] = [:], addBOS: Bool? = nil, addEOS: Bool? = nil) throws -> Tokenizer {
    var tokens = (0...255).map(UInt8.init).filter { !dropBytes.contains($0) }.map { ByteEncoding.stringForByte[Int($0)] }
    var types = [TokenType](repeating: .normal, count: tokens.count)
    tokens += extra.map(spelled); types += extra.map { _ in .normal }
    tokens += controls; types += controls.map { _ in .control }
    tokens += userDefined; types += userDefined.map { _ in .userDefined }
    let spelledMerges = merges.map { m -> String in
        let parts = m.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        return spelled(parts[0]) + " " + spelled(parts[1])
    }
    return try Tokenizer(configuration: TokenizerConfiguration(
        tokens: tokens, tokenTypes: types, merges: spelledMerges, specialTokenIDs: special,
        addBOS: addBOS, addEOS: addEOS))
}
