"""Expand a Spec into a graph of primitive ops (networkx DiGraph), inferring shapes as nodes are added.

Naming (the module hierarchy, and so the state_dict keys), as nn.Sequential would name things:
- a name written in the spec opens a scope: `layer1: {...}` -> `layer1.*`;
- an anonymous item of a sequence (or an iteration of a repeat) takes its position as its name when it
  is an op, a residual/dense/fractal/aux unit, or anything that contains named items (a module);
- an anonymous sequence, repeat or block call made only of anonymous items is spliced into the enclosing
  sequence, its items numbered on (a loop generating layers, as VGG's flat `features`);
- anonymous branches are transparent: their named items join the enclosing scope (SqueezeNet's fire).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import networkx as nx

from archc.errors import ArchcError, LimitError, Loc, ShapeError, SpecError, Warning_
from archc.ir.ops import OPS, REQUIRED, SPEC_OPS, pair
from archc.spec.expr import evaluate
from archc.spec.load import Spec
from archc.spec.schema import ALWAYS_KINDS, KINDS, MODIFIERS, SETTINGS

MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_REPEAT = 10_000
ARG_TYPES = ("int", "float", "bool")


@dataclass
class Scope:
    prefix: str
    counter: int = 0
    names: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def child(self, name: str) -> "Scope":
        return Scope(self.path(name))

    def take(self) -> str:
        self.counter += 1
        return str(self.counter - 1)


def expand(spec: Spec) -> nx.DiGraph:
    """The spec's graph: nodes carry op, attrs, inputs, module path, loc and shape."""
    return _Expander(spec).run()


