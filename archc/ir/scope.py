"""Names -> module paths, as nn.Sequential and torchvision name things (and so state_dict keys):

- a name written in the spec opens a scope: `layer1: {...}` -> `layer1.*`;
- an anonymous item of a sequence (or an iteration of a repeat) takes its position as its name when it is an
  op, or a construct that is a module of its own (residual, dense, fractal, aux, module) or a sequence holding
  named items (a "unit": grammar's `unit`); a block call is what its body is;
- an anonymous sequence without named items, and an anonymous repeat, are spliced into the enclosing sequence:
  their items (or iterations) are numbered on, each unit among them taking its own position (a loop generating
  layers, as VGG's flat `features`; MobileNetV2's blocks features.1 ... features.17 from a stage table);
- anonymous branches are transparent: their named items join the enclosing scope (SqueezeNet's fire);
- a scope opened again continues its numbering (Res2Net's `convs: [conv]` in each iteration: convs.0, convs.1, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.errors import Loc, SpecError
from archc.spec.grammar import CONSTRUCTS, BlockRef
from archc.spec.limits import ITEM_DEPTH
from archc.spec.tree import Item


@dataclass
class Scope:
    """A module path's scope: the next position in it and its names. Reopening a path (`convs: [...]` in each
    iteration of a loop) continues its numbering and its names, as appending to a ModuleList does."""

    prefix: str
    counter: int = 0
    names: dict[str, tuple] = field(default_factory=dict)  # written name -> (its latest value, the calls binding it)
    opened: dict[str, Scope] = field(default_factory=dict, repr=False)  # path -> its Scope, one per expansion

    def path(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def child(self, name: str) -> Scope:
        path = self.path(name)
        if path not in self.opened:
            self.opened[path] = Scope(path, opened=self.opened)
        return self.opened[path]

    def take(self) -> str:
        """The next position in this scope, as a name."""
        self.counter += 1
        return str(self.counter - 1)


def is_unit(item: Item, blocks: dict, memo: dict | None = None, depth: int = 0) -> bool:
    """Whether an anonymous item in a sequence position is a module of its own (it takes its position as its
    name) or is spliced into the sequence. A call through a block argument is decided once its block is known.
    `memo` (Item -> answer) makes each call's answer cost one walk, however often it is made; a block reaching
    itself holds no unit through that call."""
    construct = CONSTRUCTS.get(item.kind)
    if construct is None:  # an op: it takes its position when added, but holds nothing
        return False
    if isinstance(construct.value, BlockRef):  # a block call is what the block's body is
        if item.value not in blocks:
            return False
        memo = {} if memo is None else memo
        if item in memo:
            return memo[item]
        if depth >= ITEM_DEPTH:  # deeper than expansion goes (it stops there, located)
            return False
        memo[item] = False
        memo[item] = found = is_unit(blocks[item.value].body, blocks, memo, depth + 1)
        return found
    if construct.unit != "contents":
        return construct.unit == "always"
    return any(i.name is not None for i in item.items())


class Modules:
    """The module paths taken so far. A path names one module; an op without parameters may be used again
    under its name (torchvision's shared `self.relu`): its k-th use is node `path#k`."""

    def __init__(self):
        self._first: dict[str, tuple] = {}  # path -> (op, attrs, stateful, loc, calls)
        self._uses: dict[str, int] = {}

    def claim(self, path: str, op: str, attrs: dict, stateful: bool, loc: Loc | None, calls: tuple = ()) -> str:
        """The node name for one more use of `path`. `calls`: where the block calls that expanded this op were
        written (tree.Where), outermost first; a clash is reported where the two uses part (two calls of one block
        in one scope: at the second call, naming the first), not inside the block both expand."""
        if path not in self._first:
            self._first[path], self._uses[path] = (op, attrs, stateful, loc, calls), 1
            return path
        first_op, first_attrs, _, first_loc, first_calls = self._first[path]
        if stateful or first_op != op or first_attrs != attrs:
            k = next((j for j, (a, b) in enumerate(zip(first_calls, calls)) if a.yp != b.yp or a.doc is not b.doc),
                     min(len(first_calls), len(calls)))
            at = calls[k].loc() if k < len(calls) else loc
            first = first_calls[k].loc() if k < len(first_calls) else first_loc
            leaf = path.rsplit(".", 1)[-1]
            if k < len(calls):
                raise SpecError(f"name {leaf!r} is already used in this scope: the block this call expands makes it, "
                                f"and so did the call at {first.line}:{first.col} (name the calls to give each its own "
                                "scope)", at, path)
            where = f" (first at {first.line}:{first.col})" if first else ""
            raise SpecError(f"name {leaf!r} is already used in this scope{where}; only identical ops without "
                            "parameters may share a name", at, path)
        self._uses[path] += 1
        return f"{path}#{self._uses[path]}"
