// The training loop (issue 17, part 3): rows of each epoch's seeded order → TrainingPass's
// lossAndGradients per micro-batch (summed, then averaged by target tokens over the whole step, so the
// step's gradient is that of its token mean however the tokens fell into micro-batches) → clipping
// (clip_grad_norm_) → AdamW (LoRA+: B's group at lr·ratio) → the schedule's next rate. Every
// `evalEvery` steps (and at the end) the eval rows' loss is measured; with a patience, training stops
// after that many evaluations without a new best, and the parameters returned are the best ones seen,
// not the last (DESIGN.md §6b).
//
// Rows are one example each, or with `pack` several short examples packed into rows of at most that
// many tokens (TrainingRow.packed, attention and positions kept inside each example); a micro-batch's
// rows run as one batched forward and backward pass (TrainingPass). The order of micro-batches is a function of
// (seed, epoch) alone (TrainingBatches), and a step takes `gradientAccumulation` of them in a row,
// running over into the next epoch; so the whole state of a run is the parameters, AdamW's state, the
// step and the position (epoch, micro-batch), which a checkpoint holds (Trainer+Checkpoint.swift). A
// resumed run therefore computes the same numbers as an uninterrupted one, bit for bit on the same
// machine and thread count.
//
// Threads: `run` runs on its caller's thread (a command's main thread, or a trainer thread) and the
// model's ComputePool; `TrainingCancellation` is the only thing another thread (or a signal handler)
// touches, and it is checked between steps.

import Foundation
import JSON
import Kernels
import Llama
import LoRA
import Synchronization

/// A flag another thread (or a signal handler's poller) sets to stop a run after its current step.
public final class TrainingCancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func cancel() { flag.store(true, ordering: .relaxed) }
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

public struct TrainerConfig: Sendable, Equatable {
    public enum Schedule: String, Sendable, CaseIterable { case cosine, linear, constant }

    /// Passes over the training rows; ignored when `steps` is set.
    public var epochs: Int = 3
    /// A step budget instead of epochs.
    public var steps: Int? = nil
    /// Rows per micro-batch.
    public var batchSize: Int = 1
    /// Micro-batches per optimiser step.
    public var gradientAccumulation: Int = 1
    public var learningRate: Double = 2e-4
    public var warmupSteps: Int = 0
    public var schedule: Schedule = .cosine
    public var weightDecay: Double = 0
    /// nil: no clipping.
    public var maxGradNorm: Double? = 1
    /// LoRA+: B's learning rate is this times A's (1: plain LoRA).
    public var loraPlusRatio: Double = 1
    public var seed: UInt64 = 0
    /// Evaluate every N steps (0: only before and after).
    public var evalEvery: Int = 0
    /// Stop after this many evaluations without a new best eval loss (nil: never stop early).
    public var patience: Int? = nil
    /// Pack short training examples into rows of at most this many tokens (nil: one example per row).
    public var pack: Int? = nil
    /// The backward pass's base products (TrainingPass.BackwardProducts); `.q8` goes with a model
    /// under q8 numerics (`lorad train --numerics q8`).
    public var backwardProducts: TrainingPass.BackwardProducts = .f32

    public init() {}

    func check() throws(TrainingError) {
        func bad(_ name: String, _ value: Any, _ expected: String) -> TrainingError {
            .badSetting(name: name, value: "\(value)", expected: expected)
        }
        guard epochs >= 1 else { throw bad("--epochs", epochs, "at least 1") }
        if let steps, steps < 1 { throw bad("--steps", steps, "at least 1") }
        guard batchSize >= 1 else { throw bad("--batch", batchSize, "at least 1 row") }
        guard gradientAccumulation >= 1 else { throw bad("--grad-accum", gradientAccumulation, "at least 1") }
        guard learningRate > 0, learningRate.isFinite else { throw bad("--lr", learningRate, "a positive number") }
        guard warmupSteps >= 0 else { throw bad("--warmup", warmupSteps, "0 or more steps") }
        guard weightDecay >= 0, weightDecay.isFinite else { throw bad("--weight-decay", weightDecay, "a number ≥ 0") }
        if let maxGradNorm, !(maxGradNorm > 0 && maxGradNorm.isFinite) { throw bad("--max-grad-norm", maxGradNorm, "a positive number") }
        guard loraPlusRatio > 0, loraPlusRatio.isFinite else { throw bad("--lora-plus", loraPlusRatio, "a positive ratio (1: off)") }
        guard evalEvery >= 0 else { throw bad("--eval-every", evalEvery, "0 or more steps") }
        if let patience, patience < 1 { throw bad("--patience", patience, "at least 1 evaluation") }
        if let pack, pack < 2 { throw bad("--pack", pack, "rows of at least 2 tokens") }
    }

