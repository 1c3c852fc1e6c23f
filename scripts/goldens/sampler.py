# Writes Tests/SamplingTests/Fixtures/sampler.json: golden outputs of llama.cpp's sampling chain, run
# through llama-cpp-python's low-level sampler API (the llama.cpp C library vendored by
# llama-cpp-python, ctypes bindings in llama_cpp.llama_cpp).
#   - vectors: fixed logit rows. Three random rows of 1000 floats (numpy, fixed seed; stored as hex of
#     little-endian f32 so the Swift side reads bit-identical values), and one row of 49152 floats
#     that both sides compute from a formula (`hashed_logits` below; not stored), to exercise
#     llama.cpp's path for unsorted vocabularies larger than 1024.
#   - cases: sampling parameters, a token history accepted into the penalty sampler, and after each
#     stage of llama.cpp's default chain order (logit bias + penalties, top-k, top-p, min-p,
#     temperature) the surviving token ids with their logits and the normalised probabilities that
#     llama.cpp's `dist` sampler would draw from if the chain ended there. For the bias/penalty stage
#     (the whole vocabulary) only the logits that changed are stored. `chain_selected` is the token
#     the full llama.cpp chain (including the dist draw) picks for greedy cases. Infinite floats
#     (banned tokens) are written as the strings "-inf" / "inf", since JSON has no infinities.
# Each stage is applied with its own llama_sampler_apply call, exactly as llama_sampler_chain_apply
# does; the script also runs the real chain and checks it ends with the same candidates.
# Deterministic (fixed seeds). Run from the repository root:
#   PY=$(scripts/goldens/venv) && "$PY" scripts/goldens/sampler.py
import ctypes
import json
import math
import os
from importlib.metadata import version

import numpy as np
import llama_cpp as L

SEED = 20251124
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "SamplingTests", "Fixtures", "sampler.json")
LARGE_VOCAB = 49152
MASK32 = 0xFFFFFFFF

rng = np.random.default_rng(SEED)


def hashed_logits(n: int) -> np.ndarray:
    """Row i: murmur3 fmix32 of i*0x9E3779B1, u = h / 2^32, logit = float32(24*u^8 - 4).
    Integer steps are exact, and the double steps are single IEEE operations in this order,
    so Swift reproduces the row bit for bit (no FMA: numpy applies one ufunc at a time)."""
    x = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B1)) & np.uint64(MASK32)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(MASK32)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & np.uint64(MASK32)
    x ^= x >> np.uint64(16)
    u = x.astype(np.float64) / 4294967296.0
    u2 = u * u
    u4 = u2 * u2
    u8 = u4 * u4
    return (24.0 * u8 - 4.0).astype(np.float32)


def random_vectors():
    broad = rng.normal(0.0, 2.5, 1000).astype(np.float32)
    peaked = rng.normal(0.0, 1.5, 1000).astype(np.float32)
    peaks = rng.choice(1000, 12, replace=False)
    peaked[peaks] = rng.uniform(4.0, 9.0, 12).astype(np.float32)
    negative = rng.normal(-3.0, 2.0, 1000).astype(np.float32)
    return {"broad": broad, "peaked": peaked, "negative": negative}


vectors = random_vectors()
vectors["large"] = hashed_logits(LARGE_VOCAB)


def token_array(logits: np.ndarray):
    n = len(logits)
    data = (L.llama_token_data * n)()
    for i in range(n):
        data[i].id = i
        data[i].logit = float(logits[i])
        data[i].p = 0.0
    arr = L.llama_token_data_array(data=ctypes.cast(data, L.llama_token_data_p), size=n, selected=-1, sorted=False)
    return data, arr


def snapshot(arr):
    return [(arr.data[i].id, arr.data[i].logit, arr.data[i].p) for i in range(arr.size)]


