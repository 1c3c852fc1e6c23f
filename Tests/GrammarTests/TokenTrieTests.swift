// The trie's layout: every included token reachable by its bytes, excluded and empty tokens never in
// a mask, duplicates both allowed, and the walk's subtree skipping on a hand-checked example.
import Grammar
import Testing

struct TokenTrieTests {
    @Test func excludedEmptyAndDuplicateTokens() throws {
        let tokens = ["ab", "a", "", "abc", "ab", "b", "<|im_end|>"].map { Array($0.utf8) }
        let trie = try TokenTrie(tokenBytes: tokens, excluded: [6])
        #expect(trie.vocabularySize == 7)
        // Nodes: root, a, ab, abc, b, then "<|im_end|>" is left out: 5 nodes.
        #expect(trie.nodeCount == 5)
        #expect(trie.maxDepth == 3)
        #expect(!trie.isIncluded(2) && !trie.isIncluded(6) && trie.isIncluded(4))
        #expect(Array(trie.bytes(of: 6)) == Array("<|im_end|>".utf8))

        let any = try ByteDFA(pattern: "(.|\n)*")
        #expect(trie.allowedTokens(any, from: any.start).allowedIDs == [0, 1, 3, 4, 5])
        let ab = try ByteDFA(pattern: "ab")
        #expect(trie.allowedTokens(ab, from: ab.start).allowedIDs == [0, 1, 4])
        let b = try ByteDFA(pattern: "b+")
        #expect(trie.allowedTokens(b, from: b.start).allowedIDs == [5])
        #expect(trie.allowedTokens(b, from: ByteDFA.dead).isEmpty)
    }

    @Test func tooLongTokenIsATypedError() {
        let long = [UInt8](repeating: 0x61, count: TokenTrie.maxTokenLength + 1)
        #expect(throws: TokenTrieError.tokenTooLong(id: 1, length: long.count, limit: TokenTrie.maxTokenLength)) {
            try TokenTrie(tokenBytes: [[0x61], long])
        }
    }

    @Test func maskBitsBeyondTheVocabularyStayClear() throws {
        let tokens = (0..<70).map { [UInt8(0x30 + $0 % 10)] + Array(repeating: UInt8(0x61), count: $0 / 10) }
        let trie = try TokenTrie(tokenBytes: tokens)
        let dfa = try ByteDFA(pattern: "[0-9]a*")
        let mask = trie.allowedTokens(dfa, from: dfa.start)
        #expect(mask.count == 70 && mask.words.count == 2)
        #expect(mask.allowedCount == 70)
        #expect(mask.words[1] >> 6 == 0)
    }
}
