import Testing
@testable import LoRA

@Suite struct LoRATargetTests {
    @Test(arguments: LoRATarget.allCases)
    func namesRoundTrip(_ t: LoRATarget) {
        #expect(LoRATarget.parseHF(t.hfPath(layer: 7))! == (7, t))
        #expect(LoRATarget.parseHF("base_model.model." + t.hfPath(layer: 12))! == (12, t))
        #expect(LoRATarget.parseGGUF(t.ggufTensor(layer: 3))! == (3, t))
    }

    @Test func rejectsOtherNames() {
        for bad in ["model.layers.x.self_attn.q_proj", "model.layers.1.mlp.q_proj", "model.layers.1.self_attn.gate_proj",
                    "model.embed_tokens", "lm_head", "model.layers.1.self_attn.q_proj.extra", "model.layers.-1.mlp.up_proj"] {
            #expect(LoRATarget.parseHF(bad) == nil, "\(bad)")
        }
        for bad in ["blk.0.attn_norm.weight", "token_embd.weight", "blk.a.attn_q.weight", "blk.0.attn_q.bias"] {
            #expect(LoRATarget.parseGGUF(bad) == nil, "\(bad)")
        }
    }
}
