"""Read a spec against the grammar: the Program to expand, or every error found, first one first.

The reader walks each document once with the grammar's tables (grammar.py) and the op table's arguments,
which the caller passes in (the language does not depend on which ops exist). It reports every independent
error at the place it was written: an unknown op with its nearest names, a misspelt argument with the op's
arguments, a modifier placed beside a name instead of inside it.
"""

from __future__ import annotations

import difflib
from dataclasses import replace

from archc.errors import Diagnostics, SpecError, UnknownNameError
from archc.spec import grammar as g
from archc.spec.document import About, Document, Expect, Output, Preprocessing, Published, Variant, network_name
from archc.spec.kinds import KINDS, NONE, REQUIRED, Arg, ArgDecl, List, ModuleName, Name, short
from archc.spec.tree import Block, Item, Program, Where

_NAME = Name()
_MODULE_NAME = ModuleName()


def read(spec, ops) -> Document:
    """The spec's Document: its Program and what it says about its network, typed. `ops`: name -> op (with `args`
    and `categories`) for every op a spec may write."""
    return _Reader(spec, ops).document()


def _hint(word: str, options, listing=(), noun: str = "ops") -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" ({noun}: {', '.join(listing)})" if listing else ""


def _misspelt(key: str, unknown: list[str]) -> bool:
    """Whether an unknown key is a misspelling of `key` (then `key` missing is not another mistake)."""
    return any(difflib.get_close_matches(u, [key], n=1) for u in unknown)


