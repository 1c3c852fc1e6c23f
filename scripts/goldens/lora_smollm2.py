#!/usr/bin/env python3
"""Golden data for LoRA on the real SmolLM2-135M-Instruct, from transformers + PEFT and from llama.cpp.

The Q4_1 GGUF is dequantized (gguf package) into a Hugging Face LlamaForCausalLM in float32, with the
Q/K row permutation of convert_hf_to_gguf undone. A small PEFT adapter is made for it (seed 0):
r=4, lora_alpha=8, target_modules [q_proj, k_proj, v_proj, o_proj, down_proj], layers_to_transform
[3, 14, 25], lora_A and lora_B random and non-zero, every value rounded to bfloat16 so that the file
can be stored as BF16 with no loss while transformers computes with the same values in float32.

Writes, under Tests/LlamaTests/Fixtures/:
  lora_smollm2_peft/       adapter_config.json + adapter_model.safetensors (BF16 tensors)
  lora_smollm2.gguf        the same adapter as a llama.cpp LoRA GGUF (F32; lora_b rows of q/k permuted
                           as convert_lora_to_gguf.py does; adapter.lora.alpha = 8), written with gguf
  lora_smollm2_peft.json   {"model": file name, "adapter": {"r", "lora_alpha", "target_modules", "layers"},
                            "prompts": [{"text", "ids" (llama.cpp tokenization, no BOS, special tokens parsed),
                              "transformers": {"base": CASE, "peft": CASE},
                              "llama_cpp_lora": CASE}]}
                           CASE = {"greedy": [20 token ids],
                                   "top": [[[id, logprob] x K] for every position of ids + greedy[:-1]],
                                   "margin": [top1 - top2 logprob at each greedy step]}
                           K = 5 for transformers (fp32), 10 for llama.cpp (Q4_1 base + the GGUF LoRA via
                           lora_path; its own greedy continuation). logprobs are log-softmax of the logits.
Run: PY=$(scripts/goldens/venv) && "$PY" -m pip install torch transformers peft safetensors && \
     "$PY" scripts/goldens/lora_smollm2.py [models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import json
import os
import shutil
import sys

import gguf
import llama_cpp
import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
FIX = os.path.join(ROOT, "Tests", "LlamaTests", "Fixtures")
SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
PROMPTS = ["What is the capital of France?", "Write a haiku about the sea."]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"]
LAYERS = [3, 14, 25]
STEPS = 20


def chat(user):
    return SYSTEM + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n"


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_model(path):
    r = gguf.GGUFReader(path)

    def kv(key):
        f = r.fields[key]
        return f.parts[f.data[0]].tolist()[0]

    def t(name):
        x = r.get_tensor(list(r.tensors).index(next(tt for tt in r.tensors if tt.name == name)))
        a = gguf.quants.dequantize(x.data, x.tensor_type)
        return torch.tensor(np.asarray(a, dtype=np.float32).reshape([int(d) for d in reversed(x.shape)]))

    nh, nkv = kv("llama.attention.head_count"), kv("llama.attention.head_count_kv")
    cfg = LlamaConfig(hidden_size=kv("llama.embedding_length"), intermediate_size=kv("llama.feed_forward_length"),
                      num_hidden_layers=kv("llama.block_count"), num_attention_heads=nh, num_key_value_heads=nkv,
                      vocab_size=kv("llama.vocab_size"), rope_theta=kv("llama.rope.freq_base"),
                      rms_norm_eps=kv("llama.attention.layer_norm_rms_epsilon"),
                      max_position_embeddings=kv("llama.context_length"), tie_word_embeddings=True)
    sd = {"model.embed_tokens.weight": t("token_embd.weight"), "model.norm.weight": t("output_norm.weight")}
    for i in range(cfg.num_hidden_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        sd[p + "input_layernorm.weight"] = t(b + "attn_norm.weight")
        sd[p + "post_attention_layernorm.weight"] = t(b + "ffn_norm.weight")
        sd[p + "self_attn.q_proj.weight"] = unpermute(t(b + "attn_q.weight"), nh)
        sd[p + "self_attn.k_proj.weight"] = unpermute(t(b + "attn_k.weight"), nkv)
        sd[p + "self_attn.v_proj.weight"] = t(b + "attn_v.weight")
        sd[p + "self_attn.o_proj.weight"] = t(b + "attn_output.weight")
        sd[p + "mlp.gate_proj.weight"] = t(b + "ffn_gate.weight")
        sd[p + "mlp.up_proj.weight"] = t(b + "ffn_up.weight")
        sd[p + "mlp.down_proj.weight"] = t(b + "ffn_down.weight")
    model = LlamaForCausalLM(cfg)
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    model.load_state_dict(sd, strict=True)
    return model.float().eval(), nh, nkv


def bf16_round(x):
    return x.to(torch.bfloat16).to(torch.float32)


def make_adapter(base):
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, layers_to_transform=LAYERS, lora_dropout=0.0)
    pm = get_peft_model(base, cfg).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_A" in name:
                p.copy_(bf16_round(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5))
            elif "lora_B" in name:
                p.copy_(bf16_round(0.08 * torch.randn(p.shape, generator=g)))
    return pm


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def top(row, k):
    lp = log_softmax(row)
    idx = np.argsort(-lp, kind="stable")[:k]
    return [[int(i), float(f"{lp[i]:.7g}")] for i in idx], float(lp[idx[0]] - lp[idx[1]])


def hf_case(model, ids, k=5):
    seq = list(ids)
    with torch.no_grad():
        for _ in range(STEPS):
            logits = model(torch.tensor([seq])).logits[0, -1]
            seq.append(int(torch.argmax(logits)))
        logits = model(torch.tensor([seq[:-1]])).logits[0].float().numpy()
    tops = [top(row, k) for row in logits]
    greedy = seq[len(ids):]
    return {"greedy": greedy, "top": [t for t, _ in tops], "margin": [m for _, m in tops[len(ids) - 1:]]}


def llama_case(llm, ids, k=10):
    llm.reset()
    seq = list(ids)
    llm.eval(seq)
    for _ in range(STEPS):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        seq.append(nxt)
        llm.eval([nxt])
    llm.reset()
    llm.eval(seq[:-1])
    tops = [top(llm.scores[i], k) for i in range(len(seq) - 1)]
    return {"greedy": seq[len(ids):], "top": [t for t, _ in tops], "margin": [m for _, m in tops[len(ids) - 1:]]}


def write_gguf_lora(sd, nh, nkv, path):
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output", "down_proj": "ffn_down"}
    w = gguf.GGUFWriter(path, "llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
    for i in LAYERS:
        for proj, stem in names.items():
            part = "mlp" if proj == "down_proj" else "self_attn"
            key = f"base_model.model.model.layers.{i}.{part}.{proj}"
            a = sd[key + ".lora_A.weight"].float().numpy()
            b = sd[key + ".lora_B.weight"].float().numpy()
            if proj == "q_proj":
                b = permute(b, nh)
            elif proj == "k_proj":
                b = permute(b, nkv)
            w.add_tensor(f"blk.{i}.{stem}.weight.lora_a", np.ascontiguousarray(a))
            w.add_tensor(f"blk.{i}.{stem}.weight.lora_b", np.ascontiguousarray(b))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    vocab = llama_cpp.Llama(model_path=MODEL, vocab_only=True, verbose=False)
    ids = [vocab.tokenize(chat(p).encode(), add_bos=False, special=True) for p in PROMPTS]
    del vocab

    base, nh, nkv = hf_model(MODEL)
    base_cases = [hf_case(base, x) for x in ids]
    pm = make_adapter(base)
    peft_cases = [hf_case(pm, x) for x in ids]

    d = os.path.join(FIX, "lora_smollm2_peft")
    shutil.rmtree(d, ignore_errors=True)
    pm.save_pretrained(d)
    if os.path.exists(os.path.join(d, "README.md")):
        os.remove(os.path.join(d, "README.md"))
    st = os.path.join(d, "adapter_model.safetensors")
    sd = load_file(st)
    # Lossless: every value was rounded to bfloat16 before the reference run.
    save_file({k: v.to(torch.bfloat16) for k, v in sorted(sd.items())}, st, metadata={"format": "pt"})
    with open(os.path.join(d, "adapter_config.json")) as f:
        cfg = json.load(f)
    cfg["target_modules"] = sorted(cfg["target_modules"])
    cfg["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct (dequantized from SmolLM2-135M-Instruct.Q4_1.gguf)"
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")

    gguf_path = os.path.join(FIX, "lora_smollm2.gguf")
    write_gguf_lora(sd, nh, nkv, gguf_path)
    llm = llama_cpp.Llama(model_path=MODEL, lora_path=gguf_path, n_ctx=512, n_batch=512, n_threads=2,
                          logits_all=True, verbose=False)
    llama_cases = [llama_case(llm, x) for x in ids]

    out = {"model": os.path.basename(MODEL),
           "adapter": {"r": 4, "lora_alpha": 8, "target_modules": TARGETS, "layers": LAYERS},
           "prompts": [{"text": chat(p), "ids": x, "transformers": {"base": b, "peft": q}, "llama_cpp_lora": l}
                       for p, x, b, q, l in zip(PROMPTS, ids, base_cases, peft_cases, llama_cases)]}
    with open(os.path.join(FIX, "lora_smollm2_peft.json"), "w") as f:
        f.write(json.dumps(out, separators=(",", ":")))
    detok = llama_cpp.Llama(model_path=MODEL, vocab_only=True, verbose=False)
    for p, b, q, l in zip(PROMPTS, base_cases, peft_cases, llama_cases):
        print(repr(p))
        print("  base :", repr(detok.detokenize(b["greedy"]).decode(errors="replace")))
        print("  peft :", repr(detok.detokenize(q["greedy"]).decode(errors="replace")), "min margin", min(q["margin"]))
        print("  llama:", repr(detok.detokenize(l["greedy"]).decode(errors="replace")), "min margin", min(l["margin"]))


if __name__ == "__main__":
    main()
