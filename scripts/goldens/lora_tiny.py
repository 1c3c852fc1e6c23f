#!/usr/bin/env python3
"""Golden data for LoRA on a tiny random Llama, from transformers + PEFT (and llama.cpp when it loads).

Writes, under Tests/LlamaTests/Fixtures/:
  lora_tiny_base.gguf        the tiny model as GGUF (F32; Q/K rows permuted as convert_hf_to_gguf does;
                             tied embeddings, so no output.weight; a 256-token byte-level "gpt2"
                             vocabulary with no merges, only so that llama.cpp agrees to load it)
  lora_tiny_plain/           PEFT: r=4, alpha=8, all seven projections, random non-zero lora_B
  lora_tiny_rslora/          PEFT: use_rslora, r=4, alpha=16, rank_pattern {q_proj: 2, down_proj: 6},
                             alpha_pattern {model.layers.1.self_attn.v_proj: 3}, target_modules as a
                             regex over q/k/v/down
  lora_tiny_dora/            PEFT: use_dora, r=4, alpha=8, [q_proj, k_proj, o_proj, up_proj],
                             layers_to_transform [1], magnitudes perturbed away from ‖W‖
  lora_tiny_plain.gguf       the plain adapter as a llama.cpp LoRA GGUF, written here with the gguf
                             package in convert_lora_to_gguf.py's layout (lora_b rows of q/k permuted,
                             adapter.lora.alpha = 8)
  lora_tiny_logits.json      reference logits, see the schema below
  lora_tiny_plain2/          PEFT: r=4, alpha=4, [q_proj, v_proj, up_proj] (an input for the combinations)
  lora_tiny_combined_{cat,linear,svd,ties_svd}/
                             PEFT's add_weighted_adapter of [lora_tiny_plain, lora_tiny_plain2] with weights
                             [0.5, 1.5]: combination_type cat, linear, svd (svd_rank 3), ties_svd (svd_rank 3,
                             density 0.5, majority sign "total"), saved by PEFT
  lora_tiny_combine.json     {"inputs": [dir names], "weights": [0.5, 1.5],
                              "plain2"|"cat"|"linear"|"svd"|"ties_svd": {"logits": [[[256] x 8] x 3]}}

The model: LlamaForCausalLM, hidden 64, 2 layers, 4 heads, 2 KV heads (head_dim 16), ffn 128, vocab 256,
rope_theta 10000, rms eps 1e-5, tie_word_embeddings true, initializer_range 0.1, float32, eval mode,
seed 0.

lora_tiny_logits.json:
  {"config": {...hyperparameters...},
   "sequences": [[8 token ids], [8], [8]],
   "cases": {"base"|"plain"|"rslora"|"dora": {"logits": [[[256 floats] x 8 positions] x 3 sequences],
             "modules": {"model.layers.N.self_attn.q_proj": {"scaling": PEFT's scaling, "rank": r,
                         "dora_scale": [m / ||W + s*B*A||_row per output row, HF row order] (DoRA only)}}}},
   "llama_cpp": {"base": {...same...}, "plain_gguf": {...same...}} or {"error": "why llama.cpp was skipped"}}
Floats are written with 8 significant digits. logits are transformers' fp32 outputs (PEFT's unmerged forward for the adapters); "llama_cpp" holds
llama.cpp's logits (llama-cpp-python, logits_all) for the base and the base + lora_tiny_plain.gguf.

Run: PY=$(scripts/goldens/venv) && "$PY" -m pip install torch transformers peft safetensors && "$PY" scripts/goldens/lora_tiny.py
"""
import json
import os
import shutil

import gguf
import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "Tests", "LlamaTests", "Fixtures")

HP = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=2, vocab_size=256, rope_theta=10000.0, rms_norm_eps=1e-5,
          max_position_embeddings=128, tie_word_embeddings=True, initializer_range=0.1)
