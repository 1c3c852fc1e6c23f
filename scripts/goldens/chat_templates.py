#!/usr/bin/env python3
# Writes Tests/ChatTemplateTests/Fixtures/chat_templates.json: chat templates rendered by jinja2 exactly
# as transformers' apply_chat_template renders them (environment in hf_jinja.py; variables messages,
# tools=None, documents=None, add_generation_prompt, bos_token, eos_token), for several conversations
# with and without the generation prompt. Templates: SmolLM2's own (read from the model's GGUF
# `tokenizer.chat_template` with gguf.GGUFReader), the built-ins lorad ships (ChatML, Llama-3, Gemma;
# the test checks lorad's copies are these exact strings), and a multi-line test template using
# namespace(), raise_exception, loop variables, tojson and whitespace control. Renders that jinja2
# refuses (raise_exception, undefined errors) are stored as errors. For the SmolLM2 and ChatML renders
# the file also holds llama.cpp's token ids (llama-cpp-python, vocab_only, special=True, no BOS), which
# the tokenizer tests check. Finally, templates lorad must reject, with the expected error text.
#
# Run: PY=$(scripts/goldens/venv) && "$PY" scripts/goldens/chat_templates.py [path/to/model.gguf]
# (default model: models/SmolLM2-135M-Instruct.Q4_1.gguf)
import json
import os
import sys

import gguf
import jinja2
import llama_cpp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_jinja  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "ChatTemplateTests", "Fixtures", "chat_templates.json")
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

# Published templates (tokenizer_config.json "chat_template"); `\n` is the Jinja escape.
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)

# Not a published template: exercises what the simple ones do not (multi-line layout with
# whitespace control, namespace state across loops, loop filters and variables, tojson, errors).
TOOLS_TEST = """{#- lorad test template: not any model's -#}
{%- set ns = namespace(system='', turns=0) -%}
{%- if messages | length == 0 -%}
    {{- raise_exception('at least one message is required') -}}
{%- endif -%}
{%- for message in messages -%}
    {%- if message.role == 'system' -%}
        {%- if not loop.first -%}
            {{- raise_exception('the system message must come first') -}}
        {%- endif -%}
        {%- set ns.system = message.content | trim -%}
    {%- endif -%}
{%- endfor -%}
{{- bos_token -}}
{%- if ns.system or tools -%}
<|system|>
{{ ns.system }}
{%- if tools %}

You can call these tools:
{% for tool in tools %}
- {{ tool.function.name }}: {{ tool | tojson }}
{% endfor %}
{%- endif %}
<|end|>
{% endif -%}
{%- for message in messages if message.role != 'system' -%}
    {%- set ns.turns = ns.turns + 1 -%}
    {%- if message.role not in ['user', 'assistant'] -%}
        {{- raise_exception('unknown role: ' ~ message.role) -}}
    {%- endif %}
<|{{ message.role }}|> (turn {{ loop.index }}/{{ loop.length }}{{ ', last' if loop.last }})
{{ message.content }}
<|end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|assistant|>
{% endif -%}
{{- '(' ~ ns.turns ~ ' turns)' if ns.turns > 2 -}}
"""

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "now", "description": "The time, \"exactly\"", "parameters": {}}},
]

SPECIAL = ("Line one\nLine two\n\n  indented \"double\" and 'single' quotes, \u2014 \u00fcn\u00efc\u00f6d\u00e9 "
           "\u65e5\u672c\u8a9e \U0001F916, template-like {{ x }} {% if %} {# c #}, a fake <|im_end|> and \\n, tab\there  ")

