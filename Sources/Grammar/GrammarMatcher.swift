// A context-free grammar over one vocabulary: the per-token questions a constrained sampler asks,
// as RegexLexer answers them for a pattern. The grammar runs as a pushdown automaton over its
// automata (ContextFreeGrammar.automata): a parse is a stack of frames (automaton, DFA state), the
// top one reading bytes; a call pushes the callee's start, an accepting callee pops back to the
// state its caller recorded. A grammar may be ambiguous, so a position is the set of stacks still
// possible (llama.cpp's grammar keeps the same set); each stack is kept "normalized": its top can
// read a byte, or it is the root's finished parse. The position is dead when the set is empty.
//
// The mask of a position walks the vocabulary's trie once, as RegexLexer does, carrying the
// position per depth (`Level`). While it is one stack whose top moves to a state without calls,
// the walk is RegexLexer's: one table load per trie node, the frames below untouched. A top that
// may return to its caller ("finishing": an identifier or a number that could end here) stays on
// that path for every byte no return can read. Only at calls, and at bytes a return can read, are
// stacks built (hash-consed in a per-walk arena, so equal stacks are equal ids), and the steps of
// a set of stacks are memoized per walk: a lazily built DFA over sets. Strings, numbers and keys
// of JSON, which are most of a walk, thereby cost what they cost in a DFA.
//
// Masks are cached per position (a bounded table): a constrained generation revisits the same
// positions (the same property of the same object, inside a string), and every request with the
// same grammar shares them. A position's stacks grow with the output's nesting, so advancing and
// hashing cost grows with it too (linearly; nesting is bounded by the context).

import Synchronization

