// The optimiser's pieces on their own: schedule values, clipping, accumulation, state files that do
// not fit, groups that do not cover the tensors, and the LoRA initialisation.

import Foundation
import Kernels
import Testing
@testable import Training

struct OptimizerTests {
    @Test func schedulesMatchTransformersFormulas() {
        let cosine = LearningRateSchedule.cosine(warmupSteps: 4, totalSteps: 12)
        #expect(cosine.multiplier(afterSteps: 0) == 0)
        #expect(cosine.multiplier(afterSteps: 2) == 0.5)
        #expect(cosine.multiplier(afterSteps: 4) == 1)
        #expect(abs(cosine.multiplier(afterSteps: 8) - 0.5) < 1e-15)
        #expect(cosine.multiplier(afterSteps: 12) < 1e-15)
        #expect(cosine.multiplier(afterSteps: 13) >= 0)
        let linear = LearningRateSchedule.linear(warmupSteps: 2, totalSteps: 10)
        #expect(linear.multiplier(afterSteps: 1) == 0.5)
        #expect(linear.multiplier(afterSteps: 6) == 0.5)
        #expect(linear.multiplier(afterSteps: 10) == 0)
        #expect(linear.multiplier(afterSteps: 11) == 0)
        #expect(LearningRateSchedule.constant(warmupSteps: 0).multiplier(afterSteps: 0) == 1)
        #expect(LearningRateSchedule.constant(warmupSteps: 4).multiplier(afterSteps: 1) == 0.25)
        #expect(abs(LearningRateSchedule.linear(warmupSteps: 0, totalSteps: 4).learningRate(base: 2e-4, afterSteps: 1) - 1.5e-4) < 1e-18)
    }

    @Test func clippingScalesOnlyAboveTheMaximum() {
        var small: [[Float]] = [[0.3, 0.4]]
        #expect(abs(GradientClipping.clip(&small, maxNorm: 1) - 0.5) < 1e-7)
        #expect(small == [[0.3, 0.4]])
        var large: [[Float]] = [[3], [4]]
        #expect(GradientClipping.clip(&large, maxNorm: 1) == 5)
        #expect(abs(GradientClipping.globalNorm(large) - 1) < 1e-6)
        var broken: [[Float]] = [[.nan, 1]]
        #expect(GradientClipping.clip(&broken, maxNorm: 1).isNaN)
        #expect(broken[0][1] == 1, "nothing changes: the caller skips the step")
    }

    @Test func accumulatorAveragesMicroBatchesAndTokens() {
        var acc = GradientAccumulator(tensorSizes: [2, 1])
        acc.add([[1, 2], [3]], tokens: 4)
        acc.add([[3, 6], [5]], tokens: 4)
        #expect(acc.microBatches == 2 && acc.tokens == 8)
        #expect(acc.takeMean() == [[2, 4], [4]])
        #expect(acc.microBatches == 0 && acc.sums == [[0, 0], [0]])
        acc.add([[8, 16], [4]], tokens: 3)
        acc.add([[0, 0], [4]], tokens: 5)
        #expect(acc.takeTokenMean() == [[1, 2], [1]])
    }

    @Test func groupsMustCoverEveryTensorOnce() {
        #expect(throws: TrainingError.self) {
            try AdamW(tensorSizes: [2, 2], groups: [ParameterGroup(name: "a", tensors: [0], weightDecay: 0)])
        }
        #expect(throws: TrainingError.self) {
            try AdamW(tensorSizes: [2], groups: [ParameterGroup(name: "a", tensors: [0], weightDecay: 0),
                                                 ParameterGroup(name: "b", tensors: [0], weightDecay: 0)])
        }
        #expect(throws: TrainingError.self) {
            try AdamW(tensorSizes: [2], groups: [ParameterGroup(name: "a", tensors: [0], weightDecay: 0)],
                      hyperparameters: AdamWHyperparameters(beta1: 1))
        }
    }

    @Test func stateThatDoesNotFitIsRefused() throws {
        let groups = [ParameterGroup(name: "all", tensors: [0, 1], weightDecay: 0.01)]
        var adam = try AdamW(tensorSizes: [3, 2], groups: groups)
        var params: [[Float]] = [[1, 2, 3], [4, 5]]
        adam.step(&params, gradients: [[0.1, -0.2, 0.3], [1, -1]], learningRate: 1e-3)
        let bytes = adam.stateBytes()
        #expect(bytes.count == 8 + 4 + 8 + 4 + 16 + 8 * 5)

        var same = try AdamW(tensorSizes: [3, 2], groups: groups)
        try bytes.withUnsafeBytes { try same.restoreState($0, source: "s") }
        #expect(same.stateBytes() == bytes)

        var other = try AdamW(tensorSizes: [3, 3], groups: groups)
        #expect(throws: TrainingError.badCheckpoint(path: "s", reason: "tensor 1 has 2 elements in the optimiser state, 3 in this run")) {
            try bytes.withUnsafeBytes { try other.restoreState($0, source: "s") }
        }
        #expect(other.step == 0)
        #expect(throws: TrainingError.self) { try Array(bytes.dropLast()).withUnsafeBytes { try same.restoreState($0, source: "s") } }
        #expect(throws: TrainingError.self) { try Array("not a state".utf8).withUnsafeBytes { try same.restoreState($0, source: "s") } }
        #expect(throws: TrainingError.self) { try same.loadState(from: "/nonexistent/lorad-state") }
        #expect(same.step == 1)
    }

    @Test func loraInitIsKaimingUniformAndZero() {
        var rng = SplitMix64(seed: 7)
        let a = LoRAInitialization.loraA(rank: 8, inFeatures: 576, rng: &rng)
        let bound = LoRAInitialization.kaimingUniformBound(fanIn: 576)
        #expect(bound == Float(1.0 / 24.0))
        #expect(a.count == 8 * 576)
        #expect(a.allSatisfy { abs($0) <= bound })
        // Uniform on [−b, b]: mean 0, variance b²/3 (4608 draws: a few standard errors).
        let mean = a.reduce(0.0) { $0 + Double($1) } / Double(a.count)
        let variance = a.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(a.count)
        #expect(abs(mean) < 4 * Double(bound) / (3.0.squareRoot() * Double(a.count).squareRoot()))
        #expect(abs(variance / (Double(bound * bound) / 3) - 1) < 0.05)
        var again = SplitMix64(seed: 7)
        #expect(LoRAInitialization.loraA(rank: 8, inFeatures: 576, rng: &again) == a)
        #expect(LoRAInitialization.loraB(outFeatures: 576, rank: 8) == [Float](repeating: 0, count: 4608))
    }
}
