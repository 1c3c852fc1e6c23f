#!/usr/bin/env python3
"""Single-stream decode speed through the daemon: the base model, an adapter on the low-rank path,
and the same adapter merged live (POST /v1/adapters/NAME/merge), in alternating rounds.

Usage: bench/merge_speed.py [--lorad .build/release/lorad] [--model M] [--adapters adapters]
                            [--adapter kaffeko] [--rounds 5] [--tokens 128]

Decode tok/s of one request = (completion tokens - 1) / (time of the last chunk - time of the first),
so the prompt and the first token's latency are not in it. Prints the median per variant and the
ratios merged/base and adapter/base. Standard library only.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

from lorad_http import UnixConnection, call


def decode_speed(sock, model, tokens):
    body = {"model": model, "stream": True, "temperature": 0, "max_tokens": tokens,
            "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]}
    c = UnixConnection(sock)
    c.request("POST", "/v1/chat/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    times = []
    for line in r:
        line = line.strip()
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                times.append(time.perf_counter())
    c.close()
    if len(times) < 2:
        raise SystemExit(f"{model}: fewer than 2 tokens streamed")
    return (len(times) - 1) / (times[-1] - times[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lorad", default=".build/release/lorad")
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--adapters", default="adapters")
    ap.add_argument("--adapter", default="kaffeko")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="lorad-merge-bench-")
    sock = os.path.join(tmp, "lorad.sock")
    log = open(os.path.join(tmp, "daemon.log"), "w")
    d = subprocess.Popen([a.lorad, "serve", "--model", a.model, "--adapters", a.adapters, "--socket", sock,
                          "--threads", str(a.threads), "--log-level", "warning"], stdout=log, stderr=log)
    try:
        for _ in range(600):
            if os.path.exists(sock):
                try:
                    if call(sock, "GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.1)
        figures = {"base": [], "adapter": [], "merged": []}
        decode_speed(sock, "base", 16)   # warm-up
        for _ in range(a.rounds):
            figures["base"].append(decode_speed(sock, "base", a.tokens))
            status, _ = call(sock, "DELETE", f"/v1/adapters/{a.adapter}/merge")
            figures["adapter"].append(decode_speed(sock, a.adapter, a.tokens))
            status, data = call(sock, "POST", f"/v1/adapters/{a.adapter}/merge")
            if status != 200:
                raise SystemExit(f"merge failed: {status} {data!r}")
            figures["merged"].append(decode_speed(sock, a.adapter, a.tokens))
        med = {k: statistics.median(v) for k, v in figures.items()}
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"CPU {cpu}, {a.threads} threads, {a.rounds} rounds of {a.tokens} tokens, adapter {a.adapter}")
        for k in ("base", "adapter", "merged"):
            print(f"{k:8s} median {med[k]:7.1f} tok/s   runs: " + ", ".join(f"{x:.1f}" for x in figures[k]))
        print(f"merged/base {med['merged'] / med['base']:.3f}   adapter/base {med['adapter'] / med['base']:.3f}")
    finally:
        d.terminate()
        d.wait(30)


if __name__ == "__main__":
    main()
