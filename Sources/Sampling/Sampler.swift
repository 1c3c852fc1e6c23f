// The per-sequence token sampler: llama.cpp's default sampling chain over one row of logits.
//
// Chain (common/sampling.cpp `common_sampler_init` and common/common.h defaults, as vendored by
// llama-cpp-python 0.3.36; FORMATS.md §7.1):
//   logit bias -> penalties -> top-k -> top-p -> min-p -> temperature -> draw
// (DRY, top-n-σ, typical-p and XTC sit between these in llama.cpp but are off by default and not
// offered here.) Each stage follows src/llama-sampler.cpp, including its float32 arithmetic and
// summation order, so the surviving candidate sets match llama.cpp exactly on the golden fixture
// (scripts/goldens/sampler.py). Temperature runs after truncation, so top-p and min-p see the
// untempered distribution. `temperature <= 0` is greedy: the argmax after bias and penalties (what
// the full chain reduces to, since every truncation keeps the top token), ties to the lower id.
//
// Differences from llama.cpp, on purpose:
// - The random generator is xoshiro256** (SamplerRandom), not std::mt19937, so seeds do not
//   reproduce llama.cpp's tokens, only lorad's own (FORMATS.md: exact parity is impractical).
// - The draw picks the first candidate whose running sum *exceeds* u·sum (llama.cpp: reaches),
//   so a zero-probability (banned) token can never be drawn, even when u = 0.
// - Equal logits are ordered by token id; llama.cpp's unstable partial sort leaves that open.
// - If every candidate is banned (all −∞), the lowest-id candidate is returned instead of garbage.
//
// Speed (vocabulary 49152): the list of candidates is built once per step in a buffer kept by the
// sampler; top-k is a heap selection (SamplerSelection.swift); top-p without top-k sorts only the
// tokens that can be in the nucleus, found with a histogram of the probability mass (as llama.cpp
// buckets by logit). `stageSnapshots` and SamplerTests' full-sort reference check these paths.
//
// Log-probabilities come from the raw model distribution: log-softmax of the logits as given,
// before logit bias, penalties, truncation and temperature. That is llama-server's default `n_probs`
// (tools/server `get_token_probabilities`, i.e. without `post_sampling_probs`) and vLLM's default
// "raw_logprobs", and it makes logprobs comparable across sampling settings.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A token and its log-probability under the raw model distribution.
public struct TokenLogprob: Sendable, Equatable {
    public var id: Int32
    public var logprob: Float

    public init(id: Int32, logprob: Float) {
        self.id = id
        self.logprob = logprob
    }
}

/// The result of one sampling step.
public struct SampledToken: Sendable, Equatable {
    /// The chosen token.
    public var id: Int32
    /// Natural log of the chosen token's raw model probability; `nil` unless the parameters asked
    /// for log-probabilities (`topLogprobs != nil`).
    public var logprob: Float?
    /// The `topLogprobs` most likely tokens of the raw distribution, most likely first (ties: lower
    /// id first). Empty when not requested.
    public var topLogprobs: [TokenLogprob]
}