    /// The hyperparameters as the manifest records them.
    public var json: [(String, JSONValue)] {
        var out: [(String, JSONValue)] = [
            ("epochs", .int(epochs)), ("batch", .int(batchSize)), ("grad_accum", .int(gradientAccumulation)),
            ("lr", .double(learningRate)), ("warmup", .int(warmupSteps)), ("schedule", .string(schedule.rawValue)),
            ("weight_decay", .double(weightDecay)), ("lora_plus", .double(loraPlusRatio)), ("seed", .int(Int(truncatingIfNeeded: seed))),
            ("eval_every", .int(evalEvery)),
        ]
        if let steps { out.append(("steps", .int(steps))) }
        if let maxGradNorm { out.append(("max_grad_norm", .double(maxGradNorm))) }
        if let patience { out.append(("patience", .int(patience))) }
        if let pack { out.append(("pack", .int(pack))) }
        // Only when not the default, so f32 runs' manifests and checkpoint fingerprints are as before.
        if backwardProducts != .f32 { out.append(("backward_products", .string(backwardProducts.rawValue))) }
        return out
    }

    /// What a checkpoint must agree with to be resumed by this run.
    var fingerprint: String { JSONValue.object(json).serialized() }
}

/// One progress report, after each step and each evaluation.
public struct TrainingProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    /// Fractional epochs done (micro-batches trained / micro-batches per epoch).
    public var epoch: Double
    /// The step's training loss (token mean over its micro-batches); nil in a report of an evaluation alone.
    public var loss: Double?
    /// Set when this report follows an evaluation.
    public var evalLoss: Double?
    public var learningRate: Double
    /// Trained-row tokens (forward and backward) per second over the run so far.
    public var tokensPerSecond: Double
    /// Seconds left at the run's rate so far.
    public var etaSeconds: Double
}

/// What a run returns.
public struct TrainingResult: Sendable {
    /// The parameters to publish: the best by eval loss when there are eval rows, else the last.
    public var parameters: LoRAParameters
    /// Steps taken (all of them, including those after the best).
    public var steps: Int
    /// The step whose parameters are returned.
    public var bestStep: Int
    /// The training loss of every step, in order (for a resumed run, the steps it ran).
    public var losses: [Double]
    /// Eval losses by step, the starting one at step 0.
    public var evalLosses: [(step: Int, loss: Double)]
    public var trainLossBefore: Double
    public var trainLossAfter: Double
    public var evalLossBefore: Double?
    public var evalLossAfter: Double?
    public var tokensPerSecond: Double
    public var stoppedEarly: Bool
    /// Stopped by the cancellation flag before the budget was done.
    public var cancelled: Bool
    /// The run's state after its last step (to write as a checkpoint when cancelled).
    public var state: TrainerState
}

/// Everything a run needs to continue exactly where it stopped.
public struct TrainerState: Sendable {
    public var parameters: LoRAParameters
    public var optimizer: AdamW
    /// Steps completed.
    public var step: Int
    /// The next micro-batch: epoch and index in that epoch's order.
    public var epoch: Int
    public var batchIndex: Int
    public var best: LoRAParameters
    public var bestStep: Int
    public var bestEvalLoss: Double?
    /// Evaluations since the last new best.
    public var evaluationsWithoutBest: Int
    public var trainLossBefore: Double
    public var evalLossBefore: Double?
    /// The training loss of every step so far.
    public var losses: [Double]
    public var evalLosses: [(step: Int, loss: Double)]
    /// Tokens trained and seconds spent so far (for tokens/s across a resume).
    public var tokens: Int
    public var seconds: Double
}

