#!/usr/bin/env python3
"""The registry under a running daemon: cold-load latency, activation latency, and throughput with
2,000 registered adapters of which 64 are resident.

Usage: bench/registry_scale.py [--lorad .build/release/lorad] [--model M] [--threads 2]
                               [--rounds 10] [--registered 2000] [--resident 64] [--seconds 20]
                               [--clients 8] [--work DIR]

1. Cold load: a rank-16 PEFT adapter on all seven projections of SmolLM2 (random f32 weights, as PEFT
   saves them), time to first token of a streamed request when the adapter is not in memory (unloaded
   just before through POST /v1/adapters/NAME/unload) against the same request when it is resident.
   The prefix cache is off, so both run the whole prompt. Goal: cold within 50 ms of warm.
2. Activation: POST /v1/adapters/NAME/activate of a resident adapter to a version never loaded (the
   daemon answers after its rescan has loaded and swapped it in), and between two resident versions;
   and `lorad adapter activate` from the command line, timed until GET /v1/adapters/NAME shows the new
   served version (file-system events, no signal).
3. Scale: requests from --clients threads round-robin over --resident adapters (all loaded first),
   16 tokens each, for --seconds; once with only those adapters registered, once with --registered
   (the rest are copies of a published version under other names, hard-linked, never requested).
   Rounds alternate A, B, A, B (--scale-rounds pairs). Goal (S-LoRA's claim): throughput flat.

Needs numpy (pip install numpy) for the random adapters. Builds its registry under --work (default: a
temporary directory, removed at the end).
"""
import argparse, json, os, shutil, statistics, struct, subprocess, sys, tempfile, threading, time

from lorad_http import UnixConnection, call

import numpy as np

HIDDEN, KV, FFN, LAYERS = 576, 192, 1536, 30
SHAPES = {  # target: (in, out) of SmolLM2-135M
    "self_attn.q_proj": (HIDDEN, HIDDEN), "self_attn.k_proj": (HIDDEN, KV), "self_attn.v_proj": (HIDDEN, KV),
    "self_attn.o_proj": (HIDDEN, HIDDEN), "mlp.gate_proj": (HIDDEN, FFN), "mlp.up_proj": (HIDDEN, FFN),
    "mlp.down_proj": (FFN, HIDDEN),
}


def write_peft(directory, rank, seed):
    """A PEFT LoRA directory: rank `rank` on all seven projections, f32, lora_alpha = 2·rank."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    tensors = []
    for layer in range(LAYERS):
        for target, (fan_in, fan_out) in SHAPES.items():
            key = f"base_model.model.model.layers.{layer}.{target}"
            tensors.append((key + ".lora_A.weight", rng.standard_normal((rank, fan_in), dtype=np.float32) * 0.02))
            tensors.append((key + ".lora_B.weight", rng.standard_normal((fan_out, rank), dtype=np.float32) * 0.02))
    header, offset = {}, 0
    for name, t in tensors:
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(directory, "adapter_model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, t in tensors:
            f.write(t.tobytes())
    config = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0, "bias": "none",
              "target_modules": [t.split(".")[1] for t in SHAPES], "task_type": "CAUSAL_LM",
              "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "fan_in_fan_out": False}
    with open(os.path.join(directory, "adapter_config.json"), "w") as f:
        json.dump(config, f)


def clone_version(root, source, name):
    """`name` as a copy of `source`'s published v1: hard-linked files, the manifest under the new name."""
    src, dst = os.path.join(root, source, "v1"), os.path.join(root, name, "v1")
    os.makedirs(dst)
    for f in os.listdir(src):
        if f == "lorad.json":
            m = json.load(open(os.path.join(src, f)))
            m["name"] = name
            json.dump(m, open(os.path.join(dst, f), "w"))
        else:
            os.link(os.path.join(src, f), os.path.join(dst, f))
    os.symlink("v1", os.path.join(root, name, "current"))


