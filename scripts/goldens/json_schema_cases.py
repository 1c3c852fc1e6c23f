# Writes Tests/GrammarTests/Fixtures/json_schema_cases.json: JSON Schemas and sample instances, each
# instance labelled valid or invalid by Python's `jsonschema` (an implementation independent of
# lorad's), Draft 2020-12 with format checking (date, date-time via rfc3339-validator, email, uuid).
# The Swift test (JSONSchemaGoldenTests) compiles each schema with JSONSchemaCompiler and checks that
# the DFA accepts the compact serialization (json.dumps(separators=(",", ":"), ensure_ascii=False))
# of each valid instance and rejects each invalid one. A valid instance whose compact form the
# compiler legitimately does not generate carries "differs": the reason (the categories are listed
# in docs/architecture.md's Grammar section); the test checks those are rejected, which shows the
# category is real. Valid instances also carry "pretty" (json.dumps indent=2), which the compiler's
# flexible-whitespace option must accept. Deterministic. Run from the repository root with the test environment:
#   /work/main/.venv-test/bin/python scripts/goldens/json_schema_cases.py   (or "$(scripts/test-venv)")
import json
import os

import jsonschema

TRIAGE = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": ["billing", "shipping", "returns", "technical", "other"]},
        "priority": {"type": "string", "enum": ["low", "medium", "high", "urgent"]},
        "escalate": {"type": "boolean"},
    },
    "required": ["category", "priority", "escalate"],
    "additionalProperties": False,
}

ORDER = {
    "$defs": {
        "address": {
            "type": "object",
            "properties": {
                "street": {"type": "string", "minLength": 1, "maxLength": 80},
                "city": {"type": "string", "minLength": 1, "maxLength": 40},
                "postcode": {"type": "string", "pattern": "^[0-9]{5}$"},
                "country": {"enum": ["DE", "FR", "US", "GB"]},
            },
            "required": ["street", "city", "postcode", "country"],
            "additionalProperties": False,
        },
        "line": {
            "type": "object",
            "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 99},
                "unit_price": {"type": "number", "minimum": 0, "maximum": 10000},
            },
            "required": ["sku", "quantity", "unit_price"],
            "additionalProperties": False,
        },
    },
    "type": "object",
    "properties": {
        "customer": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 60},
                "email": {"type": "string", "format": "email"},
            },
            "required": ["name", "email"],
            "additionalProperties": False,
        },
        "items": {"type": "array", "items": {"$ref": "#/$defs/line"}, "minItems": 1, "maxItems": 5},
        "shipping": {"$ref": "#/$defs/address"},
        "order_date": {"type": "string", "format": "date"},
        "notes": {"type": ["string", "null"], "maxLength": 200},
        "gift": {"type": "boolean"},
    },
    "required": ["customer", "items", "shipping", "order_date"],
    "additionalProperties": False,
}

REFUND = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^ORD-[0-9]{6}$"},
        "decision": {"enum": ["approve", "deny", "partial"]},
        "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 500},
        "reason": {"anyOf": [{"type": "string", "maxLength": 100}, {"type": "null"}]},
    },
    "required": ["order_id", "decision"],
    "additionalProperties": False,
}

TICKET = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "created_at": {"type": "string", "format": "date-time"},
        "customer_id": {"type": "integer", "minimum": 1},
        "satisfaction": {"type": "integer", "minimum": -5, "maximum": 5},
        "tags": {"type": "array", "items": {"enum": ["vip", "repeat", "fraud-check", "press"]}, "maxItems": 3},
        "assignee": {"type": ["integer", "null"]},
    },
    "required": ["id", "created_at", "customer_id"],
}

CONTACT = {
    "definitions": {
        "email": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}, "required": ["email"],
                  "additionalProperties": False},
        "phone": {"type": "object", "properties": {"phone": {"type": "string", "pattern": "^\\+[1-9][0-9]{6,12}$"}},
                  "required": ["phone"], "additionalProperties": False},
    },
    "type": "object",
    "properties": {"contact": {"oneOf": [{"$ref": "#/definitions/email"}, {"$ref": "#/definitions/phone"}]}},
    "required": ["contact"],
    "additionalProperties": False,
}

