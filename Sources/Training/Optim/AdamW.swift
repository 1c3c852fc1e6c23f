// AdamW over flat f32 tensors, computed as torch.optim.AdamW computes it on a CPU (its single-tensor
// path, torch/optim/adam.py `_single_tensor_adam` with decoupled weight decay, no amsgrad):
//   p ← p·(1 − lr·wd)
//   m ← m + (1 − β1)·(g − m)                  (exp_avg.lerp_(grad, 1 − β1))
//   v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
// with the bias corrections in double and every tensor operation in f32, as torch does (a Python
// scalar meets an f32 tensor as an f32). The golden test (scripts/goldens/train_optim.py) holds
// this to torch within 1e-6 relative.
//
// Parameter groups carry their own learning-rate multiplier and weight decay (LoRA+: B's group
// trains with lr·ratio); the schedule's learning rate is passed to each step. State (step count,
// m and v per tensor) serialises bit-exactly (AdamW+State.swift), so a resumed run continues exactly.

/// A set of tensors that share a learning-rate multiplier and a weight decay.
public struct ParameterGroup: Sendable, Equatable {
    public var name: String
    /// Indices of the group's tensors in the optimiser's tensor list.
    public var tensors: [Int]
    /// The group's learning rate is the step's learning rate times this (LoRA+ ratio for B; 1 else).
    public var learningRateScale: Double
    public var weightDecay: Double

    public init(name: String, tensors: [Int], learningRateScale: Double = 1, weightDecay: Double) {
        self.name = name
        self.tensors = tensors
        self.learningRateScale = learningRateScale
        self.weightDecay = weightDecay
    }
}

public struct AdamWHyperparameters: Sendable, Equatable {
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double

    /// torch's defaults.
    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }
}

public struct AdamW: Sendable {
    public let hyperparameters: AdamWHyperparameters
    public let groups: [ParameterGroup]
    /// Element count of each tensor, by index.
    public let tensorSizes: [Int]
    /// Steps taken (torch's `state["step"]`): the next step is `step + 1`.
    public internal(set) var step: Int
    /// First and second moments per tensor.
    public internal(set) var m: [[Float]]
    public internal(set) var v: [[Float]]
    /// Each tensor's group.
    let groupOf: [Int]

    /// Every tensor must belong to exactly one group.
    public init(tensorSizes: [Int], groups: [ParameterGroup], hyperparameters: AdamWHyperparameters = .init()) throws(TrainingError) {
        let h = hyperparameters
        guard h.beta1 >= 0, h.beta1 < 1 else { throw .badSetting(name: "beta1", value: "\(h.beta1)", expected: "a number in [0, 1)") }
        guard h.beta2 >= 0, h.beta2 < 1 else { throw .badSetting(name: "beta2", value: "\(h.beta2)", expected: "a number in [0, 1)") }
        guard h.epsilon >= 0 else { throw .badSetting(name: "epsilon", value: "\(h.epsilon)", expected: "a number ≥ 0") }
        var groupOf = [Int](repeating: -1, count: tensorSizes.count)
        for (g, group) in groups.enumerated() {
            guard group.weightDecay >= 0, group.weightDecay.isFinite else {
                throw .badSetting(name: "weight_decay", value: "\(group.weightDecay)", expected: "a number ≥ 0")
            }
            guard group.learningRateScale > 0, group.learningRateScale.isFinite else {
                throw .badSetting(name: "\(group.name) learning-rate scale", value: "\(group.learningRateScale)", expected: "a positive number")
            }
            for t in group.tensors {
                guard tensorSizes.indices.contains(t), groupOf[t] < 0 else {
                    throw .badSetting(name: "parameter group \(group.name)", value: "tensor \(t)",
                                      expected: "each of the \(tensorSizes.count) tensors in exactly one group")
                }
                groupOf[t] = g
            }
        }
        if let orphan = groupOf.firstIndex(of: -1) {
            throw .badSetting(name: "parameter groups", value: "tensor \(orphan) in none", expected: "each tensor in exactly one group")
        }
        self.hyperparameters = h
        self.groups = groups
        self.tensorSizes = tensorSizes
        self.groupOf = groupOf
        step = 0
        m = tensorSizes.map { [Float](repeating: 0, count: $0) }
        v = tensorSizes.map { [Float](repeating: 0, count: $0) }
    }

    /// One step over every tensor: `parameters[i]` is updated from `gradients[i]` at
    /// `learningRate`·(its group's scale).
    public mutating func step(_ parameters: inout [[Float]], gradients: [[Float]], learningRate: Double) {
        precondition(parameters.count == tensorSizes.count && gradients.count == tensorSizes.count)
        beginStep()
        for i in tensorSizes.indices {
            parameters[i].withUnsafeMutableBufferPointer { p in
                gradients[i].withUnsafeBufferPointer { g in update(tensor: i, parameters: p, gradients: g, learningRate: learningRate) }
            }
        }
    }

    /// The piecewise form of `step`, for parameters that live elsewhere (an adapter's modules):
    /// `beginStep()` once, then `update` each tensor once.
    public mutating func beginStep() { step += 1 }

    public mutating func update(tensor i: Int, parameters p: UnsafeMutableBufferPointer<Float>, gradients g: UnsafeBufferPointer<Float>,
                                learningRate: Double) {
        precondition(step > 0, "beginStep() first")
        precondition(p.count == tensorSizes[i] && g.count == tensorSizes[i], "tensor \(i): expected \(tensorSizes[i]) elements")
        let group = groups[groupOf[i]]
        let h = hyperparameters
        let lr = learningRate * group.learningRateScale
        let decay = Float(1 - lr * group.weightDecay)
        let oneMinusBeta1 = Float(1 - h.beta1), beta2 = Float(h.beta2), oneMinusBeta2 = Float(1 - h.beta2)
        let correction1 = 1 - pow(h.beta1, Double(step))
        let correction2Root = Float((1 - pow(h.beta2, Double(step))).squareRoot())
        let stepSize = Float(lr / correction1)
        let epsilon = Float(h.epsilon)
        let applyDecay = group.weightDecay != 0
        let smallWeight = oneMinusBeta1 < 0.5
        m[i].withUnsafeMutableBufferPointer { m in
            v[i].withUnsafeMutableBufferPointer { v in
                for k in 0..<p.count {
                    if applyDecay { p[k] *= decay }
                    let gk = g[k]
                    // torch's lerp: the form with the better rounding for the weight's size.
                    m[k] = smallWeight ? m[k] + oneMinusBeta1 * (gk - m[k]) : gk - (gk - m[k]) * (1 - oneMinusBeta1)
                    v[k] = v[k] * beta2 + oneMinusBeta2 * (gk * gk)
                    let denominator = v[k].squareRoot() / correction2Root + epsilon
                    p[k] += -stepSize * (m[k] / denominator)
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