class _Reader:
    def __init__(self, spec, ops):
        self.spec, self.ops = spec, ops
        self.kinds = {*ops, *g.CONSTRUCTS}
        self.block_defs = {name: bdef for name, (bdef, _) in spec.blocks.items()}
        self.blocks: dict[str, Block] = {}
        self.errors = Diagnostics()
        self.variables = _variables(spec)  # names a call `{block: X}` may take its block from (X's value)

    def document(self) -> Document:
        main = {}
        for doc in self.spec.documents():
            values = self.read(g.LIBRARY if "library" in doc.data else g.SPEC, doc.data, Where(doc, ()))
            if doc is self.spec:
                main = values
        self.check_requires()
        self.check_variants(main)
        self.errors.raise_if_any()
        program = Program(main["input"], Item("seq", main["graph"], Where(self.spec, ("graph",))), self.blocks)
        variants = main.get("variants", {})
        written = main.get("outputs") or []
        outputs = [Output(p, p, i) for i, p in enumerate(written)] if isinstance(written, list) else \
            [Output(k, p, k) for k, p in written.items()]
        return Document(
            program, _about(main["name"], main, ("expect",)), main.get("params", {}),
            {name: Variant(name, {k: v for k, v in row.items() if k not in g.VARIANT.keys},
                           _about(network_name(main["name"], name, row), row, ("variants", name, "expect")))
             for name, row in variants.items()},
            tuple(outputs), tuple(main.get("requires", ())))

    def check_variants(self, main: dict) -> None:
        """Variants declare the default (params.variant), and every parameter a variant sets is set by all of them
        or declared in params (so that every variant binds every name)."""
        params = main.get("params") if isinstance(main.get("params"), dict) else {}
        variants = main.get("variants") if isinstance(main.get("variants"), dict) else {}
        at = Where(self.spec, ())
        if not variants:
            if "variant" in params:
                self.error("params.variant selects one of the spec's variants, but it has none (add `variants:`)",
                           at.child("params", "variant"), key=True, cls=UnknownNameError)
            return
        if "variant" not in params:
            self.error("a spec with variants names its default in params: {variant: NAME}", at.child("variants"),
                       key=True, cls=UnknownNameError)
        elif not isinstance(params["variant"], str) or params["variant"] not in variants:
            self.error(f"unknown variant {short(params['variant'])} (variants: {', '.join(variants)})",
                       at.child("params", "variant"), cls=UnknownNameError)
        keys = {name: {k for k in row if k not in g.VARIANT.keys} for name, row in variants.items()
                if isinstance(row, dict)}
        every = set().union(*keys.values())
        for name, own in keys.items():
            if "variant" in own:
                self.error("a variant cannot set `variant`", at.child("variants", name, "variant"), key=True,
                           cls=UnknownNameError)
            missing = sorted(k for k in every - own if k not in params)
            if missing:
                self.error(f"variant {name!r} does not set {', '.join(missing)}, which other variants set (set it, "
                           "or declare its default in params)", at.child("variants", name), key=True,
                           cls=UnknownNameError)

    # -- reporting --------------------------------------------------------------------------------------
    def error(self, message: str, at: Where, key: bool = False, cls=SpecError) -> None:
        self.errors.add(cls(message, at.loc(key=key), at.path))

    def unknown_key(self, k: str, allowed, at: Where, owner: str = "", noun: str = "key") -> None:
        hint = _hint(k, allowed, allowed, noun + "s") if allowed else f" ({owner} takes no {noun}s)"
        what = f"{owner} has no {noun} {k!r}" if owner else f"unknown {noun} {k!r}"
        self.error(what + hint, at, key=True, cls=UnknownNameError if noun == "argument" else SpecError)

    def unknown_op(self, k: str, at: Where, what: str = "op", key: bool = True) -> None:
        if k in self.block_defs:
            self.error(f"{k!r} is a block: call it as `- {k}` or `{{block: {k}, with: {{...}}}}`", at, key=key)
            return
        hint = self.plugin_hint(k) or _hint(k, [*self.ops, *g.CONSTRUCTS, *self.block_defs], self.ops)
        self.error(f"unknown {what} {k!r}{hint}", at, key=key, cls=UnknownNameError)

    def plugin_hint(self, k: str) -> str:
        """Which package provides a missing op, when that is known (archc's registry of plugins, or the spec's
        `requires:`), and why its ops are missing."""
        provider = getattr(self.ops, "provider", lambda name: None)(k)
        if provider:
            return f": it is provided by the plugin package {provider!r}, {self.ops.why_missing(provider)}"
        required = self.spec.data.get("requires")
        if isinstance(required, list) and required and hasattr(self.ops, "why_missing"):
            why = "; ".join(f"{p!r} {self.ops.why_missing(p)}" for p in required if isinstance(p, str))
            return f" (archc has no such op; this spec requires plugin packages: {why})"
        return ""

    def check_requires(self) -> None:
        """Every package the spec requires (for its plugin ops) is installed and its plugin loaded."""
        required = self.spec.data.get("requires")
        for i, package in enumerate(required if isinstance(required, list) else []):
            why = self.ops.why_missing(package) if isinstance(package, str) and hasattr(self.ops, "why_missing") \
                else None
            if why and not why.startswith("installed"):
                self.error(f"this spec requires the plugin package {package!r}: {why}",
                           Where(self.spec, ("requires", i)), cls=UnknownNameError)

    # -- the grammar's kinds ------------------------------------------------------------------------------
    def read(self, kind, v, at: Where, subject: str = ""):
        """Read a written value of a grammar or argument kind; report what is wrong; return it as read."""
        match kind:
            case g.Settings():
                return self.settings(kind, v, at, subject)
            case g.Mapping():
                return self.mapping(kind, v, at, subject)
            case List():
                if problem := kind.problem(v):
                    self.error(f"{subject} {problem}".lstrip(), at)
                    return v
                return v if isinstance(v, str) else [self.read(kind.of, x, at.child(i), subject)
                                                     for i, x in enumerate(v)]
            case g.OneOf():
                alt = next((a for a in kind.alternatives if a.matches(v)), None)
                if alt is None:
                    self.error(f"{subject} must be {kind.what}, got {short(v)}".lstrip(), at)
                    return v
                return self.read(alt, v, at, subject)
            case g.SeqKind():
                return self.seq(v, at)
            case g.ItemKind():
                return self.item(v, at)
            case g.NodeKind():
                return self.node(v, at, kind)
            case g.BlockRef():
                return self.block_ref(v, at)
            case g.OpRef():
                options = [n for n, op in self.ops.items() if kind.category in op.categories]
                if v not in options:
                    self.error(f"{subject} must be one of {', '.join(options)}, got {short(v)}", at)
                return v
            case g.BlockDef():
                return self.block_def(v, at)
        if problem := kind.problem(v):
            self.error(f"{subject} {problem}".lstrip(), at)
        return v

    def settings(self, s: g.Settings, v, at: Where, subject: str) -> dict:
        if not isinstance(v, dict):
            self.error(f"{subject or 'the spec'} must be {s.what}, got {short(v)}", at)
            return {}
        out, unknown = {}, []
        for k, w in v.items():
            if k in s.keys:
                out[k] = self.read(s.keys[k].kind, w, at.child(k), f"{s.owner} {k}".lstrip())
            elif s.others is not None:
                if problem := _NAME.problem(k):
                    self.error(problem, at.child(k), key=True)
                out[k] = self.read(s.others.kind, w, at.child(k), f"{s.owner} {k}".lstrip())
            else:
                self.unknown_key(k, s.keys, at.child(k), s.owner, s.noun)
                unknown.append(k)
        for k, key in s.keys.items():
            if k in v or _misspelt(k, unknown):
                continue
            if key.required:
                what = f"{s.owner} needs {s.noun} {k!r}" if s.owner else f"missing {s.noun} {k!r}"
                self.error(what, at, cls=UnknownNameError if s.noun == "argument" else SpecError)
            elif key.default is not None:
                out[k] = key.default
        return out

    def mapping(self, m: g.Mapping, v, at: Where, subject: str) -> dict:
        if not isinstance(v, dict) or len(v) < m.min:
            self.error(f"{subject} must be {m.what}{' (at least one)' * m.min}, got {short(v)}".lstrip(), at)
            return {}
        out = {}
        for k, w in v.items():
            problem = m.key.problem(k) or (isinstance(m.key, g.BlockName) and k in self.kinds
                                          and f"{k!r} is an op or construct: a block needs another name")
            if problem:
                self.error(problem, at.child(k), key=True)
            out[k] = self.read(m.value, w, at.child(k), f"{subject} {k}".lstrip())
        return out

    # -- nodes and items ------------------------------------------------------------------------------------
    def seq(self, v, at: Where) -> list:
        if not isinstance(v, list) or not v:
            self.error(f"a sequence must be a list of items, got {short(v)}", at)
            return []
        return [self.item(x, at.child(i)) for i, x in enumerate(v)]

    def node(self, v, at: Where, kind: g.NodeKind = g.NODE) -> Item | None:
        if isinstance(v, str):
            item = self.ref(v, at)
        elif isinstance(v, list):
            item = Item("seq", self.seq(v, at), at)
        elif isinstance(v, dict):
            item, mods = self.kinds_object(v, at, g.MODIFIERS)
            if item and mods:
                frm = mods.get("from")
                item = replace(item, when=mods.get("when"),
                               from_=None if frm is None else tuple(frm) if isinstance(frm, list) else (frm,))
        else:
            self.error(f"expected {g.NODE.what}, got {short(v)}", at)
            return None
        if item and item.kind in kind.not_:
            self.error(kind.why, at)
        return item

    def item(self, v, at: Where) -> Item | None:
        """A sequence item: a node, or `name: node`."""
        if isinstance(v, dict) and not self.is_form(v):
            return self.named(v, at)
        return self.node(v, at)

    def is_form(self, v: dict) -> bool:
        """Whether a mapping in an item's place is an op or construct itself rather than `name: node`. An op's
        key is a name when its value is a node (`relu: relu`, `relu: {conv: ...}`), not when it holds the op's
        own arguments (`upsample: {scale: 2}`, although `scale` is an op too); so is residual's, dense's or
        fractal's when its value holds an op or construct other than its own settings (`fractal: {fractal: ...}`)."""
        for k, w in v.items():
            construct = g.CONSTRUCTS.get(k)
            if construct and not construct.nameable:
                return True
            if k in self.ops and (w is None or isinstance(w, dict) and
                                  not any(j in self.kinds and j not in self.ops[k].args for j in w)):
                return True
            if construct and not _names_a_node(construct, w, self.kinds):
                return True
        return False

    def looks_like_node(self, w) -> bool:
        """A node rather than an op's arguments (numbers, expressions, lists): a name, a list, or a mapping with
        an op, construct or modifier key, or a mapping in it (`{cnov: {...}}`, a misspelt op)."""
        return isinstance(w, (str, list)) or isinstance(w, dict) and any(
            k in self.kinds or k in g.MODIFIERS or k in g.SIBLINGS or v is None or isinstance(v, dict)
            for k, v in w.items())

    def named(self, v: dict, at: Where) -> Item | None:
        if len(v) == 1:
            (k, w), = v.items()
            if problem := _MODULE_NAME.problem(k):
                self.error(problem, at.child(k), key=True)
            elif k in g.RESERVED:
                self.error(f"{k!r} is reserved and cannot name an item ({', '.join(g.RESERVED)} are)",
                           at.child(k), key=True)
            elif self.looks_like_node(w):
                item = self.node(w, at.child(k))
                return item and replace(item, name=k)
            elif k in self.ops:  # `relu: 3`: the op's arguments are wrong
                self.op_args(k, w, at.child(k))
            else:
                self.unknown_op(k, at.child(k))
            return None
        mods = [k for k in v if k in g.MODIFIERS]
        names = [k for k in v if k not in g.MODIFIERS]
        odd = next((k for k in names if not self.looks_like_node(v[k])), None)
        if mods and len(names) == 1 and odd is None:
            m, n = mods[0], names[0]
            w = v[n]
            kind = w if isinstance(w, str) else next(iter(self.kind_keys(w)), "<op>") if isinstance(w, dict) else "seq"
            self.error(f"`{m}:` stands inside the named item, beside its op or construct: "
                       f"`{n}: {{{kind}: ..., {m}: ...}}`", at.child(m), key=True)
        elif odd is not None:
            self.unknown_op(odd, at.child(odd))
        else:
            self.error("an item is an op or construct (`{conv: {...}}`), an op or block name, a list, or a "
                       "single `name: node` pair", at)
        return None

    def kind_keys(self, v: dict) -> list[str]:
        """The op or construct keys of a mapping; a key that stands beside another present construct (repeat's
        `block:`) is not one."""
        kinds = [k for k in v if k in self.kinds]
        beside = {j for k in kinds if k in g.CONSTRUCTS for j in g.CONSTRUCTS[k].keys}
        return [k for k in kinds if k not in beside]

    def kinds_object(self, v: dict, at: Where, extra: dict) -> tuple[Item | None, dict]:
        """A mapping with one op or construct key, the keys beside it, and `extra` keys (modifiers, or a block
        definition's args/let/doc): the Item, and the extra keys read."""
        kinds = self.kind_keys(v)
        if len(kinds) != 1:
            if kinds:
                self.error(f"one item holds {' and '.join(map(repr, kinds))}: an item is a single op or "
                           "construct (a sequence is a list of items)", at)
            else:
                self.no_kind(v, at, extra)
            return None, {}
        k = kinds[0]
        construct = g.CONSTRUCTS.get(k)
        beside = construct.keys if construct else {}
        keys, extras = {}, {}
        for j, w in v.items():
            if j in beside:
                keys[j] = self.read(beside[j].kind, w, at.child(j), f"{k} {j}")
            elif j in extra:
                extras[j] = self.read(extra[j].kind, w, at.child(j), j)
            elif j != k:
                allowed = [*beside, *extra]
                self.error(f"unknown key {j!r} beside {k}{_hint(j, [*allowed, *self.kinds], allowed, 'allowed')}",
                           at.child(j), key=True)
        if construct is None:
            return Item(k, self.op_args(k, v[k], at.child(k)), at), extras
        value = self.read(construct.value, v[k], at.child(k), k)
        keys.update({j: key.default for j, key in beside.items() if j not in v and key.default is not None})
        if construct.one_of and sum(j in v for j in construct.one_of) != 1:
            self.error(f"{k} takes exactly one of " + " or ".join(f"`{j}:`" for j in construct.one_of), at)
        callee = value if isinstance(construct.value, g.BlockRef) else next(
            (keys[j] for j in keys if isinstance(beside[j].kind, g.BlockRef)), None)
        if isinstance(callee, str) and callee in self.block_defs:  # a block argument's callee is known later
            w = next((j for j in keys if beside[j].kind is g.WITH), None)
            self.check_call(callee, keys.get(w, {}), at.child(w) if w else None, at)
        return Item(k, value, at, keys), extras

    def no_kind(self, v: dict, at: Where, extra: dict) -> None:
        unknown = [j for j in v if j not in extra and j not in g.SIBLINGS]
        if not unknown:
            self.error(f"no op or construct here, only {', '.join(map(repr, v)) or 'an empty mapping'}", at)
        elif self.looks_like_node(v[unknown[0]]):
            self.error(f"{unknown[0]!r} is not an op or construct (names stand only in sequence items: "
                       f"`- {unknown[0]}: ...`)", at.child(unknown[0]), key=True)
        else:
            self.unknown_op(unknown[0], at.child(unknown[0]))

    def op_args(self, op: str, v, at: Where) -> dict:
        spec = g.Settings({k: g.Key(a.kind, a.default is REQUIRED, doc=a.doc) for k, a in self.ops[op].args.items()},
                          owner=op, noun="argument")
        if v is not None and not isinstance(v, dict):
            self.error(f"{op} takes a mapping of arguments, got {short(v)}", at)
            return {}
        return self.settings(spec, v or {}, at, op)

    def ref(self, v: str, at: Where) -> Item | None:
        """An op or block written as a bare name."""
        if problem := _NAME.problem(v):
            self.error(problem, at)
        elif v in self.ops:
            self.op_args(v, None, at)
            return Item(v, {}, at)
        elif v in self.block_defs:
            self.check_call(v, {}, None, at)
            return Item("block", v, at, {"with": {}})
        elif v in self.variables:  # a block argument (or parameter) naming a block or an op: called as it says
            return Item("block", v, at, {"with": {}})
        elif v in g.CONSTRUCTS:
            self.error(f"{v!r} is a construct: write `{{{v}: ...}}`", at)
        else:
            self.unknown_op(v, at, "op or block", key=False)
        return None

    # -- blocks -------------------------------------------------------------------------------------------------
    def block_ref(self, v, at: Where):
        if problem := _NAME.problem(v):
            self.error(problem, at)
        elif v not in self.block_defs and v not in self.variables:
            self.error(f"unknown block {v!r}{_hint(v, self.block_defs, self.block_defs, 'blocks')}", at,
                       cls=UnknownNameError)
        return v

    def declared(self, block: str) -> dict:
        """A block's arguments as declared (read leniently: its definition reports its own mistakes)."""
        args = self.block_defs[block].get("args") if isinstance(self.block_defs[block], dict) else None
        return {k: self.arg(w) for k, w in args.items()} if isinstance(args, dict) else {}

    def arg(self, written) -> Arg:
        """A block argument declared by a kind's name or a default; a default naming an op, a block or none makes
        an argument that holds a block (`act: relu`, `attn: none`)."""
        if isinstance(written, str) and (written in self.ops or written in self.block_defs or written == NONE):
            return Arg(KINDS["block"], written)
        return ArgDecl().arg(written)

    def check_call(self, block: str, with_: dict, at_with: Where | None, at: Where) -> None:
        declared = self.declared(block)
        for k in with_:
            if k not in declared:
                hint = _hint(k, declared, declared, "arguments") or " (it takes no arguments)"
                self.error(f"block {block!r} has no argument {k!r}{hint}", at_with.child(k), key=True,
                           cls=UnknownNameError)
        for k, arg in declared.items():
            if arg.default is REQUIRED and k not in with_ and not _misspelt(k, [j for j in with_ if j not in declared]):
                self.error(f"block {block!r} needs argument {k!r}", at, cls=UnknownNameError)

    def block_def(self, v, at: Where) -> Block | None:
        if not isinstance(v, dict):
            self.error(f"a block must be {g.BlockDef.what}, got {short(v)}", at)
            return None
        body, extras = self.kinds_object(v, at, g.BLOCK_KEYS)
        args = {k: self.arg(w) for k, w in extras.get("args", {}).items()}
        block = Block(at.yp[-1], args, extras.get("let", {}), body, at)
        self.blocks[block.name] = block
        return block


