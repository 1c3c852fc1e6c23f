#!/usr/bin/env python3
"""Golden starts and first steps of new adapters, from transformers + PEFT: PiSSA and DoRA.

On the tiny random Llama of train_tiny.py (Tests/TrainingTests/Fixtures/train_tiny_base.gguf, made by
lora_tiny.base_model) and train_tiny.py's batch of two 8-token sequences with gaps in the masks:

- "pissa": LoraConfig(r=2, lora_alpha=4, all seven projections, init_lora_weights="pissa"). PEFT's
  pissa_init (tuners/lora/layer.py) takes the SVD of each base weight, sets A0 = diag(√(S_r/s))·V_rᵀ,
  B0 = U_r·diag(√(S_r/s)) and replaces the base weight by the residual W − s·B0·A0. The initial
  adapter is saved (with init_lora_weights set to True, as PEFT's docs say), then STEPS full-batch steps
  of torch.optim.AdamW are taken, and the result is saved with
  save_pretrained(path_initial_model_for_weight_conversion=<initial>): PEFT's own conversion of PiSSA to
  the rank-2r plain LoRA A' = [A; A0], B' = [B | −B0] (r=4, lora_alpha=8, the same scale 2) on the
  unchanged base. The fixture holds the initial factors and the converted ones as PEFT saved them.
- "dora": LoraConfig(r=2, lora_alpha=4, all seven projections, use_dora=True), PEFT's default init
  (A Kaiming-uniform from torch's generator, seed 0; B zero) and the magnitude vector at ‖W‖ per row.
  lorad draws A from its own generator, so its run cannot follow PEFT's from the same A: the fixture
  holds PEFT's starting A (and B, m) so that the Swift test starts lorad's trainer from those values
  and compares the steps, and separately compares lorad's own DoRA start (m) with PEFT's.

Optimiser (as lorad's trainer runs it with these settings): AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-8,
weight decay 0, no clipping, constant rate, STEPS steps, every step on the whole batch (the loss being
the mean over every masked target of both sequences). Computed in float64 (the f32 weights converted
exactly; PEFT's SVD itself runs in float32, inside pissa_init).

Writes Tests/TrainingTests/Fixtures/train_init.json:
  {"sequences", "masks", "steps", "lr",
   "pissa": {"r", "lora_alpha", "scaling", "losses": [loss before each step],
             "initial": {module: {"lora_A": [[in] x r], "lora_B": [[r] x out]}},
             "float64": {... the same start from torch.linalg.svd in float64 ...},
             "converted": {"r", "lora_alpha", "modules": {module: {"lora_A": [[in] x 2r], "lora_B": [[2r] x out]}}}},
   "dora": {"r", "lora_alpha", "scaling", "losses",
            "initial": {module: {"lora_A", "lora_B", "lora_magnitude_vector": [out]}},
            "final": {module: {... same ...}}}}
Module names as "model.layers.N.self_attn.q_proj"; rows in HF order (lorad permutes q/k rows to GGUF
order). Floats with 9 significant digits.

Run: /work/venv-train/bin/python scripts/goldens/train_init.py   (torch, transformers, peft,
safetensors, numpy, gguf)
"""
import json
import os
import sys
import tempfile

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lora_tiny  # noqa: E402
import train_tiny  # noqa: E402

FIX = train_tiny.FIX
STEPS = 5
LR = 1e-3


def rounded(x, digits=9):
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    if isinstance(x, list):
        return [rounded(v, digits) for v in x]
    if isinstance(x, dict):
        return {k: rounded(v, digits) for k, v in x.items()}
    return x


def batch_loss(pm):
    ids = torch.tensor(train_tiny.SEQUENCES)
    labels = torch.where(torch.tensor(train_tiny.MASKS), ids, torch.full_like(ids, -100))
    logits = pm(ids).logits
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                             ignore_index=-100, reduction="mean")