SEQUENCES = [[1, 17, 200, 45, 99, 3, 250, 128], [0, 0, 7, 7, 64, 65, 66, 255], [42, 13, 101, 88, 12, 190, 5, 230]]
ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def permute(w, n_head):
    """convert_hf_to_gguf's LlamaModel.permute: rows [heads, 2, hd/2] -> [heads, hd/2, 2]."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def base_model():
    torch.manual_seed(0)
    cfg = LlamaConfig(**HP)
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():  # norms away from 1 so that a wrong norm weight shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
    return model


def write_base_gguf(model, path):
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("lorad tiny test llama")
    w.add_block_count(HP["num_hidden_layers"])
    w.add_context_length(HP["max_position_embeddings"])
    w.add_embedding_length(HP["hidden_size"])
    w.add_feed_forward_length(HP["intermediate_size"])
    w.add_head_count(HP["num_attention_heads"])
    w.add_head_count_kv(HP["num_key_value_heads"])
    w.add_layer_norm_rms_eps(HP["rms_norm_eps"])
    w.add_rope_freq_base(HP["rope_theta"])
    w.add_rope_dimension_count(HP["hidden_size"] // HP["num_attention_heads"])
    w.add_vocab_size(HP["vocab_size"])
    w.add_file_type(0)
    # A byte-level vocabulary only so llama.cpp accepts the file; tests feed token ids directly.
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list([f"<{i:02x}>" for i in range(256)])
    w.add_token_types([1] * 256)
    w.add_token_merges(["<0 0>"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    w.add_add_bos_token(False)
    nh, nkv = HP["num_attention_heads"], HP["num_key_value_heads"]
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(HP["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(f"blk.{i}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], nh))
        w.add_tensor(f"blk.{i}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], nkv))
        w.add_tensor(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        w.add_tensor(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def logits_of(model):
    out = []
    with torch.no_grad():
        for seq in SEQUENCES:
            out.append(model(torch.tensor([seq])).logits[0].float().numpy().tolist())
    return out


def make_adapter(kind, seed):
    model = base_model()
    if kind == "plain":
        cfg = LoraConfig(r=4, lora_alpha=8, target_modules=ALL7, lora_dropout=0.0)
    elif kind == "rslora":
        cfg = LoraConfig(r=4, lora_alpha=16, use_rslora=True, lora_dropout=0.0,
                         target_modules=r"model\.layers\.\d+\.(self_attn\.(q|k|v)_proj|mlp\.down_proj)",
                         rank_pattern={"q_proj": 2, "down_proj": 6},
                         alpha_pattern={"model.layers.1.self_attn.v_proj": 3.0})
    elif kind == "dora":
        cfg = LoraConfig(r=4, lora_alpha=8, use_dora=True, lora_dropout=0.0,
                         target_modules=["q_proj", "k_proj", "o_proj", "up_proj"], layers_to_transform=[1])
    elif kind == "plain2":
        cfg = LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj", "up_proj"], lora_dropout=0.0)
    peft_model = get_peft_model(model, cfg).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # PEFT initializes B to zero: make the adapter do something
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "lora_A" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "lora_magnitude_vector" in name:
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g))
    return peft_model


def module_facts(peft_model):
    """PEFT's own per-module scaling and, for DoRA, m / ||W + s*B*A||_row (HF row order)."""
    facts = {}
    with torch.no_grad():
        for name, mod in peft_model.named_modules():
            if not hasattr(mod, "lora_A") or "default" not in mod.lora_A:
                continue
            path = name.removeprefix("base_model.model.")
            s = mod.scaling["default"]
            entry = {"scaling": float(s), "rank": int(mod.r["default"])}
            if mod.use_dora.get("default"):
                w = mod.get_base_layer().weight
                delta = mod.lora_B["default"].weight @ mod.lora_A["default"].weight
                norm = torch.linalg.norm(w + s * delta, dim=1)
                entry["dora_scale"] = (mod.lora_magnitude_vector["default"].weight / norm).tolist()
            facts[path] = entry
    return facts


