#!/usr/bin/env python3
# Writes Tests/ChatTemplateTests/Fixtures/jinja_cases.json: small Jinja templates (whitespace control,
# trim_blocks/lstrip_blocks, literals, operators, scoping, loops, filters, tests, errors) rendered by
# jinja2 in the environment transformers uses for chat templates (see hf_jinja.py). lorad's Jinja
# interpreter must produce the same text, or fail where jinja2 fails. Cases marked "lorad_rejects" are
# valid Jinja outside lorad's subset: jinja2's output is recorded, and lorad must refuse them with an
# "unsupported" error containing that text instead of rendering something.
#
# The file also holds randomly generated cases (fixed seeds; "fuzz": true): templates mixing text,
# whitespace and tags with every whitespace-control modifier, random expressions over the context, and
# string operations on random Unicode text. For those, lorad may refuse where jinja2 renders only with an
# "unsupported" error or when slicing something that is not a sequence (jinja2 folds constant slices
# through its sandbox and prints ""; lorad fails instead), never render different text.
#
# Run: PY=$(scripts/goldens/venv) && "$PY" scripts/goldens/jinja_cases.py
import copy
import json
import os
import random
import sys

import jinja2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_jinja  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "ChatTemplateTests", "Fixtures", "jinja_cases.json")

# 2024-07-26 12:00:00 UTC: "%d %b %Y" gives the same date in every time zone within +-11 hours.
NOW = 1721995200

# Every case is rendered with this context (JSON-representable, no floats that look like ints).
CONTEXT = {
    "xs": [1, 2, 3],
    "words": ["b", "a", "c"],
    "e": [],
    "d": {"a": 1, "b": "two", "items": "shadowed"},
    "m": {"role": "user", "content": "  hi  "},
    "s": "h\u00e9llo w\u00f6rld",
    "combining": "e\u0301t\u00e9",
    "n": None,
    "t": True,
    "f": 0.5,
    "w": "Hello World",
    "big": 9007199254740993,
    "msgs": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
    ],
    "tools": [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"city": {"type": "string"}}}},
        {"type": "function", "function": {"name": "search", "parameters": {}}},
    ],
}

