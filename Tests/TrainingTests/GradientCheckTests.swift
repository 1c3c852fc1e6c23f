// The backward pass against central differences of the plain Double reference (ReferenceLoss.swift),
// on the tiny random Llama of Fixtures/train_tiny_base.gguf (F32, hidden 64, 2 layers, 4 heads over 2
// KV heads, tied embeddings) with a random adapter on all seven projections of both layers: every
// module a different rank (1-5) and folded scale (alpha/r and rsLoRA's alpha/√r values), A and B both
// non-zero, and a batch of two sequences of different lengths with gaps in their loss masks.

import Foundation
import Kernels
import Llama
import LoRA
import Testing
import Training

func trainingFixture(_ name: String) throws -> String {
    let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
    return try #require(Bundle.module.url(forResource: parts[0], withExtension: parts.count > 1 ? parts[1] : nil,
                                          subdirectory: "Fixtures"), "fixture \(name) is missing").path
}

func tinyModel(threads: Int = 2) throws -> LlamaModel {
    try LlamaModel(path: try trainingFixture("train_tiny_base.gguf"), threads: threads)
}

/// A random adapter on every projection of every layer: ranks and scales vary by module.
func randomParameters(_ model: LlamaModel, seed: UInt64, bScale: Float = 0.2) -> LoRAParameters {
    var rng = SplitMix64(seed: seed)
    func normals(_ n: Int, _ s: Float) -> [Float] {
        (0..<n).map { _ in
            let u1 = Double.random(in: Double.ulpOfOne..<1, using: &rng), u2 = Double.random(in: 0..<1, using: &rng)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)) * s
        }
    }
    let c = model.config
    var modules: [LoRAParameters.Module] = []
    for l in 0..<c.layerCount {
        for (i, target) in LoRATarget.allCases.enumerated() {
            let w = model.weights.layers[l].matrix(target)
            let rank = 1 + (i + 2 * l) % 5
            // alpha/r for even modules, rsLoRA's alpha/√r for odd ones (alpha 8).
            let scale = i % 2 == 0 ? 8 / Float(rank) : 8 / Float(rank).squareRoot()
            modules.append(.init(layer: l, target: target, rank: rank, inFeatures: w.cols, outFeatures: w.rows, scale: scale,
                                 a: normals(rank * w.cols, 0.1), b: normals(w.rows * rank, bScale / scale)))
        }
    }
    return LoRAParameters(layerCount: c.layerCount, modules: modules)
}

@Suite struct GradientCheckTests {
    static let batch = [
        TrainingSequence(tokens: [3, 200, 17, 45, 99, 250, 128], lossMask: [false, true, true, false, true, true, true]),
        TrainingSequence(tokens: [42, 13, 101, 88, 12, 190, 5, 230, 7], lossMask: [false, false, false, true, true, false, true, true, true]),
    ]

    @Test func gradientsMatchCentralDifferencesOfTheDoubleReference() throws {
        let model = try tinyModel()
        let params = randomParameters(model, seed: 7)
        let pass = TrainingPass(model: model, logitRows: 3)  // 3: several chunks, the last one short
        let result = try pass.lossAndGradients(params, batch: Self.batch)
        let reference = ReferenceLlama(model: model)
        let modules = params.modules.map(ReferenceModule.init)
        let refLoss = reference.loss(Self.batch, modules)
        // The f32 loss against the Double one: f32 rounding through two blocks and a 256-way softmax
        // leaves ~1e-6 relative; a wrong mask, shift or mean is off by far more.
        #expect(abs(result.loss - refLoss) <= 1e-5 * refLoss, "loss \(result.loss) vs reference \(refLoss)")
        #expect(result.targetCount == 10)

        // Central differences with h = 1e-4 in Double: truncation error ~h²·|f'''| ≈ 1e-8 and rounding
        // ~1e-16/h = 1e-12, so the difference quotient is exact to ~1e-8. The analytic gradients are f32
        // (products of 64-128 terms, two blocks deep): a few 1e-6 relative, ~1e-8 absolute on gradients of
        // ~1e-2. So |g − fd| ≤ 1e-4·|fd| + 2e-7 leaves ~10× room (observed: worst 0.13 of it), while a
        // wrong transpose, scale, permutation or missing term is off by a large fraction of |fd|.
        let h = 1e-4
        var rng = SplitMix64(seed: 99)
        var worst = 0.0, checked = 0
        for (i, m) in modules.enumerated() {
            for part in ["a", "b"] {
                let n = part == "a" ? m.a.count : m.b.count
                for _ in 0..<3 {
                    let j = Int.random(in: 0..<n, using: &rng)
                    var plus = modules, minus = modules
                    if part == "a" { plus[i].a[j] += h; minus[i].a[j] -= h } else { plus[i].b[j] += h; minus[i].b[j] -= h }
                    let fd = (reference.loss(Self.batch, plus) - reference.loss(Self.batch, minus)) / (2 * h)
                    let g = Double(part == "a" ? result.gradients.a[i][j] : result.gradients.b[i][j])
                    let tol = 1e-4 * abs(fd) + 2e-7
                    worst = max(worst, abs(g - fd) / tol)
                    #expect(abs(g - fd) <= tol, "blk.\(m.layer).\(m.target.rawValue) \(part)[\(j)]: \(g) vs \(fd)")
                    checked += 1
                }
            }
        }
        #expect(checked == 84)
        print("gradient check: \(checked) elements, worst error \(worst) of tolerance")
    }

    /// The forward-only loss equals the loss the gradient pass reports, and an adapter on a subset of
    /// the projections gets gradients for exactly its modules.
    @Test func lossOnlyPassEqualsTheGradientPassLoss() throws {
        let model = try tinyModel()
        var params = randomParameters(model, seed: 3)
        params.modules = params.modules.filter { $0.target == .v || $0.target == .down }
        let pass = TrainingPass(model: model)
        let full = try pass.lossAndGradients(params, batch: Self.batch)
        #expect(try pass.loss(params, batch: Self.batch) == full.loss)
        #expect(full.gradients.a.count == 4 && full.gradients.b.count == 4)
        #expect(full.gradients.b.allSatisfy { g in g.contains { $0 != 0 } })
    }

    /// Two passes give the same bits: no result depends on which pool thread ran what.
    @Test func gradientsAreReproducible() throws {
        let model = try tinyModel()
        let params = randomParameters(model, seed: 7)
        let pass = TrainingPass(model: model)
        let one = try pass.lossAndGradients(params, batch: Self.batch), two = try pass.lossAndGradients(params, batch: Self.batch)
        #expect(one.loss == two.loss)
        #expect(one.gradients.a == two.gradients.a && one.gradients.b == two.gradients.b)
    }

    @Test func dataAndAdaptersThatDoNotFitAreRefused() throws {
        let model = try tinyModel()
        let params = randomParameters(model, seed: 3)
        let pass = TrainingPass(model: model)
        #expect(throws: TrainingError.self) {
            try pass.loss(params, batch: [TrainingSequence(tokens: [1, 2, 3], lossMask: [false, true])])
        }
        #expect(throws: TrainingError.self) {
            try pass.loss(params, batch: [TrainingSequence(tokens: [1, 2, 3], lossMask: [true, false, false])])
        }
        #expect(throws: TrainingError.self) {
            try pass.loss(params, batch: [TrainingSequence(tokens: [1, 999, 3], lossMask: [false, true, true])])
        }
        let wrong = LoRAParameters(layerCount: 3, modules: [])
        #expect(throws: TrainingError.self) {
            try pass.loss(wrong, batch: Self.batch)
        }
    }
}