CONVERSATIONS = [
    ("user only", [{"role": "user", "content": "Hi"}]),
    ("system and user", [{"role": "system", "content": "You are a pirate."},
                         {"role": "user", "content": "Who are you?"}]),
    ("multi-turn with system", [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "What is 2+2?"},
                                {"role": "assistant", "content": "4"},
                                {"role": "user", "content": "And 3+3?"}]),
    ("multi-turn without system", [{"role": "user", "content": "Hello!"},
                                   {"role": "assistant", "content": "  Hi there. How can I help?  "},
                                   {"role": "user", "content": "Tell me a joke."}]),
    ("special characters", [{"role": "user", "content": SPECIAL}]),
    ("ends with assistant", [{"role": "user", "content": "Say hi"},
                             {"role": "assistant", "content": "hi"}]),
    ("empty conversation", []),
    ("two user turns in a row", [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]),
    ("late system message", [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]),
    ("empty content", [{"role": "user", "content": ""}]),
]

# Templates lorad must refuse (valid Jinja outside its subset) and the text its error must contain.
REJECTED = [
    {
        "name": "macro (as in Hermes-style tool templates)",
        "template": "{%- macro format_turn(m) -%}<|{{ m.role }}|>{{ m.content }}{%- endmacro -%}"
                    "{%- for m in messages %}{{ format_turn(m) }}{% endfor %}",
        "lorad_rejects": "'{% macro %}'",
    },
    {
        "name": "sorted tools",
        "template": "{% for t in tools | sort(attribute='function.name') %}{{ t.function.name }}{% endfor %}",
        "lorad_rejects": "the filter 'sort'",
    },
    {
        "name": "str.format",
        "template": "{% for m in messages %}{{ '<|{}|>{}'.format(m.role, m.content) }}{% endfor %}",
        "lorad_rejects": "the string method 'format'",
    },
]


def model_template(path):
    reader = gguf.GGUFReader(path)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def main():
    smollm2 = model_template(MODEL)
    vocab = llama_cpp.Llama(model_path=MODEL, vocab_only=True, verbose=False)
    templates = [
        # name, source, bos, eos, tokenize with SmolLM2?
        ("smollm2", smollm2, "<|im_start|>", "<|im_end|>", True),
        ("chatml", CHATML, "", "", True),
        ("llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>", False),
        ("gemma", GEMMA, "<bos>", "<eos>", False),
        ("tools-test", TOOLS_TEST, "<s>", "</s>", False),
    ]
    out_templates = []
    renders = []
    for name, source, bos, eos, tokenize in templates:
        out_templates.append({"name": name, "source": source, "bos_token": bos, "eos_token": eos})
        for conv_name, messages in CONVERSATIONS:
            for add_generation_prompt in (True, False):
                variants = [({}, "")]
                if name == "tools-test":
                    variants.append(({"tools": TOOLS}, " with tools"))
                for extra, suffix in variants:
                    context = {"messages": messages, "tools": None, "documents": None,
                               "add_generation_prompt": add_generation_prompt, "bos_token": bos, "eos_token": eos}
                    context.update(extra)
                    result = hf_jinja.render(source, context)
                    entry = {"template": name, "conversation": conv_name + suffix, "messages": messages,
                             "add_generation_prompt": add_generation_prompt, "extra": extra, **result}
                    if tokenize and "text" in result:
                        entry["ids"] = vocab.tokenize(result["text"].encode("utf-8"), add_bos=False, special=True)
                    renders.append(entry)
    for r in REJECTED:
        r.update(hf_jinja.render(r["template"], {"messages": CONVERSATIONS[2][1], "tools": TOOLS,
                                                  "add_generation_prompt": True}))
    fixture = {
        "generator": "scripts/goldens/chat_templates.py",
        "jinja2": jinja2.__version__,
        "llama_cpp_python": llama_cpp.__version__,
        "model": os.path.basename(MODEL),
        "templates": out_templates,
        "renders": renders,
        "rejected": REJECTED,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum(1 for r in renders if "error" in r)
    print(f"wrote {OUT}: {len(renders)} renders ({errors} refused by the template), {len(REJECTED)} rejected templates")


if __name__ == "__main__":
    main()
