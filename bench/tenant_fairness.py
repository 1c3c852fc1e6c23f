#!/usr/bin/env python3
"""A quiet tenant's time to first token while a busy tenant floods the daemon (issue 18).

Starts `lorad serve` with two tenants: "busy" (held to --busy-max-running of the engine's --slots by
its `max_running`) and "quiet". First quiet's TTFT on the idle daemon (--repetitions requests, one
after another); then --busy-clients threads ask for long answers as busy without pause (all but
four unstreamed, to keep the client's own CPU use low; four stream, and their inter-token latency
is recorded), so busy always has requests running and queued, and quiet's TTFT is measured again
the same way. All of it twice: with engine.prefill_first = true (the default) and false. Prints
p50/p90/max of each and the ratios busy/idle (the issue: within 2x).

    python3 bench/tenant_fairness.py --lorad .build/release/lorad \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf

Standard library only. TTFT is request sent to the first content chunk of a streamed chat answer.
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time

from lorad_http import UnixConnection


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


class Daemon:
    def __init__(self, a, work, prefill_first):
        self.sock = os.path.join(work, "lorad.sock")
        config = os.path.join(work, "lorad.toml")
        os.makedirs(os.path.join(work, "adapters"), exist_ok=True)
        with open(config, "w") as f:
            f.write(f'[model]\npath = "{os.path.abspath(a.model)}"\nthreads = {a.threads}\n\n'
                    f'[adapters]\ndir = "{os.path.join(work, "adapters")}"\n\n'
                    f'[server]\nsocket = "{self.sock}"\n\n'
                    f'[engine]\nmax_sequences = {a.slots}\nprefix_cache = false\nprefill_first = {str(prefill_first).lower()}\n\n[log]\nlevel = "warning"\n\n'
                    f'[[tenants]]\nname = "busy"\ntoken_sha256 = "{sha("token-busy")}"\nbase = true\n'
                    f'max_running = {a.busy_max_running}\nmax_queued = 1000\n\n'
                    f'[[tenants]]\nname = "quiet"\ntoken_sha256 = "{sha("token-quiet")}"\nbase = true\n')
        self.log = open(os.path.join(work, "lorad.log"), "w")
        self.p = subprocess.Popen([a.lorad, "serve", "--config", config], stdout=self.log, stderr=self.log)
        for _ in range(1200):
            if os.path.exists(self.sock):
                try:
                    if self.request("GET", "/healthz", None, "token-quiet")[0] == 200:
                        return
                except OSError:
                    pass
            if self.p.poll() is not None:
                raise SystemExit(f"lorad exited: see {self.log.name}")
            time.sleep(0.05)
        raise SystemExit("lorad did not answer /healthz")

    def request(self, method, path, body, token):
        c = UnixConnection(self.sock)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def ttft(self, question, token, max_tokens=2, gaps=None):
        """Seconds to the first content chunk; with `gaps`, appends the seconds between later chunks."""
        body = {"model": "base", "stream": True, "temperature": 0, "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": question}]}
        c = UnixConnection(self.sock)
        started = time.perf_counter()
        c.request("POST", "/v1/chat/completions", body=json.dumps(body),
                  headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        r = c.getresponse()
        if r.status != 200:
            raise SystemExit(f"{token}: {r.status} {r.read()!r}")
        first = None
        last = None
        for line in r:
            line = line.strip()
            if line.startswith(b"data: ") and line != b"data: [DONE]" and (first is None or gaps is not None):
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    now = time.perf_counter()
                    if first is None:
                        first = now - started
                    elif gaps is not None:
                        gaps.append(now - last)
                    last = now
        c.close()
        return first

    def whole(self, question, token, max_tokens):
        return self.request("POST", "/v1/chat/completions",
                            {"model": "base", "temperature": 0, "max_tokens": max_tokens,
                             "messages": [{"role": "user", "content": question}]}, token)[0]

    def stop(self):
        self.p.terminate()
        self.p.wait(60)


QUESTIONS = ["What is a toaster?", "Name a color of the sky.", "What do bees make?", "Where is Paris?"]


def measure(d, n):
    out = []
    for i in range(n):
        t = d.ttft(QUESTIONS[i % len(QUESTIONS)], "token-quiet")
        if t is not None:
            out.append(t * 1000)
        time.sleep(0.05)
    return out


def summary(xs):
    xs = sorted(xs)
    return {"p50": statistics.median(xs), "p90": xs[int(0.9 * (len(xs) - 1))], "max": xs[-1], "n": len(xs)}


def scenario(a, prefill_first):
    with tempfile.TemporaryDirectory() as work:
        d = Daemon(a, work, prefill_first)
        try:
            measure(d, 3)  # warm-up
            idle = measure(d, a.repetitions)
            stop = threading.Event()
            gaps = []

            def flood(i):
                while not stop.is_set():
                    question = f"Tell a long story about a lighthouse, number {i}."
                    if i < 4:
                        d.ttft(question, "token-busy", a.busy_max_tokens, gaps)
                    else:
                        d.whole(question, "token-busy", a.busy_max_tokens)

            threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(a.busy_clients)]
            for t in threads:
                t.start()
            time.sleep(3)  # busy's requests running and queued
            gaps.clear()
            busy = measure(d, a.repetitions)
            itl = sorted(g * 1000 for g in gaps)
            stop.set()
            for t in threads:
                t.join(300)
        finally:
            d.stop()
    i, b = summary(idle), summary(busy)
    return {"prefill_first": prefill_first, "idle_ttft_ms": i, "busy_ttft_ms": b,
            "ratio_p50": b["p50"] / i["p50"], "ratio_p90": b["p90"] / i["p90"],
            "busy_itl_ms": {"p50": statistics.median(itl), "p99": itl[int(0.99 * (len(itl) - 1))], "n": len(itl)}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lorad", default=".build/release/lorad")
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slots", type=int, default=32, help="engine.max_sequences")
    ap.add_argument("--busy-max-running", type=int, default=28)
    ap.add_argument("--busy-clients", type=int, default=36, help="busy's concurrent requests (more than it may run)")
    ap.add_argument("--busy-max-tokens", type=int, default=96)
    ap.add_argument("--repetitions", type=int, default=20)
    a = ap.parse_args()

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    results = [scenario(a, True), scenario(a, False)]
    print(json.dumps({"cpu": cpu, "cpus": os.cpu_count(), "load_average": os.getloadavg(), "slots": a.slots,
                      "busy_max_running": a.busy_max_running, "busy_clients": a.busy_clients,
                      "busy_max_tokens": a.busy_max_tokens, "results": results}, indent=1))


if __name__ == "__main__":
    main()
