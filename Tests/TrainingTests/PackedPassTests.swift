// Batched and packed training passes compute exactly what their examples compute alone: on the tiny
// random Llama (Fixtures/train_tiny_base.gguf) with a random adapter on all seven projections, the
// summed loss and the summed gradients (each pass's mean times its target count) of one pass over a
// batch of two rows, one of them three examples packed with segments, equal the sums over a separate
// pass per example; and the same tokens packed without segments (attention crossing the examples,
// positions running on) give a different loss, so the check can fail. On the trainer: a step over
// packed rows equals a step over the same examples unpacked.

import Foundation
import Kernels
import Llama
import LoRA
import Testing
import Training

@Suite struct PackedPassTests {
    /// Three short examples (first token untrained, as loading leaves every example).
    static let examples: [(tokens: [Int32], mask: [Bool])] = [
        ([3, 200, 17, 45, 99, 250, 128], [false, true, true, false, true, true, true]),
        ([42, 13, 101, 88, 12, 190, 5, 230, 7], [false, false, false, true, true, false, true, true, true]),
        ([9, 77, 31, 64, 2], [false, true, true, true, true]),
        ([120, 11, 240, 33, 58, 61], [false, false, true, true, false, true]),
    ]

    static func alone(_ e: (tokens: [Int32], mask: [Bool])) -> TrainingSequence {
        TrainingSequence(tokens: e.tokens, lossMask: e.mask)
    }

    /// Examples 0-2 packed into one row (segments), example 3 as a second row of the batch.
    static var packedBatch: [TrainingSequence] {
        var tokens: [Int32] = [], mask: [Bool] = [], segments: [Range<Int>] = []
        for e in examples.prefix(3) {
            segments.append(tokens.count..<(tokens.count + e.tokens.count))
            tokens += e.tokens
            mask += e.mask
        }
        return [TrainingSequence(tokens: tokens, lossMask: mask, segments: segments), alone(examples[3])]
    }

    @Test func aPackedBatchEqualsItsExamplesAlone() throws {
        let model = try tinyModel()
        let params = randomParameters(model, seed: 21)
        let pass = TrainingPass(model: model, logitRows: 4)
        var lossSum = 0.0, targets = 0
        var a = params.modules.map { [Double](repeating: 0, count: $0.a.count) }, b = params.modules.map { [Double](repeating: 0, count: $0.b.count) }
        for e in Self.examples {
            let r = try pass.lossAndGradients(params, batch: [Self.alone(e)])
            lossSum += r.loss * Double(r.targetCount)
            targets += r.targetCount
            for i in params.modules.indices {
                for j in a[i].indices { a[i][j] += Double(r.gradients.a[i][j]) * Double(r.targetCount) }
                for j in b[i].indices { b[i][j] += Double(r.gradients.b[i][j]) * Double(r.targetCount) }
            }
        }
        let packed = try pass.lossAndGradients(params, batch: Self.packedBatch)
        #expect(packed.targetCount == targets && targets == 17)
        // The same arithmetic on the same rows, except that the products run over 27 rows at once
        // instead of 5-9 (other OpenBLAS/kernel blockings sum in another order) and the gradients are
        // scaled by 1/17 instead of 1/n before being multiplied back: f32 rounding (observed: 2e-8
        // relative on the loss, 1.4e-6 of a module's largest gradient at worst). 1e-5 relative (of the
        // loss; of each module's largest gradient) leaves ~7× room, while
        // attention or a RoPE position crossing a segment changes results by ~1e-2 or more.
        let packedSum = packed.loss * Double(packed.targetCount)
        #expect(abs(packedSum - lossSum) <= 1e-5 * lossSum, "packed \(packedSum) vs alone \(lossSum)")
        var worst = 0.0
        for i in params.modules.indices {
            for (name, want, got) in [("a", a[i], packed.gradients.a[i]), ("b", b[i], packed.gradients.b[i])] {
                let scale = want.map(abs).max() ?? 0
                let err = zip(want, got).map { abs($0 - Double($1) * Double(packed.targetCount)) }.max() ?? 0
                worst = max(worst, err / max(scale, 1e-30))
                #expect(err <= 1e-5 * scale, "module \(i) \(name): error \(err) of \(scale)")
            }
        }
        print("packed vs alone: loss \(packedSum) vs \(lossSum), worst gradient error \(worst) relative")

        // The same tokens as one unsegmented row: a different computation.
        var plain = Self.packedBatch
        plain[0].segments = [0..<plain[0].tokens.count]
        let crossing = try pass.loss(params, batch: plain)
        #expect(abs(crossing * Double(targets) - lossSum) > 1e-3 * lossSum, "segments made no difference")
        // The forward-only loss of the packed batch is the same number.
        #expect(abs(try pass.loss(params, batch: Self.packedBatch) - packed.loss) <= 1e-6 * packed.loss)
    }

    @Test func segmentsThatDoNotCoverTheRowAreRefused() throws {
        let model = try tinyModel()
        let params = randomParameters(model, seed: 3)
        let pass = TrainingPass(model: model)
        var bad = Self.packedBatch
        bad[0].segments = [0..<7, 8..<bad[0].tokens.count]  // a gap
        #expect(throws: TrainingError.self) { try pass.loss(params, batch: bad) }
        bad[0].segments = [0..<7]  // short of the end
        #expect(throws: TrainingError.self) { try pass.loss(params, batch: bad) }
    }
}
