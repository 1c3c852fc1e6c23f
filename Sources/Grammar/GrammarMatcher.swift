// A context-free grammar over one vocabulary: the per-token questions a constrained sampler asks,
// as RegexLexer answers them for a pattern. The grammar runs as a pushdown automaton over its
// automata (ContextFreeGrammar.automata): a parse is a stack of frames (automaton, DFA state), the
// top one reading bytes; a call pushes the callee's start, an accepting callee pops back to the
// state its caller recorded. A grammar may be ambiguous, so a position is the set of stacks still
// possible (llama.cpp's grammar keeps the same set); each stack is kept "normalized": its top can
// read a byte, or it is the root's finished parse. The position is dead when the set is empty.
//
// The mask of a position walks the vocabulary's trie once, as RegexLexer does, carrying the set of
// stacks per depth. While the set is one stack whose top moves to a state without calls or a
// finish, the walk is RegexLexer's: one table load per trie node, the frames below untouched. Only
// at calls and finishes does it build stacks (hash-consed in a per-walk arena, so equal stacks are
// equal ids and a set is a sorted id list). Strings, numbers and keys of JSON, which are most of a
// walk, thereby cost what they cost in a DFA.
//
// Masks are cached per position (a bounded table): a constrained generation revisits the same
// positions (the same property of the same object, inside a string), and every request with the
// same grammar shares them.

import Synchronization

/// A position in a grammar: the stacks of frames (bottom first, each `automaton << 32 | state`)
/// that can still lead to a sentence, sorted. No stacks: no sentence starts with the bytes so far.
public struct GrammarState: Hashable, Sendable {
    let stacks: [[UInt64]]
    public var isDead: Bool { stacks.isEmpty }
    public static let dead = GrammarState(stacks: [])
    /// How many parses are still possible (1 for an unambiguous grammar).
    public var parseCount: Int { stacks.count }
    /// The deepest stack's height (how far the output has nested).
    public var depth: Int { stacks.map(\.count).max() ?? 0 }
}

/// The automata and the stack operations on them.
struct Pushdown: Sendable {
    let automata: [ByteDFA]
    /// Per automaton and state: whether some byte leads from it to a live state.
    let hasBytes: [[Bool]]

    init(automata: [ByteDFA]) {
        self.automata = automata
        hasBytes = automata.map { dfa in (0..<dfa.stateCount).map { dfa.hasByteTransition(UInt32($0)) } }
    }

    var start: GrammarState {
        guard let first = automata.first, first.start != ByteDFA.dead else { return .dead }
        var arena = StackArena()
        let id = arena.intern(-1, UInt64(first.start))
        return export(normalize(id, &arena), arena)
    }

    @inline(__always)
    static func pack(_ automaton: Int, _ state: UInt32) -> UInt64 { UInt64(automaton) << 32 | UInt64(state) }

    /// One byte from every stack of `set` (each normalized), normalized again: a sorted id list.
    func step(_ set: [Int32], _ byte: UInt8, _ arena: inout StackArena) -> [Int32] {
        var next: [Int32] = []
        for id in set {
            let frame = arena.frame[Int(id)]
            let a = Int(frame >> 32)
            let t = automata[a].next(UInt32(truncatingIfNeeded: frame), byte)
            guard t != ByteDFA.dead else { continue }
            next += normalize(arena.intern(arena.parent[Int(id)], Pushdown.pack(a, t)), &arena)
        }
        if set.count > 1 {
            next.sort()
            next = uniqued(next)
        }
        return next
    }

    /// The stacks `id` stands for once every call at its top is entered and every finished rule
    /// returned from, keeping those whose top reads a byte and the root's finished parse.
    func normalize(_ id: Int32, _ arena: inout StackArena) -> [Int32] {
        if let done = arena.normalized[id] { return done }
        var result: [Int32] = []
        var visited: Set<Int32> = []
        var work = [id]
        while let x = work.popLast() {
            guard visited.insert(x).inserted else { continue }
            let parent = arena.parent[Int(x)], frame = arena.frame[Int(x)]
            let a = Int(frame >> 32), s = UInt32(truncatingIfNeeded: frame)
            let dfa = automata[a]
            let accepting = dfa.isAccepting(s)
            if hasBytes[a][Int(s)] || (parent < 0 && accepting) { result.append(x) }
            for call in dfa.calls(from: s) {
                let caller = arena.intern(parent, Pushdown.pack(a, call.target))
                work.append(arena.intern(caller, Pushdown.pack(Int(call.rule), automata[Int(call.rule)].start)))
            }
            if parent >= 0 && accepting { work.append(parent) }
        }
        result.sort()
        result = uniqued(result)
        arena.normalized[id] = result
        return result
    }

