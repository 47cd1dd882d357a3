"""Expand a spec's Program into a Graph of primitive ops, inferring each node's shape as it is added.

The walk follows the grammar: ops are added from the op table, each construct has one expansion function
(EXPANSIONS), and names become module paths as scope.py says. Every independent error is reported, first one
first: an item that fails is reported and yields POISON, and whatever depends on it is skipped quietly (its
shapes are unknown, so its own errors would only repeat the first).

The work is bounded by the spec's limits (archc/spec/limits.py): graph nodes, and steps — every item expanded, also
one `when:` leaves out, and every input of every node, so a dense block of n layers costs about n^2/2 steps. Items
nest at most ITEM_DEPTH deep (block calls included), so the recursion stays within Python's stack.
"""

from __future__ import annotations

import re

from archc.errors import ArchcError, Diagnostics, ExprError, LimitError, ShapeError, SpecError, UnknownNameError
from archc.ir.graph import Graph, Node, Output
from archc.ir.ops import INTERNAL, JOIN, OPS, STATEFUL, Op
from archc.ir.scope import Modules, Scope, is_unit
from archc.spec.expr import MAX_MAGNITUDE, UNKNOWN, UnknownValue, evaluate, show
from archc.spec.grammar import CONSTRUCTS, PROBABILITY
from archc.spec.kinds import REQUIRED, VALUE, Bool, Int
from archc.spec.limits import ITEM_DEPTH
from archc.spec.tree import Item, Where

COUNT = Int()
WHEN = Bool()


class _Poison:
    """The value of an item that failed: its error is reported; nothing that reads it is checked further."""

    def __repr__(self) -> str:
        return "POISON"


POISON = _Poison()


class _Stop(Exception):
    """A limit was reached: expansion stops and reports what it found."""


def expand(spec) -> Graph:
    """The spec's graph (spec: a Spec read against the grammar). Raises every independent error found."""
    return _Expander(spec).run()