CASES = [
    # --- whitespace: trim_blocks, lstrip_blocks, -, +, comments, raw, newlines
    ("trim_blocks removes the newline after a block", "a\n{% if true %}\nb\n{% endif %}\nc"),
    ("lstrip_blocks removes indentation before a block", "x\n    {% if true %}\n    y\n    {% endif %}\nz"),
    ("lstrip_blocks keeps text before a block on the same line", "x {% if true %}y{% endif %} z"),
    ("variables are not stripped", "  {{ 'a' }}\n  {{ 'b' }}\n"),
    ("minus strips all whitespace around", "a  \n {%- if true -%} \n b \n {%- endif -%}\n  c"),
    ("minus on variables", "a \n {{- 'b' -}} \n c"),
    ("minus after a variable then an indented block", "{{ 'a' -}}\n    {% if true %}b{% endif %}"),
    ("plus keeps indentation and the newline", "  {%+ if true +%}\nx\n  {%+ endif %}\ny"),
    ("comment lines are removed entirely", "a\n  {# note #}\nb\n{# two\nlines #}\nc"),
    ("comment with minus", "a   {#- c -#}   b"),
    ("block at the very start after indentation", "   {% if true %}x{% endif %}"),
    ("block after a block end that ate the newline", "{% if true %}\n   {% if true %}y{% endif %}\n{% endif %}"),
    ("tabs and ideographic space count as whitespace", "a\n\t\u3000{% if true %}b{% endif %}"),
    ("one trailing newline is dropped", "abc\n"),
    ("only one trailing newline is dropped", "abc\n\n"),
    ("CRLF and CR become LF", "a\r\nb\rc{% if true %}\r\nd{% endif %}\r\n"),
    ("raw blocks are verbatim", "{% raw %}{{ x }} {% if %}{% endraw %}!"),
    ("raw with whitespace control", "a  {%- raw -%}  {{ y }}  {%- endraw -%}  b"),
    ("lone braces are text", "{ } }} {x} %} #}"),
    ("minus directly after the opening brace is whitespace control", "a {{-1}} b"),
    ("block end in a string does not end the tag", "{{ '%}' ~ \"}}\" }}"),
    ("braces inside an expression", "{{ {'a': {'b': 1}}['a'] }}"),
    ("else branch lines", "{% for x in e %}\nitem\n{% else %}\n  none\n{% endfor %}\n"),
    ("indented loop body", "<ul>\n  {% for x in xs %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n"),
    # --- literals and printing
    ("integers", "{{ 42 }} {{ 0 }} {{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ -7 }}"),
    ("floats", "{{ 1.5 }} {{ 1e3 }} {{ 1.5e-7 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }}"),
    ("float printing", "{{ 1/3 }} {{ 2.0 }} {{ 100.0 }} {{ -0.0 }} {{ 2**0.5 }} {{ 1e22 }} {{ 123456789.125 }} {{ f }}"),
    ("string escapes", "{{ 'a\\tb\\\\c\\'d\\x41\\u00e9\\101\\q' }}|{{ \"x\\\"y\" }}|{{ 'a' 'b' \"c\" }}"),
    ("constants", "{{ true }} {{ True }} {{ false }} {{ none }} {{ None }} {{ n }} {{ t }}"),
    ("lists dicts tuples print as Python repr", "{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }} {{ (1, 2) }} {{ (1,) }} {{ () }}"),
    ("string repr quoting", "{{ [\"it's\", 'say \"hi\"', \"both ' and \\\"\", 'tab\\there', 'nl\\n', '\\x00\\x7f', '\u00e9\u200b'] }}"),
    ("undefined prints empty", "[{{ nothing }}][{{ d.missing }}][{{ xs[10] }}][{{ n.attr }}]"),
    ("print statement", "{% print 'a', 1 %}"),
    # --- operators and precedence
    ("arithmetic", "{{ 7 + 3 }} {{ 7 - 10 }} {{ 6 * 7 }} {{ 7 / 2 }} {{ 8 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
    ("float arithmetic", "{{ 7.5 // 2 }} {{ -7.5 // 2 }} {{ 7.5 % 2 }} {{ -7.5 % 2 }} {{ 1 + 0.5 }} {{ true + 1 }}"),
    ("string and list operators", "{{ 'ab' + 'cd' }} {{ 'ab' * 3 }} {{ 2 * 'x' }} {{ [1] + [2, 3] }} {{ [0] * 3 }} {{ 'x' * 0 }}"),
    ("tilde concatenates str()", "{{ 'a' ~ 1 ~ none ~ true ~ 1.5 ~ nothing ~ [1] }}"),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 'a' ~ (1 + 2) }} {{ 2 * 3 ~ 4 }} {{ 10 - 2 - 3 }}"),
    ("tilde binds tighter than plus", "{{ 'a' ~ 1 + 2 }}"),
    ("filters bind tighter than operators", "{{ m.content | trim + '!' }} {{ -3 | abs }} {{ 'a' ~ ' b ' | trim }}"),
    ("comparisons chain", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ none == none }} {{ 1 != 2 }}"),
    ("in and not in", "{{ 'ell' in 'hello' }} {{ '' in 'x' }} {{ 2 in xs }} {{ 5 not in xs }} {{ 'a' in d }} {{ 1 in d }} {{ 'x' in nothing }}"),
    ("and or return operands", "[{{ 0 or 'x' }}][{{ '' and 'y' }}][{{ none or [] }}][{{ 'a' and 'b' }}][{{ nothing or 'd' }}]"),
    ("not binds looser than is", "{{ not nothing is defined }} {{ not 1 == 2 }} {{ not xs }} {{ not e }}"),
    ("inline if", "[{{ 'a' if true else 'b' }}][{{ 'a' if false else 'b' }}][{{ 'a' if false }}][{{ 1 if 0 else 2 if 0 else 3 }}]"),
    ("undefined equality", "{{ nothing == nothing }} {{ nothing == none }} {{ nothing != 1 }} {{ d.zz == nothing }}"),
    # --- access
    ("attribute vs item on dicts", "{{ d.a }} {{ d['b'] }} {{ d['items'] }} {{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }}"),
    ("dict methods", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}"),
    ("indexes and negative indexes", "{{ xs[0] }} {{ xs[-1] }} {{ s[1] }} {{ s[-1] }} {{ msgs[1]['role'] }} {{ msgs[-1].content }} {{ xs.1 }}"),
    ("slices", "{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ xs[10:] }} {{ xs[-100:2] }} {{ s[1:4] }} {{ s[::-1] }} {{ msgs[1:] | length }}"),
    ("code points not characters", "{{ combining | length }} {{ combining[0] }}|{{ combining[1] }}|{{ combining[::-1] }} {{ combining | list }}"),
    ("nested access", "{{ tools[0].function.name }} {{ tools[0]['function']['parameters']['city']['type'] }} {{ tools | map(attribute='function.name') | list }}"),
    # --- string methods
    ("strip family", "[{{ '  a b  '.strip() }}][{{ 'xxaxx'.strip('x') }}][{{ '  a '.lstrip() }}][{{ '  a  '.rstrip() }}][{{ '\\n\\t a\\u3000'.strip() }}]"),
    ("split", "{{ ' a  b c '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(none, 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'a b'.split(' ', maxsplit=0) }} {{ ''.split() }} {{ ''.split(',') }}"),
    ("startswith endswith", "{{ 'hello'.startswith('he') }} {{ 'hello'.startswith(('x', 'h')) }} {{ 'hello'.endswith('lo') }} {{ 'hello'.endswith('') }}"),
    ("case methods", "{{ 'Hello World'.upper() }} {{ 'Hello World'.lower() }} {{ 'hello wORLD'.title() }} {{ 'hELLO'.capitalize() }} {{ 'stra\u00dfe'.upper() }} {{ '\u039f\u0394\u039f\u03a3'.lower() }}"),
    ("replace find count join", "{{ 'aaa'.replace('a', 'b', 2) }} {{ 'abc'.replace('', '-') }} {{ 'hello'.find('l') }} {{ 'hello'.find('z') }} {{ 'banana'.count('an') }} {{ '-'.join(['a', 'b']) }} {{ 'prefix-x'.removeprefix('prefix-') }}"),
    ("methods on message content", "{% set c = '<think>x</think>answer' %}{{ c.split('</think>')[-1] }}|{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}"),
    # --- loops
    ("loop variables", "{% for x in words %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ x }};{% endfor %}"),
    ("previtem nextitem cycle", "{% for x in xs %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.cycle('odd', 'even') }}]{% endfor %}"),
    ("nested loops have their own loop", "{% for i in xs %}{{ loop.index }}({% for j in words %}{{ loop.index }}{% endfor %}){{ loop.index }} {% endfor %}"),
    ("loop over dict string and items", "{% for k in d %}{{ k }},{% endfor %}|{% for c in 'ab\u00e9' %}{{ c }}.{% endfor %}|{% for k, v in d | items %}{{ k }}:{{ v }} {% endfor %}"),
    ("loop filter counts only kept items", "{% for x in xs if x > 1 %}{{ loop.index }}/{{ loop.length }}={{ x }} {% endfor %}"),
    ("for else", "{% for x in e %}x{% else %}empty{% endfor %}|{% for x in xs if x > 5 %}x{% else %}none left{% endfor %}"),
    ("tuple unpacking", "{% for a, b in [[1, 2], (3, 4)] %}{{ a }}{{ b }}{% endfor %} {% set p, q = 'xy' %}{{ q }}{{ p }}"),
    ("break and continue", "{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}|{% for x in xs %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
    ("range", "{% for i in range(3) %}{{ i }}{% endfor %} {{ range(2, 10, 3) | list }} {{ range(5, 0, -2) | list }} {{ range(3) | length }} {{ range(3) }} {{ range(0) | list }}"),
    ("loop over undefined is empty", "{% for x in nothing %}x{% else %}nothing{% endfor %}"),
    # --- scoping
    ("set in loop does not leak", "{% set x = 1 %}{% for i in xs %}{{ x }}{% set x = i * 10 %}{{ x }} {% endfor %}{{ x }}"),
    ("set in loop resets each iteration", "{% for i in xs %}{% if i == 1 %}{% set y = 5 %}{% endif %}[{{ y }}]{% endfor %}"),
    ("set in if is visible", "{% if true %}{% set z = 3 %}{% endif %}{{ z }}"),
    ("namespace carries state out of loops", "{% set ns = namespace(total=0, names='') %}{% for m in msgs %}{% set ns.total = ns.total + 1 %}{% set ns.names = ns.names ~ m.role[0] %}{% endfor %}{{ ns.total }} {{ ns.names }} {{ ns.missing }}"),
    ("namespace repr and dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns }} {{ ns.a }} {{ ns['b'] }} {{ dict(x=1, y=[2]) }}"),
    ("set reassigns context variables", "{{ msgs | length }}{% set msgs = msgs[1:] %}{{ msgs | length }}{{ msgs[0].role }}"),
    ("set block", "{% set greeting %}Hello {{ m.role }}!{% endset %}[{{ greeting }}]{% set loud | upper %}hi {{ 1 + 1 }}{% endset %}[{{ loud }}]"),
    ("defined then set", "{{ x is defined }}{% set x = 1 %}{{ x is defined }}"),
    ("generation tag renders its body", "a{% generation %}b{{ 1 }}{% endgeneration %}c"),
    # --- filters
    ("default", "[{{ nothing | default('dflt') }}][{{ n | default('dflt') }}][{{ '' | default('dflt', true) }}][{{ 0 | d('z', boolean=true) }}][{{ 'v' | default('dflt') }}][{{ nothing | default }}]"),
    ("length and count", "{{ xs | length }} {{ s | length }} {{ d | count }} {{ nothing | length }} {{ '' | length }} {{ e | length }}"),
    ("first and last", "{{ xs | first }} {{ xs | last }} {{ 'abc' | first }} {{ d | first }} {{ d | last }} [{{ e | first }}] [{{ e | last }}]"),
    ("join", "{{ xs | join }} {{ xs | join(', ') }} {{ msgs | join('|', attribute='role') }} {{ [1, none, 'a'] | join('-') }}"),
    ("map", "{{ msgs | map(attribute='role') | list }} {{ words | map('upper') | join }} {{ msgs | map(attribute='name', default='?') | list }} {{ ['1', '22'] | map('int') | list }}"),
    ("select and reject", "{{ xs | select('odd') | list }} {{ xs | reject('odd') | list }} {{ [0, 1, '', 'a', none] | select | list }} {{ xs | select('greaterthan', 1) | list }} {{ xs | select('in', [1, 3]) | list }}"),
    ("selectattr and rejectattr", "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ msgs | rejectattr('role', 'eq', 'system') | list | length }} {{ tools | selectattr('function.parameters') | list | length }}"),
    ("generators are used up", "{% set g = xs | select('odd') %}{{ g | list }}{{ g | list }}{{ g | first }}"),
    ("items filter", "{{ d | items | list }} {{ nothing | items | list }}"),
    ("reverse", "{{ xs | reverse | list }} {{ 'abc' | reverse }} {{ d | reverse | list }} {{ xs | select('odd') | reverse }}"),
    ("list and string", "{{ 'ab' | list }} {{ d | list }} {{ xs | string }} {{ none | string }} {{ (1, 'a') | list }}"),
    ("case filters", "{{ 'hELLO wORLD' | capitalize }} {{ 'hello big-world (x)' | title }} {{ 'Mixed' | upper }} {{ 'Mixed' | lower }} {{ nothing | upper }}|"),
    ("trim and replace", "[{{ '  x  ' | trim }}][{{ '--x--' | trim('-') }}][{{ 'aaa' | replace('a', 'b') }}][{{ 'aaa' | replace('a', 'b', 1) }}][{{ 1.5 | replace('.', ',') }}]"),
    ("int and float filters", "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ '0x1A' | int(0, 16) }} {{ 3.9 | int }} {{ ' 12 ' | int }} {{ '1_000' | int }} {{ '2.5' | float }} {{ 'abc' | float }} {{ 3 | float }} {{ '1e3' | float }}"),
    ("abs", "{{ -3 | abs }} {{ -2.5 | abs }} {{ true | abs }}"),
    ("indent", "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}"),
    ("tojson", "{{ {'a': [1, 2.5, none, true], 'b': 'x\"y\\\\z\\n\\t\\u00e9\\x01'} | tojson }}"),
    ("tojson indent", "{{ {'a': [1, {'b': []}], 'c': {}} | tojson(indent=2) }}\n{{ [1, [2]] | tojson(indent='\\t') }}"),
    ("tojson options", "{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ ['\u00e9', '\U0001F600'] | tojson(ensure_ascii=true) }} {{ {'a': 1, 'b': 2} | tojson(separators=(',', ':')) }}"),
    ("tojson keys and floats", "{{ {1: 'a', true: 'b', none: 'c', 2.5: 'd'} | tojson }} {{ [1e16, 0.1, -0.0, 1.0] | tojson }} {{ tools[0] | tojson }}"),
    # --- tests
    ("type tests", "{{ 'a' is string }} {{ 1 is string }} {{ 1 is number }} {{ 1.5 is number }} {{ 1 is integer }} {{ 1.5 is float }} {{ true is boolean }} {{ true is integer }} {{ d is mapping }} {{ xs is mapping }}"),
    ("defined and none tests", "{{ nothing is defined }} {{ nothing is undefined }} {{ n is none }} {{ n is defined }} {{ nothing is none }} {{ n is not none }}"),
    ("iterable and sequence tests", "{{ xs is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ d is sequence }} {{ xs is sequence }} {{ nothing is iterable }} {{ xs | select is iterable }} {{ xs | select is sequence }}"),
    ("number tests with bare arguments", "{{ 3 is odd }} {{ 3 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 2 is eq 2 }} {{ 2 is ne 2 }} {{ 3 is gt 2 }} {{ 'a' is in 'abc' }} {{ 2 is in xs }}"),
    ("true false lower upper sameas callable", "{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'aB' is lower }} {{ n is sameas none }} {{ d.get is callable }} {{ 'x' is callable }}"),
    ("filter and test tests", "{{ 'trim' is filter }} {{ 'nope' is filter }} {{ 'odd' is test }}"),
    # --- globals
    ("raise_exception message", "{% if true %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}"),
    ("strftime_now", "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m') }}"),
    # --- errors jinja2 raises too
    ("attribute of undefined", "{{ nothing.attr }}"),
    ("item of an empty list then key", "{{ e[0]['role'] }}"),
    ("adding str and int", "{{ 'a' + 1 }}"),
    ("adding undefined", "{{ nothing + 1 }}"),
    ("ordering str and int", "{{ 'a' < 1 }}"),
    ("division by zero", "{{ 1 / 0 }}"),
    ("modulo by zero", "{{ 1 % 0 }}"),
    ("length of a generator", "{{ xs | select('odd') | length }}"),
    ("last of a generator", "{{ xs | select('odd') | last }}"),
    ("calling a string", "{{ 'a'() }}"),
    ("calling undefined", "{{ nothing() }}"),
    ("unknown filter", "{{ 1 | nosuchfilter }}"),
    ("unknown test", "{{ 1 is nosuchtest }}"),
    ("unclosed block", "{% if true %}x"),
    ("stray end tag", "x{% endif %}"),
    ("unknown tag", "{% frobnicate %}"),
    ("missing in", "{% for x xs %}{% endfor %}"),
    ("unbalanced parenthesis", "{{ (1 + 2 }}"),
    ("unclosed variable", "{{ 1 + 2"),
    ("unterminated string", "{{ 'abc }}"),
    ("missing end of comment", "a {# never closed"),
    ("assign to loop", "{% for loop in xs %}{% endfor %}"),
    ("assign attribute on non-namespace", "{% set d.a = 1 %}"),
    ("unpack too many", "{% set a, b = [1, 2, 3] %}"),
    ("iterate a number", "{% for x in 5 %}{% endfor %}"),
    ("list append is forbidden", "{{ xs.append(4) }}"),
    ("tojson of undefined", "{{ nothing | tojson }}"),
    ("in with wrong types", "{{ 1 in 'abc' }}"),
    ("split with empty separator", "{{ 'abc'.split('') }}"),
    ("break outside a loop", "{% break %}"),
    ("chained is", "{{ 1 is odd is odd }}"),
    ("positional after keyword", "{{ 'a' | default(boolean=true, 'x') }}"),
    ("range too big", "{{ range(200000) | length }}"),
]