def dist_probs(arr, seed=1234):
    """The probabilities llama.cpp's dist sampler normalises, on a copy of the current candidates."""
    cands = snapshot(arr)
    n = len(cands)
    data = (L.llama_token_data * n)()
    for i, (tid, logit, _) in enumerate(cands):
        data[i].id, data[i].logit, data[i].p = tid, logit, 0.0
    copy = L.llama_token_data_array(data=ctypes.cast(data, L.llama_token_data_p), size=n, selected=-1, sorted=arr.sorted)
    dist = L.llama_sampler_init_dist(seed)
    L.llama_sampler_apply(dist, ctypes.byref(copy))
    L.llama_sampler_free(dist)
    return {data[i].id: data[i].p for i in range(n)}


def make_samplers(n_vocab, p, history):
    """The default chain of common_sampler_init, in its order (first stage is the logit bias)."""
    stages = []
    front = []
    if p["logit_bias"]:
        biases = (L.llama_logit_bias * len(p["logit_bias"]))()
        for i, (tok, b) in enumerate(p["logit_bias"]):
            biases[i].token, biases[i].bias = tok, b
        front.append(L.llama_sampler_init_logit_bias(n_vocab, len(p["logit_bias"]), biases))
    pen = L.llama_sampler_init_penalties(n_vocab, p["repeat_last_n"], p["repeat_penalty"],
                                         p["frequency_penalty"], p["presence_penalty"])
    for tok in history:
        L.llama_sampler_accept(pen, tok)
    front.append(pen)
    stages.append(("penalties", front))
    stages.append(("top_k", [L.llama_sampler_init_top_k(p["top_k"])]))
    stages.append(("top_p", [L.llama_sampler_init_top_p(p["top_p"], 0)]))
    stages.append(("min_p", [L.llama_sampler_init_min_p(p["min_p"], 0)]))
    stages.append(("temperature", [L.llama_sampler_init_temp(p["temperature"])]))
    return stages


def run_case(name, vector, params, history):
    p = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, repeat_last_n=64,
             frequency_penalty=0.0, presence_penalty=0.0, logit_bias=[])
    p.update(params)
    logits = vectors[vector]
    n_vocab = len(logits)

    # Stage by stage.
    data, arr = token_array(logits)
    stages = make_samplers(n_vocab, p, history)
    recorded = {}
    for stage, samplers in stages:
        for s in samplers:
            L.llama_sampler_apply(s, ctypes.byref(arr))
        cands = snapshot(arr)
        if stage == "penalties":
            changed = [[tid, lg] for tid, lg, _ in cands if np.float32(lg) != logits[tid]]
            recorded[stage] = {"count": len(cands), "changed": sorted(changed)}
        elif len(cands) == n_vocab:
            # Nothing was cut (the stage is off or kept everything): the count says it all and
            # keeps the fixture small.
            recorded[stage] = {"count": len(cands)}
        else:
            probs = dist_probs(arr)
            order = sorted(range(len(cands)), key=lambda i: cands[i][0])
            recorded[stage] = {
                "ids": [cands[i][0] for i in order],
                "logits": [cands[i][1] for i in order],
                "probs": [probs[cands[i][0]] for i in order],
            }
    for _, samplers in stages:
        for s in samplers:
            L.llama_sampler_free(s)

    # The real chain, ending in the draw, must leave the same candidates.
    cdata, carr = token_array(logits)
    chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    for _, samplers in make_samplers(n_vocab, p, history):
        for s in samplers:
            L.llama_sampler_chain_add(chain, s)
    L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(42))
    L.llama_sampler_apply(chain, ctypes.byref(carr))
    chain_ids = sorted(carr.data[i].id for i in range(carr.size))
    assert chain_ids == recorded["temperature"].get("ids", list(range(n_vocab))), name
    selected = carr.data[carr.selected].id
    L.llama_sampler_free(chain)

    sizes = {k: v["count"] if "count" in v else len(v["ids"]) for k, v in recorded.items()}
    print(f"{name:32s} {vector:8s} survivors per stage: {sizes}")
    out = {"name": name, "vector": vector, "params": p, "history": history, "stages": recorded}
    if p["temperature"] <= 0:
        out["chain_selected"] = selected
    return out


