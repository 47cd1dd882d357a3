"""The spec language's grammar: what each construct and each part of a spec file holds.

One table entry per construct: its own key's kind, the keys that may stand beside it, how it scopes names.
From these tables (and the op table's arguments) `schema.py` generates the JSON Schema and `read.py` reads
specs; the expander (archc/ir/expand.py) holds one expansion function per construct. Adding a construct is
one entry here plus its expansion function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.spec import kinds
from archc.spec.kinds import (ArgDecl, Bool, Choice, Const, Float, Int, List, ModuleName, ModulePath, Name, Number,
                              ParamValue, Str, VALUE, templated_path)


@dataclass(frozen=True)
class Key:
    """A key of a mapping: the kind of its value, whether it must be there, its default."""

    kind: object
    required: bool = False
    default: object = None
    doc: str = ""


@dataclass(frozen=True)
class Settings:
    """A mapping with known keys. `noun` names them in messages ("argument", "key"); with a `tag`, a mapping
    is taken for these settings (among alternatives) only when it holds that key."""

    keys: dict[str, Key]
    owner: str = ""
    noun: str = "key"
    tag: str | None = None
    others: Key | None = None  # the kind of any other key (a name), if other keys are allowed

    @property
    def what(self) -> str:
        return f"a mapping of {self.owner} settings" if self.owner else "a mapping"

    def matches(self, v) -> bool:
        return isinstance(v, dict) and (self.tag is None or self.tag in v)


@dataclass(frozen=True)
class Mapping:
    """Names to values of one kind (parameters, blocks, block arguments)."""

    value: object
    key: object = Name()
    min: int = 0
    what = "a mapping of names to values"

    def matches(self, v) -> bool:
        return isinstance(v, dict)


@dataclass(frozen=True)
class OneOf:
    """The first alternative whose form the written value has."""

    alternatives: tuple

    @property
    def what(self) -> str:
        return " or ".join(a.what for a in self.alternatives)

    def matches(self, v) -> bool:
        return any(a.matches(v) for a in self.alternatives)


@dataclass(frozen=True)
class SeqKind:
    """A sequence: a list of items, each taking the previous one's output."""

    what = "a list of items"

    def matches(self, v) -> bool:
        return isinstance(v, list)


@dataclass(frozen=True)
class ItemKind:
    """An item of a sequence: a node, or a `name: node` pair."""

    what = "an item (an op, a construct, a name: node pair, or a list)"

    def matches(self, v) -> bool:
        return True


@dataclass(frozen=True)
class NodeKind:
    """A node: an op or construct mapping, an op or block name, or a list of items. `not_` rules out
    constructs (an aux head that is an aux itself)."""

    not_: tuple[str, ...] = ()
    why: str = ""
    what = "an op, a construct, an op or block name, or a list of items"

    def matches(self, v) -> bool:
        return True


@dataclass(frozen=True)
class BlockRef:
    """The name of a block this spec defines or imports."""

    what = "a block name"

    def matches(self, v) -> bool:
        return isinstance(v, str)


@dataclass(frozen=True)
class OpRef:
    """The name of an op of a category (a join)."""

    category: str

    @property
    def what(self) -> str:
        return f"a {self.category} op"

    def matches(self, v) -> bool:
        return isinstance(v, str)


SEQ, ITEM, NODE = SeqKind(), ItemKind(), NodeKind()
WITH = Mapping(VALUE)
TEMPLATE = Str(what="a names template such as 'layer{i + 1}'")
PROBABILITY = Float(0.0, 1.0)
LOSS_WEIGHT = Float(0.0)


@dataclass(frozen=True)
class Construct:
    """A construct of the language.

    scope: how its name scopes what it makes. "own": always a module of its own, named by its name or, when
    anonymous, by its position; "named": a scope when named, else transparent (its names join the enclosing
    scope); "pass": its name goes to what it expands to (a block call names the block's body).
    unit: whether, anonymous in a sequence, it takes its position as its name: "always", "never", or
    "contents" (when it holds named items or such units; otherwise its items are spliced, numbered on).
    nameable: its key may also name an item (`fractal: {fractal: ...}`, `repeat: {repeat: 10, ...}`), when its value
    is a node the construct cannot take (read.py's _names_a_node); the others' keys are RESERVED.
    """

    name: str
    doc: str
    value: object
    keys: dict[str, Key] = field(default_factory=dict)
    one_of: tuple[str, ...] = ()
    scope: str = "named"
    unit: str = "contents"
    nameable: bool = False


