// Log-probabilities of prompt tokens from rows of logits (completions with `echo` and `logprobs`,
// which evaluation tools such as lm-evaluation-harness use to score text). Raw model distribution,
// like the sampler's reported logprobs: log-softmax of the logits, no penalties, no temperature.

import Sampling

enum PromptLogprobs {
    /// Log-probability of `token` and the `top` most likely tokens (ties: lower id first) in one row.
    static func score(row: UnsafeBufferPointer<Float>, token: Int32, top: Int) -> (Float, [TokenLogprob]) {
        var maxLogit = -Float.infinity
        for v in row where v > maxLogit { maxLogit = v }
        var sum: Double = 0
        for v in row { sum += Double(expf(v - maxLogit)) }
        let logZ = maxLogit + Float(log(sum))
        let chosen = row[Int(token)] - logZ
        guard top > 0 else { return (chosen, []) }
        // Keep the `top` best in a small sorted array: top is at most 20.
        var best: [(id: Int32, logit: Float)] = []
        best.reserveCapacity(top + 1)
        for i in 0..<row.count {
            let v = row[i]
            if best.count == top, let last = best.last, !(v > last.logit) { continue }
            var j = best.count
            while j > 0 && best[j - 1].logit < v { j -= 1 }
            best.insert((Int32(i), v), at: j)
            if best.count > top { best.removeLast() }
        }
        return (chosen, best.map { TokenLogprob(id: $0.id, logprob: $0.logit - logZ) })
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
