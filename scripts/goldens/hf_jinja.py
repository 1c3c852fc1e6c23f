# The jinja2 environment transformers renders chat templates in (shared by chat_templates.py and
# jinja_cases.py). Mirrors transformers' utils/chat_template_utils.py `_compile_jinja_template`:
# ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker,
# loopcontrols]) with `tojson` replaced by json.dumps(ensure_ascii=False, ...), and the globals
# raise_exception and strftime_now. The `{% generation %}` tag is reproduced without the index tracking.
import json
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` renders its body (transformers' AssistantTracker)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment(now=None):
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    clock = (lambda: datetime.fromtimestamp(now)) if now is not None else datetime.now
    env.globals["strftime_now"] = lambda fmt: clock().strftime(fmt)
    return env


def render(source, context, now=None):
    """Returns {"text": ...} or {"error": "<ExceptionType>: <message>"}."""
    try:
        return {"text": environment(now).from_string(source).render(**context)}
    except Exception as e:  # the fixture records what jinja2 raised
        return {"error": f"{type(e).__name__}: {e}"}
