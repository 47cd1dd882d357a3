"""Generates the spec JSON Schema (draft 2020-12) from the op table and the construct list.

The generated file ships as archc/spec/schema.json; a test keeps it equal to `generate()`.
Regenerate with `python -m archc.spec.schema > archc/spec/schema.json`.
"""

from __future__ import annotations

import json

from archc.ir.ops import REQUIRED, SPEC_OPS, Arg

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
CONSTRUCTS = ("seq", "repeat", "block", "branches", "residual", "dense", "fractal", "aux")
MODIFIERS = ("from", "when")
KINDS = (*CONSTRUCTS, *SPEC_OPS)
# Keys that are always an op or construct. Op names may also be names (`relu: relu`: the key is a name
# when its value is itself a node), and so may residual, dense and fractal when their value is a mapping
# holding an op or construct (`fractal: {fractal: {...}}`), never their own settings.
ALWAYS_KINDS = ("seq", "repeat", "block", "branches", "aux")
SETTINGS = {"residual": ("body", "shortcut", "post", "drop_path"), "dense": ("layers", "body", "names"),
            "fractal": ("columns", "body", "drop_path")}
RESERVED = (*ALWAYS_KINDS, *MODIFIERS, "input")

EXPR = {"type": ["integer", "string"]}
NUM = {"type": ["number", "string"]}
_ARG = {
    "int": {"$ref": "#/$defs/int"},
    "int2": {"$ref": "#/$defs/int2"},
    "float": {"$ref": "#/$defs/number"},
    "bool": {"type": ["boolean", "string"]},
    "table": {"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                         "minItems": 1}, "minItems": 1},
}


def _arg(arg: Arg) -> dict:
    s = dict(_ARG[arg.kind])
    if arg.doc:
        s["description"] = arg.doc
    return s


def _op_args(op) -> dict:
    required = [k for k, a in op.args.items() if a.default is REQUIRED]
    args = {"type": "object", "properties": {k: _arg(a) for k, a in op.args.items()},
            "additionalProperties": False}
    if required:
        args["required"] = required
        return args
    return {"anyOf": [{"type": "null"}, args]} if op.args else {"type": ["null", "object"], "maxProperties": 0}


NODE = {"$ref": "#/$defs/node"}
ITEM = {"$ref": "#/$defs/item"}
_CONSTRUCT_BODIES = {
    "seq": {"$ref": "#/$defs/seq"},
    "repeat": EXPR,
    "block": {"type": "string", "pattern": NAME},
    "branches": {"oneOf": [{"type": "array", "items": ITEM, "minItems": 1},
                           {"type": "object", "propertyNames": {"pattern": NAME},
                            "additionalProperties": NODE, "minProperties": 1}]},
    "residual": {
        "type": "object",
        "properties": {
            "body": NODE,
            "shortcut": {"anyOf": [
                {"enum": ["identity", "auto"]},
                {"type": "object", "properties": {"auto": {"type": "string", "pattern": NAME},
                                                  "bn": {"type": "boolean"}},
                 "required": ["auto"], "additionalProperties": False},
                ITEM]},
            "post": ITEM,
            "drop_path": {"anyOf": [NUM, {"type": "object", "properties": {"linear": NUM},
                                          "required": ["linear"], "additionalProperties": False}]},
        },
        "required": ["body"], "additionalProperties": False},
    "dense": {"type": "object",
              "properties": {"layers": EXPR, "body": NODE, "names": {"type": "string"}},
              "required": ["layers", "body"], "additionalProperties": False},
    "fractal": {"type": "object",
                "properties": {"columns": EXPR, "body": NODE, "drop_path": NUM},
                "required": ["columns", "body"], "additionalProperties": False},
    "aux": NODE,
}
_CONSTRUCT_EXTRA = {
    "repeat": {"block": {"type": "string", "pattern": NAME}, "with": {"$ref": "#/$defs/with"},
               "body": NODE, "names": {"type": "string"}},
    "block": {"with": {"$ref": "#/$defs/with"}},
    "branches": {"join": {"enum": ["concat", "add", "mean"]}},
}


def _kind_schema(kind: str, body: dict, extra_props: dict) -> dict:
    props = {kind: body, **_CONSTRUCT_EXTRA.get(kind, {}), **extra_props}
    s = {"properties": props, "additionalProperties": False}
    if kind == "repeat":
        s["oneOf"] = [{"required": ["block"]}, {"required": ["body"]}]
        s["x-error"] = "repeat takes exactly one of `block:` or `body:`"
    return s


def _kinds_object(extra_props: dict) -> dict:
    """An object with exactly one kind key, validated by that kind's schema."""
    bodies = {**_CONSTRUCT_BODIES, **{name: _op_args(op) for name, op in SPEC_OPS.items()}}
    return {
        "type": "object",
        "anyOf": [{"required": [k]} for k in KINDS],
        "x-error": "expected one op or construct key; ops: " + ", ".join(SPEC_OPS)
                   + "; constructs: " + ", ".join(CONSTRUCTS),
        "allOf": [{"if": {"required": [k], **({"not": {"required": ["repeat"]}} if k == "block" else {})},
                   "then": _kind_schema(k, body, extra_props)}
                  for k, body in bodies.items()],
    }


def generate() -> dict:
    modifiers = {"from": {"anyOf": [{"type": "string", "pattern": NAME},
                                    {"type": "array", "items": {"type": "string", "pattern": NAME},
                                     "minItems": 1}]},
                 "when": {"type": ["boolean", "string"]}}
    named = {
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "propertyNames": {"pattern": NAME, "not": {"enum": list(RESERVED)}},
        "additionalProperties": NODE,
        "x-error": "an item is an op or construct (`{conv: {...}}`), or a single `name: node` pair",
    }
    spec_props = {
        "archc": {"const": 1, "description": "spec language version"},
        "name": {"type": "string"},
        "source": {"type": "string", "description": "where the architecture and its figures come from"},
        "description": {"type": "string"},
        "torchvision": {"type": "string", "pattern": NAME,
                        "description": "the torchvision model whose state_dict this spec's module loads strictly"},
        "import": {"type": "array", "items": {"type": "string", "pattern": r"^[^/].*\.ya?ml$"},
                   "description": "block libraries, relative to this file and inside its folder"},
        "expect": {"type": "object", "additionalProperties": False, "properties": {
            "params": {"type": "integer"}, "params_without_aux": {"type": "integer"},
            "macs": {"type": "integer"}, "output": {"type": "array", "items": {"type": "integer"}}}},
        "input": {"type": "array", "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]},
                  "minItems": 1, "maxItems": 3, "description": "[C, H, W] or [F]; expressions over params"},
        "params": {"type": "object", "propertyNames": {"pattern": NAME},
                   "additionalProperties": {"type": ["number", "boolean"]}},
        "blocks": {"type": "object", "propertyNames": {"pattern": NAME, "not": {"enum": list(KINDS)}},
                   "additionalProperties": {"$ref": "#/$defs/blockdef"}},
        "graph": {"$ref": "#/$defs/seq"},
    }
    library_keys = ("archc", "source", "description", "import", "blocks")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://archc.dev/schema/spec-1.json",
        "title": "archc architecture spec, or block library (`library: name`)",
        "type": "object",
        "if": {"required": ["library"]},
        "then": {"properties": {"library": {"type": "string", "pattern": NAME},
                                **{k: spec_props[k] for k in library_keys}},
                 "required": ["archc", "library", "blocks"], "additionalProperties": False},
        "else": {"properties": spec_props, "required": ["archc", "name", "input", "graph"],
                 "additionalProperties": False},
        "$defs": {
            "int": EXPR,
            "number": NUM,
            "int2": {"anyOf": [EXPR, {"type": "array", "items": EXPR, "minItems": 2, "maxItems": 2}]},
            "with": {"type": "object", "propertyNames": {"pattern": NAME},
                     "additionalProperties": {"type": ["number", "string", "boolean"]}},
            "seq": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1},
            "node": {"anyOf": [{"type": "string", "pattern": NAME}, {"$ref": "#/$defs/seq"},
                               _kinds_object(modifiers)]},
            # `{relu: {}}` is an anonymous op; `{relu: relu}` names a node "relu": a nameable key is a name
            # when its value is itself a node (a string, a list, or a mapping with an op/construct key).
            "item": {"if": {"type": "object", "anyOf": [
                        *({"required": [k]} for k in ALWAYS_KINDS),
                        *({"required": [k], "properties": {k: {"anyOf": [
                            {"type": "null"},
                            {"type": "object", "not": {"anyOf": [{"required": [j]} for j in KINDS]}}]}}}
                          for k in SPEC_OPS),
                        *({"required": [k], "properties": {k: {"not": {
                            "type": "object", "anyOf": [{"required": [j]} for j in KINDS if j not in keys]}}}}
                          for k, keys in SETTINGS.items())]},
                     "then": NODE,
                     "else": {"anyOf": [{"type": "string", "pattern": NAME}, {"$ref": "#/$defs/seq"}, named]}},
            "blockdef": _kinds_object({
                "args": {"type": "object", "propertyNames": {"pattern": NAME},
                         "additionalProperties": {"type": ["number", "string", "boolean"]}},
                "let": {"type": "object", "propertyNames": {"pattern": NAME},
                        "additionalProperties": {"type": ["number", "string", "boolean"]}},
                "doc": {"type": "string"}}),
        },
    }


if __name__ == "__main__":
    print(json.dumps(generate(), indent=1))