CASES = [
    ("triage", TRIAGE, [
        {"category": "billing", "priority": "high", "escalate": True},
        {"category": "other", "priority": "low", "escalate": False},
        {"category": "billing", "priority": "high"},
        {"category": "Billing", "priority": "high", "escalate": True},
        {"category": "billing", "priority": "high", "escalate": "yes"},
        {"category": "billing", "priority": "high", "escalate": True, "extra": 1},
        ({"priority": "high", "category": "billing", "escalate": True}, "key order: properties are generated in the schema's order"),
        [], "billing", None,
    ]),
    ("order", ORDER, [
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 2, "unit_price": 19.99}],
         "shipping": {"street": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "DE"},
         "order_date": "2024-02-29"},
        {"customer": {"name": "Bo \"the\" Li\n", "email": "bo.li+x@mail.example.org"},
         "items": [{"sku": "XYZ-0001", "quantity": 99, "unit_price": 10000},
                   {"sku": "XYZ-0002", "quantity": 1, "unit_price": 0}],
         "shipping": {"street": "Rue de l'Église 5", "city": "Paris", "postcode": "75001", "country": "FR"},
         "order_date": "2023-12-31", "notes": None, "gift": True},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 2, "unit_price": 1.5}] * 5,
         "shipping": {"street": "x", "city": "y", "postcode": "00000", "country": "US"},
         "order_date": "2000-02-29", "notes": "leave at door"},
        # invalid
        {"customer": {"name": "Ana", "email": "ana@example.com"}, "items": [],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 2, "unit_price": 1.5}] * 6,
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 100, "unit_price": 1}],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 0, "unit_price": 1}],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "abc-1234", "quantity": 1, "unit_price": 1}],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 1, "unit_price": -0.5}],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 1, "unit_price": 10000.5}],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 1, "unit_price": 1}],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2023-02-29"},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 1, "unit_price": 1}],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "1900-02-29"},
        {"customer": {"name": "", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 1, "unit_price": 1}],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
        {"customer": {"name": "Ana", "email": "ana-at-example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 1, "unit_price": 1}],
         "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
        {"customer": {"name": "Ana", "email": "ana@example.com"},
         "items": [{"sku": "ABC-1234", "quantity": 1, "unit_price": 1}],
         "shipping": {"street": "1", "city": "B", "postcode": "1011", "country": "DE"}, "order_date": "2024-01-01"},
        ({"customer": {"name": "Ana", "email": "ana@localhost"},
          "items": [{"sku": "ABC-1234", "quantity": 1, "unit_price": 1}],
          "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
         "format email: only addresses with a dotted domain are generated (jsonschema only checks for '@')"),
        ({"customer": {"name": "Ana", "email": "ana@example.com"},
          "items": [{"sku": "ABC-1234", "quantity": 1.0, "unit_price": 1}],
          "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
         "integer-valued float 1.0 for type integer: integers are generated without a fraction"),
        ({"customer": {"name": "Ana", "email": "ana@example.com"},
          "items": [{"sku": "ABC-1234", "quantity": 1, "unit_price": 1e-05}],
          "shipping": {"street": "1", "city": "B", "postcode": "10115", "country": "DE"}, "order_date": "2024-01-01"},
         "exponent in a bounded number: bounded numbers are generated without an exponent"),
    ]),
    ("refund", REFUND, [
        {"order_id": "ORD-123456", "decision": "approve"},
        {"order_id": "ORD-123456", "decision": "partial", "amount": 12.5, "reason": "damaged item"},
        {"order_id": "ORD-000001", "decision": "deny", "reason": None},
        {"order_id": "ORD-000001", "decision": "approve", "amount": 500},
        {"order_id": "ORD-000001", "decision": "approve", "amount": 0.01},
        {"order_id": "ORD-000001", "decision": "approve", "amount": 0},
        {"order_id": "ORD-000001", "decision": "approve", "amount": -1},
        {"order_id": "ORD-000001", "decision": "approve", "amount": 500.5},
        {"order_id": "ORD-000001", "decision": "approve", "amount": 500.0},
        {"order_id": "ORD-1", "decision": "approve"},
        {"order_id": "ORD-000001", "decision": "maybe"},
        {"order_id": "ORD-000001", "decision": "deny", "reason": "x" * 101},
        {"order_id": "ORD-000001", "decision": "deny", "reason": "x" * 100},
        {"decision": "deny"},
        ("x ORD-123456 y", None),
    ]),
    ("ticket", TICKET, [
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01T12:30:00Z", "customer_id": 1},
        {"id": "123E4567-E89B-12D3-A456-426614174000", "created_at": "2024-05-01T23:59:59.123+02:00", "customer_id": 987654321,
         "satisfaction": -5, "tags": ["vip", "press"], "assignee": None},
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01T12:30:00Z", "customer_id": 1,
         "satisfaction": 5, "tags": [], "assignee": 42},
        {"id": "123e4567e89b12d3a456426614174000", "created_at": "2024-05-01T12:30:00Z", "customer_id": 1},
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01 12:30:00Z", "customer_id": 1},
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-04-31T12:30:00Z", "customer_id": 1},
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01T24:00:00Z", "customer_id": 1},
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01T12:30:00Z", "customer_id": 0},
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01T12:30:00Z", "customer_id": 1, "satisfaction": 6},
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01T12:30:00Z", "customer_id": 1, "satisfaction": -6},
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01T12:30:00Z", "customer_id": 1,
         "tags": ["vip", "vip", "vip", "vip"]},
        {"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01T12:30:00Z", "customer_id": 1, "tags": ["gold"]},
        ({"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01T12:30:00Z", "customer_id": 1, "note": "x"},
         "additionalProperties (default true): extra properties are never generated"),
        ({"id": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2024-05-01t12:30:00z", "customer_id": 1},
         "format date-time: only upper-case T and Z are generated"),
    ]),
    ("contact", CONTACT, [
        {"contact": {"email": "a@b.co"}},
        {"contact": {"phone": "+4930123456"}},
        {"contact": {"phone": "004930123456"}},
        {"contact": {"email": "a@b.co", "phone": "+4930123456"}},
        {"contact": {}},
        {},
    ]),
    ("enum-const", {"anyOf": [{"const": {"a": [1, "x", None], "b": {"c": True}}},
                              {"enum": [1, "two", None, True, 2.5, ["é", "\u0007"]]}]}, [
        {"a": [1, "x", None], "b": {"c": True}},
        1, "two", None, True, 2.5, ["é", "\u0007"],
        {"a": [1, "x"], "b": {"c": True}}, 2, "three", False, ["e", "\u0007"],
    ]),
    ("integer-range", {"type": "integer", "minimum": -123, "maximum": 4567},
     list(range(-130, -110)) + [-100, -99, -10, -9, -1, 0, 1, 9, 10, 99, 100, 999, 1000, 4499, 4560, 4566, 4567, 4568, 4600, 5000, 10000, 1.5]),
    ("integer-exclusive", {"type": "integer", "exclusiveMinimum": 17, "exclusiveMaximum": 1001},
     [16, 17, 18, 19, 20, 99, 100, 999, 1000, 1001, 1002, -18]),
    ("integer-open", {"type": "integer", "minimum": 250},
     [0, 249, 250, 251, 299, 300, 999, 1000, 123456789012, -250]),
    ("integer-negative", {"type": "integer", "maximum": -20},
     [-19, -20, -21, -99, -100, -1000000, 0, 20]),
    ("number-bounds", {"type": "number", "minimum": -2, "exclusiveMaximum": 3},
     [-2.5, -2, -2.0, -1.99, -0.5, 0, 0.0, 1, 2.999, 3, 3.0, 3.5, -3, 2, 2.5]),
    ("number-decimal-bounds", {"type": "number", "exclusiveMinimum": -0.25, "maximum": 4.5},
     [-0.25, -0.2499, -0.1, 0, 0.25, 4.5, 4.50, 4.5001, 4.499, -1, 3, 5]),
    ("number-free", {"type": "number"}, [0, -0.5, 1e20, 1.5e-07, 123, -7, "1"]),
    ("string-length", {"type": "string", "minLength": 2, "maxLength": 4},
     ["", "a", "ab", "abcd", "abcde", "\"\\", "é😀", "\n\t\u0001x", "\u2028ab", 12]),
    ("string-pattern-escapes", {"type": "string", "pattern": "^a\"b\\\\c[\n\t]$"},
     ["a\"b\\c\n", "a\"b\\c\t", "a\"b\\c", "ab\\c\n"]),
    ("string-pattern-unanchored", {"type": "string", "pattern": "[0-9]{3}"},
     ["123", "12", ("1234x", "unanchored pattern: only whole matches are generated"),
      ("x123", "unanchored pattern: only whole matches are generated")]),
    ("date", {"type": "string", "format": "date"},
     ["2024-02-29", "2000-02-29", "2023-02-28", "2023-02-29", "1900-02-29", "2024-04-30", "2024-04-31", "2024-12-31",
      "2024-13-01", "0000-01-01", "0001-01-01", "9999-12-31", "2024-1-01"]),
    ("nullable-type-array", {"type": ["boolean", "null", "integer"], "minimum": 0},
     [True, None, 0, 5, -1, "x", 1.5]),
    ("array-bounds", {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "maxItems": 3},
     [[True], [True, False], [True, False, True], [True] * 4, [1, 2]]),
    ("map", {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
     [{}, {"a": 1, "b": 0}, {"": 5}, {"a": -1}, {"a": "1"}, {"a": 1.5}]),
    ("any", {}, [None, 1, "x", [1, [2, {"a": None}]], {"k": [True]},
                 ([[[[1]]]], "nesting deeper than anyValueDepth (3) is not generated")]),
    ("bool-true", True, [None, {"a": {"b": [1]}}]),
]


def main():
    validator_class = jsonschema.Draft202012Validator
    out = []
    for name, schema, instances in CASES:
        validator_class.check_schema(schema)
        v = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
        rows = []
        for item in instances:
            differs = None
            if isinstance(item, tuple):
                item, differs = item
            valid = v.is_valid(item)
            if differs is not None and not valid:
                raise SystemExit(f"{name}: {item!r} is marked as a difference but jsonschema rejects it")
            row = {"json": json.dumps(item, separators=(",", ":"), ensure_ascii=False), "valid": valid}
            if differs:
                row["differs"] = differs
            elif valid:
                # For the flexible-whitespace option (at most 8 whitespace characters in a row: indent 2 to depth 3).
                row["pretty"] = json.dumps(item, indent=2, ensure_ascii=False)
            rows.append(row)
        out.append({"name": name, "schema": schema, "instances": rows})
    path = os.path.join("Tests", "GrammarTests", "Fixtures", "json_schema_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"generator": "scripts/goldens/json_schema_cases.py", "jsonschema": jsonschema_version(), "cases": out},
                  f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(out)} schemas, {sum(len(c['instances']) for c in out)} instances")


def jsonschema_version():
    from importlib.metadata import version
    return version("jsonschema")


if __name__ == "__main__":
    main()
