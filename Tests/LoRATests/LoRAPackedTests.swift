// The forward pass's packed copy of a module: f16 when every value is an f16, bf16 when every value
// is a bf16, f32 otherwise, B transposed, and never a changed value.

import Testing
import Kernels
@testable import LoRA

@Suite struct LoRAPackedTests {
    func module(_ transform: (Float) -> Float) -> LoRAModule {
        var rng = SplitMix64(seed: 7)
        let a = (0..<(3 * 10)).map { _ in transform(rng.nextUnitFloat() - 0.5) }
        let b = (0..<(6 * 3)).map { _ in transform(rng.nextUnitFloat() - 0.5) }
        return LoRAModule(rank: 3, inFeatures: 10, outFeatures: 6, a: a, b: b, scale: 1)
    }

    func unpacked(_ m: LoRAModule) -> (a: [Float], bt: [Float]) {
        switch m.packed.element {
        case .f32: return (m.a, m.packed.bt32)
        case .f16: return (m.packed.a16.map(f16ToF32), m.packed.bt16.map(f16ToF32))
        case .bf16: return (m.packed.a16.map(bf16ToF32), m.packed.bt16.map(bf16ToF32))
        }
    }

    @Test func picksTheNarrowestExactType() {
        let f16 = module { f16ToF32(f32ToF16($0)) }
        #expect(f16.packed.element == .f16)
        // 2^-20 is a bf16 but below f16's smallest subnormal: bf16 it must be.
        let bf16 = module { Float(bitPattern: $0.bitPattern & 0xffff_0000) * 0x1p-20 }
        #expect(bf16.packed.element == .bf16)
        let f32 = module { $0 + 1e-7 }
        #expect(f32.packed.element == .f32)
        #expect(f32.packed.a16.isEmpty && f32.packed.bt16.isEmpty)
        for m in [f16, bf16, f32] {
            let (a, bt) = unpacked(m)
            #expect(a == m.a, "\(m.packed.element): A changed")
            for o in 0..<m.outFeatures {
                for k in 0..<m.rank { #expect(bt[k * m.outFeatures + o] == m.b[o * m.rank + k]) }
            }
        }
    }
}
