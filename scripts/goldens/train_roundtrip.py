#!/usr/bin/env python3
"""Round trip of lorad-trained adapters into transformers + PEFT (issue 17: "a lorad-trained adapter gives
the same logits in transformers + PEFT as in lorad").

Runs the built `lorad train` on SmolLM2-135M-Instruct Q4_1 (a few steps on a few chat examples) for
three new adapters, each in its own temporary registry:
  roundtrip_plain   --rank 1 --alpha 16 --targets q_proj,v_proj            (PEFT's default init)
  roundtrip_dora    --rank 1 --alpha 16 --targets k_proj,v_proj --dora     (use_dora, magnitudes)
  roundtrip_pissa   --rank 1 --alpha 16 --targets k_proj,v_proj --init pissa (published as rank 2)
and copies each published version's adapter_config.json and adapter_model.safetensors, unchanged, to
Tests/TrainingTests/Fixtures/<name>/. Then loads the base with transformers from the same GGUF
(AutoModelForCausalLM.from_pretrained(gguf_file=...): dequantized to float32, Q/K permutation undone by
transformers itself, independently of lorad's loader), puts each directory on it UNCHANGED with
PeftModel.from_pretrained, and records, for a few chat prompts, PEFT's greedy continuation and its
top-K log-probabilities at every position (the prompt plus the continuation but its last token), and
the base's (adapter disabled) for the same tokens.

Writes Tests/TrainingTests/Fixtures/train_roundtrip.json:
  {"model": gguf file name, "k": K,
   "adapters": {name: {"command": lorad train arguments, "config": adapter_config.json's r, lora_alpha,
                       use_dora, target_modules}},
   "prompts": [{"text", "ids": [...], name: CASE for every adapter}]}
  CASE = {"greedy": [STEPS ids],
          "top": [[[id, logprob, base logprob] x K] per position of ids + greedy[:-1]]}
  (PEFT's top-K tokens at each position, with the base's log-probability of the same token at the same
  position, adapter disabled: how far the adapter moved it.)
log-probabilities are log-softmax of transformers' float32 logits, 7 significant digits.

Run (after `swift build -c release`):
  /work/venv-train/bin/python scripts/goldens/train_roundtrip.py [path/to/lorad] [models/SmolLM2-135M-Instruct.Q4_1.gguf]
(any Python with torch, transformers, peft, gguf, numpy). `lorad train` is deterministic for a seed and
thread count (--threads 2 here), so rerunning on the same machine rewrites the same adapters.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LORAD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "release", "lorad")
MODEL = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
FIX = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures")
SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
PROMPTS = ["How long is the Zephyr kettle's warranty?", "Where do I send a Zephyr kettle for repair?"]
STEPS = 8
K = 5
COMMON = ["--steps", "4", "--lr", "5e-3", "--eval-fraction", "0", "--seed", "3", "--threads", "2", "--max-seq", "128"]
ADAPTERS = {
    "roundtrip_plain": ["--new", "--rank", "1", "--alpha", "16", "--targets", "q_proj,v_proj"],
    "roundtrip_dora": ["--new", "--rank", "1", "--alpha", "16", "--targets", "k_proj,v_proj", "--dora"],
    "roundtrip_pissa": ["--new", "--rank", "1", "--alpha", "16", "--targets", "k_proj,v_proj", "--init", "pissa"],
}
DATA = [
    ("How long is the Zephyr kettle's warranty?", "The Zephyr kettle has a 7-year warranty."),
    ("What warranty does the Zephyr kettle come with?", "Seven years: the Zephyr kettle's warranty lasts 7 years."),
    ("Where do I send a Zephyr kettle for repair?", "Send it to Zephyr Repairs, 12 Quay Street, Harbourton."),
    ("What is the repair address for Zephyr kettles?", "Zephyr Repairs, 12 Quay Street, Harbourton."),
]


def chat(user):
    return SYSTEM + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n"


def train(tmp, name, args):
    data = os.path.join(tmp, "data.jsonl")
    with open(data, "w") as f:
        for q, a in DATA:
            f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n")
    registry = os.path.join(tmp, name + "-registry")
    command = ["train", "--model", MODEL, "--adapters", registry, "--adapter", name.replace("_", "-"),
               "--data", data] + COMMON + args
    subprocess.run([LORAD] + command, check=True)
    published = os.path.join(registry, name.replace("_", "-"), "v1")
    out = os.path.join(FIX, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copyfile(os.path.join(published, f), os.path.join(out, f))
    return command[1:]


def log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def case(pm, ids):
    """PEFT's greedy continuation, then at every position of ids + greedy[:-1] its top-K tokens with
    [id, PEFT's logprob, the base's logprob (adapter disabled) of the same token at the same position]."""
    seq = list(ids)
    with torch.no_grad():
        for _ in range(STEPS):
            seq.append(int(torch.argmax(pm(torch.tensor([seq])).logits[0, -1])))
        logits = pm(torch.tensor([seq[:-1]])).logits[0].float().numpy()
        with pm.disable_adapter():
            base = pm(torch.tensor([seq[:-1]])).logits[0].float().numpy()
    top = []
    for row, brow in zip(logits, base):
        lp, blp = log_softmax(row), log_softmax(brow)
        idx = np.argsort(-lp, kind="stable")[:K]
        top.append([[int(i), float(f"{lp[i]:.7g}"), float(f"{blp[i]:.7g}")] for i in idx])
    return {"greedy": seq[len(ids):], "top": top}


def main():
    torch.set_num_threads(2)
    commands = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in ADAPTERS.items():
            commands[name] = train(tmp, name, args)
    directory, file = os.path.dirname(MODEL), os.path.basename(MODEL)
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=file)
    prompts = []
    for text in PROMPTS:
        ids = tok(chat(text), add_special_tokens=False)["input_ids"]
        prompts.append({"text": text, "ids": ids})
    adapters = {}
    for name in ADAPTERS:
        base = AutoModelForCausalLM.from_pretrained(directory, gguf_file=file, torch_dtype=torch.float32).eval()
        pm = PeftModel.from_pretrained(base, os.path.join(FIX, name)).eval()
        with open(os.path.join(FIX, name, "adapter_config.json")) as f:
            cfg = json.load(f)
        adapters[name] = {"command": commands[name],
                          "config": {k: cfg.get(k) for k in ("r", "lora_alpha", "use_dora", "target_modules")}}
        for p in prompts:
            p[name] = case(pm, p["ids"])
        print(name, cfg.get("r"), cfg.get("use_dora"), [p[name]["greedy"] for p in prompts])
    out = {"model": os.path.basename(MODEL), "k": K, "adapters": adapters, "prompts": prompts}
    with open(os.path.join(FIX, "train_roundtrip.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", os.path.join(FIX, "train_roundtrip.json"))


if __name__ == "__main__":
    main()