class _Expander:
    def __init__(self, spec):
        self.spec, self.program = spec, spec.program
        self.g = Graph(spec.name, spec.file)
        self.limits = self.g.meta["limits"] = spec.limits
        self.modules = Modules()
        self.errors = Diagnostics()
        self.depth = 0  # items being expanded, one inside the other
        self.steps = 0
        self.units: dict = {}  # Item -> whether it is a unit (scope.is_unit), once per item
        self.literal: dict = {}  # Item -> its op's attributes, when none is an expression

    def run(self) -> Graph:
        env = dict(self.spec.params)
        at = Where(self.spec, ("input",))
        shape = tuple(self.resolve(Int(lo=1), v, env, at.child(i), "input", "input")
                      for i, v in enumerate(self.program.input))
        x = self.add("input", {"shape": shape}, [], "input", at)
        try:
            out = self.emit(self.program.graph, env, x, Scope(""))
        except _Stop:
            out = POISON
        self.errors.raise_if_any()
        self.g.outputs.insert(0, Output("out", out, False))
        return self.g

    # -- errors and values --------------------------------------------------------------------------------
    @staticmethod
    def fail(message: str, at: Where, path: str, cls=SpecError) -> ArchcError:
        return cls(message, at.loc(), path or at.path)

    def stop(self, error: ArchcError):
        self.errors.add(error)
        raise _Stop

    def step(self, n: int, at: Where, path: str) -> None:
        """Count n steps of work; past the steps limit, expansion stops."""
        self.steps += n
        if self.steps > self.limits.steps:
            self.stop(self.fail(f"the spec takes more than {self.limits.steps:,} steps to expand (nested repeats, "
                                f"blocks calling blocks, wide dense blocks) {self.limits.exceeded('steps')}", at, path,
                                LimitError))

    def resolve(self, kind, written, env: dict, at: Where, path: str, subject: str):
        """A written value of `kind`, expressions evaluated in env; errors located at `at`."""
        try:
            return kind.resolve(written, lambda text: evaluate(text, env))
        except ArchcError as e:  # an expression's own message, or a kind's, which reads after the subject
            message = e.message if isinstance(e, ExprError) else f"{subject} {e.message}"
            raise type(e)(message, at.loc(), path or at.path) from None

    def template(self, text: str, env: dict, at: Where, path: str) -> str:
        name = re.sub(r"\{([^{}]*)\}", lambda m: str(self.resolve(VALUE, m.group(1), env, at, path, "names")), text)
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise self.fail(f"names template {text!r} gives {name!r}, not a valid name", at, path)
        return name

    # -- nodes --------------------------------------------------------------------------------------------
    def add(self, op: str, attrs: dict, inputs: list, module: str, at: Where):
        """Add one primitive op; infers its shape now so that later expansion can use it."""
        if any(i is POISON for i in inputs):
            return POISON
        self.step(len(inputs), at, module)
        loc = at.loc()
        try:
            shape = OPS[op].shape(attrs, [self.g[i].shape for i in inputs])
        except ShapeError as e:
            raise ShapeError(e.message, loc, module) from None
        if not all(-MAX_MAGNITUDE <= d <= MAX_MAGNITUDE for d in shape):  # computed sizes: the numeric policy
            big = next(d for d in shape if not -MAX_MAGNITUDE <= d <= MAX_MAGNITUDE)
            raise ShapeError(f"{op} output shape [{', '.join(map(show, shape))}]: {show(big)} is out of range "
                             "(numbers are finite and within +-2^62)", loc, module)
        name = self.modules.claim(module, op, attrs, STATEFUL in OPS[op], loc)
        if len(self.g) >= self.limits.nodes:
            self.stop(self.fail(f"the spec expands to more than {self.limits.nodes:,} nodes "
                                f"{self.limits.exceeded('nodes')}", at, module, LimitError))
        self.g.add(Node(name, op, attrs, module, loc, shape), inputs)
        return name

    def internal(self, op: str, attrs: dict, inputs: list, scope: Scope, at: Where):
        """An op a construct adds (a join, a drop-path), named `~op` in its scope, with its defaults."""
        defaults = {k: a.default for k, a in OPS[op].args.items() if a.default is not REQUIRED}
        return self.add(op, {**defaults, **attrs}, inputs, scope.path("~" + op), at)

    def op_args(self, op: Op, written: dict, env: dict, at: Where, path: str) -> dict:
        attrs = {}
        for name, arg in op.args.items():
            v = written.get(name, arg.default)
            attrs[name] = None if v is None else self.resolve(
                arg.kind, v, env, at.child(op.name, name) if name in written else at, path, f"{op.name} {name}")
        return attrs

    def single(self, x, at: Where, path: str):
        if isinstance(x, tuple):
            joins = ", ".join(n for n, op in OPS.items() if JOIN in op and INTERNAL not in op)
            raise self.fail(f"only a join op ({joins}) takes several inputs from `from:`", at, path)
        return x

    # -- items --------------------------------------------------------------------------------------------
    def emit(self, item: Item, env: dict, x, scope: Scope, name: str | None = None, positional: bool = False,
             local: dict | None = None):
        """Expand one item on input(s) x in `scope` and return its output, or None when its `when:` leaves it
        out. `name`: its name, if written; a `positional` item stands in a sequence position. `from:` resolves
        against `local` (the enclosing sequence's names) and the scope's names. An item that fails is reported
        and yields POISON."""
        self.step(1, item.where, scope.prefix)
        if self.depth >= ITEM_DEPTH:
            self.stop(self.fail(f"items nest deeper than {ITEM_DEPTH} (lists, constructs and block calls; a block "
                                "that calls itself?)", item.where, scope.prefix, LimitError))
        self.depth += 1
        try:
            if item.when is not None and not self.resolve(WHEN, item.when, env, item.where.child("when"),
                                                          scope.prefix, "when"):
                return None
            if item.from_ is not None:
                x = self.resolve_from(item, local or {}, scope)
            name = name or item.name
            if name is None and positional and is_unit(item, self.program.blocks, self.units):
                name = scope.take()
            if item.kind in OPS:
                return self.op(item, env, x, scope, name)
            construct = CONSTRUCTS[item.kind]
            x = self.single(x, item.where, scope.prefix)
            if construct.scope == "pass":
                return EXPANSIONS[item.kind](self, item, env, x, scope, name)
            if construct.scope == "own" or name:
                scope = scope.child(name or scope.take())
            return EXPANSIONS[item.kind](self, item, env, x, scope, None)
        except UnknownValue:
            return POISON
        except LimitError as e:
            self.stop(e)
        except ArchcError as e:
            self.errors.add(e)
            return POISON
        finally:
            self.depth -= 1

    def resolve_from(self, item: Item, local: dict, scope: Scope):
        ids = []
        for ref in item.from_:
            if ref not in local and ref not in scope.names:
                known = ", ".join(list(local) + [n for n in scope.names if n not in local])
                raise self.fail(f"from: no earlier item named {ref!r} here (known: {known})",
                                item.where.child("from"), scope.prefix, UnknownNameError)
            ids.append(local[ref] if ref in local else scope.names[ref])
        return ids[0] if len(ids) == 1 else tuple(ids)

    def op(self, item: Item, env: dict, x, scope: Scope, name: str | None):
        op = OPS[item.kind]
        path = scope.path(name if name else scope.take())
        if item in self.literal:
            attrs, work = self.literal[item]
            self.step(work, item.where, path)
        else:
            work = _scalars(item.value)
            self.step(work, item.where, path)
            attrs = self.op_args(op, item.value, env, item.where, path)
            if not _has_expression(item.value):  # the same attributes wherever the item is expanded
                self.literal[item] = attrs, work
        attrs = dict(attrs)
        if op.arity == 1:
            x = self.single(x, item.where, path)
        return self.add(op.name, attrs, list(x) if isinstance(x, tuple) else [x], path, item.where)

    def seq(self, item: Item, env: dict, x, scope: Scope, name=None):
        local = {"input": x}
        for it in item.value:
            out = self.emit(it, env, x, scope, positional=True, local=local)
            if out is None:
                continue
            if it.name:
                scope.counter += 1
                local[it.name] = scope.names[it.name] = out
            x = out
        return x

    def block(self, item: Item, env: dict, x, scope: Scope, name: str | None):
        """A block call: its body, with its own environment (spec params, arguments, lets, input shape)."""
        block = self.program.blocks[item.value]
        path = scope.path(name) if name else scope.prefix
        benv = dict(self.spec.params)
        shape = (UNKNOWN,) * 3 if x is POISON else self.g[x].shape
        benv.update(zip(("in_channels", "in_height", "in_width"), shape) if len(shape) == 3
                    else {"in_features": shape[0]})
        written = item.keys.get("with", {})
        for k, arg in block.args.items():  # written values in the caller's environment, defaults in the block's
            subject = f"{block.name} {k}"
            if k in written:
                benv[k] = self.resolve(arg.kind, written[k], env, item.where.child("with", k), path, subject)
            else:
                benv[k] = self.resolve(arg.kind, arg.default, benv, block.where.child("args", k), path, subject)
        for k, v in block.let.items():
            benv[k] = self.resolve(VALUE, v, benv, block.where.child("let", k), path, k)
        return self.emit(block.body, benv, x, scope, name)

    def repeat(self, item: Item, env: dict, x, scope: Scope, name=None):
        at = item.where.child("repeat")
        n = self.resolve(COUNT, item.value, env, at, scope.prefix, "repeat")
        if not 0 <= n <= self.limits.repeat:
            raise self.fail(f"repeat count {n} outside 0..{self.limits.repeat:,}"
                            + f" {self.limits.exceeded('repeat')}" * (n > 0), at, scope.prefix, LimitError)
        keys = item.keys
        body = Item("block", keys["block"], item.where, {"with": keys.get("with", {})}) if "block" in keys \
            else keys["body"]
        for i in range(n):
            ienv = {**env, "i": i, "n": n}
            iname = self.template(keys["names"], ienv, item.where.child("names"), scope.prefix) \
                if "names" in keys else None
            x = self.emit(body, ienv, x, scope, iname, positional=True) or x
        return x

    def branches(self, item: Item, env: dict, x, scope: Scope, name=None):
        named = item.value.items() if isinstance(item.value, dict) else ((None, b) for b in item.value)
        outs = [self.emit(b, env, x, scope, bname) or x for bname, b in named]
        return self.internal(item.keys["join"], {}, outs, scope, item.where)

    def residual(self, item: Item, env: dict, x, scope: Scope, name=None):
        r, at = item.value, item.where.child("residual")
        body = self.emit(r["body"], env, x, scope) or x
        if "drop_path" in r:
            dp = r["drop_path"]
            linear = isinstance(dp, dict)
            p = self.resolve(PROBABILITY, dp["linear"] if linear else dp, env, at.child("drop_path"), scope.prefix,
                             "residual drop_path")
            body = self.internal("drop_path", {"p": p}, [body], scope, at.child("drop_path"))
            if linear and body is not POISON:
                self.g[body].meta["drop_path_linear"] = p
        short = self.shortcut(r["shortcut"], at.child("shortcut"), env, x, body, scope)
        out = self.internal("add", {}, [body, short], scope, item.where)
        if "post" in r:
            out = self.emit(r["post"], env, out, scope) or out
        return out

    def shortcut(self, spec, at: Where, env: dict, x, body, scope: Scope):
        """identity, auto ({auto: name, bn: bool}: a 1x1 conv [+ BN] when shapes differ), or an item."""
        if isinstance(spec, Item):
            return self.emit(spec, env, x, scope) or x
        if spec == "identity" or x is POISON or body is POISON:
            return x if spec == "identity" else POISON
        xs, bs = self.g[x].shape, self.g[body].shape
        if xs == bs:
            return x
        if len(xs) != 3 or len(bs) != 3 or xs[1] % bs[1] or xs[2] % bs[2] or xs[1] // bs[1] != xs[2] // bs[2]:
            raise self.fail(f"no 1x1 projection maps {list(xs)} to {list(bs)}", at, scope.prefix, ShapeError)
        pscope = scope.child(spec["auto"] if isinstance(spec, dict) else "downsample")
        attrs = self.op_args(OPS["conv"], {"out": bs[0], "k": 1, "stride": xs[1] // bs[1], "bias": False}, env,
                             at, pscope.prefix)
        s = self.add("conv", attrs, [x], pscope.path(pscope.take()), at)
        if not isinstance(spec, dict) or spec["bn"]:
            bn = self.op_args(OPS["bn"], {}, env, at, pscope.prefix)
            s = self.add("bn", bn, [s], pscope.path(pscope.take()), at)
        return s

    def dense(self, item: Item, env: dict, x, scope: Scope, name=None):
        d, at = item.value, item.where.child("dense")
        n = self.resolve(COUNT, d["layers"], env, at.child("layers"), scope.prefix, "dense layers")
        if not 1 <= n <= self.limits.repeat:
            raise self.fail(f"dense layers {n} outside 1..{self.limits.repeat:,}"
                            + f" {self.limits.exceeded('repeat')}" * (n > 1), at.child("layers"), scope.prefix,
                            LimitError if n > 1 else SpecError)
        feats = [x]
        for i in range(n):
            ienv = {**env, "i": i, "n": n}
            lname = self.template(d["names"], ienv, at.child("names"), scope.prefix) if "names" in d else str(i)
            inp = x if i == 0 else self.internal("concat", {}, feats, scope, at)
            feats.append(self.emit(d["body"], ienv, inp, scope, lname) or inp)
        return self.internal("concat", {}, feats, scope, at)

    def fractal(self, item: Item, env: dict, x, scope: Scope, name=None):
        """f_1 = body; f_{c+1}(z) = join(f_c(f_c(z)), body(z)), joins at equal depth merged (Larsson et al.)."""
        f, at = item.value, item.where.child("fractal")
        columns = self.resolve(COUNT, f["columns"], env, at.child("columns"), scope.prefix, "fractal columns")
        if not 1 <= columns <= 8:
            raise self.fail(f"fractal columns {columns} outside 1..8", at.child("columns"), scope.prefix, LimitError)
        p = self.resolve(PROBABILITY, f.get("drop_path", 0.0), env, at.child("drop_path"), scope.prefix,
                         "fractal drop_path")
        counters = [0] * (columns + 1)

        def join(zs):
            return zs[0] if len(zs) == 1 else self.internal("mean", {"drop_path": p}, zs, scope, at)

        def expand_(c: int, z, col: int) -> list:
            deep = expand_(c - 1, join(expand_(c - 1, z, col + 1)), col + 1) if c > 1 else []
            counters[col] += 1
            ienv = {**env, "column": col, "i": counters[col] - 1}
            shallow = self.emit(f["body"], ienv, z, scope.child(f"col{col}"), str(counters[col] - 1)) or z
            return deep + [shallow]

        return join(expand_(columns, x, 1))

    def aux(self, item: Item, env: dict, x, scope: Scope, name=None):
        out = self.emit(item.value, env, x, scope) or x
        if out is not POISON:
            self.g.outputs.append(Output(scope.prefix, out, True))
        return x


def _scalars(v, in_list: bool = False) -> int:
    """How many values the lists of written arguments hold (a connection table's entries): the work of resolving
    and checking them, beyond the item's own step."""
    if isinstance(v, dict):
        return sum(_scalars(x) for x in v.values())
    if isinstance(v, list):
        return sum(_scalars(x, True) for x in v)
    return int(in_list)


def _has_expression(v) -> bool:
    if isinstance(v, dict):
        return any(_has_expression(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_expression(x) for x in v)
    return isinstance(v, str)


EXPANSIONS = {
    "seq": _Expander.seq,
    "repeat": _Expander.repeat,
    "block": _Expander.block,
    "branches": _Expander.branches,
    "residual": _Expander.residual,
    "dense": _Expander.dense,
    "fractal": _Expander.fractal,
    "aux": _Expander.aux,
}
"""One expansion function per construct of the grammar: (expander, item, env, input, scope, name) -> output."""