def top_ids(vector, k):
    v = vectors[vector]
    return [int(i) for i in np.argsort(-v, kind="stable")[:k]]


def history_for(vector):
    """80 tokens: repeats of some top tokens (positive logits) and some negative-logit tokens, so
    the window of 64 drops the first 16 and counts exceed 1."""
    tops = top_ids(vector, 6)
    lows = [int(i) for i in np.argsort(vectors[vector], kind="stable")[:3]]
    mids = [int(i) for i in rng.choice(len(vectors[vector]), 10, replace=False)]
    pool = tops + lows + mids
    return [int(pool[i]) for i in rng.integers(0, len(pool), 80)]


cases = []
for vec in ["broad", "peaked", "negative"]:
    cases.append(run_case(f"defaults/{vec}", vec, {}, []))
cases.append(run_case("top_p only", "broad", dict(top_k=0, top_p=0.9, min_p=0.0, temperature=1.0), []))
cases.append(run_case("min_p only", "peaked", dict(top_k=0, top_p=1.0, min_p=0.1, temperature=1.0), []))
cases.append(run_case("top_k only", "negative", dict(top_k=7, top_p=1.0, min_p=0.0, temperature=0.7), []))
cases.append(run_case("top_k above vocab", "broad", dict(top_k=5000, top_p=0.99, min_p=0.0), []))

for vec in ["broad", "peaked", "negative"]:
    hist = history_for(vec)
    t = top_ids(vec, 3)
    cases.append(run_case(f"penalties and bias/{vec}", vec, dict(
        top_k=100, top_p=0.8, min_p=0.02, temperature=1.3,
        repeat_penalty=1.3, frequency_penalty=0.5, presence_penalty=0.4, repeat_last_n=64,
        logit_bias=[[t[0], -math.inf], [t[2], 5.0], [int(hist[-1]), -100.0]]), hist))
    cases.append(run_case(f"negative penalties/{vec}", vec, dict(
        top_k=5, top_p=0.5, min_p=0.3, temperature=0.5,
        repeat_penalty=0.8, frequency_penalty=-0.5, presence_penalty=-1.0, repeat_last_n=16), hist))
    cases.append(run_case(f"greedy with penalties/{vec}", vec, dict(
        temperature=0.0, repeat_penalty=1.5, frequency_penalty=0.3, presence_penalty=0.2,
        logit_bias=[[t[1], 2.0]]), hist))

cases.append(run_case("large/defaults", "large", {}, []))
cases.append(run_case("large/top_p unsorted", "large", dict(top_k=0, top_p=0.9, min_p=0.0, temperature=1.0), []))
cases.append(run_case("large/min_p unsorted", "large", dict(top_k=0, top_p=1.0, min_p=0.2, temperature=1.0), []))

def finite_or_string(x):
    """JSON has no infinities: write them as the strings "inf" / "-inf"."""
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    if isinstance(x, list):
        return [finite_or_string(v) for v in x]
    if isinstance(x, dict):
        return {k: finite_or_string(v) for k, v in x.items()}
    return x


fixture = {
    "generator": "scripts/goldens/sampler.py",
    "llama_cpp_python": version("llama_cpp_python"),
    "numpy": np.__version__,
    "vectors": {k: np.ascontiguousarray(v, dtype="<f4").tobytes().hex() for k, v in vectors.items() if k != "large"},
    "large_vocab": LARGE_VOCAB,
    "large_first_logits_hex": np.ascontiguousarray(vectors["large"][:8], dtype="<f4").tobytes().hex(),
    "cases": finite_or_string(cases),
}
with open(OUT, "w") as f:
    json.dump(fixture, f, indent=None, separators=(",", ":"), allow_nan=False)
    f.write("\n")
print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
