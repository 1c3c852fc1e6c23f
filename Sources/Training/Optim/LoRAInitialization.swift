// A new adapter's starting weights as PEFT makes them (tuners/lora/layer.py `reset_lora_parameters`,
// init_lora_weights=True): A (shape [r, in], a Linear's weight) from torch.nn.init.kaiming_uniform_
// with a = √5, B (shape [out, r]) zero, so the adapter starts as the identity on the base.
// kaiming_uniform_ with a = √5 on fan_in = in: gain = √(2 / (1 + a²)) = √(1/3), bound = gain·√3/√fan_in
// = 1/√in, values uniform in [−bound, bound). The numbers come from SplitMix64 seeded by the caller
// (deterministic per seed; torch's generator is not reproduced, only the distribution).

import Kernels

public enum LoRAInitialization {
    /// kaiming_uniform_(a = √5)'s bound for a weight with `fanIn` inputs: 1/√fanIn.
    public static func kaimingUniformBound(fanIn: Int) -> Float { Float(1 / Double(fanIn).squareRoot()) }

    /// A's values, row-major [rank, inFeatures].
    public static func loraA(rank: Int, inFeatures: Int, rng: inout SplitMix64) -> [Float] {
        precondition(rank > 0 && inFeatures > 0)
        let bound = Double(kaimingUniformBound(fanIn: inFeatures))
        return (0..<(rank * inFeatures)).map { _ in Float((2 * rng.nextUnit() - 1) * bound) }
    }

    /// B's values, row-major [outFeatures, rank]: zero.
    public static func loraB(outFeatures: Int, rank: Int) -> [Float] {
        [Float](repeating: 0, count: outFeatures * rank)
    }
}