class Daemon:
    def __init__(self, a, work, registry, tag, extra=""):
        self.sock = os.path.join(work, f"{tag}.sock")
        config = os.path.join(work, f"{tag}.toml")
        with open(config, "w") as f:
            f.write(f'[model]\npath = "{os.path.abspath(a.model)}"\nthreads = {a.threads}\n\n'
                    f'[adapters]\ndir = "{registry}"\ncache_bytes = "8GiB"\n{extra}\n\n'
                    f'[server]\nsocket = "{self.sock}"\n\n[engine]\nprefix_cache = false\n\n[log]\nlevel = "warning"\n')
        self.log = open(os.path.join(work, f"{tag}.log"), "w")
        started = time.perf_counter()
        self.p = subprocess.Popen([a.lorad, "serve", "--config", config], stdout=self.log, stderr=self.log)
        for _ in range(1200):
            if os.path.exists(self.sock):
                try:
                    if call(self.sock, "GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
            if self.p.poll() is not None:
                raise SystemExit(f"lorad exited: see {self.log.name}")
            time.sleep(0.05)
        self.start_seconds = time.perf_counter() - started

    def stop(self):
        self.p.terminate()
        self.p.wait(60)


def ttft(sock, model, question):
    body = {"model": model, "stream": True, "temperature": 0, "max_tokens": 2,
            "messages": [{"role": "user", "content": question}]}
    c = UnixConnection(sock)
    started = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise SystemExit(f"{model}: {r.status} {r.read()!r}")
    first = None
    for line in r:
        line = line.strip()
        if first is None and line.startswith(b"data: ") and line != b"data: [DONE]":
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - started
    c.close()
    return first


def throughput(sock, names, clients, seconds):
    counter, lock = [0], threading.Lock()
    done = {"requests": 0, "tokens": 0, "errors": 0}
    stop_at = time.perf_counter() + seconds

    def client():
        while time.perf_counter() < stop_at:
            with lock:
                name = names[counter[0] % len(names)]
                counter[0] += 1
            status, data = call(sock, "POST", "/v1/chat/completions", {
                "model": name, "temperature": 0, "max_tokens": 16, "ignore_eos": True,
                "messages": [{"role": "user", "content": f"Tell tenant {name} about its order."}]})
            with lock:
                if status == 200:
                    done["requests"] += 1
                    done["tokens"] += json.loads(data)["usage"]["completion_tokens"]
                else:
                    done["errors"] += 1

    started = time.perf_counter()
    ts = [threading.Thread(target=client) for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - started
    return done["requests"] / elapsed, done["tokens"] / elapsed, done["errors"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lorad", default=".build/release/lorad")
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--registered", type=int, default=2000)
    ap.add_argument("--resident", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--scale-rounds", type=int, default=3)
    ap.add_argument("--work")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="lorad-registry-bench-")
    os.makedirs(work, exist_ok=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"CPU {cpu}, {os.cpu_count()} cores, {a.threads} threads; work in {work}", flush=True)
    try:
        # The adapters: --resident distinct rank-16 adapters published through the CLI (v1), and one
        # second version for the activation test.
        small = os.path.join(work, "registry-small")
        sources = os.path.join(work, "sources")
        names = [f"t{i:04d}" for i in range(a.resident)]
        for i, name in enumerate(names):
            src = os.path.join(sources, name)
            write_peft(src, 16, seed=i)
            subprocess.run([a.lorad, "adapter", "import", name, src, "--adapters", small, "--model", a.model],
                           check=True, stdout=subprocess.DEVNULL)
        for v in range(2, a.rounds + 3):   # versions 2 .. rounds+2 of the first adapter, for the activation test
            write_peft(os.path.join(sources, f"v{v}"), 16, seed=10_000 + v)
            subprocess.run([a.lorad, "adapter", "import", names[0], os.path.join(sources, f"v{v}"), "--adapters", small,
                            "--model", a.model, "--no-activate"], check=True, stdout=subprocess.DEVNULL)
        size = os.path.getsize(os.path.join(small, names[0], "v1", "adapter_model.safetensors"))
        print(f"adapters: rank 16 on q, k, v, o, gate, up, down of {LAYERS} layers, {size / 2**20:.1f} MiB f32 each", flush=True)

        # 1 and 2: cold load and activation, on the small registry.
        d = Daemon(a, work, small, "latency")
        try:
            name = names[1]
            ttft(d.sock, "base", "warm-up")
            cold, warm = [], []
            for i in range(a.rounds):
                status, data = call(d.sock, "POST", f"/v1/adapters/{name}/unload")
                assert status == 200, data
                cold.append(ttft(d.sock, name, f"Question {i}: where is my order?"))
                warm.append(ttft(d.sock, name, f"Question {i}: where is my order?"))
            status, data = call(d.sock, "GET", f"/v1/adapters/{name}")
            shown = json.loads(data)
            metrics = call(d.sock, "GET", "/metrics")[1].decode()
            value = lambda key: float(next(l.split()[-1] for l in metrics.splitlines() if l.startswith(key + " ")))
            loads = value("lorad_adapter_load_seconds_count")
            print(f"cold load: resident bytes {shown['bytes'] / 2**20:.1f} MiB (f32 modules + kernel copy); the daemon's own "
                  f"load time (lorad_adapter_load_seconds) averages {value('lorad_adapter_load_seconds_sum') / loads * 1000:.1f} ms "
                  f"over {loads:.0f} loads")
            print(f"time to first token, {a.rounds} rounds: warm median {statistics.median(warm) * 1000:.1f} ms, "
                  f"cold median {statistics.median(cold) * 1000:.1f} ms, "
                  f"cold - warm {(statistics.median(cold) - statistics.median(warm)) * 1000:.1f} ms")
            print("  warm: " + ", ".join(f"{x * 1000:.1f}" for x in warm))
            print("  cold: " + ", ".join(f"{x * 1000:.1f}" for x in cold))

            # Activation: to a version never loaded (published beforehand, not active), so the rescan
            # loads it before the daemon answers; then back and forth between resident versions.
            hot = names[0]
            ttft(d.sock, hot, "warm-up")
            fresh, api = [], []
            for i in range(a.rounds):
                time.sleep(0.3)   # past the previous change's file event (100 ms settle) and its rescan
                started = time.perf_counter()
                status, data = call(d.sock, "POST", f"/v1/adapters/{hot}/activate", {"version": 3 + i})
                fresh.append(time.perf_counter() - started)
                assert status == 200, data
            for i in range(a.rounds):
                time.sleep(0.3)
                started = time.perf_counter()
                status, data = call(d.sock, "POST", f"/v1/adapters/{hot}/activate", {"version": 2 if i % 2 == 0 else 1})
                api.append(time.perf_counter() - started)
                assert status == 200, data
            cli = []
            for i in range(a.rounds):
                target = 1 if i % 2 == 0 else 2
                started = time.perf_counter()
                subprocess.run([a.lorad, "adapter", "activate", hot, str(target), "--adapters", small], check=True,
                               stdout=subprocess.DEVNULL)
                while json.loads(call(d.sock, "GET", f"/v1/adapters/{hot}")[1]).get("served_version") != target:
                    time.sleep(0.005)
                cli.append(time.perf_counter() - started)
            print(f"activation through the admin API, answered once served: a new version (loaded by the rescan) median "
                  f"{statistics.median(fresh) * 1000:.1f} ms, a resident version median {statistics.median(api) * 1000:.1f} ms")
            print(f"activation with `lorad adapter activate` until GET shows it served (file events, no signal): median "
                  f"{statistics.median(cli) * 1000:.1f} ms")
        finally:
            d.stop()

        # 3: scale. The big registry: the same adapters plus clones under other names.
        big = os.path.join(work, "registry-big")
        shutil.copytree(small, big, copy_function=os.link, symlinks=True)
        for i in range(a.resident, a.registered):
            clone_version(big, names[i % a.resident], f"c{i:04d}")
        results = {"A": [], "B": []}
        for rnd in range(a.scale_rounds):
            for tag, registry in (("A", small), ("B", big)):
                d = Daemon(a, work, registry, f"scale-{tag}-{rnd}")
                try:
                    for name in names:
                        status, data = call(d.sock, "POST", f"/v1/adapters/{name}/load")
                        assert status == 200, data
                    throughput(d.sock, names, a.clients, 3)   # warm-up
                    rps, tps, errors = throughput(d.sock, names, a.clients, a.seconds)
                    registered = len([x for x in os.listdir(registry) if not x.startswith(".")])
                    results[tag].append(tps)
                    print(f"  round {rnd} {tag}: {registered} registered, {len(names)} resident: {rps:.2f} req/s, "
                          f"{tps:.1f} tok/s, {errors} errors; daemon ready in {d.start_seconds:.2f} s", flush=True)
                finally:
                    d.stop()
        ma, mb = statistics.median(results["A"]), statistics.median(results["B"])
        print(f"throughput over {a.resident} resident adapters: {a.resident} registered {ma:.1f} tok/s, "
              f"{a.registered} registered {mb:.1f} tok/s, ratio {mb / ma:.3f}")
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
