// The tokenizers the chat-prompt tests encode with: the real model's (path from LORAD_TEST_MODEL,
// loaded once) and tiny hand-made vocabularies. Copied from TokenizerTests/TokenizerTestSupport.swift
// (test targets cannot share sources); keep the two alike.
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
