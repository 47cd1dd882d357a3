"""A spec as read: items, blocks and the program the expander walks. Values stay as written (numbers,
expressions); the expander resolves them with the environment of each use."""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.errors import Loc


@dataclass(frozen=True)
class Where:
    """A place in a spec document: the document (which knows its marks) and the path to the value."""

    doc: object  # the Spec that holds the value
    yp: tuple

    def loc(self, *sub, key: bool = False) -> Loc:
        return self.doc.loc(self.yp + sub, key)

    def child(self, *sub) -> Where:
        return Where(self.doc, self.yp + sub)

    @property
    def path(self) -> str:
        return ".".join(map(str, self.yp)) or "<spec>"


@dataclass(frozen=True, eq=False)
class Item:
    """One node as written. kind: an op's or a construct's name. value: an op's written arguments, or the
    construct's own value as read by its grammar entry (items within are Items). keys: the construct's other
    keys, read (defaults filled in)."""

    kind: str
    value: object
    where: Where
    keys: dict = field(default_factory=dict)
    name: str | None = None
    when: object = None  # the written `when:`, None if absent
    from_: tuple[str, ...] | None = None

    def items(self):
        """The Items directly inside this one, in written order."""
        return [x for v in (self.value, *self.keys.values()) for x in _items(v)]


def _items(v):
    if isinstance(v, Item):
        yield v
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from _items(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from _items(x)


@dataclass(frozen=True)
class Block:
    """A block definition: declared arguments (Arg: kind and default), lets, and its body."""

    name: str
    args: dict
    let: dict
    body: Item
    where: Where


@dataclass(frozen=True)
class Program:
    """What a spec computes: its input shape (as written), its graph (a seq Item) and every block it can call."""

    input: list
    graph: Item
    blocks: dict[str, Block]
