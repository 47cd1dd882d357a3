"""Load a spec: safe YAML with line/column marks -> JSON Schema validation -> Spec."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from archc.errors import Loc, SpecError

MAX_BYTES = 1 << 20
MAX_YAML_NODES = 200_000
_SCALAR_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null")}
_TAGS = _SCALAR_TAGS | {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}

YPath = tuple  # a path into the YAML document: keys and list indices


@dataclass
class Spec:
    """A validated spec: its data, where each value was written, and its resolved parameters."""

    file: str
    data: dict
    marks: dict[YPath, tuple[int, int]] = field(repr=False)
    key_marks: dict[YPath, tuple[int, int]] = field(repr=False)
    params: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    text: str = field(default="", repr=False)
    imports: list["Spec"] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.data.get("name") or self.data["library"]

    @property
    def blocks(self) -> dict[str, tuple[dict, "Spec"]]:
        """Every block this spec can call: its own and its imports', each with the spec that defines it."""
        blocks = {}
        for lib in self.imports:
            for name, (bdef, origin) in lib.blocks.items():
                if name in blocks and blocks[name][1] is not origin:
                    raise SpecError(f"block {name!r} is defined both in {blocks[name][1].file} and in "
                                    f"{origin.file}", origin.loc(("blocks", name), key=True))
                blocks[name] = (bdef, origin)
        for name, bdef in self.data.get("blocks", {}).items():
            if name in blocks:
                raise SpecError(f"block {name!r} is also defined in {blocks[name][1].file} (imported)",
                                self.loc(("blocks", name), key=True))
            blocks[name] = (bdef, self)
        return blocks

    def standalone(self) -> str:
        """The spec as one YAML document with its imported blocks inlined (for checkpoints)."""
        data = {k: v for k, v in self.data.items() if k != "import"}
        data["blocks"] = {name: bdef for name, (bdef, _) in self.blocks.items()}
        return yaml.safe_dump(data, sort_keys=False)

    def with_params(self, overrides: dict) -> "Spec":
        """A copy with spec parameters overridden (as `--set k=v` does). Unknown names are errors."""
        params = dict(self.data.get("params", {}))
        for k, v in overrides.items():
            if k not in params:
                known = ", ".join(params) or "none"
                raise SpecError(f"unknown parameter {k!r} (the spec declares: {known})", self.loc(("params",)))
            if isinstance(params[k], bool) != isinstance(v, bool) or not isinstance(v, (int, float)) or \
                    isinstance(params[k], int) and not isinstance(v, int):
                raise SpecError(f"parameter {k!r} is {params[k]!r}; {v!r} does not fit", self.loc(("params", k)))
            params[k] = v
        return Spec(self.file, self.data, self.marks, self.key_marks, params, {**self.overrides, **overrides},
                    self.text, self.imports)

    def loc(self, ypath: YPath, key: bool = False) -> Loc:
        """Where the value (or, with key=True, the key) at ypath was written; the nearest enclosing one if unknown."""
        ypath = tuple(ypath)
        if key and ypath in self.key_marks:
            return Loc(self.file, *self.key_marks[ypath])
        while ypath not in self.marks and ypath:
            ypath = ypath[:-1]
        return Loc(self.file, *self.marks.get(ypath, (1, 1)))


MAX_IMPORT_DEPTH = 8


def load(path: str | Path, overrides: dict | None = None) -> Spec:
    """Read, validate and parameterise the spec at `path`. Raises SpecError with a location."""
    spec = _read(Path(path), None)
    if "library" in spec.data:
        raise SpecError(f"{spec.file} is a block library ({spec.name!r}): import it from a spec",
                        spec.loc(("library",)))
    return spec.with_params(overrides or {})


def loads(text: str, file: str = "<string>", overrides: dict | None = None) -> Spec:
    """A spec from text; `file` names it in messages and anchors its imports."""
    return _parse(text, file, ()).with_params(overrides or {})


def _read(path: Path, importer: tuple | None) -> Spec:
    file = str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SpecError(f"spec larger than {MAX_BYTES} bytes", Loc(file, 1, 1))
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        loc, what = importer[:2] if importer else (None, "spec")
        raise SpecError(f"cannot read {what} {file}: {getattr(e, 'strerror', None) or e}", loc,
                        None if loc else file) from None
    return _parse(text, file, importer[2] if importer else ())


def _parse(text: str, file: str, chain: tuple) -> Spec:
    data, marks, key_marks = _compose(text, file)
    spec = Spec(file, data, marks, key_marks, text=text)
    _validate(spec)
    spec.params = dict(data.get("params", {}))
    spec.imports = [_import(spec, i, ref, chain + (file,)) for i, ref in enumerate(data.get("import", []))]
    _ = spec.blocks  # a block defined twice is an error now, located, not at its first call
    return spec


def _import(spec: Spec, i: int, ref: str, chain: tuple) -> Spec:
    """A block library named by `import:`, relative to the importing file and inside its folder."""
    loc = spec.loc(("import", i))
    base = Path(spec.file).resolve().parent
    path = (base / ref).resolve()
    if Path(ref).is_absolute() or base not in path.parents:
        raise SpecError(f"import {ref!r} must be a relative path inside {base.name}/", loc)
    if len(chain) > MAX_IMPORT_DEPTH or str(Path(spec.file).parent / ref) in chain or str(path) in map(
            lambda f: str(Path(f).resolve()), chain):
        raise SpecError(f"import {ref!r} forms a cycle or nests deeper than {MAX_IMPORT_DEPTH}", loc)
    lib = _read(Path(spec.file).parent / ref, (loc, "import", chain))
    if "library" not in lib.data:
        raise SpecError(f"import {ref!r} is a spec, not a block library (`library: name`)", loc)
    return lib