# Valid Jinja that lorad does not implement: lorad must fail with "unsupported" naming the construct.
REJECTED = [
    ("macro", "{% macro hi(name) %}Hi {{ name }}{% endmacro %}{{ hi('x') }}", "'{% macro %}'"),
    ("include", "{% include 'other.jinja' %}", "'{% include %}'"),
    ("safe filter", "{{ '<b>' | safe }}", "the filter 'safe'"),
    ("sort filter", "{{ words | sort }}", "the filter 'sort'"),
    ("printf formatting", "{{ '%s!' % 'hi' }}", "printf-style"),
    ("str.format", "{{ '{}!'.format('hi') }}", "the string method 'format'"),
    ("cycler", "{% set c = cycler('a', 'b') %}{{ c.next() }}", "the global 'cycler'"),
    ("recursive loop", "{% for x in xs recursive %}{{ x }}{% endfor %}", "recursive"),
    ("with block", "{% with a = 1 %}{{ a }}{% endwith %}", "'{% with %}'"),
    ("filter block", "{% filter upper %}x{% endfilter %}", "'{% filter %}'"),
    ("star args", "{{ dict(*[]) }}", "'*args'"),
    ("loop.changed", "{% for x in xs %}{{ loop.changed(x) }}{% endfor %}", "loop.changed"),
    ("big integers", "{{ 2 ** 64 }}", "integers beyond 64 bits"),
]


