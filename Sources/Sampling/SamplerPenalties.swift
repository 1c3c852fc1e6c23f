// The penalty window (the last `repeatLastN` accepted tokens and how often each occurs in it) and
// the repetition / frequency / presence penalty math.
//
// Source: llama.cpp src/llama-sampler.cpp, `llama_sampler_penalties_accept` / `_apply` (the version
// vendored by llama-cpp-python 0.3.36), summarised in FORMATS.md §7.1. For a token seen c > 0 times
// in the window: `logit = logit <= 0 ? logit * repeat : logit / repeat`, then
// `logit -= c * frequency + presence`. What enters the window: every token passed to
// `Sampler.accept`, prompt included - llama-server's `init_sampler` accepts each prompt token into the
// chain before generating (tools/server/server-context.cpp), and then each generated token.

/// A ring buffer of the last `capacity` tokens with a count per distinct token.
struct PenaltyWindow: Sendable {
    let capacity: Int
    private var ring: [Int32] = []
    private var next = 0               // where the next token goes once `ring` is full
    private(set) var counts: [Int32: Int] = [:]

    init(capacity: Int) {
        self.capacity = max(capacity, 0)
        ring.reserveCapacity(min(self.capacity, 4096))
    }

    mutating func push(_ token: Int32) {
        guard capacity > 0 else { return }
        if ring.count < capacity {
            ring.append(token)
        } else {
            let old = ring[next]
            if let c = counts[old], c > 1 { counts[old] = c - 1 } else { counts[old] = nil }
            ring[next] = token
            next = (next + 1) % capacity
        }
        counts[token, default: 0] += 1
    }

    mutating func removeAll() {
        ring.removeAll(keepingCapacity: true)
        next = 0
        counts.removeAll()
    }

    /// The window's tokens, oldest first (for tests and diagnostics).
    var tokens: [Int32] {
        ring.count < capacity ? ring : Array(ring[next...] + ring[..<next])
    }
}

/// llama.cpp's penalty formula for one logit of a token seen `count` (> 0) times.
@inline(__always)
func penalized(_ logit: Float, count: Int, repeat: Float, frequency: Float, presence: Float) -> Float {
    // Dividing a negative logit would make the token *more* likely; llama.cpp multiplies instead.
    var l = logit <= 0 ? logit * `repeat` : logit / `repeat`
    l -= Float(count) * frequency + presence
    return l
}
