// The forward pass's copy of a LoRA module: A (rank × in) and B transposed (rank × out) in the
// narrowest element type that holds every value exactly: f16, else bf16, else f32.
//
// Why: applying an adapter is memory-bound. A rank-8 adapter on all seven projections of SmolLM2 is
// 2.4 M parameters, 9.8 MB in f32, read in full for every token: a tenth of the base model's
// traffic for one stream, and more than the base for a batch of 16 sequences on 16 adapters. Adapters
// are trained and shipped in f16 or bf16 (PEFT saves the dtype it trained in; llama.cpp's converter
// writes f16), so their values fit 16 bits exactly and halving the bytes changes no result. An adapter
// whose values need f32 (random test adapters, combinations) keeps f32: never a silent rounding.
// B is stored transposed so that adding B·t to an output row is rank axpys over contiguous memory
// instead of one rank-long dot product per output element.

import Kernels

public struct LoRAPacked: Sendable, Equatable {
    /// The element type of the copy (the LoRA kernel's own enum).
    public let element: LoRAElement
    /// f16/bf16 bits of A (rank × in) and Bᵀ (rank × out); empty for f32.
    public let a16: [UInt16]
    public let bt16: [UInt16]
    /// f32 Bᵀ (rank × out) when `element` is f32 (A is then the module's own `a`); empty otherwise.
    public let bt32: [Float]

    public var byteCount: Int { 2 * (a16.count + bt16.count) + 4 * bt32.count }

    init(a: [Float], b: [Float], rank: Int, outFeatures: Int) {
        var bt = [Float](repeating: 0, count: b.count)
        for o in 0..<outFeatures {
            for k in 0..<rank { bt[k * outFeatures + o] = b[o * rank + k] }
        }
        if let a16 = Self.exactF16(a), let bt16 = Self.exactF16(bt) {
            element = .f16
            self.a16 = a16
            self.bt16 = bt16
            bt32 = []
        } else if let a16 = Self.exactBF16(a), let bt16 = Self.exactBF16(bt) {
            element = .bf16
            self.a16 = a16
            self.bt16 = bt16
            bt32 = []
        } else {
            element = .f32
            a16 = []
            bt16 = []
            bt32 = bt
        }
    }

    /// The f16 bits of every value, or nil when one of them is not exactly an f16.
    static func exactF16(_ values: [Float]) -> [UInt16]? {
        var out = [UInt16](repeating: 0, count: values.count)
        for (i, v) in values.enumerated() {
            let h = f32ToF16(v)
            guard f16ToF32(h) == v || (v.isNaN && f16ToF32(h).isNaN) else { return nil }
            out[i] = h
        }
        return out
    }

    /// The bf16 bits (the top half of the f32), or nil when a value has bits in its lower half.
    static func exactBF16(_ values: [Float]) -> [UInt16]? {
        var out = [UInt16](repeating: 0, count: values.count)
        for (i, v) in values.enumerated() {
            let bits = v.bitPattern
            guard bits & 0xffff == 0 else { return nil }
            out[i] = UInt16(bits >> 16)
        }
        return out
    }
}
