# Writes Tests/KernelsTests/Fixtures/tensor_types.json: golden values for lorad's tensor element types,
# computed by the `gguf` Python package (gguf-py, the reference numpy port of ggml's formats).
#   - quant_sizes: gguf's GGML_QUANT_SIZES table (block size, bytes per block) for every type it knows.
#   - quantized: for each type gguf can quantize (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), input f32
#     values, the bytes gguf.quants.quantize makes from them, and gguf.quants.dequantize of those bytes.
#     Cases: a random multi-block row plus awkward one-block rows (all zeros, one huge value among small
#     ones, negative-only, exact rounding ties, and for the float types overflow/subnormal/NaN values).
#   - dequantized: for the K-quants (Q4_K, Q5_K, Q6_K), which gguf cannot quantize, random blocks with
#     random packed fields and a finite, modest f16 d/dmin, and gguf.quants.dequantize of them.
# All floats and bytes are stored as lowercase hex of their little-endian bytes, so values are exact.
# Deterministic (fixed seed). Run from the repository root:
#   PY=$(scripts/goldens/venv) && "$PY" scripts/goldens/tensor_types.py
import json
import os
from importlib.metadata import version

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

SEED = 20250611
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "KernelsTests", "Fixtures", "tensor_types.json")

rng = np.random.default_rng(SEED)


def hexf32(a: np.ndarray) -> str:
    return np.ascontiguousarray(a, dtype="<f4").tobytes().hex()


def quantized_case(qtype: T, name: str, values: np.ndarray) -> dict:
    values = np.ascontiguousarray(values, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # the float cases overflow f16 on purpose
        q = np.ascontiguousarray(gguf.quants.quantize(values, qtype)).view(np.uint8)
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    assert q.size == values.size // block_size * type_size, (qtype.name, name)
    deq = gguf.quants.dequantize(q, qtype).astype(np.float32, copy=False).reshape(-1)
    assert deq.size == values.size
    return {"type": qtype.name, "case": name, "input": hexf32(values), "bytes": q.tobytes().hex(),
            "dequantized": hexf32(deq)}


def legacy_cases(qtype: T) -> list[dict]:
    n = 32
    cases = [quantized_case(qtype, "random 4 blocks", rng.standard_normal(4 * n) * 0.05)]
    cases.append(quantized_case(qtype, "zeros", np.zeros(n)))
    huge = rng.standard_normal(n) * 0.01
    huge[int(rng.integers(n))] = 3.0e4
    cases.append(quantized_case(qtype, "one huge value", huge))
    cases.append(quantized_case(qtype, "negative only", -np.abs(rng.standard_normal(n)) - 0.1))
    # Values that land exactly on .5 after scaling: with amax = 127 (Q8_0) d = 1, so k + 0.5 is a tie
    # (roundf rounds it away from zero; round-half-even would not).
    ties = np.array([127.0, -2.5, 2.5, -3.5, 3.5, 0.5, -0.5, 1.5] * 4, dtype=np.float32)
    cases.append(quantized_case(qtype, "rounding ties", ties))
    # All values equal: max == min, so Q4_1/Q5_1 get d = 0.
    cases.append(quantized_case(qtype, "constant", np.full(n, 0.75)))
    return cases


def float_cases(qtype: T) -> list[dict]:
    cases = [quantized_case(qtype, "random", rng.standard_normal(64) * 3.0)]
    specials = np.array([
        0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, 1.0e5, -1.0e5,    # f16 max, round-down, overflow
        5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 1.0e-8, 6.1035156e-05,  # f16 subnormals and min normal
        1.0009765625, 1.00048828125, 1.00146484375,                          # f16: 1 + ulp, ties 1 + ulp/2, 1 + 3ulp/2
        3.0e38, 3.4028235e38, 1.0e-40, -1.0e-40,                             # f32 large and f32 subnormal
        np.inf, -np.inf, np.nan,
    ], dtype=np.float32)
    # bf16 ties: low 16 bits exactly 0x8000, with an even and an odd upper half.
    bf16_ties = np.array([0x3F808000, 0x3F818000, 0xBF808000, 0x3F807FFF, 0x3F808001], dtype=np.uint32).view(np.float32)
    cases.append(quantized_case(qtype, "specials", np.concatenate([specials, bf16_ties])))
    return cases


def kquant_blocks(qtype: T, n_blocks: int) -> dict:
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    # Finite, modest f16 super-block scales; one block with a negative d to cover the sign.
    d = (rng.uniform(1e-4, 5e-2, size=n_blocks)).astype(np.float16)
    d[1] = -d[1]
    dmin = (rng.uniform(1e-4, 5e-2, size=n_blocks)).astype(np.float16)
    if qtype == T.Q6_K:
        raw[:, 208:210] = d.view(np.uint8).reshape(n_blocks, 2)
    else:
        raw[:, 0:2] = d.view(np.uint8).reshape(n_blocks, 2)
        raw[:, 2:4] = dmin.view(np.uint8).reshape(n_blocks, 2)
    deq = gguf.quants.dequantize(raw.reshape(-1), qtype).astype(np.float32, copy=False).reshape(-1)
    assert deq.size == n_blocks * 256 and np.all(np.isfinite(deq))
    return {"type": qtype.name, "case": f"random {n_blocks} blocks", "bytes": raw.tobytes().hex(),
            "dequantized": hexf32(deq)}


def main() -> None:
    fixture = {
        "generator": "scripts/goldens/tensor_types.py",
        "gguf_version": version("gguf"),
        "numpy_version": np.__version__,
        "seed": SEED,
        "quant_sizes": [{"name": t.name, "id": int(t), "block_size": bs, "type_size": ts}
                        for t, (bs, ts) in gguf.GGML_QUANT_SIZES.items()],
        "quantized": [],
        "dequantized": [],
    }
    fixture["quantized"] += [quantized_case(T.F32, "random", rng.standard_normal(16))]
    for t in (T.F16, T.BF16):
        fixture["quantized"] += float_cases(t)
    for t in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        fixture["quantized"] += legacy_cases(t)
    for t in (T.Q4_K, T.Q5_K, T.Q6_K):
        fixture["dequantized"].append(kquant_blocks(t, 3))
    with open(OUT, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
