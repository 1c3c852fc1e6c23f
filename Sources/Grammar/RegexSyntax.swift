// The parsed form of a pattern: sets of Unicode scalars, concatenation, alternation and counted
// repetition. Captures, laziness and the implicit anchors change nothing about which strings match
// the whole pattern, so they leave no trace here; what remains is exactly a regular language, which
// ByteNFA turns into bytes.

/// A set of Unicode scalar values as sorted, disjoint, non-adjacent closed ranges. Surrogates
/// (U+D800...U+DFFF) are never members: they are not scalars and have no UTF-8 encoding.
public struct ScalarSet: Equatable, Sendable {
    public private(set) var ranges: [ClosedRange<UInt32>]

    public static let maxScalar: UInt32 = 0x10FFFF
    static let surrogates: ClosedRange<UInt32> = 0xD800...0xDFFF

    public init() { ranges = [] }

    public init(_ ranges: [ClosedRange<UInt32>]) {
        self.ranges = []
        for r in ranges { insert(r) }
    }

    public static func scalar(_ v: UInt32) -> ScalarSet { ScalarSet([v...v]) }

    /// Every scalar.
    public static let all = ScalarSet([0...maxScalar])

    public var isEmpty: Bool { ranges.isEmpty }

    public func contains(_ v: UInt32) -> Bool {
        // Classes are short; a linear scan is as fast as a binary search here.
        ranges.contains { $0.contains(v) }
    }

    public mutating func insert(_ range: ClosedRange<UInt32>) {
        var lo = range.lowerBound, hi = min(range.upperBound, ScalarSet.maxScalar)
        guard lo <= hi else { return }
        // Cut the surrogate gap out before merging, so members are always scalars.
        if lo <= ScalarSet.surrogates.upperBound && hi >= ScalarSet.surrogates.lowerBound {
            if lo < ScalarSet.surrogates.lowerBound { insert(lo...(ScalarSet.surrogates.lowerBound - 1)) }
            if hi > ScalarSet.surrogates.upperBound { insert((ScalarSet.surrogates.upperBound + 1)...hi) }
            return
        }
        var merged: [ClosedRange<UInt32>] = []
        merged.reserveCapacity(ranges.count + 1)
        var placed = false
        for r in ranges {
            if r.upperBound &+ 1 < lo {
                merged.append(r)
            } else if hi &+ 1 < r.lowerBound {
                if !placed { merged.append(lo...hi); placed = true }
                merged.append(r)
            } else {
                lo = min(lo, r.lowerBound); hi = max(hi, r.upperBound)
            }
        }
        if !placed { merged.append(lo...hi) }
        ranges = merged
    }

    public mutating func formUnion(_ other: ScalarSet) {
        for r in other.ranges { insert(r) }
    }

    /// Every scalar not in the set (surrogates stay excluded).
    public func inverted() -> ScalarSet {
        var result = ScalarSet()
        var next: UInt32 = 0
        for r in ranges {
            if r.lowerBound > next { result.insert(next...(r.lowerBound - 1)) }
            next = r.upperBound + 1
        }
        if next <= ScalarSet.maxScalar { result.insert(next...ScalarSet.maxScalar) }
        return result
    }

    // The shorthand classes, ASCII only as in outlines/interegular and JSON Schema practice (Python's
    // Unicode \d would admit Arabic-Indic digits into a "phone number").
    static let digit = ScalarSet([0x30...0x39])
    static let word = ScalarSet([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
    static let space = ScalarSet([0x09...0x0D, 0x20...0x20])  // \t \n \v \f \r and space
    /// `.`: any scalar but a newline (Python's default, which vLLM's guided_regex follows).
    static let dot = ScalarSet([0...0x09, 0x0B...maxScalar])
}

/// A parsed pattern. `repetition` with `max == nil` is unbounded.
public indirect enum RegexNode: Equatable, Sendable {
    /// The empty string (an empty pattern, `()`, an empty alternative).
    case empty
    /// One scalar from the set (a literal is a one-scalar set).
    case set(ScalarSet)
    case concatenation([RegexNode])
    case alternation([RegexNode])
    case repetition(RegexNode, min: Int, max: Int?)
    /// A reference to rule `n` of a `ContextFreeGrammar` (never produced by the regex parser). Rules
    /// that are not recursive are inlined before automata are built; what remains becomes a call.
    case nonterminal(Int)
}