def write_plain_gguf_lora(peft_model, path):
    """convert_lora_to_gguf.py's layout: <base>.lora_a [r, in], <base>.lora_b [out, r] (rows permuted for q/k)."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in peft_model.state_dict().items()}
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    w = gguf.GGUFWriter(path, "llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
    for i in range(HP["num_hidden_layers"]):
        for proj, stem in names.items():
            part = "self_attn" if proj in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            key = f"base_model.model.model.layers.{i}.{part}.{proj}"
            a = sd[key + ".lora_A.default.weight"]
            b = sd[key + ".lora_B.default.weight"]
            if proj == "q_proj":
                b = permute(b, HP["num_attention_heads"])
            elif proj == "k_proj":
                b = permute(b, HP["num_key_value_heads"])
            w.add_tensor(f"blk.{i}.{stem}.weight.lora_a", np.ascontiguousarray(a))
            w.add_tensor(f"blk.{i}.{stem}.weight.lora_b", np.ascontiguousarray(b))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_logits(base_path, lora_path):
    import llama_cpp
    kw = dict(model_path=base_path, logits_all=True, n_ctx=64, n_threads=2, verbose=False, seed=0)
    if lora_path:
        kw["lora_path"] = lora_path
    llm = llama_cpp.Llama(**kw)
    out = []
    for seq in SEQUENCES:
        llm.reset()
        llm.eval(seq)
        out.append(np.array(llm.scores[: len(seq)], dtype=np.float32).tolist())
    return out


def normalize_config(path):
    """PEFT writes target_modules from a Python set, in hash order: sort it so reruns give the same file."""
    with open(path) as f:
        cfg = json.load(f)
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def round_floats(x):
    if isinstance(x, float):
        return float(f"{x:.8g}")
    if isinstance(x, list):
        return [round_floats(v) for v in x]
    if isinstance(x, dict):
        return {k: round_floats(v) for k, v in x.items()}
    return x


def save_adapter(pm, d, adapter="default"):
    shutil.rmtree(d, ignore_errors=True)
    if adapter == "default":
        pm.save_pretrained(d)
    else:  # PEFT saves a non-default adapter into a subfolder named after it
        tmp = d + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        pm.save_pretrained(tmp, selected_adapters=[adapter])
        shutil.move(os.path.join(tmp, adapter), d)
        shutil.rmtree(tmp)
    # Drop the README PEFT writes: it is boilerplate, not data.
    if os.path.exists(os.path.join(d, "README.md")):
        os.remove(os.path.join(d, "README.md"))
    normalize_config(os.path.join(d, "adapter_config.json"))


def combinations():
    """PEFT's add_weighted_adapter (cat, linear, svd rank 3) of plain and plain2 with weights 0.5 and 1.5."""
    from peft import PeftModel
    pm = make_adapter("plain2", 4)
    save_adapter(pm, os.path.join(FIX, "lora_tiny_plain2"))
    out = {"inputs": ["lora_tiny_plain", "lora_tiny_plain2"], "weights": [0.5, 1.5],
           "plain2": {"logits": logits_of(pm)}}
    m = PeftModel.from_pretrained(base_model(), os.path.join(FIX, "lora_tiny_plain"), adapter_name="plain")
    m.load_adapter(os.path.join(FIX, "lora_tiny_plain2"), adapter_name="plain2")
    for ctype in ["cat", "linear", "svd", "ties_svd"]:
        extra = {"svd_rank": 3} if ctype == "svd" else {"svd_rank": 3, "density": 0.5} if ctype == "ties_svd" else {}
        m.add_weighted_adapter(["plain", "plain2"], [0.5, 1.5], adapter_name=ctype, combination_type=ctype, **extra)
        m.set_adapter(ctype)
        m.eval()
        out[ctype] = {"logits": logits_of(m)}
        save_adapter(m, os.path.join(FIX, f"lora_tiny_combined_{ctype}"), adapter=ctype)
    with open(os.path.join(FIX, "lora_tiny_combine.json"), "w") as f:
        f.write(json.dumps(round_floats(out), separators=(",", ":")))
    for k in ["plain2", "cat", "linear", "svd", "ties_svd"]:
        print("combine", k, np.array(out[k]["logits"]).shape)


def main():
    torch.set_num_threads(2)
    base = base_model()
    base_path = os.path.join(FIX, "lora_tiny_base.gguf")
    write_base_gguf(base, base_path)
    cases = {"base": {"logits": logits_of(base)}}
    for seed, kind in enumerate(["plain", "rslora", "dora"], start=1):
        pm = make_adapter(kind, seed)
        cases[kind] = {"logits": logits_of(pm), "modules": module_facts(pm)}
        save_adapter(pm, os.path.join(FIX, f"lora_tiny_{kind}"))
        if kind == "plain":
            write_plain_gguf_lora(pm, os.path.join(FIX, "lora_tiny_plain.gguf"))
    result = {"config": HP, "sequences": SEQUENCES, "cases": cases}
    try:
        result["llama_cpp"] = {"base": {"logits": llama_cpp_logits(base_path, None)},
                               "plain_gguf": {"logits": llama_cpp_logits(base_path, os.path.join(FIX, "lora_tiny_plain.gguf"))}}
    except Exception as e:  # recorded, so the tests know why there is nothing to compare
        result["llama_cpp"] = {"error": f"{type(e).__name__}: {e}"}
    with open(os.path.join(FIX, "lora_tiny_logits.json"), "w") as f:
        # 8 significant digits: float32 resolution, and a fixture a third the size of repr().
        f.write(json.dumps(round_floats(result), separators=(",", ":")))
    combinations()
    for k, v in cases.items():
        a = np.array(v["logits"])
        print(k, a.shape, float(np.abs(a - np.array(cases["base"]["logits"])).max()))
    if "error" in result["llama_cpp"]:
        print("llama.cpp:", result["llama_cpp"]["error"])
    else:
        for k, v in result["llama_cpp"].items():
            ref = cases["base" if k == "base" else "plain"]["logits"]
            print("llama.cpp", k, float(np.abs(np.array(v["logits"]) - np.array(ref)).max()))


if __name__ == "__main__":
    main()
