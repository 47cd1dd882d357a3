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

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from archc.errors import ArchcError, Diagnostics, ExprError, LimitError, ShapeError, SpecError, UnknownNameError
from archc.ir.graph import Graph, Node, Output
from archc.ir.ops import INTERNAL, JOIN, OPS, STATEFUL, Op
from archc.ir.scope import Modules, Scope, is_unit
from archc.spec.expr import MAX_MAGNITUDE, UNKNOWN, UnknownValue, evaluate, show
from archc.spec.grammar import CONSTRUCTS, LOSS_WEIGHT, PROBABILITY, RESERVED
from archc.spec.kinds import (NONE, REQUIRED, VALUE, Bool, Int, List, Symbol, Table, is_module_name, is_module_path,
                              name_problem, path_problem)
from archc.spec.limits import ITEM_DEPTH
from archc.spec.tree import Item, Where

COUNT = Int()
WHEN = Bool()
SYMBOL = Symbol()
LIST = List(VALUE, expr=True)


class Symbols(Mapping):
    """An expression's environment: its bound names, then the names of ops and blocks and `none`, which stand for
    themselves (a block argument `attn: "se if use_se else none"`, a table cell `hardswish`)."""

    def __init__(self, env: dict, symbols: frozenset):
        self.env, self.symbols = env, symbols

    def __getitem__(self, name):
        if name in self.env:
            return self.env[name]
        if name in self.symbols:
            return name
        raise KeyError(name)

    def __contains__(self, name) -> bool:
        return name in self.env or name in self.symbols

    def __iter__(self):
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


class _Poison:
    """The value of an item that failed: its error is reported; nothing that reads it is checked further."""

    def __repr__(self) -> str:
        return "POISON"


POISON = _Poison()


