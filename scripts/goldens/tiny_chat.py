#!/usr/bin/env python3
"""A tiny chat model and adapters for the engine and daemon tests (random weights, real tokenizer).

Writes, under Tests/Fixtures/tiny_chat/:
  model.gguf              a 2-layer Llama (hidden 64, 4 heads, 2 KV heads, FFN 128, context 512, F32,
                          tied embeddings) with a byte-level BPE vocabulary in GPT-2's byte-to-unicode
                          spelling (all 256 bytes, a few merges, <|endoftext|> <|im_start|> <|im_end|>),
                          pre-tokenizer "smollm" and a ChatML template, so text and chat requests work
                          end to end in milliseconds. The text it writes is noise; tests compare tokens.
  adapters/alpha/         PEFT LoRA (r=4, alpha=8) on q_proj, v_proj, down_proj
  adapters/beta.gguf      llama.cpp LoRA GGUF (r=2, alpha=2) on attn_k, ffn_up

Numbers come from numpy's default_rng with fixed seeds, so the files are identical on every run.
Run: PY=$(scripts/goldens/venv) && "$PY" scripts/goldens/tiny_chat.py
"""
import json
import os
import struct

import gguf
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "tiny_chat")
H, HEADS, KV, FF, LAYERS, CTX = 64, 4, 2, 128, 2, 512
HD = H // HEADS
MERGES = ["Ġ t", "h e", "Ġ a", "i n", "e r", "o n", "Ġt he", "r e"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
          "{% endif %}")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def vocabulary():
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    for m in MERGES:
        tokens.append(m.replace(" ", ""))
    types = [1] * len(tokens)
    tokens += SPECIALS
    types += [3] * len(SPECIALS)
    return tokens, types


def write_model(path):
    rng = np.random.default_rng(1234)
    tokens, types = vocabulary()
    vocab = len(tokens)
    f32 = lambda *shape, s=0.2: (rng.standard_normal(shape) * s).astype(np.float32)
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("lorad tiny chat test model")
    w.add_block_count(LAYERS)
    w.add_context_length(CTX)
    w.add_embedding_length(H)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(HD)
    w.add_vocab_size(vocab)
    w.add_file_type(0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(tokens.index("<|im_start|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_pad_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)
    w.add_tensor("token_embd.weight", f32(vocab, H, s=1.0))
    w.add_tensor("output_norm.weight", (1 + f32(H, s=0.1)).astype(np.float32))
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", (1 + f32(H, s=0.1)).astype(np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", f32(H, H))
        w.add_tensor(f"blk.{i}.attn_k.weight", f32(KV * HD, H))
        w.add_tensor(f"blk.{i}.attn_v.weight", f32(KV * HD, H))
        w.add_tensor(f"blk.{i}.attn_output.weight", f32(H, H))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", (1 + f32(H, s=0.1)).astype(np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", f32(FF, H))
        w.add_tensor(f"blk.{i}.ffn_up.weight", f32(FF, H))
        w.add_tensor(f"blk.{i}.ffn_down.weight", f32(H, FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_peft(d):
    rng = np.random.default_rng(99)
    os.makedirs(d, exist_ok=True)
    r = 4
    dims = {"q_proj": ("self_attn", H, H), "v_proj": ("self_attn", H, KV * HD), "down_proj": ("mlp", FF, H)}
    tensors = {}
    for i in range(LAYERS):
        for proj, (part, n_in, n_out) in dims.items():
            key = f"base_model.model.model.layers.{i}.{part}.{proj}"
            tensors[key + ".lora_A.weight"] = (rng.standard_normal((r, n_in)) * 0.3).astype(np.float32)
            tensors[key + ".lora_B.weight"] = (rng.standard_normal((n_out, r)) * 0.3).astype(np.float32)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": 8, "lora_dropout": 0.0,
           "target_modules": sorted(dims), "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
           "use_dora": False, "base_model_name_or_path": "lorad-tiny-chat"}
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def write_gguf_lora(path):
    rng = np.random.default_rng(7)
    r = 2
    w = gguf.GGUFWriter(path, "llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 2.0)
    for i in range(LAYERS):
        for stem, n_in, n_out in (("attn_k", H, KV * HD), ("ffn_up", H, FF)):
            w.add_tensor(f"blk.{i}.{stem}.weight.lora_a", (rng.standard_normal((r, n_in)) * 0.3).astype(np.float32))
            w.add_tensor(f"blk.{i}.{stem}.weight.lora_b", (rng.standard_normal((n_out, r)) * 0.3).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(os.path.join(OUT, "adapters"), exist_ok=True)
    write_model(os.path.join(OUT, "model.gguf"))
    write_peft(os.path.join(OUT, "adapters", "alpha"))
    write_gguf_lora(os.path.join(OUT, "adapters", "beta.gguf"))


if __name__ == "__main__":
    main()
