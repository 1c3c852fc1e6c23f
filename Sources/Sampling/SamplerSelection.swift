// Candidate tokens and the partial selection the truncation stages use.
//
// llama.cpp keeps `llama_token_data {id, logit, p}` arrays and sorts them with std::partial_sort
// (src/llama-sampler.cpp). We do the same with an in-place heap selection: O(n log k) for the k best
// of n, usually close to O(n) because most candidates lose the first comparison against the heap's
// root, and no allocation. Ties are broken by the lower token id so results never depend on the
// arrangement of equal logits (llama.cpp's std::partial_sort is unstable, so it has no fixed rule).

/// One entry of the working candidate list, laid out like llama.cpp's `llama_token_data`.
struct Candidate: Sendable, Equatable {
    var id: Int32
    var logit: Float
    /// A probability, only meaningful right after a stage that computed it.
    var p: Float
}

/// The total order the sampler sorts by: higher logit first, then lower id.
@inline(__always)
func ranksBefore(_ a: Candidate, _ b: Candidate) -> Bool {
    a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
}

/// Rearranges `buf[0..<n]` so that `buf[0..<k]` holds the `k` best candidates in descending order
/// (by `ranksBefore`); the order of `buf[k..<n]` is unspecified afterwards. `k` is clamped to `n`.
func selectBest(_ buf: UnsafeMutableBufferPointer<Candidate>, count n: Int, k kIn: Int) {
    let k = min(kIn, n)
    guard k > 0 else { return }
    // A heap whose root is the *worst* of the k kept so far: a newcomer only enters if it ranks
    // before the root, which for typical logits is rare after the first few thousand.
    @inline(__always) func siftDown(_ start: Int, _ size: Int) {
        var i = start
        while true {
            let l = 2 * i + 1
            if l >= size { return }
            let r = l + 1
            let worse = (r < size && ranksBefore(buf[l], buf[r])) ? r : l
            if ranksBefore(buf[i], buf[worse]) {
                buf.swapAt(i, worse)
                i = worse
            } else {
                return
            }
        }
    }
    var i = k / 2 - 1
    while i >= 0 { siftDown(i, k); i -= 1 }
    for j in k..<n where ranksBefore(buf[j], buf[0]) {
        buf.swapAt(0, j)
        siftDown(0, k)
    }
    // Heap sort the kept prefix: repeatedly move the worst to the back.
    var end = k - 1
    while end > 0 {
        buf.swapAt(0, end)
        siftDown(0, end)
        end -= 1
    }
}

/// The plain reference for `selectBest`: a full sort. Used by tests on random inputs.
func selectBestReference(_ candidates: [Candidate], k: Int) -> [Candidate] {
    Array(candidates.sorted(by: ranksBefore).prefix(k))
}
