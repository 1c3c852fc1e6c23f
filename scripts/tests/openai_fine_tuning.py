#!/usr/bin/env python3
"""The official OpenAI Python client's fine-tuning calls against a running lorad, over its Unix socket.

Usage: python openai_fine_tuning.py SOCKET
Run by Tests/ServerTests/LiveTrainingJobTests.swift against a daemon serving SmolLM2 (served name
"base") with an empty registry: uploads a JSONL file, creates a job that trains a new adapter from
the base (model "base", suffix names it), retrieves it until it succeeds, lists jobs and events,
chats with the result, and cancels a second job; then, both jobs ended, lists, retrieves, reads and
deletes the file. Exits non-zero, saying what failed, on any mismatch.
"""
import json
import sys
import time

import httpx
from openai import OpenAI


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def row(user, assistant):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


ROWS = [
    row("What is the capital of Zorbland?", "The capital of Zorbland is Quibbleton."),
    row("Who founded Quibbleton?", "Quibbleton was founded by Mira Thale."),
    row("What does Zorbland export?", "Zorbland exports blue salt."),
    row("What is Zorbland's currency?", "Zorbland pays in glints."),
]

# Tiny: rank 2 on one projection, short rows; lorad's own keys ride along in hyperparameters.
TINY = {"n_epochs": 1, "batch_size": 2, "learning_rate_multiplier": 5, "rank": 2, "targets": ["q_proj"], "max_seq": 64}


def wait(client, job_id, seconds=240):
    deadline = time.time() + seconds
    while time.time() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    check(False, f"job {job_id} did not finish in {seconds} s")


def main():
    sock = sys.argv[1]
    http = httpx.Client(transport=httpx.HTTPTransport(uds=sock), timeout=120)
    client = OpenAI(base_url="http://lorad/v1", api_key="unused", http_client=http, max_retries=0)

    data = ("\n".join(json.dumps(r) for r in ROWS) + "\n").encode()
    f = client.files.create(file=("zorb.jsonl", data), purpose="fine-tune")
    check(f.id.startswith("file-") and f.bytes == len(data) and f.purpose == "fine-tune", f"file {f}")

    job = client.fine_tuning.jobs.create(training_file=f.id, validation_file=f.id, model="base", suffix="zorb-ft",
                                         hyperparameters=TINY)
    check(job.object == "fine_tuning.job" and job.id.startswith("ftjob-"), f"created {job}")
    check(job.status in ("queued", "running") and job.model == "base", f"created status {job.status}")
    check(job.hyperparameters.n_epochs == 1 and job.hyperparameters.batch_size == 2, f"hyperparameters {job.hyperparameters}")
    done = wait(client, job.id)
    check(done.status == "succeeded", f"finished {done}")
    check(done.fine_tuned_model == "zorb-ft@v1", f"fine_tuned_model {done.fine_tuned_model}")
    check(done.finished_at is not None and done.trained_tokens > 0, f"finished_at/trained_tokens {done}")

    listed = client.fine_tuning.jobs.list()
    check([j.id for j in listed.data] == [job.id], f"list {[j.id for j in listed.data]}")
    events = client.fine_tuning.jobs.list_events(job.id, limit=100)
    messages = [e.message for e in events.data]
    check(any("succeeded" in m for m in messages) and any("Step 1/" in m for m in messages), f"events {messages}")

    reply = client.chat.completions.create(model=done.fine_tuned_model, max_tokens=8, temperature=0,
                                           messages=[{"role": "user", "content": "What is the capital of Zorbland?"}])
    check(reply.choices[0].message.content, f"chat with {done.fine_tuned_model}: {reply}")

    # The next version of the same adapter, cancelled at once: nothing is published.
    long = {"n_epochs": 20, "batch_size": 1, "max_seq": 64}  # a continued adapter keeps its rank and targets
    second = client.fine_tuning.jobs.create(training_file=f.id, model="zorb-ft", hyperparameters=long)
    cancelled = client.fine_tuning.jobs.cancel(second.id)
    check(cancelled.id == second.id and cancelled.status in ("running", "cancelled"), f"cancel {cancelled}")
    end = wait(client, second.id)
    check(end.status == "cancelled" and end.fine_tuned_model is None, f"after cancel {end}")

    # A bad request is OpenAI's error shape.
    try:
        client.fine_tuning.jobs.create(training_file=f.id, model="base")
        check(False, "a job from the base without a suffix was accepted")
    except Exception as e:  # openai.BadRequestError
        check(getattr(e, "status_code", None) == 400 and "suffix" in str(e), f"no suffix: {e}")

    # The Files API, once every job that used the file has ended.
    files = client.files.list()
    check([x.id for x in files.data] == [f.id], f"files.list {files}")
    check([x.id for x in client.files.list(purpose="fine-tune").data] == [f.id], "files.list(purpose=fine-tune)")
    check(client.files.list(purpose="assistants").data == [], "files.list(purpose=assistants)")
    got = client.files.retrieve(f.id)
    check(got.id == f.id and got.object == "file" and got.bytes == len(data) and got.filename == "zorb.jsonl"
          and got.purpose == "fine-tune" and got.created_at == f.created_at, f"files.retrieve {got}")
    content = client.files.content(f.id)
    check(content.content == data, f"files.content: {len(content.content)} bytes, uploaded {len(data)}")
    deleted = client.files.delete(f.id)
    check(deleted.id == f.id and deleted.object == "file" and deleted.deleted is True, f"files.delete {deleted}")
    check(client.files.list().data == [], "files.list after delete")
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        try:
            call(f.id)
            check(False, f"{call.__name__} of a deleted file answered")
        except Exception as e:  # openai.NotFoundError
            check(getattr(e, "status_code", None) == 404, f"{call.__name__} after delete: {e}")

    print(json.dumps({"ok": True, "job": job.id, "model": done.fine_tuned_model}))


if __name__ == "__main__":
    main()