# --- random cases

TEXTS = ["", " ", "  ", "\n", "\n\n", " \n", "\n  ", "\t", "x", " x ", "a\n b", "\n\t \n", "y\n"]
FUZZ_EXPRS = ["1", "'s'", "xs", "xs[0]", "d.a", "d['b']", "n", "nothing", "xs|length", "'a' ~ 1", "1 + 2 * 3", "-1",
              "xs|join(',')", "d|tojson", "m.content|trim", "[1,2][1:]", "s.upper()", "1.5", "7 // 2", "none is none",
              "'x' in 'xyz'", "(1,2)", "{'k': 1}"]
FUZZ_CONDS = ["true", "false", "xs", "e", "n is none", "nothing is defined", "1 < 2", "d.a == 1", "not xs"]


def whitespace_template(rng):
    def sign():
        return rng.choice(["", "", "-", "+"])

    def vsign():
        return rng.choice(["", "", "-"])

    def block(depth):
        parts = []
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            parts.append(rng.choice(TEXTS))
            if r < 0.35:
                parts.append("{{" + vsign() + " " + rng.choice(FUZZ_EXPRS) + " " + vsign() + "}}")
            elif r < 0.5 and depth < 3:
                parts.append("{%" + sign() + " if " + rng.choice(FUZZ_CONDS) + " " + sign() + "%}" + block(depth + 1)
                             + ("{%" + sign() + " else " + sign() + "%}" + block(depth + 1) if rng.random() < 0.4 else "")
                             + "{%" + sign() + " endif " + sign() + "%}")
            elif r < 0.65 and depth < 3:
                parts.append("{%" + sign() + " for v in " + rng.choice(["xs", "e", "'ab'", "d", "range(2)"]) + " "
                             + sign() + "%}" + block(depth + 1) + "{{ v }}{%" + sign() + " endfor " + sign() + "%}")
            elif r < 0.75:
                parts.append("{#" + sign() + " c " + sign() + "#}")
            elif r < 0.85:
                parts.append("{%" + sign() + " set q = " + rng.choice(FUZZ_EXPRS) + " " + sign() + "%}{{ q }}")
        return "".join(parts)

    return block(0) + rng.choice(["", "\n", "\n\n", " \n"])


