// The vocabularies the mask tests run on: the real SmolLM2 vocabulary as token byte strings (path
// from LORAD_TEST_MODEL, loaded once; a missing model fails the tests that need it, saying how to
// fix it, as the tokenizer tests do), a synthetic vocabulary that needs no model, and the
// brute-force mask the trie walk must equal.
import Foundation
import Grammar
import ModelFormats
import Testing
import Tokenizer

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
}

enum RealVocabulary {
    /// SmolLM2's 49,152 token byte strings in a trie, control and user-defined tokens excluded.
    static func trie() throws -> TokenTrie { try shared.get() }

    private static let shared: Result<TokenTrie, any Error> = Result {
        guard let path = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !path.isEmpty else {
            throw TestSetupError(description: "LORAD_TEST_MODEL is not set: set it to the SmolLM2-135M-Instruct "
                + "Q4_1 GGUF (e.g. LORAD_TEST_MODEL=$PWD/models/SmolLM2-135M-Instruct.Q4_1.gguf; `make model` fetches it)")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw TestSetupError(description: "LORAD_TEST_MODEL=\(path) does not exist (`make model` fetches it)")
        }
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: path))
        let n = tokenizer.vocabularySize
        let pieces = (0..<n).map { tokenizer.piece(Int32($0), renderSpecial: true) }
        let excluded = Set((0..<n).filter { id in
            let attributes = tokenizer.vocabulary.attributes[id]
            return attributes.contains(.control) || attributes.contains(.userDefined)
        })
        return try TokenTrie(tokenBytes: pieces, excluded: excluded)
    }
}

enum SyntheticVocabulary {
    /// Every single byte, then `extra` random tokens: pieces of text in the patterns' alphabets,
    /// multi-byte characters whole and cut, and random bytes (invalid UTF-8 included), a few
    /// duplicates, one empty token and a few excluded ids.
    static func make(seed: UInt64 = 7, extra: Int = 4000) throws -> (trie: TokenTrie, tokens: [[UInt8]], excluded: Set<Int>) {
        var rng = SeededRandom(seed: seed)
        var tokens: [[UInt8]] = (0...255).map { [UInt8($0)] }
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.@%+ \"\\\nyesnomaybe".utf8)
        let wide = ["é", "à", "ÿ", "日", "本", "😀", "\\u00e9", "\\\"", "\"", "com", ".org", "@", "-12", " The"]
        for _ in 0..<extra {
            var token: [UInt8] = []
            switch rng.next() % 4 {
            case 0, 1:
                for _ in 0..<(1 + Int(rng.next() % 7)) { token.append(alphabet.randomElement(using: &rng)!) }
            case 2:
                for _ in 0..<(1 + Int(rng.next() % 3)) { token += Array(wide.randomElement(using: &rng)!.utf8) }
                // Sometimes cut a character in half: tokens of byte-level BPE do that.
                if rng.next() % 3 == 0, token.count > 1 { token.removeLast() }
            default:
                for _ in 0..<(1 + Int(rng.next() % 4)) { token.append(UInt8(truncatingIfNeeded: rng.next())) }
            }
            tokens.append(token)
        }
        tokens.append(Array("yes".utf8))  // a duplicate (likely of a random one too)
        tokens.append(Array("yes".utf8))
        tokens.append([])
        let excluded: Set<Int> = [tokens.count - 3, 65]  // the first added "yes" and the single byte "A"
        return (try TokenTrie(tokenBytes: tokens, excluded: excluded), tokens, excluded)
    }
}

/// The mask by definition: each included token's bytes fed through the DFA one by one.
func bruteForceMask(_ dfa: ByteDFA, state: UInt32, tokens: [[UInt8]], excluded: Set<Int>) -> TokenMask {
    var mask = TokenMask(count: tokens.count)
    guard state != ByteDFA.dead else { return mask }
    for (id, bytes) in tokens.enumerated() where !bytes.isEmpty && !excluded.contains(id) {
        var s = state
        for b in bytes {
            s = dfa.next(s, b)
            if s == ByteDFA.dead { break }
        }
        if s != ByteDFA.dead { mask.insert(id) }
    }
    return mask
}

