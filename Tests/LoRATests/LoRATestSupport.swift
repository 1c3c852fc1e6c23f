// Helpers for the LoRA tests: a small synthetic base, PEFT directories and GGUF LoRA files built in
// code, and the location of the golden fixtures (written by scripts/goldens/lora_*.py into
// Tests/LlamaTests/Fixtures, where the forward-pass tests also read them; found here through
// #filePath so they are not duplicated into this target's bundle).

import Foundation
import Kernels
import ModelFormats
import Testing
@testable import LoRA

/// Deterministic pseudo-random floats in [-1, 1) (a 64-bit LCG; quality is irrelevant here).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int64(bitPattern: state >> 11) % (1 << 24)) / Float(1 << 24) * 2 - 1
    }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
}

/// A base of 2 layers, 2 heads, 1 KV head, head_dim 4, n_embd 8, n_ff 12; weights from a fixed formula.
func syntheticBase(layers: Int = 2) -> BaseModelInfo {
    BaseModelInfo(layerCount: layers, headCount: 2, headCountKV: 1, embeddingLength: 8, feedForwardLength: 12) { l, t, r in
        let n = t == .down ? 12 : 8
        return (0..<n).map { c in Float(((l * 7 + t.order * 5 + r * 3 + c) % 11) - 5) * 0.1 }
    }
}

func tempDir() throws -> String {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("lora-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// A PEFT directory: `config` merged over defaults (r 2, alpha 4, target q_proj/v_proj), and tensors.
struct PEFTBuilder {
    var config: [String: Any] = ["peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"]]
    var tensors: [(String, [Int], [Float], SafetensorsDType)] = []

    /// Adds lora_A [r, in] and lora_B [out, r] for the module with random values.
    mutating func module(_ layer: Int, _ t: LoRATarget, rank: Int = 2, base: BaseModelInfo = syntheticBase(), seed: UInt64 = 1,
                         dtype: SafetensorsDType = .f32) {
        var rng = TestRandom(seed: seed &+ UInt64(layer * 10 + t.order))
        let (n, m) = base.shape(t)
        let p = "base_model.model." + t.hfPath(layer: layer)
        tensors.append((p + ".lora_A.weight", [rank, n], rng.floats(rank * n), dtype))
        tensors.append((p + ".lora_B.weight", [m, rank], rng.floats(m * rank), dtype))
    }

    mutating func remove(_ suffix: String) { tensors.removeAll { $0.0.hasSuffix(suffix) } }

    func write() throws -> String {
        let dir = try tempDir()
        let json = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])
        try json.write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
        var w = SafetensorsWriter(metadata: [("format", "pt")])
        for (name, shape, values, dtype) in tensors {
            try w.addTensor(name: name, shape: shape, floats: values, dtype: dtype)
        }
        try w.write(to: dir + "/adapter_model.safetensors")
        return dir
    }
}

/// The error loading `path` gives, or nil when it loads.
func loadError(_ path: String, base: BaseModelInfo = syntheticBase(), maxRank: Int = 256) -> LoRAError? {
    do {
        _ = try LoRAAdapter.load(path: path, name: "t", base: base, options: LoRALoadOptions(maxRank: maxRank))
        return nil
    } catch let e as LoRAError {
        return e
    } catch {
        Issue.record("unexpected error type \(type(of: error)): \(error)")
        return nil
    }
}

enum Fixtures {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("LlamaTests/Fixtures").path

    static func path(_ name: String) -> String { dir + "/" + name }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func tinyBase() throws -> BaseModelInfo {
        try BaseModelInfo(gguf: GGUFFile(path: path("lora_tiny_base.gguf")))
    }
}

/// y = W·x + s·B·(A·x) for one module, in double, W rows from `baseRow`; the plain reference.
func referenceApply(_ m: LoRAModule, x: [Float], baseRow: (Int) -> [Float]) -> [Double] {
    var ax = [Double](repeating: 0, count: m.rank)
    for k in 0..<m.rank { for c in 0..<m.inFeatures { ax[k] += Double(m.a[k * m.inFeatures + c]) * Double(x[c]) } }
    return (0..<m.outFeatures).map { r in
        let w = baseRow(r)
        var y = 0.0
        for c in 0..<m.inFeatures { y += Double(w[c]) * Double(x[c]) }
        var d = 0.0
        for k in 0..<m.rank { d += Double(m.b[r * m.rank + k]) * ax[k] }
        y += Double(m.scale) * d
        return m.doraScale.map { Double($0[r]) * y } ?? y
    }
}