ATOMS = ["0", "1", "2", "-3", "7", "2.5", "0.1", "-0.0", "1e3", "'a'", "'B c'", "''", "' x '", "'\u00e9'", "'10'",
         "'3.5'", "none", "true", "false", "xs", "e", "d", "s", "nothing", "[1, 'a']", "(1,)", "{'k': 2}", "n", "f", "w"]
BINOPS = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or", "**"]
FILTERS = ["length", "first", "last", "trim", "upper", "lower", "default('D')", "default('D', true)", "join('-')", "list",
           "string", "int", "float", "abs", "reverse|list", "tojson", "replace('a', 'Z')", "capitalize", "title",
           "select('odd')|list", "map('string')|list", "items|list", "count", "d", "trim('x')", "int(5)"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "odd", "even", "iterable", "mapping",
         "sequence", "boolean", "true", "false", "lower", "upper", "divisibleby 2", "in [1, 'a']", "eq 1", "gt 1"]
METHODS = [".upper()", ".lower()", ".strip()", ".split()", ".split('a')", ".startswith('a')", ".endswith('c')",
           ".replace('a', 'b')", ".title()", ".capitalize()", ".find('b')", ".count('a')", ".get('k')",
           ".items()|list", ".keys()|list", ".values()|list", "[0]", "[-1]", "[1:]", "[::-1]", "[:2]", ".a", "['k']",
           ".k"]