def lora_tensors(pm):
    """{module: {"lora_A"|"lora_B"|"lora_magnitude_vector": nested lists}} of the "default" adapter."""
    out = {}
    for name, p in pm.named_parameters():
        if "lora_" not in name:
            continue
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight
        parts = name.split(".")
        i = parts.index("model", 2)
        kind = next(k for k in ("lora_A", "lora_B", "lora_magnitude_vector") if k in parts)
        module = ".".join(parts[i:parts.index(kind)])
        out.setdefault(module, {})[kind] = p.detach().double().tolist()
    return out


def train(pm):
    pm = pm.double()
    params = [p for n, p in pm.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, foreach=False)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = batch_loss(pm)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    return pm, losses


def pissa():
    cfg = LoraConfig(r=2, lora_alpha=4, target_modules=lora_tiny.ALL7, lora_dropout=0.0, init_lora_weights="pissa")
    base = lora_tiny.base_model()
    # The same start from a float64 SVD of the same f32 weights (PEFT's runs in float32, whose error in
    # the rank-r subspace grows as 1/(S_r/S_{r+1} - 1); this random model's gaps are 0.6-7%).
    exact = {}
    for name, p in base.named_parameters():
        if name.endswith("_proj.weight"):
            u, s, vh = torch.linalg.svd(p.detach().double(), full_matrices=False)
            root = torch.sqrt(s[:2] / 2.0)
            exact[name[:-len(".weight")]] = {"lora_A": (root[:, None] * vh[:2]).tolist(), "lora_B": (u[:, :2] * root).tolist()}
    pm = get_peft_model(base, cfg)
    initial = lora_tensors(pm)
    with tempfile.TemporaryDirectory() as tmp:
        init_dir, out_dir = os.path.join(tmp, "initial"), os.path.join(tmp, "converted")
        pm.peft_config["default"].init_lora_weights = True  # PEFT's docs: save the start as a plain LoRA
        pm.save_pretrained(init_dir)
        pm.peft_config["default"].init_lora_weights = "pissa"
        pm, losses = train(pm)
        pm.float().save_pretrained(out_dir, path_initial_model_for_weight_conversion=init_dir)
        with open(os.path.join(out_dir, "adapter_config.json")) as f:
            conv_cfg = json.load(f)
        sd = load_file(os.path.join(out_dir, "adapter_model.safetensors"))
        # The converted adapter must reproduce the trained PiSSA model on the original base.
        check = PeftModel.from_pretrained(lora_tiny.base_model(), out_dir).double()
        with torch.no_grad():
            err = (check(torch.tensor(train_tiny.SEQUENCES)).logits - pm(torch.tensor(train_tiny.SEQUENCES)).logits).abs().max()
        print("pissa: converted adapter vs trained PiSSA model, max logit difference", float(err))
    converted = {}
    for key, t in sd.items():
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
        parts = key.split(".")
        kind = "lora_A" if "lora_A" in parts else "lora_B"
        module = ".".join(parts[2:parts.index(kind)])
        converted.setdefault(module, {})[kind] = t.double().tolist()
    return {"r": 2, "lora_alpha": 4, "scaling": 2.0, "losses": losses, "initial": initial, "float64": exact,
            "converted": {"r": conv_cfg["r"], "lora_alpha": conv_cfg["lora_alpha"], "modules": converted}}


def dora():
    torch.manual_seed(0)
    cfg = LoraConfig(r=2, lora_alpha=4, target_modules=lora_tiny.ALL7, lora_dropout=0.0, use_dora=True)
    pm = get_peft_model(lora_tiny.base_model(), cfg)
    initial = lora_tensors(pm)
    pm, losses = train(pm)
    return {"r": 2, "lora_alpha": 4, "scaling": 2.0, "losses": losses, "initial": initial, "final": lora_tensors(pm)}


def main():
    torch.set_num_threads(2)
    out = {"sequences": train_tiny.SEQUENCES, "masks": train_tiny.MASKS, "steps": STEPS, "lr": LR,
           "pissa": pissa(), "dora": dora()}
    print("pissa losses", out["pissa"]["losses"], "dora losses", out["dora"]["losses"])
    path = os.path.join(FIX, "train_init.json")
    with open(path, "w") as f:
        f.write(json.dumps(rounded(out), separators=(",", ":")))
    print("wrote", path)


if __name__ == "__main__":
    main()