def _compose(text: str, file: str):
    """YAML -> plain data, plus marks for every value and key, keyed by path."""
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise SpecError(f"YAML: {e.problem or e.context}", Loc(file, mark.line + 1, mark.column + 1)) from None
    except yaml.YAMLError as e:  # a reader error: characters YAML does not allow
        raise SpecError(f"YAML: {str(e).splitlines()[0]}", Loc(file, 1, 1)) from None
    if root is None:
        raise SpecError("empty spec", Loc(file, 1, 1))
    marks, key_marks = {}, {}
    count = 0

    def at(node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def convert(node, ypath):
        nonlocal count
        count += 1
        if count > MAX_YAML_NODES:
            raise SpecError(f"spec has more than {MAX_YAML_NODES} YAML nodes (alias expansion?)", Loc(file, *at(node)))
        marks[ypath] = at(node)
        if node.tag not in _TAGS:
            raise SpecError(f"tag {node.tag!r} is not allowed (specs are data: no tags)", Loc(file, *at(node)))
        if isinstance(node, yaml.MappingNode):
            out = {}
            loader.flatten_mapping(node)
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode) or k.tag not in _SCALAR_TAGS:
                    raise SpecError("mapping keys must be plain scalars", Loc(file, *at(k)))
                key = loader.construct_object(k)
                if not isinstance(key, str):
                    key = str(key)
                if key in out:
                    raise SpecError(f"duplicate key {key!r}", Loc(file, *at(k)))
                key_marks[ypath + (key,)] = at(k)
                out[key] = convert(v, ypath + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [convert(v, ypath + (i,)) for i, v in enumerate(node.value)]
        return loader.construct_object(node)

    return convert(root, ()), marks, key_marks


@cache
def schema() -> dict:
    return json.loads(resources.files("archc.spec").joinpath("schema.json").read_text())


@cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def _validate(spec: Spec) -> None:
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(spec.data), key=_relevance)
    if error is None:
        return
    ypath = tuple(error.absolute_path)
    message = _message(error)
    key = error.validator in ("additionalProperties", "propertyNames")
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        extra = [k for k in error.instance if k not in error.schema.get("properties", {})]
        if extra:
            ypath = ypath + (extra[0],)
            message = f"unknown key {extra[0]!r}" + _allowed(error.schema)
    if error.validator in ("anyOf", "oneOf") and isinstance(error.instance, dict) and _structure(error.instance):
        message = _structure(error.instance)
    elif error.validator == "anyOf" and "x-error" in error.schema and isinstance(error.instance, dict):
        from archc.spec.schema import KINDS, MODIFIERS

        import difflib

        unknown = [k for k in error.instance if k not in KINDS and k not in MODIFIERS]
        if not unknown and ypath and isinstance(ypath[-1], str) and not error.instance:
            # `- cnov: {}` reads as a node named "cnov" holding nothing: most likely a misspelt op
            if difflib.get_close_matches(ypath[-1], KINDS, n=1):
                unknown, ypath = [ypath[-1]], ypath[:-1]
        if unknown:
            close = difflib.get_close_matches(unknown[0], KINDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (ops: {', '.join(KINDS)})"
            ypath, key = ypath + (unknown[0],), True
            message = f"unknown op or construct {unknown[0]!r}" + hint
    if error.validator == "required" and "required" in error.schema:
        missing = [k for k in error.schema["required"] if k not in error.instance]
        message = f"missing key {missing[0]!r}" if missing else message
    raise SpecError(message, spec.loc(ypath, key=key), _dotted(ypath))


def _structure(item: dict) -> str | None:
    """A message for the two common structural slips: two ops in one item, a reserved word as a name."""
    from archc.spec.schema import KINDS, RESERVED

    kinds = [k for k in item if k in KINDS]
    if len(kinds) > 1 and set(kinds) != {"repeat", "block"}:
        return (f"one item holds {' and '.join(map(repr, kinds))}: an item is a single op or construct "
                "(a sequence is a list of items)")
    (key, value), = item.items() if len(item) == 1 else ((None, None),)
    looks_named = isinstance(value, (str, list)) or isinstance(value, dict) and any(k in KINDS for k in value)
    if key in RESERVED and looks_named:
        return f"{key!r} is reserved and cannot name an item: write `- {{{key}: ...}}` unnamed, or choose another name"
    return None


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + " ..."


def _relevance(error):
    # jsonschema's relevance, except that an unknown key (a typo) outranks the missing key it causes.
    from jsonschema.exceptions import relevance

    return (error.validator != "required", *relevance(error))


def _message(error) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "x-error" in schema and error.validator in ("anyOf", "oneOf", "maxProperties", "minProperties"):
        return schema["x-error"]
    if error.validator in ("anyOf", "oneOf"):
        return f"{_short(error.instance)} is not valid here"
    if error.validator == "const":
        return f"{error.instance!r} must be {error.validator_value!r}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern":
        return f"{error.instance!r} is not a valid name (letters, digits and _, not starting with a digit)"
    if error.validator == "not" and isinstance(error.instance, str):
        return f"{error.instance!r} is an op or construct and cannot name this"
    return error.message


def _allowed(schema: dict) -> str:
    props = [k for k in schema.get("properties", {})]
    return f" (allowed: {', '.join(props)})" if props else ""


def _dotted(ypath: YPath) -> str:
    return ".".join(str(p) for p in ypath) or "<spec>"