/// The sampler of one sequence: its parameters, random generator and penalty window.
///
/// Use: create one per sequence, `accept` every prompt token (llama-server feeds the prompt into the
/// penalty window too), then per step `sample(logits:)` followed by `accept(id)` of the token you
/// keep. `sample` does not accept by itself, so a caller can sample and discard (e.g. speculation).
///
/// Scratch buffers are allocated once at init (one candidate per vocabulary entry, 12 bytes each);
/// a step allocates nothing unless log-probabilities are requested (the returned array).
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    public let vocabularySize: Int
    /// The seed actually used: `parameters.seed`, or the one drawn from the system when that is nil.
    /// Report it to make a "random" generation reproducible.
    public let seed: UInt64

    private var random: SamplerRandom
    private var window: PenaltyWindow
    private var candidates: [Candidate]
    /// `parameters.logitBias` as a list, so a step does not hash.
    private let bias: [(id: Int32, bias: Float)]

    /// Throws when a parameter is out of range (see `SamplingParameters.validate`).
    public init(parameters: SamplingParameters, vocabularySize: Int) throws(SamplingParameterError) {
        guard vocabularySize > 0 else {
            throw SamplingParameterError(field: "vocabulary", allowed: "at least one token",
                                         found: "\(vocabularySize)", hint: "is the model loaded?")
        }
        try parameters.validate(vocabularySize: vocabularySize)
        self.parameters = parameters
        self.vocabularySize = vocabularySize
        var system = SystemRandomNumberGenerator()
        self.seed = parameters.seed ?? system.next()
        self.random = SamplerRandom(seed: seed)
        self.window = PenaltyWindow(capacity: parameters.penaltiesEnabled ? parameters.repeatLastN : 0)
        self.candidates = [Candidate](repeating: Candidate(id: 0, logit: 0, p: 0), count: vocabularySize)
        self.bias = parameters.logitBias.sorted { $0.key < $1.key }.map { (id: $0.key, bias: $0.value) }
    }

    /// Records a token (prompt or generated) in the penalty window. Ids outside the vocabulary are
    /// ignored: they cannot be penalized because they can never be sampled.
    public mutating func accept(_ id: Int32) {
        guard id >= 0, Int(id) < vocabularySize else { return }
        window.push(id)
    }

    public mutating func accept<S: Sequence<Int32>>(contentsOf ids: S) {
        for id in ids { accept(id) }
    }

    /// The tokens the penalties currently look at, oldest first.
    public var penaltyWindow: [Int32] { window.tokens }

    /// Picks the next token from one row of logits (`vocabularySize` floats). `allowed`, a
    /// constraint's set for this step (TokenConstraint.swift), bans every other token before the
    /// chain runs: greedy or not, only an allowed token can be chosen (unless none has a finite logit).
    public mutating func sample(logits: UnsafeBufferPointer<Float>, allowed: AllowedTokens? = nil) -> SampledToken {
        precondition(logits.count == vocabularySize,
                     "Sampler: got \(logits.count) logits for a vocabulary of \(vocabularySize)")
        var result = SampledToken(id: 0, logprob: nil, topLogprobs: [])
        var buf: [Candidate] = []
        swap(&buf, &candidates)          // borrow the scratch without copy-on-write
        defer { swap(&buf, &candidates) }
        buf.withUnsafeMutableBufferPointer { c in
            if parameters.isGreedy {
                loadPenalized(logits, into: c, allowed: allowed)
                result.id = c[argmaxIndex(c, count: c.count)].id
            } else {
                let n = truncate(logits, into: c, allowed: allowed, observe: nil)
                result.id = c[draw(c, count: n)].id
            }
        }
        if let n = parameters.topLogprobs {
            let (chosen, top) = rawLogprobs(logits, chosen: result.id, top: n)
            result.logprob = chosen
            result.topLogprobs = top
        }
        return result
    }

    /// Convenience for callers that hold an array.
    public mutating func sample(logits: [Float], allowed: AllowedTokens? = nil) -> SampledToken {
        logits.withUnsafeBufferPointer { sample(logits: $0, allowed: allowed) }
    }

    // MARK: - The chain

    /// Stages after which `truncate` reports the candidate list (for golden tests).
    enum Stage: String, CaseIterable, Sendable {
        case penalties = "penalties"      // after logit bias and penalties; full vocabulary
        case topK = "top_k"
        case topP = "top_p"
        case minP = "min_p"
        case temperature = "temperature"  // tempered logits, `p` = the draw distribution
    }

    /// Runs the chain without drawing and returns a copy of the candidates after each stage (the
    /// last one with `p` = the draw distribution). For golden tests; allocates freely.
    func stageSnapshots(logits: [Float]) -> [Stage: [Candidate]] {
        var scratch = [Candidate](repeating: Candidate(id: 0, logit: 0, p: 0), count: vocabularySize)
        var out: [Stage: [Candidate]] = [:]
        logits.withUnsafeBufferPointer { l in
            scratch.withUnsafeMutableBufferPointer { c in
                _ = truncate(l, into: c, allowed: nil) { stage, survivors in out[stage] = Array(survivors) }
            }
        }
        return out
    }

    /// Candidates in id order with the constraint's mask, logit bias and penalties applied (the
    /// mask first, as llama.cpp's grammar sampler comes first; then llama.cpp applies the bias,
    /// then the penalties, which matters because the repeat penalty depends on the sign).
    private func loadPenalized(_ logits: UnsafeBufferPointer<Float>, into c: UnsafeMutableBufferPointer<Candidate>,
                               allowed: AllowedTokens?) {
        let clean = Self.clean
        if let allowed {
            loadMasked(allowed, logits, c)
        } else {
            for i in 0..<vocabularySize {
                c[i] = Candidate(id: Int32(i), logit: clean(logits[i]), p: 0)
            }
        }
        for (id, b) in bias { c[Int(id)].logit += b }
        guard parameters.penaltiesEnabled else { return }
        let p = parameters
        for (id, count) in window.counts {
            c[Int(id)].logit = penalized(c[Int(id)].logit, count: count, repeat: p.repeatPenalty,
                                         frequency: p.frequencyPenalty, presence: p.presencePenalty)
        }
    }

    /// Loads the candidates with -inf for every token outside the step's allowed set, in the same
    /// single pass as the unmasked load (a second pass over the vocabulary cost twice as much); ids
    /// past the mask (a model vocabulary larger than the tokenizer's) are outside it.
    private func loadMasked(_ allowed: AllowedTokens, _ logits: UnsafeBufferPointer<Float>,
                            _ c: UnsafeMutableBufferPointer<Candidate>) {
        let clean = Self.clean
        let covered = min(vocabularySize, allowed.mask.count)
        allowed.mask.words.withUnsafeBufferPointer { w in
            for i in 0..<covered {
                let ok = (w[i >> 6] >> UInt64(i & 63)) & 1 != 0
                c[i] = Candidate(id: Int32(i), logit: ok ? clean(logits[i]) : -.infinity, p: 0)
            }
        }
        for i in covered..<vocabularySize { c[i] = Candidate(id: Int32(i), logit: -.infinity, p: 0) }
        // End of generation exactly when allowed, whether or not the mask lists the token.
        for id in allowed.endOfGeneration where id >= 0 && Int(id) < vocabularySize {
            c[Int(id)].logit = allowed.allowEnd ? clean(logits[Int(id)]) : -.infinity
        }
    }

    /// A broken model row must not trap or poison the softmax: NaN counts as impossible.
    @inline(__always) private static func clean(_ raw: Float) -> Float {
        raw.isNaN ? -.infinity : raw == .infinity ? .greatestFiniteMagnitude : raw
    }

    /// Runs the mask, bias, penalties, top-k, top-p, min-p and temperature; leaves the survivors in
    /// `c[0..<n]` with `p` set to the draw distribution, and returns `n`.
    func truncate(_ logits: UnsafeBufferPointer<Float>, into c: UnsafeMutableBufferPointer<Candidate>,
                  allowed: AllowedTokens? = nil,
                  observe: ((Stage, UnsafeMutableBufferPointer<Candidate>) -> Void)?) -> Int {
        let p = parameters
        loadPenalized(logits, into: c, allowed: allowed)
        var n = vocabularySize
        var sorted = false
        observe?(.penalties, UnsafeMutableBufferPointer(rebasing: c[0..<n]))

        // top-k (llama_sampler_top_k_impl): llama.cpp sorts even when k >= n, and the order matters
        // for the float sums below, so we do too.
        if p.topK > 0 {
            n = min(p.topK, n)
            selectBest(c, count: vocabularySize, k: n)
            sorted = true
        }
        observe?(.topK, UnsafeMutableBufferPointer(rebasing: c[0..<n]))

        // top-p (llama_sampler_top_p_apply): softmax in the current order, then the shortest
        // most-likely prefix whose float running sum reaches p.
        if p.topP < 1 {
            let maxLogit = softmaxInPlace(c, count: n, sorted: sorted)
            var prefix = n
            if !sorted {
                // Sort only what can be in the nucleus (llama.cpp tries the best 256, then sorts
                // everything; a histogram of the mass finds the right size in one pass instead).
                prefix = sortNucleus(c, count: n, maxLogit: maxLogit, mass: p.topP)
            }
            var kept = -1
            while kept < 0 {
                var cum: Float = 0
                for i in 0..<prefix {
                    cum += c[i].p
                    if cum >= p.topP { kept = i + 1; break }
                }
                if kept >= 0 { break }
                if prefix == n { kept = n; break }   // rounding kept the sum below p: keep all
                // Float rounding beyond gatherNucleus's margin: fall back to sorting everything.
                prefix = n
                selectBest(c, count: n, k: n)
            }
            n = kept
            sorted = true
        }
        observe?(.topP, UnsafeMutableBufferPointer(rebasing: c[0..<n]))

        // min-p (llama_sampler_min_p_apply): keep logit >= max + ln(p); order is preserved.
        if p.minP > 0 {
            if sorted {
                let threshold = c[0].logit + log(p.minP)
                var i = 1
                while i < n && c[i].logit >= threshold { i += 1 }
                n = i
            } else {
                var maxLogit = -Float.greatestFiniteMagnitude
                for i in 0..<n { maxLogit = max(maxLogit, c[i].logit) }
                let threshold = maxLogit + log(p.minP)
                var kept = 0
                for i in 0..<n where c[i].logit >= threshold {
                    c[kept] = c[i]
                    kept += 1
                }
                // Only possible if every logit is -inf; llama.cpp then falls back to its sorted
                // path, which keeps the first candidate.
                if kept == 0 { kept = 1; selectBest(c, count: n, k: 1) }
                n = kept
            }
        }
        observe?(.minP, UnsafeMutableBufferPointer(rebasing: c[0..<n]))

        // temperature (llama_sampler_temp_impl), then the draw distribution (llama_sampler_dist_apply).
        if p.isGreedy {
            // llama.cpp's temp <= 0: every logit but the top one becomes -inf. `sample` takes a
            // shortcut (argmax) instead; running this branch in tests shows the two agree.
            let best = argmaxIndex(c, count: n)
            for i in 0..<n where i != best { c[i].logit = -.infinity }
        } else {
            for i in 0..<n { c[i].logit /= p.temperature }
        }
        drawDistribution(c, count: n, sorted: sorted)
        observe?(.temperature, UnsafeMutableBufferPointer(rebasing: c[0..<n]))
        return n
    }

    /// llama_sampler_softmax_impl: float exps after subtracting the max, float sum in array order.
    /// Returns the max logit.
    @discardableResult
    private func softmaxInPlace(_ c: UnsafeMutableBufferPointer<Candidate>, count n: Int, sorted: Bool) -> Float {
        var maxLogit = c[0].logit
        if !sorted { for i in 1..<max(n, 1) { maxLogit = max(maxLogit, c[i].logit) } }
        if maxLogit == -.infinity { uniformOverAll(c, count: n); return maxLogit }
        var sum: Float = 0
        for i in 0..<n {
            let e = exp(c[i].logit - maxLogit)
            c[i].p = e
            sum += e
        }
        for i in 0..<n { c[i].p /= sum }
        return maxLogit
    }

    /// Sorts the candidates that can be in the top-p nucleus to the front of `c[0..<n]` (best
    /// first) and returns how many there are; the rest stay behind them in no particular order.
    ///
    /// Candidates are bucketed by distance below the max logit (1/16-nat buckets, the last one
    /// open-ended), as llama.cpp's `llama_token_data_array_partial_sort` buckets by logit. Buckets
    /// are taken from the top until their mass reaches `mass` plus a margin for float rounding.
    /// Because whole buckets are taken and a lower bucket holds strictly lower logits, the gathered
    /// set is exactly the best `m` of the full order, so the float running sum over it equals the one
    /// over a full sort. It is ordered by an in-place bucket permutation (American flag sort) and a
    /// heap sort per bucket: O(n + Σ b·log b) instead of O(m·log m) with poor locality.
    private func sortNucleus(_ c: UnsafeMutableBufferPointer<Candidate>, count n: Int,
                             maxLogit: Float, mass: Float) -> Int {
        let bucketCount = 512, perNat: Float = 16
        let maxDistance = Float(bucketCount - 1) / perNat
        @inline(__always) func bucket(_ logit: Float) -> Int {
            let d = maxLogit - logit                 // >= 0; +inf for banned tokens
            return d < maxDistance ? Int(d * perNat) : bucketCount - 1
        }
        // The float cumsum over m sorted terms can trail the exact mass by ~m·2^-24; 1e-3 covers
        // m up to ~16k, and the caller falls back to a full sort if it ever does not.
        let target = Double(mass) + 1e-3
        let last: Int = withUnsafeTemporaryAllocation(of: Double.self, capacity: bucketCount) { hist in
            hist.initialize(repeating: 0)
            for i in 0..<n { hist[bucket(c[i].logit)] += Double(c[i].p) }
            var cum = 0.0
            for b in 0..<bucketCount {
                cum += hist[b]
                if cum >= target { return b }
            }
            return bucketCount - 1
        }
        // Buckets 0...last in order, then everything else as one more bucket.
        let rest = last + 1
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * (rest + 1)) { scratch in
            let start = UnsafeMutableBufferPointer(rebasing: scratch[0...rest])
            let next = UnsafeMutableBufferPointer(rebasing: scratch[(rest + 1)...])
            start.initialize(repeating: 0)
            @inline(__always) func key(_ i: Int) -> Int { min(bucket(c[i].logit), rest) }
            for i in 0..<n { start[key(i)] += 1 }
            var offset = 0
            for b in 0...rest {
                let size = start[b]
                start[b] = offset
                next[b] = offset
                offset += size
            }
            for b in 0..<rest {
                let end = b + 1 <= rest ? start[b + 1] : n
                while next[b] < end {
                    let k = key(next[b])
                    if k == b { next[b] += 1 } else { c.swapAt(next[b], next[k]); next[k] += 1 }
                }
            }
            for b in 0..<rest {
                let segment = UnsafeMutableBufferPointer(rebasing: c[start[b]..<start[b + 1]])
                selectBest(segment, count: segment.count, k: segment.count)
            }
            return start[rest]
        }
    }

    /// The dist sampler's probabilities: float exps, *double* sum (as llama.cpp), normalized.
    private func drawDistribution(_ c: UnsafeMutableBufferPointer<Candidate>, count n: Int, sorted: Bool) {
        var maxLogit = c[0].logit
        if !sorted { for i in 1..<max(n, 1) { maxLogit = max(maxLogit, c[i].logit) } }
        if maxLogit == -.infinity { return uniformOverAll(c, count: n) }
        var sum: Double = 0
        for i in 0..<n {
            let e = exp(c[i].logit - maxLogit)
            c[i].p = e
            sum += Double(e)
        }
        for i in 0..<n { c[i].p = Float(Double(c[i].p) / sum) }
    }

    /// All candidates banned: no distribution exists. Mark the lowest id as certain so the result
    /// is deterministic (see the file header).
    private func uniformOverAll(_ c: UnsafeMutableBufferPointer<Candidate>, count n: Int) {
        let best = argmaxIndex(c, count: n)
        for i in 0..<n { c[i].p = i == best ? 1 : 0 }
    }

    /// One uniform draw over the distribution left by `drawDistribution`.
    private mutating func draw(_ c: UnsafeMutableBufferPointer<Candidate>, count n: Int) -> Int {
        let u = random.nextUnitDouble()         // always one draw per step, as llama.cpp
        if n == 1 { return 0 }
        var sum: Double = 0
        for i in 0..<n { sum += Double(c[i].p) }
        let target = sum * u
        var running: Double = 0
        var last = 0
        for i in 0..<n where c[i].p > 0 {
            running += Double(c[i].p)
            last = i
            if running > target { return i }
        }
        return last                             // rounding: the sum fell short of the target
    }

    /// Index of the highest logit, the lowest id among equals (c may be in any order).
    private func argmaxIndex(_ c: UnsafeMutableBufferPointer<Candidate>, count n: Int) -> Int {
        var best = 0
        for i in 1..<max(n, 1) where ranksBefore(c[i], c[best]) { best = i }
        return best
    }

    // MARK: - Log-probabilities

    /// log-softmax of the raw logits for the chosen token and the `top` most likely ones.
    /// The normalizer is accumulated in double: over 49152 terms a float sum could lose ~1e-4.
    private func rawLogprobs(_ logits: UnsafeBufferPointer<Float>, chosen: Int32, top: Int)
        -> (Float, [TokenLogprob]) {
        @inline(__always) func clean(_ l: Float) -> Float { l.isNaN ? -.infinity : l }
        var maxLogit = -Float.infinity
        for l in logits { maxLogit = max(maxLogit, clean(l)) }
        // Float exps (each within an ulp) summed in double: the float rounding of each term adds
        // ~6e-8 relative to the sum, far below what a float32 logprob can show.
        var sum = 0.0
        for l in logits { sum += Double(exp(clean(l) - maxLogit)) }
        let logZ = Double(maxLogit) + log(sum)

        // The top list is at most 20 long: insertion into a small sorted array beats a heap here.
        var best: [Candidate] = []
        best.reserveCapacity(top + 1)
        if top > 0 {
            for i in 0..<logits.count {
                let cand = Candidate(id: Int32(i), logit: clean(logits[i]), p: 0)
                if best.count == top, !ranksBefore(cand, best[top - 1]) { continue }
                var j = best.count
                while j > 0 && ranksBefore(cand, best[j - 1]) { j -= 1 }
                best.insert(cand, at: j)
                if best.count > top { best.removeLast() }
            }
        }
        let lp = { (l: Float) in Float(Double(l) - logZ) }
        return (lp(clean(logits[Int(chosen)])), best.map { TokenLogprob(id: $0.id, logprob: lp($0.logit)) })
    }
}
