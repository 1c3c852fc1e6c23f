#!/usr/bin/env python3
"""The official OpenAI Python client against a running lorad, over its Unix socket.

Usage: python openai_client.py SOCKET
Run by Tests/ServerTests/LiveOpenAIClientTests.swift (in `make test`) against a daemon serving the tiny
chat model with adapters "alpha" and "beta". Exits non-zero, saying what failed, on any mismatch.
"""
import json
import sys

import httpx
import openai
from openai import OpenAI


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


def main():
    sock = sys.argv[1]
    http = httpx.Client(transport=httpx.HTTPTransport(uds=sock), timeout=60)
    client = OpenAI(base_url="http://lorad/v1", api_key="unused", http_client=http, max_retries=0)

    models = client.models.list()
    ids = [m.id for m in models.data]
    check(ids[:1] == ["base"] and {"alpha", "beta"} <= set(ids), f"models: {ids}")
    alpha = next(m for m in models.data if m.id == "alpha")
    check((alpha.model_extra or {}).get("parent") == "base", f"alpha's parent: {alpha.model_extra}")

    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
    whole = client.chat.completions.create(model="alpha", messages=messages, max_tokens=12, temperature=0)
    check(whole.object == "chat.completion", f"object {whole.object}")
    choice = whole.choices[0]
    check(choice.message.role == "assistant", "role")
    check(isinstance(choice.message.content, str) and choice.message.content, "content")
    check(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason}")
    check(whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0, f"usage {whole.usage}")
    check(whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens, "total_tokens")

    # Streaming gives the same greedy text, chunk by chunk, and usage at the end when asked.
    pieces, usage, finish = [], None, None
    for chunk in client.chat.completions.create(model="alpha", messages=messages, max_tokens=12, temperature=0,
                                                stream=True, stream_options={"include_usage": True}):
        check(chunk.object == "chat.completion.chunk", f"chunk object {chunk.object}")
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    check("".join(pieces) == choice.message.content, f"stream {''.join(pieces)!r} != whole {choice.message.content!r}")
    check(finish == choice.finish_reason, f"stream finish {finish}")
    check(usage is not None and usage.completion_tokens == whole.usage.completion_tokens, f"stream usage {usage}")

    # Chat logprobs.
    lp = client.chat.completions.create(model="beta", messages=messages, max_tokens=5, temperature=0,
                                        logprobs=True, top_logprobs=3)
    content = lp.choices[0].logprobs.content
    check(len(content) >= 1 and all(t.logprob <= 0 for t in content), "chat logprobs")
    check(all(len(t.top_logprobs) == 3 for t in content), "top_logprobs count")

    # Completions with echo and logprobs: prompt tokens scored, the first one unscored.
    comp = client.completions.create(model="beta", prompt="Hello there", max_tokens=4, temperature=0, echo=True,
                                     logprobs=2)
    text = comp.choices[0].text
    check(text.startswith("Hello there"), f"echo: {text!r}")
    lps = comp.choices[0].logprobs
    check(lps.token_logprobs[0] is None, "first prompt token must have no logprob")
    check(all(v is not None and v <= 0 for v in lps.token_logprobs[1:]), f"token_logprobs {lps.token_logprobs}")
    check(len(lps.tokens) == comp.usage.prompt_tokens + comp.usage.completion_tokens,
          f"{len(lps.tokens)} logprob tokens for {comp.usage.prompt_tokens}+{comp.usage.completion_tokens}")
    check(len(lps.text_offset) == len(lps.tokens) and lps.text_offset[0] == 0, "text_offset")

    # Errors map to the client's exception types.
    try:
        client.chat.completions.create(model="nope", messages=messages)
        check(False, "unknown model accepted")
    except openai.NotFoundError:
        pass
    try:
        client.chat.completions.create(model="alpha", messages=messages, temperature=7)
        check(False, "temperature 7 accepted")
    except openai.BadRequestError as e:
        check(e.body.get("param") == "temperature", f"param {e.body}")

    print(json.dumps({"ok": True, "models": ids, "text": choice.message.content}))


if __name__ == "__main__":
    main()