class _Absent:
    """The value of a named item that its `when:` left out (or a call of `none`): a join that reads it leaves it out;
    anything else that reads it is an error."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass
class Frame:
    """The names `from:` can read at a point of expansion: a sequence's items so far (a construct's or a repeat
    iteration's own names: `input`, the `carry`), then the enclosing frames', out to the block call that encloses
    them (a block's body sees only its inputs). Each name: (its latest value, its module path or None)."""

    names: dict
    parent: Frame | None = None

    def find(self, name: str):
        frame = self
        while frame is not None:
            if name in frame.names:
                return frame.names[name]
            frame = frame.parent
        return None

    def visible(self) -> list[str]:
        out, frame = [], self
        while frame is not None:
            out += [n for n in frame.names if n not in out]
            frame = frame.parent
        return out


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
        self.symbols = frozenset({*(n for n, op in OPS.items() if INTERNAL not in op), *self.program.blocks, NONE})
        self.values: dict[str, str] = {}  # module path -> the value its item computed (`outputs:`, `from:` paths)
        self.frame: Frame | None = None  # the names `from:` sees here
        self.calls: list[Where] = []  # the block calls being expanded, outermost first: where each was written
        self.call_ids = [0]  # and a number for each (0: none), which the names and paths made in it are marked with
        self.made: dict[str, int] = {}  # module path -> the call whose expansion made it (from: sees its own call's)

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
        self.g.outputs[:0] = self.outputs(out)
        self.errors.raise_if_any()
        return self.g

    def outputs(self, last) -> list[Output]:
        """The main outputs: the graph's last value, or the items `outputs:` names (module paths)."""
        written = self.spec.document.outputs
        if not written:
            return [Output("out", last, False)]
        self.g.meta["dict_outputs"] = True  # the module returns {name: tensor}
        found = []
        for name, path, key in ((o.name, o.path, o.key) for o in written):
            if path not in self.values:
                close = difflib.get_close_matches(path, list(self.values), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.errors.add(self.fail(f"outputs: no item has the module path {path!r}{hint}",
                                          Where(self.spec, ("outputs", key)), "outputs", UnknownNameError))
            else:
                found.append(Output(name, self.values[path], False))
        return found

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
            return kind.resolve(written, lambda text: evaluate(text, Symbols(env, self.symbols)))
        except ArchcError as e:  # an expression's own message, or a kind's, which reads after the subject
            message = e.message if isinstance(e, ExprError) else f"{subject} {e.message}"
            raise type(e)(message, at.loc(), path or at.path) from None

    def template(self, text: str, env: dict, at: Where, path: str, what: str = "names") -> str:
        """A `names:` template's name, or (what="from") a `from:` path with templates: each `{expression}` replaced by
        its value; the result follows the name rule (kinds.py), as a written name does."""
        result = re.sub(r"\{([^{}]*)\}", lambda m: str(self.resolve(VALUE, m.group(1), env, at, path, what)), text)
        if what == "names":
            problem = None if is_module_name(result) else name_problem(result, dash=True)
            if problem is None and result in RESERVED:
                problem = f"{result!r} is reserved ({', '.join(RESERVED)} cannot name an item)"
        else:
            problem = None if is_module_path(result) else path_problem(result)
        if problem:
            raise self.fail(f"{what} template {text!r} gives {result!r}: {problem}", at, path)
        return result

    def framed(self, names: dict, root: bool = False) -> Frame | None:
        """Make the names `from:` sees: these, then (unless `root`: a block's body) the enclosing frames'. Returns the
        frame to restore (`self.frame = outer`, in a `finally`): a plain call, as it runs for every construct."""
        outer = self.frame
        self.frame = Frame(names, None if root else outer)
        return outer

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
        name = self.modules.claim(module, op, attrs, STATEFUL in OPS[op], loc, tuple(self.calls))
        if len(self.g) >= self.limits.nodes:
            self.stop(self.fail(f"the spec expands to more than {self.limits.nodes:,} nodes "
                                f"{self.limits.exceeded('nodes')}", at, module, LimitError))
        self.g.add(Node(name, op, attrs, module, loc, shape), inputs)
        self.values[module] = name
        self.made[module] = self.call_ids[-1]
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
    def emit(self, item: Item, env: dict, x, scope: Scope, name: str | None = None, positional: bool = False):
        """Expand one item on input(s) x in `scope` and return its output, or None when its `when:` leaves it
        out. `name`: its name, if written; a `positional` item stands in a sequence position. `from:` resolves
        against the names visible here (self.frame) and the scope's. An item that fails is reported and yields
        POISON."""
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
                x = self.resolve_from(item, env, scope)
            if item.kind == "block" and item.value not in self.program.blocks:
                item = self.callee(item, env, scope)
                if item is None:  # a block argument that is `none`: nothing here
                    return None
            name = name or item.name
            if name is None and positional and is_unit(item, self.program.blocks, self.units):
                name = scope.take()
            if item.kind in OPS:
                return self.op(item, env, x, scope, name)
            construct = CONSTRUCTS[item.kind]
            if x is ABSENT or isinstance(x, tuple) and ABSENT in x:  # from: names an item its `when:` left out
                raise self.absent(item, scope.prefix)
            if item.kind != "block":  # a block call may take several inputs (`from: [a, b]`)
                x = self.single(x, item.where, scope.prefix)
            if construct.scope == "pass":
                return EXPANSIONS[item.kind](self, item, env, x, scope, name)
            if construct.scope == "own" or name:
                scope = scope.child(name or scope.take())
            outer = self.framed({"input": (x, None)})
            try:
                out = EXPANSIONS[item.kind](self, item, env, x, scope, None)
            finally:
                self.frame = outer
            if scope.prefix and out is not POISON:
                self.values[scope.prefix] = out
                self.made[scope.prefix] = self.call_ids[-1]
            return out
        except UnknownValue:
            return POISON
        except LimitError as e:
            self.stop(e)
        except ArchcError as e:
            self.errors.add(e)
            return POISON
        finally:
            self.depth -= 1

    def callee(self, item: Item, env: dict, scope: Scope) -> Item | None:
        """A call through a name bound to a block or op name (a block argument `attn: se`): the call it makes."""
        at = item.where.child("block")  # the `block:` value (or, for a bare name, the name itself)
        callee = self.resolve(SYMBOL, item.value, env, at, scope.prefix, f"block {item.value}")
        with_ = item.keys.get("with", {})
        if callee == NONE:
            return None
        if callee in self.program.blocks:
            return replace(item, value=callee, from_=None, when=None)
        op = OPS.get(callee)
        if op is None or INTERNAL in op:
            raise self.fail(f"block {item.value} is {callee!r}, which is neither a block, an op nor none", at,
                            scope.prefix, UnknownNameError)
        unknown = [k for k in with_ if k not in op.args]
        if unknown:
            raise self.fail(f"block {item.value} is the op {callee!r}, which has no argument {unknown[0]!r} "
                            f"(arguments: {', '.join(op.args) or 'none'})", item.where.child("with", unknown[0]),
                            scope.prefix, UnknownNameError)
        return Item(callee, with_, item.where, name=item.name)

    def resolve_from(self, item: Item, env: dict, scope: Scope):
        """The values `from:` names: each a name visible here (this sequence's items so far, an enclosing sequence's,
        `input`, a repeat's `carry`, a block's `input1`...; then the scope's names), or a module path — a visible
        name's scope and a path inside it (`transition1.0`), or a path inside this scope (a numbered position `0`,
        an item of an earlier scope `grp.b`); `{expression}` templates first evaluated. A named item that its
        `when:` left out is ABSENT."""
        ids = []
        for i, written in enumerate(item.from_):
            at = item.where.child("from", i) if len(item.from_) > 1 else item.where.child("from")
            ref = self.template(written, env, at, scope.prefix, "from") if "{" in written else written
            value = self.lookup(ref, scope)
            if value is None:
                raise self.fail(f"from: no earlier item named {ref!r} here ({self.visible(scope)})", at,
                                scope.prefix, UnknownNameError)
            ids.append(value)
        return ids[0] if len(ids) == 1 else tuple(ids)

    def lookup(self, ref: str, scope: Scope):
        """The value a `from:` reference names, or None."""
        first, _, rest = ref.partition(".")
        hit = self.frame.find(first) if self.frame is not None else None
        if hit is None and self.scoped(first, scope):
            hit = scope.names[first][0], scope.path(first)
        if hit is not None:
            value, path = hit
            if not rest:
                return value
            return self.values.get(f"{path}.{rest}") if path is not None and value is not ABSENT else None
        path = scope.path(ref)
        return self.values[path] if self.made.get(path) == self.call_ids[-1] else None

    def scoped(self, name: str, scope: Scope) -> bool:
        """Whether a name of the scope (bound by a sequence that is over: a residual's body, for its shortcut) is
        visible here: bound within the same block call (a block's body does not see its caller's names)."""
        return name in scope.names and scope.names[name][1] == self.call_ids[-1]

    def visible(self, scope: Scope) -> str:
        """What `from:` could name here, for a message: the visible names, and module paths in this scope."""
        names = self.frame.visible() if self.frame is not None else []
        names += [n for n in scope.names if n not in names and self.scoped(n, scope)]
        inside = scope.prefix + "." if scope.prefix else ""
        call = self.call_ids[-1]
        paths = [p[len(inside):] for p in self.values if p.startswith(inside) and p[len(inside):] not in names
                 and p != "input" and self.made.get(p) == call][:12]
        text = f"visible: {', '.join(names) or 'nothing'}"
        return text + (f"; paths in this scope: {', '.join(paths)}{' ...' * (len(paths) == 12)}" if paths else "")

    def absent(self, item: Item, path: str) -> ArchcError:
        return self.fail("from: an item it names is left out by its `when:`; only a join leaves such inputs out",
                         item.where.child("from"), path)

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
        if isinstance(x, tuple) and ABSENT in x or x is ABSENT:  # from: names an item its `when:` left out
            if JOIN not in op or x is ABSENT:
                raise self.absent(item, path)
            x = tuple(v for v in x if v is not ABSENT)
            x = x[0] if len(x) == 1 else x
        if op.arity == 1:
            x = self.single(x, item.where, path)
        elif op.arity is not None and len(x if isinstance(x, tuple) else (x,)) != op.arity:
            got = len(x) if isinstance(x, tuple) else 1
            raise self.fail(f"{op.name} takes {op.arity} inputs (from: [a, b]), got {got}", item.where, path)
        return self.add(op.name, attrs, list(x) if isinstance(x, tuple) else [x], path, item.where)

    def seq(self, item: Item, env: dict, x, scope: Scope, name=None):
        outer = self.framed({"input": (x, None)})
        frame = self.frame
        try:
            for it in item.value:
                out = self.emit(it, env, x, scope, positional=True)
                if out is None:  # left out: a join reading its name leaves it out
                    if it.name and it.name not in frame.names:
                        frame.names[it.name] = (ABSENT, scope.path(it.name))
                    continue
                if it.name:
                    scope.counter += 1
                    frame.names[it.name] = (out, scope.path(it.name))
                    scope.names[it.name] = (out, self.call_ids[-1])
                x = out
        finally:
            self.frame = outer
        return x

    def block(self, item: Item, env: dict, x, scope: Scope, name: str | None):
        """A block call: its body, with its own environment (spec params, arguments, lets, input shape)."""
        block = self.program.blocks[item.value]
        path = scope.path(name) if name else scope.prefix
        inputs = x if isinstance(x, tuple) else (x,)  # with `from: [a, b, ...]`: its input, and input1, ...
        x = inputs[0]
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
        inputs = {"input": (x, None), **{f"input{j}": (v, None) for j, v in enumerate(inputs[1:], 1)}}
        self.calls.append(item.where)
        self.call_ids.append(self.steps)  # a number no other call has: the work done so far grows with every call
        outer = self.framed(inputs, root=True)
        try:
            return self.emit(block.body, benv, x, scope, name)
        finally:
            self.frame = outer
            self.calls.pop()
            self.call_ids.pop()

    def iterations(self, written, env: dict, at: Where, path: str) -> list[dict]:
        """What a repeat binds in each iteration: nothing (a count), a table's row (its columns), or the items of
        equal-length lists in step ({name: list, ...})."""
        if isinstance(written, dict) and "columns" in written:  # a table written in place: cells are expressions
            columns = written["columns"]
            rows = []
            for r, row in enumerate(written["rows"]):
                if len(row) != len(columns):
                    raise self.fail(f"table row {r} has {len(row)} values for {len(columns)} columns "
                                    f"({', '.join(columns)})", at.child("rows", r), path, ShapeError)
                rows.append({c: self.resolve(VALUE, v, env, at.child("rows", r, j), path, f"repeat {c}")
                             for j, (c, v) in enumerate(zip(columns, row))})
        elif isinstance(written, dict):
            lists = {k: self.resolve(LIST, v, env, at.child(k), path, f"repeat {k}") for k, v in written.items()}
            lengths = {len(v) for v in lists.values()}
            if len(lengths) > 1:
                sizes = ", ".join(f"{k} has {len(v)}" for k, v in lists.items())
                raise self.fail(f"repeat lists must have one length: {sizes}", at, path, ShapeError)
            rows = [dict(zip(lists, values)) for values in zip(*lists.values())]
        else:
            value = self.resolve(VALUE, written, env, at, path, "repeat")
            if isinstance(value, Table):
                bad = next((r for r, row in enumerate(value.rows) if len(row) != len(value.columns)), None)
                if bad is not None:
                    raise self.fail(f"table row {bad} has {len(value.rows[bad])} values for {len(value.columns)} "
                                    f"columns ({', '.join(value.columns)})", at, path, ShapeError)
                rows = value.records()
            elif isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
                raise self.fail(f"repeat takes a count, a table or {{name: list, ...}}, got {value!r}", at, path)
            else:
                n = int(value)
                if not 0 <= n <= self.limits.repeat:
                    raise self.fail(f"repeat count {n} outside 0..{self.limits.repeat:,}"
                                    + f" {self.limits.exceeded('repeat')}" * (n > 0), at, path, LimitError)
                rows = [{}] * n
        if len(rows) > self.limits.repeat:
            raise self.fail(f"repeat count {len(rows)} outside 0..{self.limits.repeat:,} "
                            f"{self.limits.exceeded('repeat')}", at, path, LimitError)
        return rows

    def repeat(self, item: Item, env: dict, x, scope: Scope, name=None):
        """Each iteration on the previous one's output (the repeat's input for the first), which `carry:` names in the
        body; the output is the last iteration's, or with `join:` the join of every iteration's. An anonymous
        iteration that is a unit takes its position in the sequence; with `carry:` (a loop inside one module, as
        Res2Net's) it does not: its names join the enclosing scope, unless `names:` names it."""
        rows = self.iterations(item.value, env, item.where.child("repeat"), scope.prefix)
        keys = item.keys
        body = Item("block", keys["block"], item.where, {"with": keys.get("with", {})}) if "block" in keys \
            else keys["body"]
        n, outs = len(rows), []
        for i, row in enumerate(rows):
            ienv = {**env, "i": i, "n": n, **row}
            iname = self.template(keys["names"], ienv, item.where.child("names"), scope.prefix) \
                if "names" in keys else None
            if "carry" in keys:  # a frame for each iteration: its carry
                outer = self.framed({keys["carry"]: (x, None)})
                try:
                    out = self.emit(body, ienv, x, scope, iname, positional=False)
                finally:
                    self.frame = outer
            else:
                out = self.emit(body, ienv, x, scope, iname, positional=True)
            if out is not None:
                outs.append(out)
                x = out
        if "join" not in keys:
            return x
        if not outs:
            raise self.fail(f"repeat {keys['join']}: no iteration to join (every one is left out, or none runs)",
                            item.where, scope.prefix, ShapeError)
        return self.internal(keys["join"], {}, outs, scope, item.where)

    def branches(self, item: Item, env: dict, x, scope: Scope, name=None):
        """Every branch on the input, joined; a branch its `when:` leaves out is not an input of the join."""
        named = item.value.items() if isinstance(item.value, dict) else ((None, b) for b in item.value)
        outs = [out for bname, b in named if (out := self.emit(b, env, x, scope, bname)) is not None]
        if not outs:
            raise self.fail("branches: every branch is left out by its `when:` (nothing to join)", item.where,
                            scope.prefix, ShapeError)
        return self.internal(item.keys["join"], {}, outs, scope, item.where)

    def residual(self, item: Item, env: dict, x, scope: Scope, name=None):
        r, at = item.value, item.where.child("residual")
        body = self.emit(r["body"], env, x, scope) or x
        skip = self.resolve(WHEN, r.get("skip", True), env, at.child("skip"), scope.prefix, "residual skip")
        if "drop_path" in r:
            body = self.drop_path(r["drop_path"], env, body, skip, scope, at.child("drop_path"))
        if skip:
            short = self.shortcut(r["shortcut"], at.child("shortcut"), env, x, body, scope)
            out = self.internal("add", {}, [body, short], scope, item.where)
        else:
            out = body
        if "post" in r:
            out = self.emit(r["post"], env, out, scope) or out
        return out

    def drop_path(self, dp, env: dict, body, skip: bool, scope: Scope, at: Where):
        """The residual branch's drop-path: a probability, {p, mode}, or {linear: p, ramp, mode}, whose block is
        one of the schedule's blocks (graph.meta["drop_path_blocks"], in order) even when its shortcut is not
        added (EfficientNet counts every block; the drop-path itself runs only on added branches)."""
        settings = dp if isinstance(dp, dict) else {"p": dp}
        linear = "linear" in settings
        p = self.resolve(PROBABILITY, settings["linear" if linear else "p"], env, at, scope.prefix,
                         "residual drop_path")
        node = self.internal("drop_path", {"p": p, "mode": settings.get("mode", "row")}, [body], scope, at) \
            if skip else body
        if linear:
            self.g.meta.setdefault("drop_path_blocks", []).append(
                {"node": node if skip and node is not POISON else None, "p": p, "ramp": settings.get("ramp", "l/L")})
        return node

    def shortcut(self, spec, at: Where, env: dict, x, body, scope: Scope):
        """identity, auto ({auto: name, bn: bool}: a 1x1 conv [+ BN] when shapes differ), or an item."""
        if isinstance(spec, Item):
            return self.emit(spec, env, x, scope) or x
        if spec == "identity" or x is POISON or body is POISON:
            return x if spec == "identity" else POISON
        xs, bs = self.g[x].shape, self.g[body].shape
        if xs == bs:
            return x
        stride = projection_stride(xs, bs)
        if isinstance(stride, str):
            raise self.fail(f"shortcut auto: no 1x1 projection maps the input {list(xs)} to the body's output "
                            f"{list(bs)}: {stride}", at, scope.prefix, ShapeError)
        pscope = scope.child(spec["auto"] if isinstance(spec, dict) else "downsample")
        attrs = self.op_args(OPS["conv"], {"out": bs[0], "k": 1, "stride": list(stride), "bias": False}, env,
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

    def module(self, item: Item, env: dict, x, scope: Scope, name=None):
        """A module of its own: its items numbered inside it (the scope emit opened)."""
        return self.emit(item.value, env, x, scope)

    def aux(self, item: Item, env: dict, x, scope: Scope, name=None):
        out = self.emit(item.value, env, x, scope) or x
        weight = self.resolve(LOSS_WEIGHT, item.keys["loss_weight"], env, item.where.child("loss_weight"),
                              scope.prefix, "aux loss_weight") if "loss_weight" in item.keys else None
        if out is not POISON:
            self.g.outputs.append(Output(scope.prefix, out, True, weight))
        return x


def projection_stride(xs: tuple, bs: tuple) -> tuple[int, int] | str:
    """The stride (per axis, the smallest; one stride for both axes where one fits) of the 1x1 conv without padding
    that maps a [C, H, W] input to a body's output of another shape — its size along an axis is ceil(n / s), so s
    fits where n / m <= s < n / (m - 1) — or why there is none."""
    if len(xs) != 3 or len(bs) != 3:
        return "both must be [C, H, W] maps"
    ranges = []
    for axis, (n, m) in enumerate(zip(xs[1:], bs[1:])):
        what = ("rows", "columns")[axis]
        if m > n:
            return f"a strided conv cannot enlarge {n} {what} to {m}"
        lo, hi = -(-n // m), (n - 1) // (m - 1) if m > 1 else MAX_MAGNITUDE  # the s with ceil(n / s) == m
        if lo > hi:
            return (f"no stride takes {n} {what} to {m} (stride {lo - 1} gives {-(-n // (lo - 1))}, stride {lo} "
                    f"gives {-(-n // lo)})")
        ranges.append((lo, hi))
    (lo0, hi0), (lo1, hi1) = ranges
    common = max(lo0, lo1)
    return (common, common) if common <= min(hi0, hi1) else (lo0, lo1)


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
    "module": _Expander.module,
    "aux": _Expander.aux,
}
"""One expansion function per construct of the grammar: (expander, item, env, input, scope, name) -> output."""
