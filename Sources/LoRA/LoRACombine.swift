// Combining several adapters into one, with PEFT's semantics (peft tuners/lora/model.py
// `add_weighted_adapter`, read in peft 0.21.2). For each module present in any input (s_i its scale,
// w_i its weight):
//   cat:    A = [w_1·s_1·A_1; w_2·s_2·A_2; …], B = [B_1 B_2 …], rank = Σ r_i. The delta is exactly
//           Σ w_i·s_i·B_i·A_i.
//   linear: A = Σ sign_i·√|w_i·s_i|·A_i, B = Σ √|w_i·s_i|·B_i, equal ranks required. This is not the
//           weighted sum of deltas (cross terms B_i·A_j appear); it is what PEFT computes.
//   svd:    the weighted delta Σ w_i·s_i·B_i·A_i truncated to `rank` by SVD, B = U·S, A = Vh.
//   ties / dare: PEFT's "ties_svd", "dare_linear_svd", "dare_ties_svd" (LoRATaskArithmetic.swift).
// The result has scale 1 everywhere (PEFT sets r = lora_alpha = new rank). Modules missing from some
// inputs combine only the inputs that have them. DoRA adapters are refused: their row factors do not
// combine linearly.

extension LoRAAdapter {
    public enum CombineMethod: Sendable, Equatable {
        case cat
        case linear
        /// Truncate to this rank (PEFT's default is the largest input rank).
        case svd(rank: Int)
        /// TIES on the deltas, then SVD to `rank` (PEFT's "ties_svd"; see LoRATaskArithmetic.swift).
        case ties(density: Float, rank: Int, majoritySign: MajoritySign = .total)
        /// DARE (random drop with rescale, seeded) on the deltas, then SVD to `rank` (PEFT's
        /// "dare_linear_svd", or "dare_ties_svd" with `ties`). The random masks are lorad's own
        /// (SplitMix64 from `seed`), not torch's: same seed, same result, but not PEFT's numbers.
        case dare(density: Float, rank: Int, seed: UInt64, ties: Bool = false, majoritySign: MajoritySign = .total)
    }

    public enum MajoritySign: Sendable, Equatable {
        /// The sign of the sum of the (unweighted, pruned) deltas.
        case total
        /// The sign held by more of the deltas.
        case frequency
    }