/// A position in a grammar: the stacks of frames (bottom first, each `automaton << 32 | state`)
/// that can still lead to a sentence, sorted. No stacks: no sentence starts with the bytes so far.
public struct GrammarState: Hashable, Sendable {
    let stacks: [[UInt64]]
    public var isDead: Bool { stacks.isEmpty }
    public static let dead = GrammarState(stacks: [])
    /// How many parses are still possible (1 for an unambiguous grammar).
    public var parseCount: Int { stacks.count }
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
    /// formula with s = target), 0 for the dead state, with `callsFlag` set when the target has
    /// calls and `finishFlag` when it accepts below the root (its rule may return to its caller).
    let walk: [UInt32]
    let rowBase: [UInt32]
    let classCount: [UInt32]
    /// Per automaton 256 entries: the byte's class.
    let classOf: [UInt8]
    static let callsFlag: UInt32 = 1 << 31
    static let finishFlag: UInt32 = 1 << 30
    static let flags = callsFlag | finishFlag
    public let start: GrammarState
    private let cache: Mutex<[GrammarState: TokenMask]>
    /// Positions whose masks are kept; past it the table starts again. Each mask is vocabulary/8
    /// bytes (6 KiB for SmolLM2), so 1,024 is 6 MiB per grammar, and the compiled-constraint cache
    /// keeps at most 64 grammars.
    public static let cacheLimit = 1024

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
        guard total < Int(GrammarMatcher.finishFlag) else { throw .tooLarge(message: "\(total) automaton table entries") }
        var walk = [UInt32](repeating: 0, count: total)
        for (a, dfa) in automata.enumerated() {
            let cc = dfa.classCount
            for s in 0..<dfa.stateCount {
                for c in 0..<cc {
                    let t = dfa.transitions[s * cc + c]
                    guard t != ByteDFA.dead else { continue }
                    let calls = !dfa.calls(from: t).isEmpty, finish = a != 0 && dfa.isAccepting(t)
                    walk[Int(rowBase[a]) + s * cc + c] = (rowBase[a] + t * UInt32(cc))
                        | (calls ? GrammarMatcher.callsFlag : 0) | (finish ? GrammarMatcher.finishFlag : 0)
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

    struct Level {
        enum Mode: UInt8 {
            /// The position is one stack: `parent` below a top frame at `row` of its automaton.
            case single
            /// The same stack, whose top accepts below the root without calls: the position is it
            /// and every stack its rule's return leads to (normalize(parent)), which read only the
            /// bytes in `returnBytes`; any other byte is the top's alone.
            case finishing
            /// Several stacks, in `sets[d]`.
            case set
        }
        var mode = Mode.single
        var row: UInt32 = 0
        var classBase: Int32 = 0
        var parent: Int32 = -1
        /// `.set`: the set's id in the walk's Scratch; `.finishing`: the index of its return
        /// bytes in Scratch.returnPool (kept out of the level so a level is 20 bytes to copy).
        var index: Int32 = 0
    }

    /// The slow path's state during one walk: the arena, the stack sets of set-mode levels, and
    /// the bytes returns can read, by parent. A struct passed inout (no closure captures it), so
    /// its accesses are checked statically: the walk's hot loop pays no runtime exclusivity checks.
    private struct Scratch {
        var arena = StackArena()
        /// The sets of stacks met, interned: equal sets are one id.
        var sets: [[Int32]] = []
        var setID: [[Int32]: Int32] = [:]
        /// Each set's stacks as (top row, class base, parent), for the byte test without the arena: set
        /// k's are `rows[rowStart[k]..<rowStart[k + 1]]` (flat, so the walk retains no array).
        var rows: [(row: UInt32, classBase: Int32, parent: Int32)] = []
        var rowStart: [Int] = [0]
        /// step(set, byte) at set id << 8 | byte (-2: not computed yet, -1: empty): a lazily built
        /// DFA over sets, so the identifiers of an ambiguous grammar (several stacks reading
        /// letters) cost one array load per trie node.
        var stepMemo: [Int32] = []
        /// Return bytes by parent, as indices into `returnPool`.
        var returnBytesOf: [Int32: Int32] = [:]
        var returnPool: [ByteSet] = []

        mutating func intern(_ set: [Int32], _ matcher: GrammarMatcher) -> Int32 {
            if let id = setID[set] { return id }
            let id = Int32(sets.count)
            sets.append(set)
            setID[set] = id
            stepMemo += repeatElement(-2, count: 256)
            for id in set {
                let frame = arena.frame[Int(id)]
                let a = Int(frame >> 32)
                rows.append((matcher.rowBase[a] + UInt32(truncatingIfNeeded: frame) * matcher.classCount[a], Int32(a << 8), arena.parent[Int(id)]))
            }
            rowStart.append(rows.count)
            return id
        }

        /// The id of the set after `byte` from set `id`, -1 when it is empty (memoized).
        mutating func step(_ id: Int32, _ byte: Int, _ matcher: GrammarMatcher) -> Int32 {
            let key = Int(id) << 8 | byte
            let known = stepMemo[key]
            if known != -2 { return known }
            let next = matcher.pushdown.step(sets[Int(id)], UInt8(byte), &arena)
            let result = next.isEmpty ? -1 : intern(next, matcher)
            stepMemo[key] = result
            return result
        }

        /// Level d becomes the position of set `id`.
        mutating func place(_ id: Int32, at d: Int, _ levels: UnsafeMutablePointer<Level>, _ matcher: GrammarMatcher) {
            let set = sets[Int(id)]
            if set.count == 1 {
                place(set, at: d, levels, matcher)
            } else {
                levels[d].mode = .set
                levels[d].index = id
            }
        }

        /// The bytes some stack of normalize(parent) reads: fixed while a walk stays in one frame.
        mutating func returnBytes(_ parent: Int32, _ matcher: GrammarMatcher) -> Int32 {
            if let known = returnBytesOf[parent] { return known }
            var bytes = ByteSet()
            for id in matcher.pushdown.normalize(parent, &arena) {
                let frame = arena.frame[Int(id)]
                let dfa = matcher.automata[Int(frame >> 32)]
                let s = UInt32(truncatingIfNeeded: frame)
                for b in 0..<256 where dfa.next(s, UInt8(b)) != ByteDFA.dead { bytes.insert(UInt8(b)) }
            }
            returnPool.append(bytes)
            let index = Int32(returnPool.count - 1)
            returnBytesOf[parent] = index
            return index
        }

        /// Level d becomes the position `set` (normalized, not empty).
        mutating func place(_ set: [Int32], at d: Int, _ levels: UnsafeMutablePointer<Level>, _ matcher: GrammarMatcher) {
            if set.count == 1 {
                let id = Int(set[0])
                let frame = arena.frame[id]
                let a = Int(frame >> 32)
                levels[d] = Level(mode: .single, row: matcher.rowBase[a] + UInt32(truncatingIfNeeded: frame) * matcher.classCount[a],
                                  classBase: Int32(a << 8), parent: arena.parent[id])
            } else {
                levels[d].mode = .set
                levels[d].index = intern(set, matcher)
            }
        }

        /// The stacks of a finishing or event position given by its top (parent, automaton, row).
        mutating func normalized(_ parent: Int32, _ classBase: Int32, _ row: UInt32, _ matcher: GrammarMatcher) -> [Int32] {
            let a = Int(classBase >> 8)
            let s = (row - matcher.rowBase[a]) / matcher.classCount[a]
            return matcher.pushdown.normalize(arena.intern(parent, Pushdown.pack(a, s)), &arena)
        }
    }

    /// The tokens allowed at `state`, computed afresh (the cache is neither read nor filled).
    public func computeMask(state: GrammarState) -> TokenMask {
        guard !state.isDead else { return TokenMask(count: trie.vocabularySize) }
        let depthCount = trie.maxDepth + 1
        var scratch = Scratch()
        let rootSet = state.stacks.map { scratch.arena.importStack($0) }
        let levels = UnsafeMutablePointer<Level>.allocate(capacity: depthCount)
        levels.initialize(repeating: Level(), count: depthCount)
        defer { levels.deallocate() }
        let wordCount = (trie.vocabularySize + 63) / 64 + 1
        let words = UnsafeMutablePointer<UInt64>.allocate(capacity: wordCount)
        words.initialize(repeating: 0, count: wordCount)
        defer { words.deallocate() }
        var duplicateBits: UInt64 = 0
        scratch.place(rootSet, at: 0, levels, self)

        trie.nodes.withUnsafeBufferPointer { nodes in
        trie.subtreeEnd.withUnsafeBufferPointer { subtreeEnd in
        walk.withUnsafeBufferPointer { table in
        classOf.withUnsafeBufferPointer { classOf in
            let n = nodes.count
            var i = 1
            while i < n {
                let node = nodes[i]
                let d = Int(truncatingIfNeeded: node >> 40) & 0xFFFF
                let byte = Int(truncatingIfNeeded: node >> 32) & 0xFF
                let above = levels[d - 1]
                // The one stack that reads the byte, when only one does: its parent, class base and
                // the table entry of its move. Otherwise `set` gets the slow path's result.
                var entry: UInt32 = 0, parent = above.parent, classBase = above.classBase
                var next: Int32? = nil  // the slow path's result as a set id (-1: empty)
                if above.mode == .single || (above.mode == .finishing && !scratch.returnPool[Int(above.index)].contains(UInt8(byte))) {
                    entry = table[Int(above.row) + Int(classOf[Int(above.classBase) + byte])]
                } else if above.mode == .set {
                    var readers = 0, reader = 0
                    let id = Int(above.index)
                    for k in scratch.rowStart[id]..<scratch.rowStart[id + 1] {
                        let r = scratch.rows[k]
                        let e = table[Int(r.row) + Int(classOf[Int(r.classBase) + byte])]
                        if e != 0 { readers += 1; reader = k; entry = e }
                    }
                    if readers == 1 {
                        parent = scratch.rows[reader].parent
                        classBase = scratch.rows[reader].classBase
                    } else if readers > 1 {
                        next = scratch.step(above.index, byte, self)
                    }
                } else {
                    // Finishing, and the byte is one a return can read: every stack of the position.
                    let from = scratch.intern(scratch.normalized(above.parent, above.classBase, above.row, self), self)
                    next = scratch.step(from, byte, self)
                }
                if next == nil {
                    if entry == 0 {
                        i = Int(subtreeEnd[i])
                        continue
                    }
                    let row = entry & ~GrammarMatcher.flags
                    if entry & GrammarMatcher.flags == 0 {
                        levels[d] = Level(mode: .single, row: row, classBase: classBase, parent: parent)
                    } else if entry & GrammarMatcher.callsFlag == 0 {
                        let bytes = above.mode == .finishing && above.parent == parent ? above.index : scratch.returnBytes(parent, self)
                        levels[d] = Level(mode: .finishing, row: row, classBase: classBase, parent: parent, index: bytes)
                    } else {
                        let stacks = scratch.normalized(parent, classBase, row, self)
                        next = stacks.isEmpty ? -1 : scratch.intern(stacks, self)
                    }
                }
                if let next {
                    if next < 0 {
                        i = Int(subtreeEnd[i])
                        continue
                    }
                    scratch.place(next, at: d, levels, self)
                }
                let token = node & TokenTrie.tokenMask
                words[Int(token >> 6)] |= 1 << (token & 63)
                duplicateBits |= node
                i += 1
            }
        }}}}
        return trie.finishMask(Array(UnsafeBufferPointer(start: words, count: wordCount)), duplicateBits: duplicateBits)
    }
}

/// A set of bytes as four words.
struct ByteSet {
    var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    @inline(__always)
    func contains(_ b: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }

    mutating func insert(_ b: UInt8) {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
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