def _names_a_node(construct: g.Construct, w, kinds) -> bool:
    """Whether a nameable construct's key names an item rather than being the construct: its value is a node the
    construct cannot take as its own value — a mapping holding an op or construct key other than the construct's own
    settings (`block: {block: se}`, `repeat: {repeat: 10, block: block35}`, `branches: {seq: [...]}`), or a list
    where the construct takes none (`block: [...]`, `repeat: [...]`; a list is `branches`' own value)."""
    own = construct.value.keys if isinstance(construct.value, g.Settings) else {}
    if isinstance(w, list):
        return not construct.value.matches(w)
    return isinstance(w, dict) and any(j in kinds and j not in own for j in w)


def _about(name: str, values: dict, expect_at: tuple) -> About:
    """What a spec's (or a variant row's) values, as read, say about its network."""
    published = values.get("published")
    pre = values.get("preprocessing")
    return About(
        name, values.get("description"), values.get("source"), values.get("torchvision"),
        Expect(values["expect"], expect_at) if "expect" in values else None,
        Published(**published) if published else None,
        Preprocessing(pre["resize"], pre["crop"], pre["interpolation"], tuple(pre["mean"]), tuple(pre["std"]))
        if pre else None)


def _variables(spec) -> set[str]:
    """Every name a value may be bound to in some environment: parameters, variants' values, table columns, block
    arguments and lets, the names a repeat binds. `{block: X}` with X among them calls what X holds."""
    names = set()
    for doc in spec.documents():
        data = doc.data if isinstance(doc.data, dict) else {}
        variants = data.get("variants") if isinstance(data.get("variants"), dict) else {}
        for values in _dicts(data.get("params"), *variants.values()):  # parameters, and the tables' columns
            names |= set(values)
            for v in values.values():
                if isinstance(v, dict) and isinstance(v.get("columns"), list):
                    names |= {c for c in v["columns"] if isinstance(c, str)}
        for bdef in _dicts(*(data.get("blocks") or {}).values()) if isinstance(data.get("blocks"), dict) else ():
            names |= {k for key in ("args", "let") for d in _dicts(bdef.get(key)) for k in d}
        stack = [data.get("graph"), data.get("blocks")]
        while stack:
            x = stack.pop()
            if isinstance(x, dict):
                if isinstance(x.get("repeat"), dict):
                    columns = x["repeat"].get("columns")
                    names |= set(columns if isinstance(columns, list) else x["repeat"])
                stack.extend(x.values())
            elif isinstance(x, list):
                stack.extend(x)
    return {n for n in names if isinstance(n, str)}


def _dicts(*values):
    return [v for v in values if isinstance(v, dict)]
