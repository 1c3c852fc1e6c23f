// The vocabulary's token byte strings as one trie in flat arrays, built once per vocabulary and
// shared by every constraint. Nodes are stored in depth-first preorder with each node's children in
// byte order, so a node's children are a contiguous sorted range right after it and its whole subtree
// is the range `i..<subtreeEnd[i]`. A walk is then a forward scan over four arrays that can jump
// over a subtree in one step, which is llguidance's toktrie layout: no pointers, few cache misses.
//
// The caller leaves out special and control tokens (they are never constrained text); empty byte
// strings are left out too, since allowing one would let a generation make no progress forever.

public struct TokenTrie: Sendable {
    /// The number of token ids the masks index (the vocabulary size the trie was built from).
    public let vocabularySize: Int

    // Per node, index 0 being the root (the empty prefix).
    /// The byte on the edge into the node (0 for the root).
    let byte: [UInt8]
    /// Depth in bytes (0 for the root).
    let depth: [UInt16]
    /// One past the last node of the node's subtree.
    let subtreeEnd: [UInt32]
    /// The node's tokens are `tokenIDs[tokenStart[i]..<tokenStart[i + 1]]` (several only when the
    /// caller passed duplicate byte strings).
    let tokenStart: [UInt32]
    let tokenIDs: [UInt32]
    public let maxDepth: Int

    // Each token's bytes, for advancing a state by a sampled token.
    let flatBytes: [UInt8]
    let byteOffset: [UInt32]
    /// Whether the token is in the trie (not excluded, not empty).
    let included: [Bool]

    public var nodeCount: Int { byte.count }

    public static let maxTokenLength = Int(UInt16.max)

    /// - tokenBytes: each token id's bytes (for a byte-level BPE vocabulary, the decoded piece).
    /// - excluded: ids never allowed by any mask (special and control tokens).
    public init(tokenBytes: [[UInt8]], excluded: Set<Int> = []) throws(TokenTrieError) {
        guard tokenBytes.count < Int(Int32.max) else { throw .tooManyTokens(count: tokenBytes.count) }
        vocabularySize = tokenBytes.count

        var flat: [UInt8] = []
        var offsets: [UInt32] = [0]
        var included = [Bool](repeating: false, count: tokenBytes.count)
        var order: [Int] = []
        for (id, bytes) in tokenBytes.enumerated() {
            flat += bytes
            offsets.append(UInt32(flat.count))
            guard !bytes.isEmpty, !excluded.contains(id) else { continue }
            guard bytes.count <= TokenTrie.maxTokenLength else {
                throw .tokenTooLong(id: id, length: bytes.count, limit: TokenTrie.maxTokenLength)
            }
            included[id] = true
            order.append(id)
        }
        order.sort { a, b in
            let x = tokenBytes[a], y = tokenBytes[b]
            return x.lexicographicallyPrecedes(y) || (x == y && a < b)
        }

        // Sorted byte strings arrive in preorder: each one shares a prefix with the previous one (the
        // open path) and appends fresh nodes for the rest. A node's subtree ends when it leaves the path.
        var byte: [UInt8] = [0], depth: [UInt16] = [0], subtreeEnd: [UInt32] = [0]
        var tokenStart: [UInt32] = [0], tokenIDs: [UInt32] = []
        var path: [Int] = [0]  // path[d] is the open node at depth d
        var previous: [UInt8] = []
        var maxDepth = 0
        for id in order {
            let bytes = tokenBytes[id]
            var common = 0
            while common < min(previous.count, bytes.count) && previous[common] == bytes[common] { common += 1 }
            while path.count > common + 1 {
                subtreeEnd[path.removeLast()] = UInt32(byte.count)
            }
            for d in common..<bytes.count {
                path.append(byte.count)
                byte.append(bytes[d])
                depth.append(UInt16(d + 1))
                subtreeEnd.append(0)
                tokenStart.append(UInt32(tokenIDs.count))
            }
            // The token's node is the newest one: duplicates follow their first at once in the sort.
            tokenIDs.append(UInt32(id))
            maxDepth = max(maxDepth, bytes.count)
            previous = bytes
        }
        while let open = path.popLast() { subtreeEnd[open] = UInt32(byte.count) }
        tokenStart.append(UInt32(tokenIDs.count))

        self.byte = byte
        self.depth = depth
        self.subtreeEnd = subtreeEnd
        self.tokenStart = tokenStart
        self.tokenIDs = tokenIDs
        self.maxDepth = maxDepth
        self.flatBytes = flat
        self.byteOffset = offsets
        self.included = included
    }

    /// The bytes of token `id` as given (also for excluded tokens).
    public func bytes(of id: Int) -> ArraySlice<UInt8> {
        flatBytes[Int(byteOffset[id])..<Int(byteOffset[id + 1])]
    }

    /// Whether masks may ever allow `id`.
    public func isIncluded(_ id: Int) -> Bool { id >= 0 && id < vocabularySize && included[id] }

    /// Every token whose bytes keep `dfa` alive from `state`, found by one preorder scan that skips
    /// each subtree whose prefix already killed the DFA.
    public func allowedTokens(_ dfa: ByteDFA, from state: UInt32) -> TokenMask {
        var mask = TokenMask(count: vocabularySize)
        guard state != ByteDFA.dead else { return mask }
        var states = [UInt32](repeating: 0, count: maxDepth + 1)
        states[0] = state
        let classCount = dfa.classCount
        mask.words.withUnsafeMutableBufferPointer { words in
        states.withUnsafeMutableBufferPointer { states in
        byte.withUnsafeBufferPointer { byte in
        depth.withUnsafeBufferPointer { depth in
        subtreeEnd.withUnsafeBufferPointer { subtreeEnd in
        tokenStart.withUnsafeBufferPointer { tokenStart in
        tokenIDs.withUnsafeBufferPointer { tokenIDs in
        dfa.transitions.withUnsafeBufferPointer { transitions in
        dfa.classOf.withUnsafeBufferPointer { classOf in
            let n = byte.count
            var i = 1
            while i < n {
                let d = Int(depth[i])
                let s = transitions[Int(states[d - 1]) * classCount + Int(classOf[Int(byte[i])])]
                if s == ByteDFA.dead {
                    i = Int(subtreeEnd[i])
                    continue
                }
                states[d] = s
                var t = Int(tokenStart[i])
                let end = Int(tokenStart[i + 1])
                while t < end {
                    let id = Int(tokenIDs[t])
                    words[id >> 6] |= 1 << UInt64(id & 63)
                    t += 1
                }
                i += 1
            }
        }}}}}}}}}
        return mask
    }
}