def expression_template(rng):
    def expr(depth):
        r = rng.random()
        if depth > 3 or r < 0.3:
            return rng.choice(ATOMS)
        if r < 0.55:
            return "(" + expr(depth + 1) + " " + rng.choice(BINOPS) + " " + expr(depth + 1) + ")"
        if r < 0.7:
            return "(" + expr(depth + 1) + "|" + rng.choice(FILTERS) + ")"
        if r < 0.8:
            return "(" + expr(depth + 1) + " is " + rng.choice(["", "not "]) + rng.choice(TESTS) + ")"
        if r < 0.9:
            return "(" + expr(depth + 1) + ")" + rng.choice(METHODS)
        if r < 0.95:
            return "(not " + expr(depth + 1) + ")"
        return "(" + expr(depth + 1) + " if " + expr(depth + 1) + " else " + expr(depth + 1) + ")"

    return "{{ " + expr(0) + " }}"


CHARS = list("aAzZ09 _-,.:'") + ["\t", "\n", "\r", "\x0b", "\x1c", "\x1f", "\x85", "\u00a0", "\u2028", "\u3000",
                                 "\u200b", "\u00df", "\u03a3", "\u03c3", "\u0130", "\u01c5", "\u0301", "\U0001F600",
                                 "\u0661", "\uff11", "\u00e9", "\u1e9e", "\ufb01", "\u0149", "\u1f80", "\u2160",
                                 "\x00", "\x7f", "\ue000", "\\", "\""]