_SHORTCUT = OneOf((
    Choice(("identity", "auto")),
    Settings({"auto": Key(Name(), True, doc="the projection's scope name (downsample)"),
              "bn": Key(Bool(expr=False), default=True, doc="a BatchNorm after the 1x1 conv")},
             owner="shortcut", tag="auto"),
    ITEM))
RAMPS = ("l/L", "k/N", "k/(N-1)")
_MODE = Key(Choice(("row", "batch")), default="row",
            doc="row: each sample dropped on its own (torchvision's StochasticDepth 'row'); batch: the whole batch")
_DROP_PATH = OneOf((
    PROBABILITY,
    Settings({"linear": Key(PROBABILITY, True, doc="the schedule's p: each block's probability is p times its ramp"),
              "ramp": Key(Choice(RAMPS), default="l/L",
                          doc="over the N blocks that declare a linear drop_path, in order: l/L (l = 1..N, Huang et "
                              "al.), k/N (k = 0..N-1, EfficientNet), k/(N-1) (ConvNeXt: 0 first, p last)"),
              "mode": _MODE},
             owner="drop_path", tag="linear"),
    Settings({"p": Key(PROBABILITY, True, doc="the probability"), "mode": _MODE}, owner="drop_path", tag="p")))
# What a repeat iterates: a count; a table (a parameter, or written here: its rows, binding the columns); or names
# of equal-length lists, iterated in step (`{depth: depths, width: widths}`).
TABLE = Settings({"columns": Key(List(Name(), min=1), True, doc="the names each row binds"),
                  "rows": Key(List(List(VALUE)), True, doc="one list of values (or expressions) per iteration")},
                 owner="table", tag="columns")
_REPEAT = OneOf((Int(), TABLE, Mapping(List(VALUE, expr=True), min=1)))

_CONSTRUCTS = [
    Construct("seq", "A sequence: each item takes the previous item's output (a plain list is one too).", SEQ),
    Construct("repeat", "Repeat a block or a body: a count, a table's rows (binding its columns), or lists in step "
              "({name: list, ...}); `i` (0-based) and `n` are bound in `with`, `body` and `names`. Each iteration "
              "takes the previous one's output; `carry: name` names that value in the body (the repeat's input "
              "for i = 0), and `join:` makes the output the join of every iteration's output instead of the last.",
              _REPEAT, keys={"block": Key(BlockRef()), "with": Key(WITH), "body": Key(NODE),
                           "names": Key(TEMPLATE, doc="names the iterations: 'layer{i + 1}'"),
                           "carry": Key(ModuleName(), doc="the name `from:` reads the previous iteration's output "
                                                          "by (the repeat's input in the first)"),
                           "join": Key(OpRef("join"), doc="the output: this join of every iteration's output "
                                                           "(default: the last iteration's)")},
              one_of=("block", "body"), unit="never", nameable=True),
    Construct("block", "Call a block with arguments (a block, or a block argument naming a block or op).",
              BlockRef(), keys={"with": Key(WITH)}, scope="pass", nameable=True),
    Construct("module", "A sequence that is a module of its own: anonymous, it takes its position as its name and "
              "numbers its items inside it (an nn.Sequential in a Sequential: features.0.0).", NODE,
              scope="own", unit="always"),
    Construct("branches", "Parallel branches from the same input, joined (concat by default).",
              OneOf((List(ITEM, min=1), Mapping(NODE, min=1))),
              keys={"join": Key(OpRef("join"), default="concat")}, unit="never", nameable=True),
    Construct("residual", "body + shortcut, then post; drop_path for stochastic depth.",
              Settings({"body": Key(NODE, True), "shortcut": Key(_SHORTCUT, default="identity"),
                        "post": Key(ITEM), "drop_path": Key(_DROP_PATH),
                        "skip": Key(Bool(), doc="whether the shortcut is added (default true); false: body, then "
                                                "post (MobileNetV2's blocks that change shape)")},
                       owner="residual"),
              scope="own", unit="always", nameable=True),
    Construct("dense", "Dense block: layer i sees concat(input, out_0 .. out_{i-1}); the output concatenates all.",
              Settings({"layers": Key(Int(), True), "body": Key(NODE, True), "names": Key(TEMPLATE)},
                       owner="dense"),
              scope="own", unit="always", nameable=True),
    Construct("fractal", "f_1 = body, f_{C+1}(z) = mean(f_C(f_C(z)), body(z)); drop_path at the joins.",
              Settings({"columns": Key(Int(), True), "body": Key(NODE, True), "drop_path": Key(PROBABILITY)},
                       owner="fractal"),
              scope="own", unit="always", nameable=True),
    Construct("aux", "An auxiliary output (train mode only) computed on the current value.",
              NodeKind(not_=("aux",), why="an aux head cannot be an aux itself (`aux` is reserved: name the head "
                                      "aux1, head, ...)"),
              keys={"loss_weight": Key(LOSS_WEIGHT, doc="the weight of this head's loss in training (`archc train`; "
                                                       "default 1): GoogLeNet's 0.3")},
              scope="own", unit="always"),
]
CONSTRUCTS: dict[str, Construct] = {c.name: c for c in _CONSTRUCTS}