class _Expander:
    def __init__(self, spec: Spec):
        self.spec = spec
        blocks = spec.blocks
        self.blocks = {name: bdef for name, (bdef, _) in blocks.items()}
        # Where each block's definition is: a path into its own file (an imported library's, or this spec's).
        self.block_yp = {name: ((origin,) if origin is not spec else ()) + ("blocks", name)
                         for name, (_, origin) in blocks.items()}
        self.g = nx.DiGraph(name=spec.name, file=spec.file, warnings=[], outputs=[])
        self.modules: dict[str, tuple] = {}  # module path -> (op, attrs, node id)
        self.depth = 0

    # -- entry ---------------------------------------------------------------------------------
    def run(self) -> nx.DiGraph:
        data = self.spec.data
        env = dict(self.spec.params)
        shape = tuple(self.value(v, env, ("input", i), "input") for i, v in enumerate(data["input"]))
        if min(shape) < 1:
            raise self.error(f"input shape {list(shape)} must be positive", ("input",), "input")
        x = self.add("input", {"shape": shape}, [], "input", ("input",))
        out = self.seq(data["graph"], ("graph",), env, x, Scope(""))
        self.g.graph["input"] = x
        self.g.graph["outputs"].insert(0, {"name": "out", "node": out, "aux": False})
        return self.g

    # -- locations and errors ---------------------------------------------------------------------
    def loc(self, yp, key: bool = False) -> Loc:
        """Paths into an imported library start with that library's Spec."""
        if yp and isinstance(yp[0], Spec):
            return yp[0].loc(yp[1:], key)
        return self.spec.loc(yp, key)

    def error(self, message: str, yp, path: str | None = None, cls=SpecError) -> ArchcError:
        return cls(message, self.loc(yp), path or ".".join(str(p) for p in yp if not isinstance(p, Spec)))

    # -- nodes ------------------------------------------------------------------------------------
    def add(self, op: str, attrs: dict, inputs: list[str], module: str, yp) -> str:
        """Add one primitive op; infers its shape now so that later expansion can use it."""
        spec_op = OPS[op]
        if spec_op.arity is not None and len(inputs) != spec_op.arity:
            raise self.error(f"{op} takes {spec_op.arity} input(s), got {len(inputs)}", yp, module)
        in_shapes = [self.g.nodes[i]["shape"] for i in inputs]
        try:
            shape = spec_op.shape(attrs, in_shapes)
        except ShapeError as e:
            raise ShapeError(e.message, self.loc(yp), module) from None
        node = module
        if module in self.modules:
            first_op, first_attrs, first_node = self.modules[module]
            if spec_op.stateful or first_op != op or first_attrs != attrs:
                first = self.g.nodes[first_node]["loc"]
                raise self.error(f"name {module.rsplit('.', 1)[-1]!r} is already used in this scope "
                                 f"(first at {first.line}:{first.col}); only identical ops without "
                                 "parameters may share a name", yp, module)
            k = 2
            while f"{module}#{k}" in self.g:
                k += 1
            node = f"{module}#{k}"
        else:
            self.modules[module] = (op, attrs, node)
        if len(self.g) >= MAX_NODES:
            raise self.error(f"the spec expands to more than {MAX_NODES} nodes", yp, module, LimitError)
        self.g.add_node(node, op=op, attrs=attrs, inputs=list(inputs), module=module, loc=self.loc(yp), shape=shape)
        for i in inputs:
            self.g.add_edge(i, node)
        self._check_window(node, yp)
        return node

    def internal(self, op: str, attrs: dict, inputs: list[str], scope: Scope, yp) -> str:
        return self.add(op, attrs, inputs, scope.path("~" + op), yp)

    def _check_window(self, node: str, yp) -> None:
        """Warn when floor arithmetic makes a conv or pool ignore real input rows or columns."""
        n = self.g.nodes[node]
        a = n["attrs"]
        if OPS[n["op"]].window is None or "stride" not in a or a.get("ceil"):
            return
        _, h, w = self.g.nodes[n["inputs"][0]]["shape"]
        k, s, p, d = pair(a["k"]), pair(a["stride"] or a["k"]), pair(a["pad"]), pair(a.get("dilation", 1))
        for axis, size in enumerate((h, w)):
            if d[axis] * (k[axis] - 1) + 1 < s[axis]:
                continue  # windows smaller than the stride skip input by design (1x1 stride 2)
            span = size + 2 * p[axis] - d[axis] * (k[axis] - 1) - 1
            ignored = span % s[axis] - p[axis]
            if ignored > 0:
                exact = span / s[axis] + 1
                self.g.graph["warnings"].append(Warning_(
                    f"{n['op']} {k[axis]}/{s[axis]} pad {p[axis]} on {size}: ({size} + 2*{p[axis]} - "
                    f"{d[axis] * (k[axis] - 1) + 1}) / {s[axis]} + 1 = {exact:g}, so the last {ignored} input "
                    f"{'row' if axis == 0 else 'column'}(s) are never seen", self.loc(yp), node))
                return

    # -- expressions ----------------------------------------------------------------------------------
    def value(self, v, env: dict, yp, path: str | None, kind: str = "int"):
        """Resolve a spec value of `kind` (int, float, bool), evaluating strings as expressions."""
        if isinstance(v, str):
            try:
                v = evaluate(v, env)
            except ArchcError as e:
                raise self.error(e.message, yp, path, type(e)) from None
        ok = {"int": isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer(),
              "float": isinstance(v, (int, float)) and not isinstance(v, bool),
              "bool": isinstance(v, bool) or v in (0, 1),
              "any": True}[kind]
        if not ok:
            raise self.error(f"expected {'an' if kind == 'int' else 'a'} {kind}, got {v!r}", yp, path)
        return {"int": int, "float": float, "bool": bool, "any": lambda x: x}[kind](v)

    def op_args(self, op: str, raw: dict | None, yp, env: dict, path: str) -> dict:
        attrs = {}
        raw = raw or {}
        for name, arg in OPS[op].args.items():
            ayp = yp + (op, name) if name in raw else yp
            v = raw.get(name, arg.default)
            if v is REQUIRED:
                raise self.error(f"{op} needs argument {name!r}", yp, path)
            if v is None:
                attrs[name] = None
                continue
            if arg.kind == "int2":
                vs = [self.value(x, env, ayp, path) for x in (v if isinstance(v, list) else [v])]
                self._bounds(op, name, arg, vs, ayp, path)
                attrs[name] = vs[0] if len(vs) == 1 or vs[0] == vs[1] else tuple(vs)
            elif arg.kind == "table":
                attrs[name] = tuple(tuple(row) for row in v)
            else:
                attrs[name] = self.value(v, env, ayp, path, arg.kind)
                self._bounds(op, name, arg, [attrs[name]], ayp, path)
        return attrs

    def _bounds(self, op, name, arg, values, yp, path):
        for v in values:
            if arg.lo is not None and v < arg.lo or arg.hi is not None and v >= arg.hi:
                rng = f">= {arg.lo:g}" if arg.hi is None else f"in [{arg.lo:g}, {arg.hi:g})"
                raise self.error(f"{op} {name} must be {rng}, got {v!r}", yp, path)

    def template(self, text: str, env: dict, yp, path) -> str:
        name = re.sub(r"\{([^{}]*)\}", lambda m: str(self.value(m.group(1), env, yp, path, "any")), text)
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise self.error(f"names template {text!r} gives {name!r}, not a valid name", yp, path)
        return name

    # -- structure ------------------------------------------------------------------------------------
    @staticmethod
    def split(item):
        """(name, node). A named item is a one-key mapping `name: node`. An op's name (or residual, dense,
        fractal) may be used as a name (`relu: relu`): the key is a name when its value is itself a node,
        not the op's arguments."""
        if isinstance(item, dict) and len(item) == 1:
            (k, v), = item.items()
            if k in ALWAYS_KINDS or k in MODIFIERS:
                return None, item
            if k in SETTINGS:
                named = isinstance(v, dict) and any(j in KINDS and j not in SETTINGS[k] for j in v)
            else:
                named = k not in KINDS or isinstance(v, (str, list)) or \
                    isinstance(v, dict) and any(j in KINDS for j in v)
            if named:
                return k, v
        return None, item

    def seq(self, items: list, yp, env: dict, x: str, scope: Scope) -> str:
        local = {"input": x}
        for idx, item in enumerate(items):
            name, node = self.split(item)
            iyp = yp + (idx, name) if name else yp + (idx,)
            if not self.included(node, env, iyp, scope):
                continue
            out = self.emit(node, iyp, env, x, scope, name, positional=True, local=local)
            if name:
                scope.counter += 1
                local[name] = scope.names[name] = out
            x = out
        return x

    def included(self, node, env: dict, yp, scope: Scope) -> bool:
        """The `when:` modifier: whether the node is part of the network."""
        return not (isinstance(node, dict) and "when" in node) or \
            self.value(node["when"], env, yp + ("when",), scope.prefix, "bool")

    def resolve_from(self, ref, local: dict, scope: Scope, yp):
        refs = [ref] if isinstance(ref, str) else ref
        ids = []
        for r in refs:
            if r not in local and r not in scope.names:
                known = ", ".join(list(local) + [n for n in scope.names if n not in local])
                raise self.error(f"from: no earlier item named {r!r} here (known: {known})", yp, scope.prefix)
            ids.append(local.get(r) or scope.names[r])
        return ids if len(ids) > 1 else ids[0]

    def is_unit(self, node, seen=frozenset()) -> bool:
        """Whether an anonymous node in a sequence position is one module (takes an index) or is spliced."""
        if isinstance(node, str):
            return node in self.blocks and node not in seen and self.is_unit(self._body(node), seen | {node})
        if isinstance(node, list):
            return any(self.split(i)[0] is not None or self.is_unit(i, seen) for i in node)
        kind = next(k for k in node if k in KINDS)
        if kind in ("residual", "dense", "fractal", "aux"):
            return True
        if kind == "seq":
            return self.is_unit(node["seq"], seen)
        if kind in ("block", "repeat") and "block" in node:
            return self.is_unit(node["block"], seen)
        return kind == "repeat" and self.is_unit(node["body"], seen)

    def _body(self, block: str) -> dict:
        return {k: v for k, v in self.blocks[block].items() if k not in ("args", "let", "doc")}

    def emit(self, node, yp, env: dict, x, scope: Scope, name: str | None, positional: bool = False,
             local: dict | None = None) -> str:
        """Expand one node with input(s) x in scope; `name` is its written name, if any. A `positional`
        node stands in a sequence position (a sequence item or an iteration of a repeat). A node whose
        `when:` is false is left out (its input passes through); `from:` resolves against `local` (the
        enclosing sequence's names) and the scope's names."""
        if not self.included(node, env, yp, scope):
            return x
        if isinstance(node, dict) and "from" in node:
            x = self.resolve_from(node["from"], local or {}, scope, yp + ("from",))
        if name is None and positional and self.is_unit(node):
            name = scope.take()
        if isinstance(node, str):
            if node in SPEC_OPS:
                return self.op(node, None, yp, env, x, scope, name)
            if node in self.blocks:
                return self.call(node, {}, yp, env, x, scope, name)
            raise self.error(f"unknown op or block {node!r}{_suggest(node, [*SPEC_OPS, *self.blocks])}", yp,
                             scope.path(name) if name else scope.prefix)
        if isinstance(node, list):
            return self.seq(node, yp, env, self.single(x, yp, scope), scope.child(name) if name else scope)
        kind = next(k for k in node if k in KINDS)
        if kind in SPEC_OPS:
            return self.op(kind, node[kind], yp, env, x, scope, name)
        x = self.single(x, yp, scope)
        if kind == "block":
            return self.call(node["block"], node.get("with", {}), yp, env, x, scope, name)
        if kind == "seq":
            return self.seq(node["seq"], yp + ("seq",), env, x, scope.child(name) if name else scope)
        if kind in ("repeat", "branches"):  # transparent when anonymous
            return getattr(self, kind)(node, yp, env, x, scope.child(name) if name else scope)
        return getattr(self, kind)(node, yp, env, x, scope.child(name if name else scope.take()))

    def single(self, x, yp, scope) -> str:
        if not isinstance(x, str):
            raise self.error("only a join op (concat, add, mean) takes several inputs from `from:`", yp,
                             scope.prefix)
        return x

    def op(self, op: str, raw, yp, env, x, scope: Scope, name: str | None) -> str:
        path = scope.path(name if name else scope.take())
        attrs = self.op_args(op, raw, yp, env, path)
        return self.add(op, attrs, [x] if isinstance(x, str) else list(x), path, yp)

    def call(self, block: str, with_: dict, yp, env: dict, x: str, scope: Scope, name: str | None) -> str:
        """Expand a block: its body, with its own environment (spec params, args, lets, input shape)."""
        if block not in self.blocks:
            raise self.error(f"unknown block {block!r}{_suggest(block, list(self.blocks))}", yp, scope.prefix)
        if self.depth >= MAX_DEPTH:
            raise self.error(f"blocks nest deeper than {MAX_DEPTH} (recursive block?)", yp, scope.prefix, LimitError)
        bdef, byp = self.blocks[block], self.block_yp[block]
        path = scope.path(name) if name else scope.prefix
        shape = self.g.nodes[x]["shape"]
        benv = dict(self.spec.params)
        benv.update(zip(("in_channels", "in_height", "in_width"), shape) if len(shape) == 3
                    else {"in_features": shape[0]})
        declared = bdef.get("args", {})
        for k in with_:
            if k not in declared:
                raise SpecError(f"block {block!r} has no argument {k!r} (arguments: {', '.join(declared) or 'none'})",
                                self.loc(yp + ("with", k), key=True), path)
        for k, default in declared.items():
            if k in with_:
                v = with_[k]
                benv[k] = self.value(v, env, yp + ("with", k), path, default if default in ARG_TYPES else "any")
            elif default in ARG_TYPES:
                raise self.error(f"block {block!r} needs argument {k!r}", yp, path)
            else:
                benv[k] = self.value(default, benv, byp + ("args", k), path, "any")
        for k, v in bdef.get("let", {}).items():
            benv[k] = self.value(v, benv, byp + ("let", k), path, "any")
        self.depth += 1
        try:
            return self.emit(self._body(block), byp, benv, x, scope, name)
        finally:
            self.depth -= 1

    def repeat(self, node: dict, yp, env: dict, x: str, scope: Scope) -> str:
        n = self.value(node["repeat"], env, yp + ("repeat",), scope.prefix)
        if not 0 <= n <= MAX_REPEAT:
            raise self.error(f"repeat count {n} outside 0..{MAX_REPEAT}", yp + ("repeat",), scope.prefix, LimitError)
        for i in range(n):
            ienv = {**env, "i": i, "n": n}
            iname = self.template(node["names"], ienv, yp + ("names",), scope.prefix) if "names" in node else None
            if "block" in node:
                with_ = {k: v for k, v in node.get("with", {}).items()}
                x = self.emit({"block": node["block"], "with": with_}, yp, ienv, x, scope, iname, positional=True)
            else:
                x = self.emit(node["body"], yp + ("body",), ienv, x, scope, iname, positional=True)
        return x

    def branches(self, node: dict, yp, env: dict, x: str, scope: Scope) -> str:
        spec = node["branches"]
        items = spec.items() if isinstance(spec, dict) else enumerate(spec)
        outs = []
        for key, branch in items:
            bname = key if isinstance(spec, dict) else None
            if bname is None:
                bname, branch = self.split(branch)
            outs.append(self.emit(branch, yp + ("branches", key), env, x, scope, bname))
        return self.internal(node.get("join", "concat"), {}, outs, scope, yp)

    def residual(self, node: dict, yp, env: dict, x: str, scope: Scope) -> str:
        r, ryp = node["residual"], yp + ("residual",)
        body = self.emit(r["body"], ryp + ("body",), env, x, scope, None)
        if "drop_path" in r:
            dp = r["drop_path"]
            linear = isinstance(dp, dict)
            p = self.value(dp["linear"] if linear else dp, env, ryp + ("drop_path",), scope.prefix, "float")
            if not 0 <= p < 1:
                raise self.error(f"drop_path must be in [0, 1), got {p}", ryp + ("drop_path",), scope.prefix)
            body = self.internal("drop_path", {"p": p}, [body], scope, ryp + ("drop_path",))
            if linear:
                self.g.nodes[body]["schedule"] = ("linear", p)
        short = self.shortcut(r.get("shortcut", "identity"), ryp + ("shortcut",), env, x, body, scope)
        out = self.internal("add", {}, [body, short], scope, yp)
        if "post" in r:
            pname, post = self.split(r["post"])
            out = self.emit(post, ryp + ("post",), env, out, scope, pname)
        return out

    def shortcut(self, spec, yp, env, x: str, body: str, scope: Scope) -> str:
        if spec == "identity":
            return x
        if spec == "auto" or isinstance(spec, dict) and "auto" in spec:  # {auto: name, bn: bool}
            xs, bs = self.g.nodes[x]["shape"], self.g.nodes[body]["shape"]
            if xs == bs:
                return x
            if len(xs) != 3 or len(bs) != 3 or xs[1] % bs[1] or xs[2] % bs[2] or xs[1] // bs[1] != xs[2] // bs[2]:
                raise self.error(f"no 1x1 projection maps {list(xs)} to {list(bs)}", yp, scope.prefix, ShapeError)
            pscope = scope.child(spec["auto"] if isinstance(spec, dict) else "downsample")
            conv = self.op_args("conv", {"out": bs[0], "k": 1, "stride": xs[1] // bs[1], "bias": False}, yp, env,
                                pscope.prefix)
            s = self.add("conv", conv, [x], pscope.path(pscope.take()), yp)
            if not isinstance(spec, dict) or spec.get("bn", True):
                s = self.add("bn", self.op_args("bn", {}, yp, env, pscope.prefix), [s], pscope.path(pscope.take()), yp)
            return s
        name, node = self.split(spec)
        return self.emit(node, yp, env, x, scope, name)

    def dense(self, node: dict, yp, env: dict, x: str, scope: Scope) -> str:
        d, dyp = node["dense"], yp + ("dense",)
        n = self.value(d["layers"], env, dyp + ("layers",), scope.prefix)
        if not 1 <= n <= MAX_REPEAT:
            raise self.error(f"dense layers {n} outside 1..{MAX_REPEAT}", dyp + ("layers",), scope.prefix)
        feats = [x]
        for i in range(n):
            ienv = {**env, "i": i, "n": n}
            lname = self.template(d["names"], ienv, dyp + ("names",), scope.prefix) if "names" in d else str(i)
            inp = x if i == 0 else self.internal("concat", {}, feats, scope, dyp)
            feats.append(self.emit(d["body"], dyp + ("body",), ienv, inp, scope, lname))
        return self.internal("concat", {}, feats, scope, dyp)

    def fractal(self, node: dict, yp, env: dict, x: str, scope: Scope) -> str:
        """f_1 = body; f_{c+1}(z) = join(f_c(f_c(z)), body(z)), joins at equal depth merged (Larsson et al.)."""
        f, fyp = node["fractal"], yp + ("fractal",)
        columns = self.value(f["columns"], env, fyp + ("columns",), scope.prefix)
        if not 1 <= columns <= 8:
            raise self.error(f"fractal columns {columns} outside 1..8", fyp + ("columns",), scope.prefix, LimitError)
        p = self.value(f.get("drop_path", 0.0), env, fyp + ("drop_path",), scope.prefix, "float")
        counters = [0] * (columns + 1)

        def join(zs):
            return zs[0] if len(zs) == 1 else self.internal("mean", {"drop_path": p}, zs, scope, fyp)

        def expand_(c: int, z: str, col: int) -> list[str]:
            if c > 1:
                deep = expand_(c - 1, join(expand_(c - 1, z, col + 1)), col + 1)
            else:
                deep = []
            counters[col] += 1
            ienv = {**env, "column": col, "i": counters[col] - 1}
            shallow = self.emit(f["body"], fyp + ("body",), ienv, z, scope.child(f"col{col}"), str(counters[col] - 1))
            return deep + [shallow]

        return join(expand_(columns, x, 1))

    def aux(self, node: dict, yp, env: dict, x: str, scope: Scope) -> str:
        if isinstance(node["aux"], dict) and "aux" in node["aux"]:
            raise self.error("an aux head cannot be an aux itself (`aux` is reserved: name the head aux1, "
                             "head, ...)", yp, scope.prefix)
        out = self.emit(node["aux"], yp + ("aux",), env, x, scope, None)
        self.g.graph["outputs"].append({"name": scope.prefix, "node": out, "aux": True})
        return x


def _suggest(word: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
