// Shared by the grammar tests: a seeded generator, a DFA's states and random strings drawn from it.
import Grammar

/// SplitMix64: seeded, so a failure reproduces.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Every state reachable from the start by bytes (which is every state of the DFA; listing them
/// this way checks that too).
func reachableStates(_ dfa: ByteDFA) -> [UInt32] {
    var seen: Set<UInt32> = [dfa.start]
    var queue = [dfa.start]
    while let s = queue.popLast() {
        for b in 0...255 {
            let t = dfa.next(s, UInt8(b))
            if t != ByteDFA.dead, seen.insert(t).inserted { queue.append(t) }
        }
    }
    return seen.sorted()
}

/// A random string the DFA accepts (a walk over live transitions, stopping at accepting states at
/// random), or nil when no accepting state came within `maxBytes`.
func sampleMatch(_ dfa: ByteDFA, rng: inout SeededRandom, maxBytes: Int = 40) -> [UInt8]? {
    var s = dfa.start
    var out: [UInt8] = []
    guard s != ByteDFA.dead else { return nil }
    while out.count < maxBytes {
        if dfa.isAccepting(s) && rng.next() % 4 == 0 { return out }
        var choices = (0...255).map(UInt8.init).filter { dfa.next(s, $0) != ByteDFA.dead }
        // Uniform bytes would pick multi-byte lead bytes most of the time; keep ASCII common too.
        if rng.next() % 2 == 0, choices.contains(where: { $0 < 0x80 }) { choices = choices.filter { $0 < 0x80 } }
        if choices.isEmpty { return dfa.isAccepting(s) ? out : nil }
        let b = choices.randomElement(using: &rng)!
        out.append(b)
        s = dfa.next(s, b)
    }
    return dfa.isAccepting(s) ? out : nil
}