FROM_PATH = templated_path()
MODIFIERS: dict[str, Key] = {
    "from": Key(OneOf((FROM_PATH, List(FROM_PATH, min=1))),
                doc="take input(s) from earlier items: a name visible here (this sequence's, an enclosing one's, "
                    "`input`, a repeat's `carry`), or a module path into an earlier scope (`transition1.0`); "
                    "names may hold {expression} templates (`spx.{i}`)"),
    "when": Key(Bool(), doc="include the item only when this is true"),
}
# Words that cannot name an item: constructs whose key is never a name (their value is always a node), the modifiers,
# and `input`. The other constructs' keys name an item when their value is a node the construct cannot take.
RESERVED = (*(c.name for c in _CONSTRUCTS if not c.nameable), *MODIFIERS, "input")
# Keys that only stand beside a construct (and so mark a mapping as a node, not as op arguments).
SIBLINGS = frozenset(k for c in _CONSTRUCTS for k in c.keys)

BLOCK_KEYS: dict[str, Key] = {
    "args": Key(Mapping(ArgDecl()), doc="arguments: a kind (int, float, bool, int2, ints) when required, "
                                        "else the default"),
    "let": Key(Mapping(VALUE), doc="names computed from the arguments"),
    "doc": Key(Str()),
}


@dataclass(frozen=True)
class BlockDef:
    """A block definition: a node with BLOCK_KEYS beside its op or construct key."""

    what = "a block definition (an op or construct, with args, let, doc)"

    def matches(self, v) -> bool:
        return isinstance(v, dict)


@dataclass(frozen=True)
class BlockName(Name):
    """A name for a new block: not an op's or a construct's."""


_EXACT = Int(expr=False)
PERCENT = Number(False, 0, 100, expr=False)
EXPECT = Settings({"params": Key(_EXACT), "params_without_aux": Key(_EXACT), "macs": Key(_EXACT),
                   "depth": Key(_EXACT, doc="weight layers on the longest path"),
                   "output": Key(List(_EXACT))}, owner="expect")
TORCHVISION = Key(Name(), doc="the torchvision model whose state_dict this spec's module loads strictly")
WEIGHTS_NAME = Str(r"^[A-Z][A-Z0-9_]*$(?!\n)", "a torchvision weights name such as IMAGENET1K_V1")
PUBLISHED = Key(Settings({"top1": Key(PERCENT, True, doc="top-1 accuracy, percent"),
                          "top5": Key(PERCENT, doc="top-5 accuracy, percent"),
                          "dataset": Key(Str(), default="ImageNet-1k", doc="where it was measured"),
                          "weights": Key(WEIGHTS_NAME, doc="the torchvision weights the figure is for (the weights "
                                                           "`archc predict` loads when given none)"),
                          "source": Key(Str(), True, doc="where the figure comes from")}, owner="published"),
                doc="published accuracy of the architecture as written (its default parameters), for "
                    "`archc compare --plot` and `archc list`")
