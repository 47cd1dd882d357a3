"""Load a spec: safe YAML with line/column marks, its block libraries, then read against the grammar (read.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from archc.errors import Loc, SpecError, UnknownNameError
from archc.spec.kinds import ParamValue, short, to_value
from archc.spec.read import read
from archc.spec.tree import Program

MAX_BYTES = 1 << 20
MAX_YAML_NODES = 200_000
_SCALAR_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null")}
_TAGS = _SCALAR_TAGS | {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}

YPath = tuple  # a path into the YAML document: keys and list indices


@dataclass
class Spec:
    """A spec document: its data, where each value was written, its libraries, its parameters, and (once read
    against the grammar) its program."""

    file: str
    data: dict
    marks: dict[YPath, tuple[int, int]] = field(repr=False)
    key_marks: dict[YPath, tuple[int, int]] = field(repr=False)
    params: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    text: str = field(default="", repr=False)
    imports: list["Spec"] = field(default_factory=list, repr=False)
    program: Program | None = field(default=None, repr=False)  # set once read against the grammar

    @property
    def name(self) -> str:
        return self.data["library"] if "library" in self.data else self.data.get("name", "")

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
        own = self.data.get("blocks")
        for name, bdef in (own.items() if isinstance(own, dict) else ()):
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

    @property
    def variants(self) -> dict:
        """Variant name -> its row (parameters, and its own torchvision model and expected figures)."""
        v = self.data.get("variants")
        return v if isinstance(v, dict) else {}

    @property
    def variant(self) -> str | None:
        """The selected variant's name (`--set variant=NAME`, else params.variant), if the spec has variants."""
        if not self.variants:
            return None
        return self.overrides.get("variant", self.data.get("params", {}).get("variant"))

    @property
    def torchvision(self) -> str | None:
        """The torchvision model this spec (its selected variant) loads the state_dict of, if any."""
        return self.variants.get(self.variant, {}).get("torchvision", self.data.get("torchvision"))

    @property
    def expect(self) -> tuple[dict, tuple] | None:
        """The figures to check and where they are written: the selected variant's, or the spec's own at its
        defaults; None when parameters other than the variant are overridden."""
        if set(self.overrides) - {"variant"}:
            return None
        row = self.variants.get(self.variant, {})
        if "expect" in row:
            return row["expect"], ("variants", self.variant, "expect")
        default = self.data.get("params", {}).get("variant")
        if "expect" in self.data and (not self.variants or self.variant == default):
            return self.data["expect"], ("expect",)
        return None

    def with_params(self, overrides: dict) -> "Spec":
        """A copy with spec parameters overridden (as `--set k=v` does): `variant` selects a variant's row,
        then the other overrides apply. Unknown names, and values of another kind, are errors."""
        overrides = {**self.overrides, **overrides}
        declared = self.data.get("params", {})
        values = dict(declared)
        if self.variants:
            name = overrides.get("variant", declared.get("variant"))
            if name not in self.variants:
                raise UnknownNameError(f"unknown variant {short(name)} (variants: {', '.join(self.variants)})",
                                self.loc(("params", "variant")))
            values.update({k: v for k, v in self.variants[name].items() if k not in VARIANT_KEYS})
        for k, v in overrides.items():
            if k not in values:
                known = ", ".join(values) or "none"
                raise SpecError(f"unknown parameter {k!r} (the spec declares: {known})", self.loc(("params",)))
            if not _fits(values[k], v):
                raise SpecError(f"parameter {k!r} is {short(values[k])}; {short(v)} does not fit",
                                self.loc(("params", k)))
            values[k] = v
        params = {k: to_value(v) for k, v in values.items()}
        return Spec(self.file, self.data, self.marks, self.key_marks, params, overrides, self.text, self.imports,
                    self.program)

    def loc(self, ypath: YPath, key: bool = False) -> Loc:
        """Where the value (or, with key=True, the key) at ypath was written; the nearest enclosing one if unknown."""
        ypath = tuple(ypath)
        if key and ypath in self.key_marks:
            return Loc(self.file, *self.key_marks[ypath])
        while ypath not in self.marks and ypath:
            ypath = ypath[:-1]
        return Loc(self.file, *self.marks.get(ypath, (1, 1)))


VARIANT_KEYS = ("torchvision", "expect", "source")  # a variant's own keys; its others are parameters


def _fits(old, new) -> bool:
    """Whether an override `new` may replace the parameter value `old`: the same kind (an int for an int, a number
    for a float, true/false for true/false, a name for a name, a list for a list; tables are not overridden)."""
    if isinstance(old, dict) or ParamValue().problem(new) or isinstance(new, dict):
        return False
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (list, str)):
        return type(new) is type(old)
    return isinstance(new, int) if isinstance(old, int) else isinstance(new, (int, float))


