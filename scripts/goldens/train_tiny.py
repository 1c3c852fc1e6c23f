#!/usr/bin/env python3
"""Golden loss and LoRA gradients for the trainer's backward pass, from transformers + PEFT autograd.

Writes, under Tests/TrainingTests/Fixtures/:
  train_tiny_base.gguf   the tiny random Llama of lora_tiny.py (same seed, same GGUF writer: F32, Q/K rows
                         permuted as convert_hf_to_gguf does, tied embeddings)
  train_tiny_plain/      its PEFT adapter "plain" (r=4, alpha=8, all seven projections, random non-zero
                         lora_A and lora_B; the same weights as Tests/LlamaTests/Fixtures/lora_tiny_plain)
  train_tiny_dora/       its PEFT adapter "dora" (use_dora, r=4, alpha=8, [q_proj, k_proj, o_proj, up_proj] of
                         layer 1, magnitudes perturbed; the same weights as Tests/LlamaTests/Fixtures/lora_tiny_dora)
  train_tiny_grads.json  {"sequences": [[8 ids] x 2], "masks": [[8 bools] x 2],
                          "loss": float,
                          "grads": {"model.layers.N.self_attn.q_proj": {"lora_A": [[in] x r], "lora_B": [[r] x out]}},
                          "dora": {"loss": float, "grads": {... also "lora_magnitude_vector": [out] ...}}}

The loss is the cross-entropy of the batch, mean over every masked target position: position t predicts
token t+1, and token t+1 counts when masks[s][t+1] is true (labels = ids where the mask is set, -100
elsewhere, shifted as transformers' causal LM loss shifts them; mask[0] never counts). Gradients are
d loss / d lora_A, lora_B (and lora_magnitude_vector) in PEFT's layout with HF row order (lorad keeps B's
q/k rows and magnitudes in GGUF order: permute before comparing). PEFT's DoRA treats the row norm
‖W + s·B·A‖ as a constant (detached, DoRA paper §4.3), so its A/B gradients are those of that rule. Computed in float64 (the f32 weights converted exactly), so the golden carries
no rounding of its own worth mentioning; floats are written with 10 significant digits.

Run: /work/venv-train/bin/python scripts/goldens/train_tiny.py   (any venv with torch, transformers,
peft, safetensors, numpy, gguf)
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lora_tiny  # noqa: E402

ROOT = lora_tiny.ROOT
FIX = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures")
SEQUENCES = [[1, 17, 200, 45, 99, 3, 250, 128], [42, 13, 101, 88, 12, 190, 5, 230]]
MASKS = [[False, False, False, True, True, True, True, True], [False, True, True, False, True, True, False, True]]


def rounded(x, digits=10):
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    if isinstance(x, list):
        return [rounded(v, digits) for v in x]
    return x


def loss_and_grads(pm):
    pm = pm.double()
    pm.zero_grad()
    ids = torch.tensor(SEQUENCES)
    labels = torch.where(torch.tensor(MASKS), ids, torch.full_like(ids, -100))
    logits = pm(ids).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                             ignore_index=-100, reduction="mean")
    loss.backward()
    grads = {}
    for name, p in pm.named_parameters():
        if "lora_" not in name:
            continue
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight
        parts = name.split(".")
        i = parts.index("model", 2)
        module = ".".join(parts[i:parts.index(parts[-3])])
        grads.setdefault(module, {})[parts[-3]] = p.grad.tolist()
    return loss.item(), grads


def main():
    torch.set_num_threads(2)
    os.makedirs(FIX, exist_ok=True)
    base = lora_tiny.base_model()
    lora_tiny.write_base_gguf(base, os.path.join(FIX, "train_tiny_base.gguf"))
    pm = lora_tiny.make_adapter("plain", 1)  # seed 1: lora_tiny.py's "plain"
    lora_tiny.save_adapter(pm, os.path.join(FIX, "train_tiny_plain"))
    loss, grads = loss_and_grads(pm)
    pm = lora_tiny.make_adapter("dora", 3)  # seed 3: lora_tiny.py's "dora"
    lora_tiny.save_adapter(pm, os.path.join(FIX, "train_tiny_dora"))
    dora_loss, dora_grads = loss_and_grads(pm)
    out = {"sequences": SEQUENCES, "masks": MASKS, "loss": loss, "grads": grads,
           "dora": {"loss": dora_loss, "grads": dora_grads}}
    with open(os.path.join(FIX, "train_tiny_grads.json"), "w") as f:
        f.write(json.dumps(rounded(out), separators=(",", ":")))
    print("loss", loss, "modules", len(grads), "dora loss", dora_loss, "modules", sorted(dora_grads))


if __name__ == "__main__":
    main()