_UNIT = Number(False, 0, None, expr=False)
PREPROCESSING = Key(Settings({
    "resize": Key(Int(lo=1, expr=False), True, doc="the image's shorter side is resized to this many pixels"),
    "crop": Key(Int(lo=1, expr=False), True, doc="then the centre crop x crop is taken"),
    "interpolation": Key(Choice(("bilinear", "bicubic", "nearest")), default="bilinear",
                         doc="how it is resized (antialiased)"),
    "mean": Key(List(_UNIT, min=1), default=[0.485, 0.456, 0.406],
                doc="per channel, subtracted from the values scaled to [0, 1] (default ImageNet's)"),
    "std": Key(List(Number(False, 1e-9, None, expr=False), min=1), default=[0.229, 0.224, 0.225],
               doc="per channel, what the values are divided by then (default ImageNet's)")},
    owner="preprocessing"),
    doc="the input pipeline the weights expect (`archc predict`, pretrained_cfg, exported metadata)")
PATH = ModulePath()
# What a variant row may say beside its parameters: what a spec file says about the network it describes.
VARIANT = Settings({"name": Key(Name(), doc="the network's name (default: its torchvision model's, else "
                                            "<spec name>_<variant>)"),
                    "description": Key(Str()),
                    "source": Key(Str()),
                    "torchvision": TORCHVISION,
                    "expect": Key(EXPECT, doc="this variant's figures, checked when it is selected"),
                    "published": PUBLISHED,
                    "preprocessing": PREPROCESSING},
                   owner="variant", others=Key(ParamValue()))
PACKAGE = Str(kinds.PACKAGE, "a package name")
LIBRARY_NAME = kinds.LIBRARY_NAME
IMPORT = Str(rf"^([^/].*\.ya?ml|{LIBRARY_NAME})$(?!\n)", "a relative path to a .yaml file, or a library name such "
                                                         "as archc/resnet")
_COMMON = {
    "archc": Key(Const(1), True, doc="spec language version"),
    "source": Key(Str(), doc="where the architecture and its figures come from"),
    "description": Key(Str()),
    "import": Key(List(IMPORT),
                  doc="block libraries: paths relative to this file (inside its folder), or library names "
                      "(archc/resnet: archc's own; mylab/blocks: mylab/blocks.yaml in a folder of ARCHC_PATH)"),
}
SPEC = Settings({
    "archc": _COMMON["archc"],
    "name": Key(Str(), True),
    "source": _COMMON["source"],
    "description": _COMMON["description"],
    "torchvision": TORCHVISION,
    "import": _COMMON["import"],
    "requires": Key(List(PACKAGE, min=1), doc="packages whose plugin ops this spec uses (archc.ops entry points)"),
    "expect": Key(EXPECT, doc="figures checked on every analysis (not when parameters are overridden)"),
    "published": PUBLISHED,
    "preprocessing": PREPROCESSING,
    "input": Key(List(Int(lo=1), min=1, max=3, sizes=(1, 3)), True, doc="[C, H, W] or [F]; expressions over params"),
    "params": Key(Mapping(ParamValue()), doc="spec parameters (numbers, true/false, names, lists, tables), "
                                             "overridable: --set k=v"),
    "variants": Key(Mapping(VARIANT, min=1),
                    doc="named variants: --set variant=NAME sets that row's parameters (params.variant: the default)"),
    "blocks": Key(Mapping(BlockDef(), key=BlockName()), doc="parameterised templates"),
    "graph": Key(SEQ, True),
    "outputs": Key(OneOf((List(PATH, min=1), Mapping(PATH, key=ModuleName(), min=1))),
                   doc="the module's outputs: module paths of items (a list), or output names to paths; "
                       "forward returns a dict keyed by output name"),
})
LIBRARY = Settings({
    "archc": _COMMON["archc"],
    "library": Key(Name(), True),
    "source": _COMMON["source"],
    "description": _COMMON["description"],
    "import": _COMMON["import"],
    "blocks": Key(Mapping(BlockDef(), key=BlockName()), True),
})