    func export(_ set: [Int32], _ arena: StackArena) -> GrammarState {
        var stacks = set.map { arena.export($0) }
        stacks.sort { $0.lexicographicallyPrecedes($1) }
        return GrammarState(stacks: stacks)
    }
}

public final class GrammarMatcher: Sendable {
    public let trie: TokenTrie
    let pushdown: Pushdown
    var automata: [ByteDFA] { pushdown.automata }
    /// Every automaton's byte table in one array, for the walk: the entry of (automaton a, state s,
    /// class c) is at `rowBase[a] + s * classCount[a] + c` and holds the target's row (the same
    /// formula with s = target), 0 for the dead state, with `GrammarMatcher.eventFlag` set when the
    /// target has calls or, below the root, accepts (the walk must then build the stacks).
    let walk: [UInt32]
    let rowBase: [UInt32]
    let classCount: [UInt32]
    /// Per automaton 256 entries: the byte's class.
    let classOf: [UInt8]
    static let eventFlag: UInt32 = 1 << 31
    public let start: GrammarState
    private let cache: Mutex<[GrammarState: TokenMask]>
    /// Positions whose masks are kept; past it the table starts again (each mask is vocabulary/8 bytes).
    public static let cacheLimit = 4096

    public convenience init(grammar: ContextFreeGrammar, trie: TokenTrie, stateLimit: Int = ByteDFA.defaultStateLimit) throws(GrammarError) {
        try self.init(automata: grammar.automata(stateLimit: stateLimit), trie: trie)
    }

    public init(automata: [ByteDFA], trie: TokenTrie) throws(GrammarError) {
        self.trie = trie
        pushdown = Pushdown(automata: automata)
        var rowBase: [UInt32] = [], classCount: [UInt32] = [], classOf: [UInt8] = []
        var total = 0
        for dfa in automata {
            rowBase.append(UInt32(total))
            classCount.append(UInt32(dfa.classCount))
            classOf += dfa.classOf
            total += dfa.stateCount * dfa.classCount
        }
        guard total < Int(GrammarMatcher.eventFlag) else { throw .tooLarge(message: "\(total) automaton table entries") }
        var walk = [UInt32](repeating: 0, count: total)
        for (a, dfa) in automata.enumerated() {
            let cc = dfa.classCount
            for s in 0..<dfa.stateCount {
                for c in 0..<cc {
                    let t = dfa.transitions[s * cc + c]
                    guard t != ByteDFA.dead else { continue }
                    let event = !dfa.calls(from: t).isEmpty || (a != 0 && dfa.isAccepting(t))
                    walk[Int(rowBase[a]) + s * cc + c] = (rowBase[a] + t * UInt32(cc)) | (event ? GrammarMatcher.eventFlag : 0)
                }
            }
        }
        self.walk = walk
        self.rowBase = rowBase
        self.classCount = classCount
        self.classOf = classOf
        cache = Mutex([:])
        start = pushdown.start
    }

    /// Whether the output so far is a whole sentence, so end of generation may be sampled.
    public func accepts(_ state: GrammarState) -> Bool {
        state.stacks.contains { $0.count == 1 && automata[0].isAccepting(UInt32(truncatingIfNeeded: $0[0])) }
    }

    /// The position after token `id`; dead when the token cannot continue a sentence (or is excluded).
    public func advance(_ state: GrammarState, token id: Int) -> GrammarState {
        guard trie.isIncluded(id) else { return .dead }
        return advance(state, bytes: trie.bytes(of: id))
    }

    /// The position after `bytes`.
    public func advance<S: Sequence<UInt8>>(_ state: GrammarState, bytes: S) -> GrammarState {
        guard !state.isDead else { return state }
        var arena = StackArena()
        var set = state.stacks.map { arena.importStack($0) }
        for b in bytes {
            set = pushdown.step(set, b, &arena)
            if set.isEmpty { return .dead }
        }
        return pushdown.export(set, arena)
    }

    /// Whether the whole of `bytes` is a sentence of the grammar.
    public func matches<S: Sequence<UInt8>>(bytes: S) -> Bool { accepts(advance(start, bytes: bytes)) }

    /// The tokens allowed at `state`, from the cache or computed once and cached.
    public func mask(state: GrammarState) -> TokenMask {
        if let hit = cache.withLock({ $0[state] }) { return hit }
        let mask = computeMask(state: state)
        cache.withLock { table in
            if table.count >= GrammarMatcher.cacheLimit { table.removeAll(keepingCapacity: true) }
            table[state] = mask
        }
        return mask
    }

    /// How many positions' masks the cache holds.
    public var cachedMaskCount: Int { cache.withLock { $0.count } }

