"""The spec JSON Schema (draft 2020-12), generated from the grammar and the op table's arguments.

It ships as archc/spec/schema.json, for editors (`# yaml-language-server: $schema=...`) and any tool that
validates YAML; `archc schema > archc/spec/schema.json` regenerates it, and a test keeps the shipped file
equal to the generated one and in agreement with the reader on random specs.
"""

from __future__ import annotations

from archc.spec import grammar as g
from archc.spec.kinds import MODULE_NAME, NAME, REQUIRED, List

SEQ, ITEM, NODE, BLOCKDEF = ({"$ref": f"#/$defs/{d}"} for d in ("seq", "item", "node", "blockdef"))


def generate(ops) -> dict:
    """The schema; `ops`: name -> op (with `args`, `categories`, `doc`) for every op a spec may write."""
    return _Generator(ops).document()


class _Generator:
    def __init__(self, ops):
        self.ops = ops
        self.kinds = [*g.CONSTRUCTS, *ops]

    def document(self) -> dict:
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://archc.dev/schema/spec-1.json",
            "title": "archc architecture spec, or block library (`library: name`)",
            "type": "object",
            "if": {"required": ["library"]},
            "then": self.of(g.LIBRARY),
            "else": self.of(g.SPEC),
            "$defs": {
                "seq": {"type": "array", "items": ITEM, "minItems": 1},
                "node": {"anyOf": [{"type": "string", "pattern": NAME}, SEQ, self.kinds_object(g.MODIFIERS)]},
                "item": self.item(),
                "blockdef": self.kinds_object(g.BLOCK_KEYS),
            },
        }

    def of(self, kind) -> dict:
        match kind:
            case g.Settings():
                s = {"type": "object", "properties": {k: self.key(key) for k, key in kind.keys.items()},
                     "additionalProperties": False}
                if kind.others is not None:
                    s.update(additionalProperties=self.key(kind.others), propertyNames={"pattern": NAME})
                required = [k for k, key in kind.keys.items() if key.required]
                return {**s, "required": required} if required else s
            case g.Mapping():
                s = {"type": "object", "propertyNames": self.of(kind.key), "additionalProperties": self.of(kind.value)}
                return {**s, "minProperties": kind.min} if kind.min else s
            case List():
                s = {"type": "array", "items": self.of(kind.of), **({"minItems": kind.min} if kind.min else {}),
                     **({"maxItems": kind.max} if kind.max is not None else {})}
                if kind.sizes:
                    s["anyOf"] = [{"minItems": n, "maxItems": n} for n in kind.sizes]
                return {"anyOf": [s, {"type": "string"}]} if kind.expr else s
            case g.OneOf():
                return {"anyOf": [self.of(a) for a in kind.alternatives]}
            case g.SeqKind():
                return SEQ
            case g.ItemKind():
                return ITEM
            case g.NodeKind():
                if not kind.not_:
                    return NODE
                return {"allOf": [NODE, {"not": {"type": "object", "anyOf": [{"required": [k]} for k in kind.not_]}}]}
            case g.BlockRef():
                return {"type": "string", "pattern": NAME}
            case g.OpRef():
                return {"enum": [n for n, op in self.ops.items() if kind.category in op.categories]}
            case g.BlockDef():
                return BLOCKDEF
            case g.BlockName():
                return {"pattern": NAME, "not": {"enum": self.kinds}}
        return kind.schema()

    def key(self, key: g.Key) -> dict:
        s = dict(self.of(key.kind))
        if key.doc:
            s["description"] = key.doc
        if key.default is not None:
            s["default"] = key.default
        return s

    def op_args(self, op) -> dict:
        keys = {k: g.Key(a.kind, a.default is REQUIRED, doc=a.doc) for k, a in op.args.items()}
        args = self.of(g.Settings(keys))
        if "required" in args:
            return args
        return {"anyOf": [{"type": "null"}, args]} if op.args else {"type": ["null", "object"], "maxProperties": 0}

    def kinds_object(self, extra: dict) -> dict:
        """A mapping with one op or construct key (and the keys its grammar entry allows beside it, and `extra`)."""
        def then(k: str) -> dict:
            construct = g.CONSTRUCTS.get(k)
            own = self.of(construct.value) if construct else self.op_args(self.ops[k])
            own = {**own, "description": construct.doc if construct else self.ops[k].doc}
            beside = {j: self.key(key) for j, key in construct.keys.items()} if construct else {}
            s = {"properties": {k: own, **beside, **{j: self.key(key) for j, key in extra.items()}},
                 "additionalProperties": False}
            if construct and construct.one_of:
                s["oneOf"] = [{"required": [j]} for j in construct.one_of]
            return s

        def when(k: str) -> dict:
            owners = [c.name for c in g.CONSTRUCTS.values() if k in c.keys]  # `block:` beside `repeat:`
            if not owners:
                return then(k)
            return {"if": {"not": {"anyOf": [{"required": [o]} for o in owners]}}, "then": then(k)}

        # At least one op or construct key; each one present brings its own rules (dependentSchemas checks only
        # the keys a mapping has, so a node costs its keys, not the number of ops).
        return {"type": "object", "not": {"propertyNames": {"not": {"enum": self.kinds}}},
                "dependentSchemas": {k: when(k) for k in self.kinds}}

    def item(self) -> dict:
        """`{relu: {}}` is an anonymous op; `{relu: relu}` names a node "relu": a nameable key is a name when its
        value is itself a node (a string, a list, or a mapping with an op or construct key)."""
        forms = [{"required": [c.name]} for c in g.CONSTRUCTS.values() if not c.nameable]
        forms += [{"required": [k], "properties": {k: {"anyOf": [{"type": "null"}, {"type": "object", "not": {
            "anyOf": [{"required": [j]} for j in self.kinds if j not in op.args]}}]}}} for k, op in self.ops.items()]
        forms += [{"required": [c.name], "properties": {c.name: {"not": {"anyOf": [
            *([] if c.value.matches([]) else [{"type": "array"}]),
            {"type": "object", "anyOf": [{"required": [j]} for j in self.kinds if j not in _own(c)]}]}}}}
            for c in g.CONSTRUCTS.values() if c.nameable]
        named = {"type": "object", "minProperties": 1, "maxProperties": 1,
                 "propertyNames": {"pattern": MODULE_NAME, "not": {"enum": list(g.RESERVED)}},
                 "additionalProperties": NODE}
        # A mapping with no op or construct key is no form: the first keywords say so without trying each form.
        return {"if": {"type": "object", "not": {"propertyNames": {"not": {"enum": self.kinds}}}, "anyOf": forms},
                "then": NODE,
                "else": {"anyOf": [{"type": "string", "pattern": NAME}, SEQ, named]}}


def _own(construct: g.Construct) -> dict:
    """A construct's own settings keys (residual's body, shortcut, ...), which do not make its key a name."""
    return construct.value.keys if isinstance(construct.value, g.Settings) else {}
