#!/usr/bin/env python3
"""Writes Tests/TrainingTests/Fixtures/train_data_smollm2.json: training examples rendered and masked
by an implementation independent of lorad's, for TrainingDataGoldenTests.

For each case: the JSONL line lorad reads, the token ids and the loss mask (1 = trained target).
- Chat lines are rendered with SmolLM2's own chat template (read from the GGUF by transformers'
  GGUF loader) through jinja2 in transformers' environment (hf_jinja.py), and tokenized by the HF
  `tokenizers` tokenizer transformers builds from the same GGUF, with SmolLM2's published
  pre-tokenizer (digits split first) put back (no BOS: add_special_tokens=False).
  The mask is found differently from lorad (which renders prefixes): here each message's ChatML turn
  "<|im_start|>ROLE\\nCONTENT<|im_end|>\\n" is located in the rendered text, and a token is trained
  when its character span (offset mapping) lies inside an assistant turn's "CONTENT<|im_end|>" and
  the turn's weight is not 0 (a token holding the header's "\n" and leading whitespace of the
  content is not trained).
- Prompt/completion lines: prompt and completion tokenized separately as plain text
  (split_special_tokens), EOS (<|im_end|>) appended; the completion and EOS are trained.

Run:  /work/venv-train/bin/python scripts/goldens/train_data.py [MODEL.gguf]
(any Python with transformers, tokenizers, gguf and jinja2; the model defaults to
models/SmolLM2-135M-Instruct.Q4_1.gguf). Deterministic: rerunning gives the same file.
"""
import json
import os
import sys

from tokenizers import pre_tokenizers
from transformers import AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_jinja  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "TrainingTests", "Fixtures", "train_data_smollm2.json")
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

# (name, example). Names say what each case exercises.
CASES = [
    ("single-turn-default-system", {"messages": [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."}]}),
    ("system-and-two-turns", {"messages": [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "Colour of the sky?"},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "And grass?"},
        {"role": "assistant", "content": "Green."}]}),
    ("weight-zero-first-turn", {"messages": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hello there, friend!", "weight": 0},
        {"role": "user", "content": "Again, shorter."},
        {"role": "assistant", "content": "Hi!", "weight": 1}]}),
    ("three-turns-unicode-newlines", {"messages": [
        {"role": "system", "content": "Tu es un assistant.\nRéponds en français."},
        {"role": "user", "content": "Bonjour !"},
        {"role": "assistant", "content": "Bonjour ! Comment puis-je vous aider ?\n\n- café\n- thé"},
        {"role": "user", "content": "Un café, s'il vous plaît. 3 × 4 = ?"},
        {"role": "assistant", "content": "  12, et voici votre café ☕ "},
        {"role": "user", "content": "Merci"},
        {"role": "assistant", "content": "De rien.\n"}]}),
    ("trailing-user-turn", {"messages": [
        {"role": "user", "content": "Count to three."},
        {"role": "assistant", "content": "1, 2, 3"},
        {"role": "user", "content": "Thanks"}]}),
    ("empty-assistant-content", {"messages": [
        {"role": "user", "content": "Say nothing."},
        {"role": "assistant", "content": ""}]}),
    ("code-and-json", {"messages": [
        {"role": "user", "content": "Write JSON for a point."},
        {"role": "assistant", "content": "```json\n{\"x\": 1, \"y\": -2.5}\n```"}]}),
    ("prompt-completion", {"prompt": "Translate to French: cheese =>", "completion": " fromage"}),
]


def chat_case(tok, template, example):
    messages = example["messages"]
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    rendered = hf_jinja.render(template, {"messages": plain, "add_generation_prompt": False,
                                          "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                                          "tools": None, "documents": None})
    text = rendered["text"]
    # Trained character spans: each assistant turn's CONTENT<|im_end|>.
    spans = []
    position = 0
    for m in messages:
        turn = "<|im_start|>" + m["role"] + "\n" + m["content"] + "<|im_end|>\n"
        at = text.index(turn, position)
        if m["role"] == "assistant" and m.get("weight", 1) == 1:
            start = at + len("<|im_start|>" + m["role"] + "\n")
            spans.append((start, start + len(m["content"]) + len("<|im_end|>")))
        position = at + len(turn)
    assert position == len(text), "text after the last turn"
    encoding = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoding["input_ids"], encoding["offset_mapping"]
    mask = []
    for (a, b) in offsets:
        inside = any(s <= a and b <= e for (s, e) in spans)
        # A token may hold the header's "\n" and the content's leading whitespace: not trained (it
        # straddles the span's start). Nothing can straddle its end, <|im_end|>.
        assert not any(a < e < b for (s, e) in spans), f"token {a}:{b} straddles a span's end"
        mask.append(1 if inside else 0)
    return text, ids, mask


def completion_case(tok, example):
    prompt = tok(example["prompt"], add_special_tokens=False, split_special_tokens=True)["input_ids"]
    completion = tok(example["completion"], add_special_tokens=False, split_special_tokens=True)["input_ids"]
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    ids = prompt + completion + [eos]
    mask = [0] * len(prompt) + [1] * (len(completion) + 1)
    mask[0] = 0  # nothing predicts the first token
    return example["prompt"] + example["completion"], ids, mask


def main():
    directory, name = os.path.split(os.path.abspath(MODEL))
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    # transformers' GGUF converter gives the tokenizer GPT-2's pre-tokenizer alone; SmolLM2's own
    # tokenizer.json (and llama.cpp's "smollm" pre-tokenizer) split digits first, which matters when
    # whitespace precedes a digit ("\n  12"). Restore the published pre-tokenizer.
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    # Ids FORMATS.md §6.2 quotes from llama.cpp.
    assert tok("Hello world! 123", add_special_tokens=False)["input_ids"] == [19556, 905, 17, 216, 33, 34, 35]
    assert tok("  multiple   spaces", add_special_tokens=False)["input_ids"] == [216, 2701, 256, 5600]
    template = tok.chat_template
    assert tok.convert_tokens_to_ids("<|im_end|>") == 2
    cases = []
    for case_name, example in CASES:
        if "messages" in example:
            text, ids, mask = chat_case(tok, template, example)
        else:
            text, ids, mask = completion_case(tok, example)
        cases.append({"name": case_name, "line": json.dumps(example, ensure_ascii=False), "text": text,
                      "ids": ids, "mask": mask})
    with open(OUT, "w") as f:
        json.dump({"model": os.path.basename(MODEL), "cases": cases}, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
