// The sampler's seeded random generator: xoshiro256** seeded through SplitMix64.
//
// Algorithms by Blackman and Vigna (https://prng.di.unimi.it/xoshiro256starstar.c and
// splitmix64.c), as they recommend: SplitMix64 expands a 64-bit seed into the 256-bit state so
// that nearby seeds give unrelated streams. llama.cpp uses std::mt19937 instead; bit-for-bit parity
// with it is not a goal (FORMATS.md §7.1), only "same seed, same logits -> same tokens" within lorad.

/// xoshiro256**: small, fast, and good enough for drawing tokens. Not for cryptography.
public struct SamplerRandom: RandomNumberGenerator, Sendable, Equatable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        func splitMix() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
        // SplitMix64 is a bijection of its counter, so four outputs are never all zero
        // (the one state xoshiro must avoid).
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits (the standard `(x >> 11) * 2^-53` mapping).
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }
}
