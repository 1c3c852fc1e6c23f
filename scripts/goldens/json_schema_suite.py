# Writes Tests/GrammarTests/Fixtures/json_schema_suite.json: a deterministic sample of the public
# JSON Schema Test Suite (json-schema-org/JSON-Schema-Test-Suite, MIT licence), draft 2020-12, for
# issue 20's correctness tests (JSONSchemaSuiteTests). The suite is read from the sdist of Python's
# `jsonschema` on PyPI, which ships it under json/tests/ (pinned by version and sha256 below, so the
# sample is the same on every machine); the script downloads it with pip into a temporary folder,
# or reads the sdist, or the suite's unpacked tests/draft2020-12 folder, given as argv[1].
#
# Sampled: the files for the keywords lorad covers, every group whose schema uses only those
# keywords and annotations (nested $id, $anchor and the like excluded, since lorad resolves only
# "#..." pointers against the root), at most MAX_GROUPS. Each test keeps the suite's `valid` only
# where Python's jsonschema (Draft202012Validator with its format checker: date, date-time via
# rfc3339-validator, email, uuid) agrees; disagreements are dropped and counted in the printout.
#
# Per group the fixture also carries what lorad's documented policy (Sources/Grammar/
# JSONSchemaCompiler*.swift's header, docs/architecture.md's Grammar section) predicts, computed here
# by a small Python model of the compiler (`Lorad` below), so that the Swift test can be exact:
# - "expect_refused": the keyword the compiler refuses (with "expect_refused_error", the
#   JSONSchemaError case, and "expect_refused_pointer"); recursive $ref is not a refusal (the
#   context-free layer compiles it).
# - per valid test, "expect_accepted": whether the compact serialization is in lorad's language,
#   and "differs": the policy reason when it is not (key order, a type lorad infers from the
#   keywords, 1.0 for an integer, an unanchored pattern match, a format outside lorad's subset, ...).
# - per invalid test the model says lorad accepts, "known_gap" (also on its group): so far only
#   oneOf's documented gap (ONE_OF_GAP); the Swift test runs those as known issues.
# Per test: "json" (json.dumps(separators=(",", ":"), ensure_ascii=False)) and "pretty" (indent=2).
# The printout lists every suite-invalid instance the model says lorad would accept (a soundness
# gap), including those where jsonschema disagrees with the suite and which the fixture leaves out.
#
# Run from the repository root with the test environment:
#   "$(scripts/test-venv)" scripts/goldens/json_schema_suite.py [SDIST.tar.gz | SUITE_TESTS_DIR]
import datetime
import decimal
import hashlib
import json
import urllib.parse
import math
import os
import re
import subprocess
import sys
import tarfile
import tempfile

import jsonschema

SDIST = "jsonschema==4.25.1"
SDIST_FILE = "jsonschema-4.25.1.tar.gz"
SDIST_SHA256 = "e4a9655ce0da0c0b67a085847e00a3a51449e1157f4f75e9fb5aa545e122eb85"
SUITE_DIR = "jsonschema-4.25.1/json/tests/draft2020-12"
OUT = "Tests/GrammarTests/Fixtures/json_schema_suite.json"
MAX_GROUPS = 140

FILES = [
    "type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf",
    "oneOf", "allOf", "ref", "defs", "boolean_schema",
    "optional/format/date", "optional/format/date-time", "optional/format/email", "optional/format/uuid",
]

# --- lorad's compiler, as documented (JSONSchemaCompiler.swift) -------------------------------------

ANNOTATIONS = {"title", "description", "$comment", "examples", "default", "$schema", "$id", "$defs", "definitions",
               "deprecated", "readOnly", "writeOnly", "discriminator"}
TYPE_KEYWORDS = {
    "object": ["properties", "required", "additionalProperties"],
    "array": ["items", "minItems", "maxItems"],
    "string": ["minLength", "maxLength", "pattern", "format"],
    "integer": ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
    "number": ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
    "boolean": [],
    "null": [],
}
ALL_TYPES = ["object", "array", "string", "integer", "number", "boolean", "null"]
KNOWN = {k for ks in TYPE_KEYWORDS.values() for k in ks} | ANNOTATIONS | {"type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref"}
COMBINATORS = ["$ref", "anyOf", "oneOf", "allOf"]
REPETITION_LIMIT = 1000  # RegexParser.repetitionLimit
MAX_INTEGER = 10**18 - 1  # maxIntegerDigits = 18