    public static func combine(_ inputs: [(adapter: LoRAAdapter, weight: Float)], method: CombineMethod,
                               name: String, maxRank: Int = 256) throws -> LoRAAdapter {
        guard let first = inputs.first else { throw LoRAError.incompatible("no adapters given") }
        for (a, w) in inputs {
            guard a.layerCount == first.adapter.layerCount else {
                throw LoRAError.incompatible("'\(a.name)' is for \(a.layerCount) layers, '\(first.adapter.name)' for \(first.adapter.layerCount) (different base models?)")
            }
            guard !a.isDoRA else { throw LoRAError.incompatible("'\(a.name)' is a DoRA adapter; DoRA adapters cannot be combined") }
            guard w.isFinite else { throw LoRAError.incompatible("the weight of '\(a.name)' is \(w)") }
        }
        var keys: [(Int, LoRATarget)] = []
        for (a, _) in inputs {
            for (l, t, _) in a.modules where !keys.contains(where: { $0 == (l, t) }) { keys.append((l, t)) }
        }
        var out: [(layer: Int, target: LoRATarget, module: LoRAModule)] = []
        for (layer, target) in keys {
            let parts = inputs.compactMap { i in i.adapter.module(layer: layer, target: target).map { (i.adapter.name, $0, i.weight) } }
            let inF = parts[0].1.inFeatures, outF = parts[0].1.outFeatures
            for (n, m, _) in parts where m.inFeatures != inF || m.outFeatures != outF {
                throw LoRAError.incompatible("'\(n)' has a \(m.outFeatures)×\(m.inFeatures) \(target.rawValue) in layer \(layer), expected \(outF)×\(inF)")
            }
            let module: LoRAModule
            switch method {
            case .cat:
                let rank = parts.reduce(0) { $0 + $1.1.rank }
                guard rank <= maxRank else { throw LoRAError.rankOutOfRange(module: target.hfPath(layer: layer), rank: rank, maxRank: maxRank) }
                var a: [Float] = [], b = [Float](repeating: 0, count: outF * rank)
                var offset = 0
                for (_, m, w) in parts {
                    let f = w * m.scale
                    a.append(contentsOf: m.a.map { f * $0 })
                    for r in 0..<outF { for k in 0..<m.rank { b[r * rank + offset + k] = m.b[r * m.rank + k] } }
                    offset += m.rank
                }
                module = LoRAModule(rank: rank, inFeatures: inF, outFeatures: outF, a: a, b: b, scale: 1)
            case .linear:
                let rank = parts[0].1.rank
                for (n, m, _) in parts where m.rank != rank {
                    throw LoRAError.incompatible("linear combination needs equal ranks: '\(n)' has rank \(m.rank) in \(target.hfPath(layer: layer)), '\(parts[0].0)' has \(rank) (use cat or svd)")
                }
                var a = [Float](repeating: 0, count: rank * inF), b = [Float](repeating: 0, count: outF * rank)
                for (_, m, w) in parts {
                    let ws = Double(w) * Double(m.scale)
                    let root = abs(ws).squareRoot()
                    let fa = Float(ws >= 0 ? root : -root), fb = Float(root)
                    for i in 0..<a.count { a[i] += fa * m.a[i] }
                    for i in 0..<b.count { b[i] += fb * m.b[i] }
                }
                module = LoRAModule(rank: rank, inFeatures: inF, outFeatures: outF, a: a, b: b, scale: 1)
            case .svd(let k):
                guard k >= 1, k <= maxRank else { throw LoRAError.rankOutOfRange(module: target.hfPath(layer: layer), rank: k, maxRank: maxRank) }
                // Factor the weighted delta through the cat form, then truncate.
                let rank = parts.reduce(0) { $0 + $1.1.rank }
                var a: [Float] = [], b = [Float](repeating: 0, count: outF * rank)
                var offset = 0
                for (_, m, w) in parts {
                    let f = w * m.scale
                    a.append(contentsOf: m.a.map { f * $0 })
                    for r in 0..<outF { for kk in 0..<m.rank { b[r * rank + offset + kk] = m.b[r * m.rank + kk] } }
                    offset += m.rank
                }
                let t = SmallLinalg.truncatedProduct(b: b, a: a, out: outF, rank: rank, inFeatures: inF, keep: k)
                module = LoRAModule(rank: k, inFeatures: inF, outFeatures: outF, a: t.a, b: t.b, scale: 1)
            case .ties(let density, let k, let sign):
                module = try TaskArithmetic.combine(parts: parts.map { ($0.1, $0.2) }, density: density, rank: k, maxRank: maxRank,
                                                    pruning: .magnitude, electSign: sign, module: target.hfPath(layer: layer))
            case .dare(let density, let k, let seed, let ties, let sign):
                // One stream per module, derived from the seed and the module's position.
                let stream = seed &+ UInt64(layer) &* 0x1_0000 &+ UInt64(target.order)
                module = try TaskArithmetic.combine(parts: parts.map { ($0.1, $0.2) }, density: density, rank: k, maxRank: maxRank,
                                                    pruning: .random(seed: stream), electSign: ties ? sign : nil,
                                                    module: target.hfPath(layer: layer))
            }
            out.append((layer, target, module))
        }
        let desc = inputs.map { "\($0.adapter.name)×\($0.weight)" }.joined(separator: ", ")
        return LoRAAdapter(name: name, layerCount: first.adapter.layerCount, source: "\(method) combination of \(desc)", modules: out)
    }
}
