// Learning-rate schedules as transformers defines them (optimization.py): a multiplier of the base
// learning rate after `step` optimiser steps, used for step `step + 1`. As with torch's LambdaLR, the
// first step runs at multiplier(0), which is 0 when there is warmup.
//   constant:  1 (get_constant_schedule_with_warmup: step/warmup during warmup)
//   linear:    step/warmup, then max(0, (total − step)/(total − warmup))
//   cosine:    step/warmup, then max(0, ½(1 + cos(π·progress))), progress = (step − warmup)/(total − warmup)
// (get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup with num_cycles 0.5; each
// denominator is at least 1, as there.)

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum LearningRateSchedule: Sendable, Equatable {
    case constant(warmupSteps: Int)
    case linear(warmupSteps: Int, totalSteps: Int)
    case cosine(warmupSteps: Int, totalSteps: Int)

    public var warmupSteps: Int {
        switch self {
        case .constant(let w), .linear(let w, _), .cosine(let w, _): return w
        }
    }

    /// The multiplier after `step` completed steps (the learning rate of step `step + 1`).
    public func multiplier(afterSteps step: Int) -> Double {
        let warmup = warmupSteps
        if step < warmup { return Double(step) / Double(max(1, warmup)) }
        switch self {
        case .constant:
            return 1
        case .linear(_, let total):
            return max(0, Double(total - step) / Double(max(1, total - warmup)))
        case .cosine(_, let total):
            let progress = Double(step - warmup) / Double(max(1, total - warmup))
            return max(0, 0.5 * (1 + cos(Double.pi * 2 * 0.5 * progress)))
        }
    }

    /// The learning rate of step `step + 1` for base rate `base`.
    public func learningRate(base: Double, afterSteps step: Int) -> Double { base * multiplier(afterSteps: step) }
}