class Refused(Exception):
    def __init__(self, error, keyword, pointer):
        super().__init__(f"{error} {keyword} at {pointer}")
        self.error, self.keyword, self.pointer = error, keyword, pointer


def esc(token):
    return token.replace("~", "~0").replace("/", "~1")


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def lorad_literal(value):
    """An enum/const value as JSONValue.serialized writes it (integral doubles below 1e15 as N.0)."""
    if isinstance(value, float) and value == math.floor(value) and abs(value) < 1e15:
        return f"{int(value)}.0"
    if isinstance(value, list):
        return "[" + ",".join(lorad_literal(x) for x in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(compact(k) + ":" + lorad_literal(v) for k, v in value.items()) + "}"
    return compact(value)


def has_type(value, t):
    """valueHasType: a schema value (enum/const member) and a type name."""
    if isinstance(value, bool):
        return t == "boolean"
    if value is None:
        return t == "null"
    if isinstance(value, int):
        return t in ("integer", "number")
    if isinstance(value, float):
        return t == "number" or (t == "integer" and value == math.floor(value))
    return {str: "string", list: "array", dict: "object"}[type(value)] == t


def same_json(a, b):
    """JSON equality as JSON Schema has it (1 == 1.0, but true is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return type(a) == type(b) and a == b


def nesting(value):
    if isinstance(value, list):
        return 1 + max((nesting(x) for x in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(x) for x in value.values()), default=0)
    return 0


DIGIT = r"[0-9]"
NUMBER_RE = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]+)?([eE][+-]?[0-9]{1,2})?")
INTEGER_RE = re.compile(r"-?(0|[1-9][0-9]*)")
DECIMAL_RE = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
HOUR, MINUTE = r"([01][0-9]|2[0-3])", r"[0-5][0-9]"
DATE_TIME_RE = re.compile(rf"([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})T{HOUR}:{MINUTE}:{MINUTE}(\.[0-9]{{1,6}})?(Z|[+-]{HOUR}:{MINUTE})")
EMAIL_RE = re.compile(r"[A-Za-z0-9_%+-]{1,20}(\.[A-Za-z0-9_%+-]{1,20}){0,2}@([A-Za-z0-9-]{1,63}\.){1,4}[A-Za-z]{2,24}")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_date(s):
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", s):
        return False
    try:
        return datetime.date.fromisoformat(s).year >= 1
    except ValueError:
        return False


def format_matches(fmt, s):
    if fmt == "date":
        return is_date(s)
    if fmt == "date-time":
        m = DATE_TIME_RE.fullmatch(s)
        return bool(m) and is_date(m.group(1))
    if fmt == "email":
        return bool(EMAIL_RE.fullmatch(s))
    return bool(UUID_RE.fullmatch(s))


class Lorad:
    """What JSONSchemaCompiler does with one schema: `check` raises Refused where it refuses,
    `rejects` says why an instance's compact serialization is outside its language (None: inside)."""

    def __init__(self, root):
        self.root = root

    def resolve(self, ref, pointer):
        # compileReference: '#' then an RFC 6901 pointer against the root, percent-decoded as a
        # URI fragment, tokens unescaped (~1, ~0).
        if not ref.startswith("#"):
            raise Refused("unresolvedReference", "$ref", pointer)
        path = urllib.parse.unquote(ref[1:])
        target = self.root
        if path:
            if not path.startswith("/"):
                raise Refused("unresolvedReference", "$ref", pointer)
            for raw in path[1:].split("/"):
                token = raw.replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and token in target:
                    target = target[token]
                elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                    target = target[int(token)]
                else:
                    raise Refused("unresolvedReference", "$ref", pointer)
        return target, path

    def types(self, s):
        constraints = [k for k in s if k not in ANNOTATIONS]
        if "type" in s:
            types = [s["type"]] if isinstance(s["type"], str) else list(s["type"])
        else:
            types = [t for t in ALL_TYPES if set(TYPE_KEYWORDS[t]) & set(constraints)] or list(ALL_TYPES)
        if "number" in types:
            types = [t for t in types if t != "integer"]
        return types, constraints

    def check(self, s, pointer="", expanding=()):
        if isinstance(s, bool):
            return
        for k in s:
            if k not in KNOWN:
                raise Refused("unsupported", k, pointer + "/" + esc(k))
        constraints = [k for k in s if k not in ANNOTATIONS]
        for c in COMBINATORS:
            if c not in s:
                continue
            other = [k for k in constraints if k != c]
            if other:
                raise Refused("unsupported", other[0], pointer + "/" + esc(other[0]))
            p = pointer + "/" + c
            if c == "$ref":
                if s[c] in expanding:
                    return  # recursion: the grammar layer compiles it
                target, path = self.resolve(s[c], p)
                return self.check(target, path, expanding + (s[c],))
            if c == "allOf" and len(s[c]) != 1:
                raise Refused("unsupported", "allOf", p)
            for i, b in enumerate(s[c]):
                self.check(b, f"{p}/{i}", expanding)
            if c == "oneOf":
                for i in range(len(s[c])):
                    for j in range(i + 1, len(s[c])):
                        if not self.exclusive(s[c][i], s[c][j]):
                            raise Refused("unsupported", "oneOf", p)
            return
        types, constraints = self.types(s)
        if "const" in s or "enum" in s:
            return
        if not constraints and len(types) == len(ALL_TYPES) - 1:
            return
        for t in types:
            if t == "object":
                if "additionalProperties" in s:
                    self.check(s["additionalProperties"], pointer + "/additionalProperties", expanding)
                if "properties" not in s:
                    if "required" in s:
                        raise Refused("unsupported", "required", pointer + "/required")
                    continue
                for i, name in enumerate(s.get("required", [])):
                    if name not in s["properties"]:
                        raise Refused("unsupported", "required", f"{pointer}/required/{i}")
                for name, sub in s["properties"].items():
                    self.check(sub, pointer + "/properties/" + esc(name), expanding)
            elif t == "array":
                if isinstance(s.get("items"), list):
                    raise Refused("unsupported", "items", pointer + "/items")
                if "items" in s:
                    self.check(s["items"], pointer + "/items", expanding)
                lo, hi = s.get("minItems", 0), s.get("maxItems")
                if hi is None or hi >= lo:
                    for key, v in (("minItems", lo), ("maxItems", hi or 0)):
                        if v > REPETITION_LIMIT:
                            raise Refused("unsupported", key, pointer + "/" + key)
            elif t == "string":
                source = "pattern" if "pattern" in s else None
                if "format" in s:
                    if source:
                        raise Refused("unsupported", "format", pointer + "/format")
                    if s["format"] not in ("date", "date-time", "email", "uuid"):
                        raise Refused("unsupported", "format", pointer + "/format")
                    source = "format"
                if source and ("minLength" in s or "maxLength" in s):
                    key = "minLength" if "minLength" in s else "maxLength"
                    raise Refused("unsupported", key, pointer + "/" + key)
            elif t in ("integer", "number"):
                for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
                    # DecimalBound: below 10^18, at most 18 fraction digits in the shortest spelling.
                    if key in s and (abs(s[key]) >= 1e18 or (t == "number" and s[key] != math.floor(s[key])
                                                             and len(repr(float(s[key])).split(".")[-1].rstrip("0")) > 18)):
                        raise Refused("unsupported", key, pointer + "/" + key)

    # checkExclusive: oneOf compiles only when each pair of branches is provably exclusive.
    def resolved(self, s):
        for _ in range(32):
            if not (isinstance(s, dict) and "$ref" in s):
                break
            s, _ = self.resolve(s["$ref"], "")
        return s

    @staticmethod
    def closed_values(s):
        if "const" in s:
            return [s["const"]]
        if isinstance(s.get("enum"), list):
            return s["enum"]
        return None

    def admitted_types(self, s):
        types = None
        if "type" in s:
            types = {s["type"]} if isinstance(s["type"], str) else set(s["type"])
        values = self.closed_values(s)
        if values is not None:
            vt = {next((t for t in ALL_TYPES if has_type(v, t) and t != "integer"), "null") for v in values}
            types = types & (vt | ({"integer"} if "number" in vt else set())) if types is not None else vt
        if types is not None and types & {"integer", "number"}:
            types |= {"integer", "number"}
        return types

    @staticmethod
    def only_objects(s):
        if "type" in s:
            return s["type"] in ("object", ["object"])
        other = {k for t, ks in TYPE_KEYWORDS.items() if t != "object" for k in ks}
        return (not (set(s) & other) and bool(set(s) & set(TYPE_KEYWORDS["object"]))
                and "const" not in s and "enum" not in s)

    def exclusive(self, a, b):
        a, b = self.resolved(a), self.resolved(b)
        if a is False or b is False:
            return True
        if not isinstance(a, dict) or not isinstance(b, dict):
            return False
        ta, tb = self.admitted_types(a), self.admitted_types(b)
        if ta is not None and tb is not None and not (ta & tb):
            return True
        va, vb = self.closed_values(a), self.closed_values(b)
        if va is not None and vb is not None and not any(same_json(x, y) for x in va for y in vb):
            return True
        if not (self.only_objects(a) and self.only_objects(b)
                and isinstance(a.get("properties"), dict) and isinstance(b.get("properties"), dict)):
            return False
        ra, rb = a.get("required", []), b.get("required", [])
        def forbids(s, name):
            return s.get("additionalProperties") is False and name not in s["properties"]
        if any(forbids(b, n) for n in ra) or any(forbids(a, n) for n in rb):
            return True
        for name in ra:
            if name in rb and name in a["properties"] and name in b["properties"]:
                xa, xb = self.resolved(a["properties"][name]), self.resolved(b["properties"][name])
                if isinstance(xa, dict) and isinstance(xb, dict):
                    va, vb = self.closed_values(xa), self.closed_values(xb)
                    if va is not None and vb is not None and not any(same_json(x, y) for x in va for y in vb):
                        return True
        return False

    # The language: None when lorad's compact language holds compact(value), else the reason.
    def rejects(self, s, value, depth=0):
        if depth > 50:
            return "reference cycle"
        if s is True:
            return None
        if s is False:
            return "false schema"
        for c in COMBINATORS:
            if c not in s:
                continue
            if c == "$ref":
                return self.rejects(self.resolve(s[c], "")[0], value, depth + 1)
            reasons = [self.rejects(b, value, depth + 1) for b in s[c]]
            return None if None in reasons else "no alternative: " + "; ".join(sorted(set(reasons)))
        types, constraints = self.types(s)
        if "const" in s or "enum" in s:
            values = [s["const"]] if "const" in s else s["enum"]
            if "const" in s and "enum" in s:
                values = [c for c in values if c in s["enum"]]
            kept = [v for v in values if any(has_type(v, t) for t in types)]
            if compact(value) in [lorad_literal(v) for v in kept]:
                return None
            if any(v == value and type(v) is not bool and type(value) is not bool for v in kept):
                return "enum/const: generated exactly as the schema writes the value (1 vs 1.0, key order)"
            return "not an enum/const value"
        if not constraints and len(types) == len(ALL_TYPES) - 1:
            return None
        kind = self.kind(value)
        if kind not in types and not (kind == "integer" and "number" in types):
            if kind == "number" and "integer" in types and value == math.floor(value):
                return "an integer written with a fraction (1.0) is not generated for type integer"
            if "type" not in s:
                return f"no 'type': lorad infers {types} from the keywords and generates only those"
            return "wrong type"
        t = "number" if kind == "integer" and "number" in types else kind
        return getattr(self, "rejects_" + t)(s, value, depth)

    @staticmethod
    def kind(value):
        if isinstance(value, bool):
            return "boolean"
        if value is None:
            return "null"
        if isinstance(value, int):
            return "integer"
        return {float: "number", str: "string", list: "array", dict: "object"}[type(value)]

    def rejects_null(self, s, value, depth):
        return None

    def rejects_boolean(self, s, value, depth):
        return None

    def rejects_object(self, s, value, depth):
        if "properties" not in s:
            extra = s.get("additionalProperties")
            if extra is False:
                return None if not value else "additionalProperties false without properties: {} only"
            if isinstance(extra, dict) and extra:
                for v in value.values():
                    r = self.rejects(extra, v, depth + 1)
                    if r:
                        return r
            return None
        props = list(s["properties"])
        keys = list(value)
        if any(k not in props for k in keys):
            return "an undeclared property is never generated"
        if [k for k in props if k in keys] != keys:
            return "properties are generated in the schema's order"
        for k in s.get("required", []):
            if k not in keys:
                return "a required property is missing"
        for k, v in value.items():
            r = self.rejects(s["properties"][k], v, depth + 1)
            if r:
                return r
        return None

    def rejects_array(self, s, value, depth):
        lo, hi = s.get("minItems", 0), s.get("maxItems")
        if len(value) < lo or (hi is not None and len(value) > hi):
            return "item count"
        items = s.get("items", True)
        for v in value:
            r = self.rejects(items, v, depth + 1)
            if r:
                return r
        return None

    def rejects_string(self, s, value, depth):
        if "pattern" in s:
            if re.fullmatch(s["pattern"], value, re.ASCII):
                return None
            if re.search(s["pattern"], value):
                return "pattern: only whole matches are generated"
            return "pattern"
        if "format" in s:
            if format_matches(s["format"], value):
                return None
            return f"format {s['format']}: lorad generates a strict subset of what jsonschema accepts"
        n = len(value)
        if n < s.get("minLength", 0) or ("maxLength" in s and n > s["maxLength"]):
            return "length"
        return None

    def rejects_integer(self, s, value, depth):
        text = compact(value)
        if not INTEGER_RE.fullmatch(text) or text == "-0":
            return "integer spelling"
        lo, hi = -MAX_INTEGER, MAX_INTEGER
        if "minimum" in s:
            lo = max(lo, math.ceil(s["minimum"]))
        if "exclusiveMinimum" in s:
            lo = max(lo, math.floor(s["exclusiveMinimum"]) + 1)
        if "maximum" in s:
            hi = min(hi, math.floor(s["maximum"]))
        if "exclusiveMaximum" in s:
            hi = min(hi, math.ceil(s["exclusiveMaximum"]) - 1)
        return None if lo <= value <= hi else "out of bounds"

    def rejects_number(self, s, value, depth):
        text = compact(value)
        bounds = [k for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum") if k in s]
        if not bounds:
            return None if NUMBER_RE.fullmatch(text) else "number spelling (more than 18 integer digits or a long exponent)"
        if not DECIMAL_RE.fullmatch(text):
            return "exponents are not generated under bounds"
        x = decimal.Decimal(text)
        if text.startswith("-") and x == 0:
            return "negative zero is not generated under bounds"
        if abs(x) > MAX_INTEGER + 1:
            return "more than 18 integer digits"
        ok = (("minimum" not in s or x >= s["minimum"]) and ("exclusiveMinimum" not in s or x > s["exclusiveMinimum"])
              and ("maximum" not in s or x <= s["maximum"]) and ("exclusiveMaximum" not in s or x < s["exclusiveMaximum"]))
        return None if ok else "out of bounds"


# Formerly a documented gap (oneOf compiled to a plain alternation); lorad now refuses oneOf unless
# its branches are provably exclusive (checkExclusive), so no group should carry it any more.
ONE_OF_GAP = "oneOf compiles to alternation: an instance matching several alternatives is accepted though invalid"


# --- sampling ---------------------------------------------------------------------------------------

ALLOWED = {"type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
           "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf",
           "oneOf", "allOf", "$ref", "$defs", "definitions", "format"} | (ANNOTATIONS - {"$id"})


def keywords(s, out, root=True):
    """The keywords used in schema positions ($id counts only below the root, where it moves the base)."""
    if not isinstance(s, dict):
        return
    for k, v in s.items():
        if k == "$id" and root:
            continue
        out.add(k)
        if k in ("properties", "$defs", "definitions") and isinstance(v, dict):
            for x in v.values():
                keywords(x, out, False)
        elif k in ("anyOf", "oneOf", "allOf") and isinstance(v, list):
            for x in v:
                keywords(x, out, False)
        elif k in ("items", "additionalProperties"):
            keywords(v, out, False)


def suite_dir(arg):
    if arg and os.path.isdir(arg):
        return arg, None
    tmp = tempfile.TemporaryDirectory()
    sdist = arg
    if not sdist:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", SDIST,
                        "--no-binary", ":all:", "--no-deps", "-d", tmp.name], check=True)
        sdist = os.path.join(tmp.name, SDIST_FILE)
    with open(sdist, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SDIST_SHA256:
        sys.exit(f"error: {sdist} has sha256 {digest}, expected {SDIST_SHA256} ({SDIST_FILE})")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(SUITE_DIR + "/") and m.isfile()]
        tar.extractall(tmp.name, members=members, filter="data")
    return os.path.join(tmp.name, SUITE_DIR), tmp