    // MARK: the mask walk

    private struct Level {
        /// One stack: its top's row in `walk`, its automaton's class base (a << 8), the stack below.
        var single = false
        var row: UInt32 = 0
        var classBase: Int32 = 0
        var parent: Int32 = -1
    }

    /// The tokens allowed at `state`, computed afresh (the cache is neither read nor filled).
    public func computeMask(state: GrammarState) -> TokenMask {
        guard !state.isDead else { return TokenMask(count: trie.vocabularySize) }
        var arena = StackArena()
        let rootSet = state.stacks.map { arena.importStack($0) }
        let depthCount = trie.maxDepth + 1
        var levels = [Level](repeating: Level(), count: depthCount)
        var sets = [[Int32]](repeating: [], count: depthCount)
        var words = [UInt64](repeating: 0, count: (trie.vocabularySize + 63) / 64 + 1)
        var duplicateBits: UInt64 = 0

        func place(_ set: [Int32], at d: Int, _ arena: StackArena) {
            if set.count == 1 {
                let id = Int(set[0])
                let frame = arena.frame[id]
                let a = Int(frame >> 32)
                levels[d] = Level(single: true, row: rowBase[a] + UInt32(truncatingIfNeeded: frame) * classCount[a],
                                  classBase: Int32(a << 8), parent: arena.parent[id])
            } else {
                levels[d].single = false
                sets[d] = set
            }
        }
        place(rootSet, at: 0, arena)

        let nodes = trie.nodes, subtreeEnd = trie.subtreeEnd
        let n = nodes.count
        var i = 1
        walk.withUnsafeBufferPointer { table in
        classOf.withUnsafeBufferPointer { classOf in
            while i < n {
                let node = nodes[i]
                let d = Int(truncatingIfNeeded: node >> 40) & 0xFFFF
                let byte = Int(truncatingIfNeeded: node >> 32) & 0xFF
                let above = levels[d - 1]
                if above.single {
                    let entry = table[Int(above.row) + Int(classOf[Int(above.classBase) + byte])]
                    if entry == 0 {
                        i = Int(subtreeEnd[i])
                        continue
                    }
                    if entry & GrammarMatcher.eventFlag == 0 {
                        levels[d] = Level(single: true, row: entry, classBase: above.classBase, parent: above.parent)
                    } else {
                        let a = Int(above.classBase >> 8)
                        let s = (entry & ~GrammarMatcher.eventFlag - rowBase[a]) / classCount[a]
                        let set = pushdown.normalize(arena.intern(above.parent, Pushdown.pack(a, s)), &arena)
                        if set.isEmpty {
                            i = Int(subtreeEnd[i])
                            continue
                        }
                        place(set, at: d, arena)
                    }
                } else {
                    let set = pushdown.step(sets[d - 1], UInt8(byte), &arena)
                    if set.isEmpty {
                        i = Int(subtreeEnd[i])
                        continue
                    }
                    place(set, at: d, arena)
                }
                let token = node & TokenTrie.tokenMask
                words[Int(token >> 6)] |= 1 << (token & 63)
                duplicateBits |= node
                i += 1
            }
        }}
        return trie.finishMask(words, duplicateBits: duplicateBits)
    }
}

private func uniqued(_ sorted: [Int32]) -> [Int32] {
    var out: [Int32] = []
    out.reserveCapacity(sorted.count)
    for x in sorted where out.last != x { out.append(x) }
    return out
}

/// Stacks for one operation, hash-consed: a stack is the id of its top frame, and a frame with the
/// same parent and content is the same id, so equal stacks are equal ids.
struct StackArena {
    var parent: [Int32] = []
    var frame: [UInt64] = []
    private var ids: [Key: Int32] = [:]
    /// `GrammarMatcher.normalize`'s results, by stack.
    var normalized: [Int32: [Int32]] = [:]

    private struct Key: Hashable {
        let parent: Int32
        let frame: UInt64
    }

    mutating func intern(_ parent: Int32, _ frame: UInt64) -> Int32 {
        let key = Key(parent: parent, frame: frame)
        if let id = ids[key] { return id }
        let id = Int32(self.frame.count)
        self.parent.append(parent)
        self.frame.append(frame)
        ids[key] = id
        return id
    }

    mutating func importStack(_ frames: [UInt64]) -> Int32 {
        var id: Int32 = -1
        for f in frames { id = intern(id, f) }
        return id
    }

    func export(_ id: Int32) -> [UInt64] {
        var frames: [UInt64] = []
        var x = id
        while x >= 0 {
            frames.append(frame[Int(x)])
            x = parent[Int(x)]
        }
        return frames.reversed()
    }
}