MAX_IMPORT_DEPTH = 8


def load(path: str | Path, ops, overrides: dict | None = None) -> Spec:
    """Read, check and parameterise the spec at `path`; `ops`: the ops a spec may write (name -> op).
    Raises SpecError (ArchcErrors when there are several) with locations."""
    return _finish(_read(Path(path), None), ops, overrides)


def loads(text: str, file: str, ops, overrides: dict | None = None) -> Spec:
    """A spec from text; `file` names it in messages and anchors its imports."""
    return _finish(_parse(text, file, ()), ops, overrides)


def _finish(spec: Spec, ops, overrides: dict | None) -> Spec:
    if "library" in spec.data:
        raise SpecError(f"{spec.file} is a block library ({spec.name!r}): import it from a spec",
                        spec.loc(("library",)))
    spec.program = read(spec, ops)
    _check_schema(spec, ops)
    _check_variants(spec)
    return spec.with_params(overrides or {})


def _check_variants(spec: Spec) -> None:
    """Variants declare the default (params.variant), and every parameter a variant sets is set by all of them
    or declared in params (so that every variant binds every name)."""
    if not spec.variants:
        if "variant" in spec.data.get("params", {}):
            raise UnknownNameError("params.variant selects one of the spec's variants, but it has none (add "
                                   "`variants:`)",
                            spec.loc(("params", "variant"), key=True))
        return
    params = spec.data.get("params", {})
    if "variant" not in params:
        raise UnknownNameError("a spec with variants names its default in params: {variant: NAME}",
                               spec.loc(("variants",), key=True))
    keys = {name: set(row) - set(VARIANT_KEYS) for name, row in spec.variants.items()}
    every = set().union(*keys.values())
    for name, own in keys.items():
        if "variant" in own:
            raise UnknownNameError("a variant cannot set `variant`", spec.loc(("variants", name, "variant"), key=True))
        missing = sorted(k for k in every - own if k not in params)
        if missing:
            raise UnknownNameError(f"variant {name!r} does not set {', '.join(missing)}, which other variants set "
                                   "(set it, or declare its default in params)", spec.loc(("variants", name), key=True))


def _check_schema(spec: Spec, ops) -> None:
    """The JSON Schema's verdict (jsonschema, on the schema generated from the same grammar and op table), after
    the reader's: the reader reports every mistake with its place; the schema is the contract editors and other
    tools see. They agree (tests check it over specs, mutations and fuzzed documents); were they ever to
    disagree, the document is refused, located, rather than let through."""
    from jsonschema.exceptions import best_match

    from archc.spec.grammar import CONSTRUCTS

    key = (tuple(ops), tuple(CONSTRUCTS))
    if key not in _VALIDATORS:
        import jsonschema

        from archc.spec.schema import generate

        _VALIDATORS[key] = jsonschema.Draft202012Validator(generate(ops))
    validator = _VALIDATORS[key]
    for doc in _documents(spec):
        error = best_match(validator.iter_errors(doc.data))
        if error is not None:
            path = tuple(error.absolute_path)
            raise SpecError(f"does not match the schema at {'.'.join(map(str, path)) or 'the top'}: "
                            f"{error.message}", doc.loc(path))


def _documents(spec: Spec):
    yield spec
    for lib in spec.imports:
        yield from _documents(lib)


_VALIDATORS: dict = {}  # (op names, construct names) -> the validator of the schema they generate


def _read(path: Path, importer: tuple | None) -> Spec:
    file = str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SpecError(f"spec larger than {MAX_BYTES} bytes", Loc(file, 1, 1))
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or e
        if importer:
            raise SpecError(f"cannot read import {file}: {reason}", importer[0]) from None
        raise SpecError(f"cannot read spec: {reason}", Loc(file, 1, 1)) from None
    return _parse(text, file, importer[2] if importer else ())


def _parse(text: str, file: str, chain: tuple) -> Spec:
    data, marks, key_marks = _compose(text, file)
    if not isinstance(data, dict):
        raise SpecError(f"a spec is a mapping of keys (archc, name, input, graph, ...), got {type(data).__name__}",
                        Loc(file, 1, 1))
    spec = Spec(file, data, marks, key_marks, text=text)
    refs = data.get("import", [])  # its form is checked with the rest, by the reader
    spec.imports = [_import(spec, i, ref, chain + (file,))
                    for i, ref in enumerate(refs if isinstance(refs, list) else []) if isinstance(ref, str)]
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