def python_valid(schema, instance):
    cls = jsonschema.Draft202012Validator
    try:
        return cls(schema, format_checker=cls.FORMAT_CHECKER).is_valid(instance)
    except Exception:  # a remote $ref jsonschema cannot retrieve offline
        return None


def main():
    root, tmp = suite_dir(sys.argv[1] if len(sys.argv) > 1 else None)
    groups, suspicious = [], []
    stats = {"groups": 0, "tests": 0, "dropped": 0, "skipped_groups": 0}
    per_file = {}
    for name in FILES:
        with open(os.path.join(root, name + ".json"), encoding="utf-8") as f:
            suite = json.load(f)
        for gi, g in enumerate(suite):
            used = set()
            keywords(g["schema"], used)
            if used - ALLOWED or len(groups) >= MAX_GROUPS:
                stats["skipped_groups"] += 1
                continue
            lorad = Lorad(g["schema"])
            group = {"name": f"{name}.json#{gi}: {g['description']}", "schema": g["schema"]}
            try:
                lorad.check(g["schema"])
            except Refused as r:
                group["expect_refused"] = r.keyword
                group["expect_refused_error"] = r.error
                group["expect_refused_pointer"] = r.pointer
            tests = []
            for t in g["tests"]:
                text = compact(t["data"])
                ours = python_valid(g["schema"], t["data"])
                model = None if "expect_refused" in group else lorad.rejects(g["schema"], t["data"])
                gap = None
                if not t["valid"] and "expect_refused" not in group and model is None:
                    suspicious.append((group["name"], t["description"], text, f"jsonschema: valid={ours}"))
                    gap = (ONE_OF_GAP if "oneOf" in json.dumps(g["schema"])
                           else "lorad's compiler (as modelled here) accepts this invalid instance")
                if ours != t["valid"]:
                    stats["dropped"] += 1
                    continue
                row = {"description": t["description"], "json": text,
                       "pretty": json.dumps(t["data"], indent=2, ensure_ascii=False), "valid": t["valid"]}
                if gap:
                    row["known_gap"] = group["known_gap"] = gap
                if t["valid"] and "expect_refused" not in group:
                    # Non-scalars are required only to depth 2, which both the regex compiler's
                    # anyValueDepth 3 and the grammar layer's unbounded nesting generate.
                    row["expect_accepted"] = model is None and nesting(t["data"]) <= 2
                    if model is not None:
                        row["differs"] = model
                tests.append(row)
            if not tests:
                continue
            group["tests"] = tests
            groups.append(group)
            per_file[name] = per_file.get(name, 0) + 1
            stats["groups"] += 1
            stats["tests"] += len(tests)
    doc = {
        "source": f"JSON-Schema-Test-Suite (MIT licence) as shipped in the PyPI sdist {SDIST_FILE} (sha256 {SDIST_SHA256}), "
                  f"{SUITE_DIR.split('/', 1)[1]}; written by scripts/goldens/json_schema_suite.py",
        "groups": groups,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    refused = [g for g in groups if "expect_refused" in g]
    print(f"{OUT}: {stats['groups']} groups, {stats['tests']} tests ({stats['dropped']} dropped where jsonschema "
          f"disagrees with the suite; {stats['skipped_groups']} groups skipped), {os.path.getsize(OUT)} bytes")
    print("groups per file:", ", ".join(f"{k} {v}" for k, v in per_file.items()))
    print(f"expected refusals ({len(refused)}):")
    for g in refused:
        print(f"  {g['name']}: {g['expect_refused_error']} {g['expect_refused']} at {g['expect_refused_pointer']}")
    valid = [t for g in groups if "expect_refused" not in g for t in g["tests"] if t["valid"]]
    print(f"valid tests in compiled groups: {len(valid)}, expected accepted: {sum(t['expect_accepted'] for t in valid)}")
    reasons = {}
    for t in valid:
        if "differs" in t:
            reasons[t["differs"]] = reasons.get(t["differs"], 0) + 1
    for r, n in sorted(reasons.items(), key=lambda x: -x[1]):
        print(f"  {n:3} {r}")
    print(f"suite-invalid instances lorad's compiler would accept (soundness bugs): {len(suspicious)}")
    for s in suspicious:
        print("  ", *s, sep=" | ")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
