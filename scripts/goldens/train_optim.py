#!/usr/bin/env python3
"""Writes Tests/TrainingTests/Fixtures/train_optim.json: ten steps of torch.optim.AdamW on small f32
tensors, for OptimizerGoldenTests.

Setup, as lorad's trainer runs a LoRA+ adapter: three tensors (an "A" [4, 6], a "B" [5, 4], a "bias"
[7]) in two parameter groups (A and bias at lr 1e-2, B at lr 1e-2 × 4, the LoRA+ ratio), weight decay
0.05 and 0.0 per group, betas (0.9, 0.95), eps 1e-8; before each step the gradients (drawn from a
seeded numpy generator, scaled so that some steps exceed the norm and some do not) are clipped with
torch.nn.utils.clip_grad_norm_(max_norm=1.0); the learning rate follows
transformers.get_cosine_schedule_with_warmup(warmup 3, total 10), stepped after each optimiser step.
A second run uses get_linear_schedule_with_warmup(2, 10) and betas (0.3, 0.999) (lerp's other branch).

The file holds the initial parameters, every step's gradients (before clipping), the norm clip_grad_norm_
returned, each group's learning rate used by the step, and the parameters after each step. All
numbers are f32 values written exactly (a double that is the f32 value).

Run:  /work/venv-train/bin/python scripts/goldens/train_optim.py
(any Python with torch, transformers and numpy). Deterministic: rerunning gives the same file.
"""
import json
import os

import numpy as np
import torch
from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures", "train_optim.json")
SHAPES = [("A", (4, 6)), ("B", (5, 4)), ("bias", (7,))]
STEPS = 10


def f32list(t):
    return [float(x) for x in t.detach().numpy().astype(np.float32).reshape(-1)]


def run(name, schedule, betas, seed):
    rng = np.random.default_rng(seed)
    params = [torch.nn.Parameter(torch.tensor(rng.standard_normal(shape).astype(np.float32))) for _, shape in SHAPES]
    initial = [f32list(p) for p in params]
    groups = [
        {"params": [params[0], params[2]], "lr": 1e-2, "weight_decay": 0.05},
        {"params": [params[1]], "lr": 1e-2 * 4, "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, betas=betas, eps=1e-8, foreach=False)
    sched = schedule(opt)
    steps = []
    for step in range(STEPS):
        # Steps 0, 3, 6, 9 have small gradients (norm < 1: not clipped), the others large ones.
        scale = 0.05 if step % 3 == 0 else 0.8
        grads = [(rng.standard_normal(shape) * scale).astype(np.float32) for _, shape in SHAPES]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
        lrs = [g["lr"] for g in opt.param_groups]
        opt.step()
        sched.step()
        steps.append({"gradients": [[float(x) for x in g.reshape(-1)] for g in grads], "norm": float(norm),
                      "lr": lrs, "params": [f32list(p) for p in params]})
    return {"name": name, "betas": list(betas), "initial": initial, "steps": steps}


def main():
    runs = [
        run("cosine", lambda o: get_cosine_schedule_with_warmup(o, num_warmup_steps=3, num_training_steps=STEPS), (0.9, 0.95), 17),
        run("linear-low-beta1", lambda o: get_linear_schedule_with_warmup(o, num_warmup_steps=2, num_training_steps=STEPS), (0.3, 0.999), 18),
    ]
    out = {"torch": torch.__version__, "shapes": [list(s) for _, s in SHAPES], "names": [n for n, _ in SHAPES],
           "groups": [{"tensors": [0, 2], "lr": 1e-2, "weight_decay": 0.05}, {"tensors": [1], "lr": 4e-2, "weight_decay": 0.0}],
           "eps": 1e-8, "max_norm": 1.0, "runs": runs}
    with open(OUT, "w") as f:
        json.dump(out, f, indent=None, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
