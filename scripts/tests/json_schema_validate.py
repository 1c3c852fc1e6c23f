# Validates strings against a JSON Schema with Python's `jsonschema` (Draft 2020-12, format checking),
# for GrammarTests' JSONSchemaWalkTests: the strings are random walks through a compiled schema's DFA,
# and each must parse as JSON (strictly: no NaN or Infinity) and validate. Reads a JSON file
# {"schema": ..., "outputs": [string, ...]} named by argv[1]; writes a JSON list, one
# {"ok": bool, "error": string} per output, to stdout. `make test` provides the interpreter
# (scripts/test-venv) as LORAD_TEST_PYTHON.
import json
import sys

import jsonschema


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    cls = jsonschema.Draft202012Validator
    validator = cls(job["schema"], format_checker=cls.FORMAT_CHECKER)
    results = []
    for text in job["outputs"]:
        try:
            value = json.loads(text, parse_constant=reject_constant)
        except ValueError as e:
            results.append({"ok": False, "error": f"not JSON: {e}"})
            continue
        errors = [e.message for e in validator.iter_errors(value)]
        results.append({"ok": not errors, "error": "; ".join(errors)})
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