public struct Trainer {
    public let model: LlamaModel
    public let config: TrainerConfig
    public let train: [TrainingSequence]
    public let eval: [TrainingSequence]
    public var pass: TrainingPass

    /// `train` and `eval` are examples as loaded (TrainingDataset): each trained as one row, or packed
    /// into rows of `config.pack` tokens. The eval rows stay one example each (the loss pass batches
    /// them anyway, and packing changes no loss).
    public init(model: LlamaModel, train: [TrainingExample], eval: [TrainingExample], config: TrainerConfig) throws(TrainingError) {
        try config.check()
        guard !train.isEmpty else { throw .badSetting(name: "training data", value: "0 examples", expected: "at least one example") }
        self.model = model
        self.config = config
        if let pack = config.pack {
            if let long = train.first(where: { $0.tokens.count > pack }) {
                throw .badSetting(name: "--pack", value: "\(pack) tokens",
                                  expected: "at least the longest example (line \(long.line): \(long.tokens.count) tokens; hint: --max-seq)")
            }
            self.train = TrainingRow.packed(train, maxSequence: pack).map(Self.sequence)
        } else {
            self.train = TrainingRow.unpacked(train).map(Self.sequence)
        }
        self.eval = TrainingRow.unpacked(eval).map(Self.sequence)
        pass = TrainingPass(model: model, backwardProducts: config.backwardProducts)
    }

    /// A row as the training pass takes it: its examples are its segments.
    static func sequence(_ row: TrainingRow) -> TrainingSequence {
        TrainingSequence(tokens: row.tokens, lossMask: row.mask, segments: row.segments)
    }

    /// Micro-batches in one epoch.
    public var microBatchesPerEpoch: Int { (train.count + config.batchSize - 1) / config.batchSize }

    /// Optimiser steps in the run.
    public var totalSteps: Int {
        config.steps ?? (config.epochs * microBatchesPerEpoch + config.gradientAccumulation - 1) / config.gradientAccumulation
    }

    public var schedule: LearningRateSchedule {
        switch config.schedule {
        case .constant: return .constant(warmupSteps: config.warmupSteps)
        case .linear: return .linear(warmupSteps: config.warmupSteps, totalSteps: totalSteps)
        case .cosine: return .cosine(warmupSteps: config.warmupSteps, totalSteps: totalSteps)
        }
    }

    /// The tensors AdamW updates, in order: every module's A, B (and DoRA magnitude).
    static func tensorSizes(_ p: LoRAParameters) -> (sizes: [Int], aGroup: [Int], bGroup: [Int]) {
        var sizes: [Int] = [], a: [Int] = [], b: [Int] = []
        for m in p.modules {
            a.append(sizes.count); sizes.append(m.a.count)
            b.append(sizes.count); sizes.append(m.b.count)
            if let mag = m.magnitude { a.append(sizes.count); sizes.append(mag.count) }
        }
        return (sizes, a, b)
    }

    func makeOptimizer(for p: LoRAParameters) throws(TrainingError) -> AdamW {
        let t = Self.tensorSizes(p)
        return try AdamW(tensorSizes: t.sizes, groups: [
            ParameterGroup(name: "lora_A", tensors: t.aGroup, learningRateScale: 1, weightDecay: config.weightDecay),
            ParameterGroup(name: "lora_B", tensors: t.bGroup, learningRateScale: config.loraPlusRatio, weightDecay: config.weightDecay),
        ])
    }

