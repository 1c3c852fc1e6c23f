#!/usr/bin/env python3
"""Golden logits for lorad's forward pass, from llama.cpp (through llama-cpp-python).

Writes Tests/LlamaTests/Fixtures/llama_logits.json: for each prompt, its token ids (tokenized by
llama.cpp), a 32-token greedy continuation computed by llama.cpp, and under teacher forcing over
prompt + continuation, the top-10 log-probabilities (log-softmax of llama.cpp's logits) at every
position, with the top-1/top-2 margin of each greedy step.

It also records the same teacher-forced top-10 from llama.cpp with flash attention on ("top_fa"):
two llama.cpp attention paths that differ only in float rounding. SmolLM2-135M amplifies rounding
strongly, so their disagreement measures how close any implementation that is not bit-identical
to llama.cpp's default path can be expected to come; the tests use it to set their tolerances.

And an exact reference ("exact"): a float64 numpy forward pass over the weights dequantized by the
`gguf` package, for the first two prompts, independent of both llama.cpp and lorad.

Run: PY=$(scripts/goldens/venv) && "$PY" scripts/goldens/llama_logits.py [model.gguf]
"""
import json
import os
import sys

import gguf
import numpy as np
import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
OUT = os.path.join(ROOT, "Tests", "LlamaTests", "Fixtures", "llama_logits.json")
SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"


def chat(user):
    return SYSTEM + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n"


PROMPTS = [
    chat("What is the capital of France?"),
    chat("Write a haiku about the sea."),
    chat("List three prime numbers and explain why they are prime."),
    "The quick brown fox jumps over the lazy dog. The quick brown fox",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
]
GREEDY_TOKENS = 32
TOP = 10
EOG = {0, 2, 4}


def log_softmax(row):
    row = row.astype(np.float64)
    m = row.max()
    return row - m - np.log(np.exp(row - m).sum())


def top_positions(llm, seq):
    llm.reset()
    llm.eval(seq)
    positions = []
    for i in range(len(seq)):
        lp = log_softmax(np.array(llm.scores[i], dtype=np.float32))
        top = np.argsort(-lp, kind="stable")[:TOP]
        positions.append({"ids": [int(t) for t in top], "logprobs": [round(float(lp[t]), 6) for t in top]})
    return positions


def exact_forward(reader, ids):
    """float64 Llama forward (FORMATS.md §3.3) on gguf-dequantized weights: NORM RoPE, GQA, SwiGLU."""
    T = {t.name: t for t in reader.tensors}
    def W(name):
        t = T[name]
        return gguf.quants.dequantize(t.data, t.tensor_type).reshape([int(x) for x in reversed(t.shape)]).astype(np.float64)
    def kv(key):
        f = reader.fields[key]
        return f.parts[f.data[0]][0]
    E, H, KV, L = int(kv("llama.embedding_length")), int(kv("llama.attention.head_count")), \
        int(kv("llama.attention.head_count_kv")), int(kv("llama.block_count"))
    hd, base, eps = E // H, float(kv("llama.rope.freq_base")), float(kv("llama.attention.layer_norm_rms_epsilon"))
    emb = W("token_embd.weight")
    rms = lambda x, w: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w
    n = len(ids)
    ang = np.outer(np.arange(n), base ** (-np.arange(hd // 2) * 2 / hd))
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    def rope(x):
        y = x.copy()
        a, b = x[..., 0::2], x[..., 1::2]
        y[..., 0::2], y[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return y
    mask = np.triu(np.full((n, n), -np.inf), 1)
    x = emb[ids]
    for l in range(L):
        p = f"blk.{l}."
        h = rms(x, W(p + "attn_norm.weight"))
        q = rope((h @ W(p + "attn_q.weight").T).reshape(n, H, hd))
        k = rope((h @ W(p + "attn_k.weight").T).reshape(n, KV, hd))
        v = (h @ W(p + "attn_v.weight").T).reshape(n, KV, hd)
        out = np.zeros((n, H, hd))
        for head in range(H):
            sc = q[:, head] @ k[:, head // (H // KV)].T / np.sqrt(hd) + mask
            pr = np.exp(sc - sc.max(-1, keepdims=True))
            out[:, head] = (pr / pr.sum(-1, keepdims=True)) @ v[:, head // (H // KV)]
        x = x + out.reshape(n, -1) @ W(p + "attn_output.weight").T
        h = rms(x, W(p + "ffn_norm.weight"))
        g, u = h @ W(p + "ffn_gate.weight").T, h @ W(p + "ffn_up.weight").T
        x = x + (g / (1 + np.exp(-g)) * u) @ W(p + "ffn_down.weight").T
    out_w = W("output.weight") if "output.weight" in T else emb
    logits = rms(x, W("output_norm.weight")) @ out_w.T
    positions = []
    for row in logits:
        lp = log_softmax(row)
        top = np.argsort(-lp, kind="stable")[:TOP]
        positions.append({"ids": [int(t) for t in top], "logprobs": [round(float(lp[t]), 6) for t in top]})
    return positions


def main():
    llm = llama_cpp.Llama(model_path=MODEL, n_ctx=1024, n_batch=512, n_threads=2, logits_all=True,
                          verbose=False, seed=0)
    fa = llama_cpp.Llama(model_path=MODEL, n_ctx=1024, n_batch=512, n_threads=2, logits_all=True,
                         verbose=False, seed=0, flash_attn=True)
    reader = gguf.GGUFReader(MODEL)
    cases = []
    for prompt in PROMPTS:
        ids = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        # Greedy continuation, one token at a time, exactly as a server would decode.
        llm.reset()
        llm.eval(ids)
        greedy, margins = [], []
        for _ in range(GREEDY_TOKENS):
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            tok = int(np.argmax(logits))
            greedy.append(tok)
            second = np.partition(logits, -2)[-2]
            margins.append(round(float(logits[tok] - second), 6))
            if tok in EOG:
                break
            llm.eval([tok])
        # Teacher forcing over prompt + continuation in one batch.
        seq = ids + greedy
        case = {"prompt": prompt, "ids": [int(t) for t in ids], "greedy": greedy, "greedy_margins": margins,
                "top": top_positions(llm, seq), "top_fa": top_positions(fa, seq)}
        if len(cases) < 2:
            case["exact"] = exact_forward(reader, ids)
        cases.append(case)
    with open(OUT, "w") as f:
        json.dump({"generator": "scripts/goldens/llama_logits.py",
                   "llama_cpp_python": llama_cpp.__version__,
                   "model": os.path.basename(MODEL), "top_k": TOP, "cases": cases}, f, indent=0)
    print(f"wrote {OUT}: {len(cases)} prompts, {sum(len(c['top']) for c in cases)} positions")


if __name__ == "__main__":
    main()