STRING_OPS = [".upper()", ".lower()", ".title()", ".capitalize()", ".strip()", ".lstrip()", ".rstrip()", ".split()",
              ".split(' ')", ".rsplit(None, 1)", ".split(None, 2)", "|upper", "|lower", "|title", "|capitalize", "|trim",
              "|length", "|list", "|reverse", "|tojson", "|tojson(ensure_ascii=true)", "|string", "|int", "|float",
              " is lower", " is upper", "[1:3]", "[::-1]", "[-2]", ".startswith('a')", ".find(' ')", ".count('a')",
              ".replace(' ', '_')", "|indent(1)", "|indent(2, true, true)", ".islower()", ".isupper()"]


def unicode_template(rng):
    """A string literal of random code points (some written raw, some as escapes) and one operation."""
    literal = ""
    for _ in range(rng.randint(0, 8)):
        c = rng.choice(CHARS)
        if c in ("\\", "\"", "\r") or (ord(c) < 0x20 and c != "\n") or rng.random() < 0.5 and ord(c) > 0x7E:
            literal += "\\u%04x" % ord(c) if ord(c) <= 0xFFFF else "\\U%08x" % ord(c)
        else:
            literal += c
    return '{{ ["' + literal + '"' + rng.choice(STRING_OPS) + "] }}"


FUZZ = [("whitespace", whitespace_template, 400), ("expression", expression_template, 600),
        ("unicode", unicode_template, 400)]


def main():
    cases = []
    for name, template in CASES:
        result = hf_jinja.render(template, copy.deepcopy(CONTEXT), now=NOW)
        cases.append({"name": name, "template": template, **result})
    for name, template, expected in REJECTED:
        result = hf_jinja.render(template, copy.deepcopy(CONTEXT), now=NOW)
        cases.append({"name": name, "template": template, **result, "lorad_rejects": expected})
    for seed, (kind, make, count) in enumerate(FUZZ, start=1):
        rng = random.Random(seed)
        for i in range(count):
            template = make(rng)
            # A fresh copy: jinja2's indent filter extends a list argument in place.
            result = hf_jinja.render(template, copy.deepcopy(CONTEXT), now=NOW)
            cases.append({"name": f"random {kind} {i}", "template": template, **result, "fuzz": True})
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    fixture = {
        "generator": "scripts/goldens/jinja_cases.py",
        "jinja2": jinja2.__version__,
        "now": NOW,
        "context": CONTEXT,
        "cases": cases,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")
    errors = sum(1 for c in cases if "error" in c)
    print(f"wrote {OUT}: {len(cases)} cases ({errors} jinja2 errors)")


if __name__ == "__main__":
    main()