    /// The mean loss over every target of `rows` (nil when there are none).
    public func meanLoss(_ p: LoRAParameters, _ rows: [TrainingSequence]) throws -> Double? {
        let scored = rows.filter { $0.targetCount > 0 }
        guard !scored.isEmpty else { return nil }
        return try pass.loss(p, batch: scored)
    }

    /// A fresh state at step 0 from `initial` (measures the losses before training).
    public func start(from initial: LoRAParameters) throws -> TrainerState {
        let before = try meanLoss(initial, train) ?? 0
        let evalBefore = try meanLoss(initial, eval)
        return TrainerState(parameters: initial, optimizer: try makeOptimizer(for: initial), step: 0, epoch: 0, batchIndex: 0,
                            best: initial, bestStep: 0, bestEvalLoss: evalBefore, evaluationsWithoutBest: 0,
                            trainLossBefore: before, evalLossBefore: evalBefore, losses: [],
                            evalLosses: evalBefore.map { [(step: 0, loss: $0)] } ?? [], tokens: 0, seconds: 0)
    }

    /// Runs from `state` to the end of the budget, early stopping or cancellation. `checkpoint` is
    /// called after each evaluation with the state (to save it); `progress` after each step.
    public func run(_ initial: TrainerState, cancellation: TrainingCancellation? = nil,
                    checkpoint: ((TrainerState) throws -> Void)? = nil,
                    progress: (TrainingProgress) -> Void = { _ in }) throws -> TrainingResult {
        var s = initial
        let total = totalSteps
        let schedule = self.schedule
        let perEpoch = microBatchesPerEpoch
        var order = TrainingBatches.epoch(s.epoch, rows: train.count, batchSize: config.batchSize, seed: config.seed)
        var stoppedEarly = false, cancelled = false
        func epochDone() -> Double { Double(s.epoch) + Double(s.batchIndex) / Double(perEpoch) }
        func report(loss: Double?, eval: Double?, lr: Double) {
            let rate = s.seconds > 0 ? Double(s.tokens) / s.seconds : 0
            let eta = s.step > 0 ? s.seconds / Double(s.step) * Double(total - s.step) : 0
            progress(TrainingProgress(step: s.step, totalSteps: total, epoch: epochDone(), loss: loss, evalLoss: eval,
                                      learningRate: lr, tokensPerSecond: rate, etaSeconds: max(0, eta)))
        }

        while s.step < total {
            if cancellation?.isCancelled == true { cancelled = true; break }
            // The step's micro-batches, running over into the next epoch; with an epoch budget the
            // run ends with the last epoch even if the step is short.
            var micro: [[TrainingSequence]] = []
            while micro.count < config.gradientAccumulation {
                if s.batchIndex >= order.count {
                    if config.steps == nil && s.epoch + 1 >= config.epochs { break }
                    s.epoch += 1
                    s.batchIndex = 0
                    order = TrainingBatches.epoch(s.epoch, rows: train.count, batchSize: config.batchSize, seed: config.seed)
                }
                micro.append(order[s.batchIndex].map { train[$0] })
                s.batchIndex += 1
            }
            guard !micro.isEmpty else { break }

            let started = Date()
            let lr = schedule.learningRate(base: config.learningRate, afterSteps: s.step)
            var gradients: [[Float]] = []
            var lossSum = 0.0, targets = 0, tokens = 0
            for rows in micro where rows.contains(where: { $0.targetCount > 0 }) {
                let r = try pass.lossAndGradients(s.parameters, batch: rows)
                let flat = Self.flatten(r.gradients)
                // Back to a sum over this micro-batch's targets, added up; divided by the step's targets below.
                let weight = Float(r.targetCount)
                if gradients.isEmpty {
                    gradients = flat.map { $0.map { $0 * weight } }
                } else {
                    for i in gradients.indices {
                        gradients[i].withUnsafeMutableBufferPointer { g in
                            flat[i].withUnsafeBufferPointer { f in for k in 0..<g.count { g[k] += f[k] * weight } }
                        }
                    }
                }
                lossSum += r.loss * Double(r.targetCount)
                targets += r.targetCount
                tokens += rows.reduce(0) { $0 + $1.tokens.count }
            }
            guard targets > 0 else { continue }
            let divisor = Float(targets)
            for i in gradients.indices { gradients[i].withUnsafeMutableBufferPointer { g in for k in 0..<g.count { g[k] /= divisor } } }
            let loss = lossSum / Double(targets)
            if let maxNorm = config.maxGradNorm {
                let norm = GradientClipping.clip(&gradients, maxNorm: maxNorm)
                guard norm.isFinite else { throw TrainingError.diverged(step: s.step + 1, reason: "the gradient norm is \(norm)") }
            }
            guard loss.isFinite else { throw TrainingError.diverged(step: s.step + 1, reason: "the loss is \(loss)") }
            // Out of `s` while updating, so no access to it overlaps another.
            var optimizer = s.optimizer, parameters = s.parameters
            optimizer.beginStep()
            var t = 0
            for i in parameters.modules.indices {
                parameters.modules[i].a.withUnsafeMutableBufferPointer { p in
                    gradients[t].withUnsafeBufferPointer { optimizer.update(tensor: t, parameters: p, gradients: $0, learningRate: lr) }
                }
                parameters.modules[i].b.withUnsafeMutableBufferPointer { p in
                    gradients[t + 1].withUnsafeBufferPointer { optimizer.update(tensor: t + 1, parameters: p, gradients: $0, learningRate: lr) }
                }
                t += 2
                if parameters.modules[i].magnitude != nil {
                    parameters.modules[i].magnitude!.withUnsafeMutableBufferPointer { p in
                        gradients[t].withUnsafeBufferPointer { optimizer.update(tensor: t, parameters: p, gradients: $0, learningRate: lr) }
                    }
                    t += 1
                }
            }
            s.optimizer = optimizer
            s.parameters = parameters
            s.step += 1
            s.losses.append(loss)
            s.tokens += tokens
            s.seconds += Date().timeIntervalSince(started)
            report(loss: loss, eval: nil, lr: lr)

            let last = s.step >= total || (config.steps == nil && s.epoch + 1 >= config.epochs && s.batchIndex >= order.count)
            if !eval.isEmpty && ((config.evalEvery > 0 && s.step % config.evalEvery == 0) || last) {
                let e = try meanLoss(s.parameters, eval)!
                s.evalLosses.append((s.step, e))
                if s.bestEvalLoss.map({ e < $0 }) ?? true {
                    s.bestEvalLoss = e
                    s.best = s.parameters
                    s.bestStep = s.step
                    s.evaluationsWithoutBest = 0
                } else {
                    s.evaluationsWithoutBest += 1
                }
                report(loss: nil, eval: e, lr: lr)
                try checkpoint?(s)
                if let patience = config.patience, s.evaluationsWithoutBest >= patience {
                    stoppedEarly = true
                    break
                }
            }
        }

        let keepBest = !eval.isEmpty && !cancelled
        let final = keepBest ? s.best : s.parameters
        let after = cancelled ? (s.losses.last ?? s.trainLossBefore) : (try meanLoss(final, train) ?? 0)
        return TrainingResult(parameters: final, steps: s.step, bestStep: keepBest ? s.bestStep : s.step, losses: s.losses,
                              evalLosses: s.evalLosses, trainLossBefore: s.trainLossBefore, trainLossAfter: after,
                              evalLossBefore: s.evalLossBefore, evalLossAfter: keepBest ? s.bestEvalLoss : nil,
                              tokensPerSecond: s.seconds > 0 ? Double(s.tokens) / s.seconds : 0,
                              stoppedEarly: stoppedEarly, cancelled: cancelled, state: s)
    }

    /// The gradients in AdamW's tensor order (tensorSizes).
    static func flatten(_ g: LoRAGradients) -> [[Float]] {
        var out: [[Float]] = []
        for i in g.a.indices {
            out.append(g.a[i])
            out.append(g.b[i])
            if let m = g.magnitude[i] { out.append(m) }
        }
        return out
    }
}
