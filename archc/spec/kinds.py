"""Argument kinds: what a value written in a spec may be.

A kind knows three things about a value: its JSON Schema (for editors and the schema file), whether a
written value has the right form (`problem`, before anything is evaluated), and how it resolves to a value
(`resolve`: strings are expressions, evaluated by the caller's `ev`; bounds are checked). Messages read
after a subject: "conv pad" + " must be >= 0, got -1".

Op arguments are `Arg`s of these kinds. Block arguments are declared by a kind's name from KINDS
(`args: {planes: int, k: int2}`) or by a default value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Callable

from archc.errors import SpecError

# The one rule for names (docs/language.md, *Names*), written once here: the reader, the schema, `names:` and `from:`
# templates and the expander all use these.
# - A name (an item's, a scope's: a module name, a state_dict key part) is letters, digits, `_` and `-`, not starting
#   with `-`: `conv1`, `block1-0` (torchvision's RegNet), `0` (a numbered position, as nn.Sequential's), `repeat`.
# - An identifier (a name that stands in expressions: parameters, block arguments and lets, table columns, repeat
#   variables; block and op names) is letters, digits and `_`, not starting with a digit.
# - A module path joins names with `.`: `layer3.0.conv1`, `transition1.0`.
IDENTIFIER_PART = "[A-Za-z_][A-Za-z0-9_]*"
NAME_PART = "[A-Za-z0-9_][A-Za-z0-9_-]*"
# (?!\n): Python's $ also matches before a last newline; ECMA's does not
NAME = rf"^{IDENTIFIER_PART}$(?!\n)"  # an identifier
MODULE_NAME = rf"^{NAME_PART}$(?!\n)"
MODULE_PATH = rf"^{NAME_PART}(\.{NAME_PART})*$(?!\n)"
# A path written with `{expression}` templates in its names (`from: "spx.{i}"`): the expander evaluates them, then
# the result must be a MODULE_PATH.
_TEMPLATED_PART = r"(?:[A-Za-z0-9_-]|\{[^{}\n]*\})+"
TEMPLATED_PATH = rf"^(?!-){_TEMPLATED_PART}(\.(?!-){_TEMPLATED_PART})*$(?!\n)"
PACKAGE = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$(?!\n)"  # a Python package's name (PyPI's rule), not a name
# A library name: a package (`archc`: the libraries archc ships; others: folders on the library search path) and
# the library's path in it, identifiers joined by "/": `archc/resnet`, `mylab/blocks`.
LIBRARY_NAME = rf"{IDENTIFIER_PART}(/{IDENTIFIER_PART})+"
_NAME = re.compile(NAME)
_MODULE_NAME = re.compile(MODULE_NAME)
_MODULE_PATH = re.compile(MODULE_PATH)
_TEMPLATED_PATH = re.compile(TEMPLATED_PATH)


def is_identifier(v) -> bool:
    return isinstance(v, str) and bool(_NAME.match(v))


def is_module_name(v) -> bool:
    return isinstance(v, str) and bool(_MODULE_NAME.match(v))


def is_module_path(v) -> bool:
    return isinstance(v, str) and bool(_MODULE_PATH.match(v))


Evaluate = Callable[[str], object]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


def short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + " ..."


def _integral(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer()


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _expression_or(schema: dict, expr: bool) -> dict:
    return {"anyOf": [schema, {"type": "string"}]} if expr else schema


@dataclass(frozen=True)
class Number:
    """A number (with `integer`, an integer), or (with `expr`) an expression giving one; in [lo, hi) where given."""

    integer: bool = False
    lo: float | None = None
    hi: float | None = None
    expr: bool = True

    @property
    def what(self) -> str:
        return "an int" if self.integer else "a number"

    def matches(self, v) -> bool:
        return _number(v) or self.expr and isinstance(v, str)

    def schema(self) -> dict:
        kind = "integer" if self.integer else "number"
        if self.lo is None and self.hi is None:
            return {"type": [kind, "string"]} if self.expr else {"type": kind}
        s = {"type": kind, **({"minimum": self.lo} if self.lo is not None else {}),
             **({"exclusiveMaximum": self.hi} if self.hi is not None else {})}
        return _expression_or(s, self.expr)

    def problem(self, v) -> str | None:
        if self.expr and isinstance(v, str):
            return None
        if not self._fits(v):
            return f"must be {self.what}{' or an expression' if self.expr else ''}, got {short(v)}"
        return self._bounds(v)

    def resolve(self, v, ev: Evaluate):
        v = ev(v) if isinstance(v, str) else v
        if not self._fits(v):
            raise SpecError(f"must be {self.what}, got {short(v)}")
        if problem := self._bounds(v):
            raise SpecError(problem)
        return int(v) if self.integer else float(v)

    def _fits(self, v) -> bool:
        return _integral(v) if self.integer else _number(v)

    def _bounds(self, v) -> str | None:
        if self.lo is not None and v < self.lo or self.hi is not None and v >= self.hi:
            rng = f">= {self.lo:g}" if self.hi is None else f"in [{self.lo:g}, {self.hi:g})"
            return f"must be {rng}, got {short(v)}"
        return None


def Int(lo: int | None = None, expr: bool = True) -> Number:  # noqa: N802  (a kind, as the classes)
    return Number(True, lo, None, expr)


def Float(lo: float | None = None, hi: float | None = None) -> Number:  # noqa: N802
    return Number(False, lo, hi)


@dataclass(frozen=True)
class Bool:
    """true or false, or (with `expr`) an expression giving one (0 and 1 count)."""

    expr: bool = True
    what = "true or false"

    def matches(self, v) -> bool:
        return isinstance(v, bool) or self.expr and isinstance(v, str)

    def schema(self) -> dict:
        return {"type": ["boolean", "string"]} if self.expr else {"type": "boolean"}

    def problem(self, v) -> str | None:
        return None if self.matches(v) else f"must be {self.what}{' or an expression' * self.expr}, got {short(v)}"

    def resolve(self, v, ev: Evaluate) -> bool:
        v = ev(v) if isinstance(v, str) else v
        if not (isinstance(v, bool) or v in (0, 1)):
            raise SpecError(f"must be {self.what}, got {short(v)}")
        return bool(v)


@dataclass(frozen=True)
class Pair:
    """One value for both axes, or `[h, w]` (kernel sizes, strides, padding)."""

    of: Number = Int()
    what = "an int or [h, w]"

    def matches(self, v) -> bool:
        return isinstance(v, list) or self.of.matches(v)

    def schema(self) -> dict:
        return {"anyOf": [self.of.schema(), {"type": "array", "items": self.of.schema(), "minItems": 2,
                                             "maxItems": 2}]}

    def problem(self, v) -> str | None:
        if not isinstance(v, list):
            return self.of.problem(v)
        if len(v) != 2:
            return f"must be {self.what}, got {short(v)}"
        return next((p for p in map(self.of.problem, v) if p), None)

    def resolve(self, v, ev: Evaluate):
        v = ev(v) if isinstance(v, str) else v
        if isinstance(v, (list, tuple)):
            if len(v) != 2:
                raise SpecError(f"must be {self.what}, got {short(v)}")
            h, w = (self.of.resolve(x, ev) for x in v)
            return h if h == w else (h, w)
        return self.of.resolve(v, ev)


@dataclass(frozen=True)
class Choice:
    """One of a few strings (with `expr`, also an expression giving one)."""

    options: tuple[str, ...]
    expr: bool = False

    @property
    def what(self) -> str:
        return "one of " + ", ".join(self.options)

    def matches(self, v) -> bool:
        return v in self.options or self.expr and isinstance(v, str)

    def schema(self) -> dict:
        return _expression_or({"enum": list(self.options)}, self.expr)

    def problem(self, v) -> str | None:
        return None if self.matches(v) else f"must be {self.what}, got {short(v)}"

    def resolve(self, v, ev: Evaluate) -> str:
        if v not in self.options and self.expr and isinstance(v, str):
            v = ev(v)
        if v not in self.options:
            raise SpecError(f"must be {self.what}, got {short(v)}")
        return v


@dataclass(frozen=True)
class List:
    """A list of values of one kind (with `expr`, also an expression giving one); `sizes`: the lengths allowed,
    where not every length between min and max is."""

    of: object
    min: int = 0
    max: int | None = None
    expr: bool = False
    sizes: tuple[int, ...] | None = None

    @property
    def what(self) -> str:
        if self.sizes:
            return f"a list of {' or '.join(map(str, self.sizes))} values"
        n = f"{self.min}" if self.max == self.min else f"{self.min} or more" if self.max is None \
            else f"{self.min} to {self.max}"
        return f"a list of {n} values" if self.min or self.max is not None else "a list"

    def matches(self, v) -> bool:
        return isinstance(v, list) or self.expr and isinstance(v, str)

    def _fits(self, v) -> bool:
        n = len(v)
        return n >= self.min and (self.max is None or n <= self.max) and (not self.sizes or n in self.sizes)

    def problem(self, v) -> str | None:
        """The list's own form; the reader checks its items against `of`, each at its place."""
        if self.expr and isinstance(v, str):
            return None
        if not isinstance(v, list) or not self._fits(v):
            return f"must be {self.what}, got {short(v)}"
        return None

    def resolve(self, v, ev: Evaluate) -> tuple:
        v = ev(v) if isinstance(v, str) else v
        if not isinstance(v, (list, tuple)) or not self._fits(v):
            raise SpecError(f"must be {self.what}, got {short(v)}")
        return tuple(self.of.resolve(x, ev) for x in v)


@dataclass(frozen=True)
class Str:
    """A string taken as it is written (a description, a path); `pattern` restricts it."""

    pattern: str | None = None
    what: str = "a string"

    def matches(self, v) -> bool:
        return isinstance(v, str)

    def schema(self) -> dict:
        return {"type": "string", **({"pattern": self.pattern} if self.pattern else {})}

    def problem(self, v) -> str | None:
        if not isinstance(v, str) or self.pattern and not re.search(self.pattern, v):
            return f"must be {self.what}, got {short(v)}"
        return None

    def resolve(self, v, ev: Evaluate) -> str:
        return v


@dataclass(frozen=True)
class Name(Str):
    """An identifier: a name that stands in expressions (letters, digits and _, not starting with a digit)."""

    pattern: str = NAME
    what: str = "a name"

    def problem(self, v) -> str | None:
        return None if is_identifier(v) else name_problem(v)


@dataclass(frozen=True)
class ModuleName(Str):
    """A name, which becomes a module name: letters, digits, _ and -, not starting with -."""

    pattern: str = MODULE_NAME
    what: str = "a name"

    def problem(self, v) -> str | None:
        return None if is_module_name(v) else name_problem(v, dash=True)


@dataclass(frozen=True)
class ModulePath(Str):
    """Names joined by `.` (`layer3`, `features.6`, `transition1.0`); with `templates`, its names may hold
    `{expression}` templates (`spx.{i}`), evaluated where the path is used (then it must be a path)."""

    pattern: str = MODULE_PATH
    what: str = "a module path such as layer3 or features.6"
    templates: bool = False

    def matches(self, v) -> bool:
        return isinstance(v, (str, int)) and not isinstance(v, bool)  # a number: told to quote it

    def problem(self, v) -> str | None:
        if isinstance(v, str) and re.match(self.pattern, v):
            return None
        return path_problem(v, self.templates)


def templated_path() -> ModulePath:
    return ModulePath(TEMPLATED_PATH, "a module path such as layer3, features.6 or spx.{i}", True)


def name_problem(v, dash: bool = False) -> str:
    if not isinstance(v, str):
        quote = " (a numbered position is written as a string: '0')" if isinstance(v, int) and v >= 0 and dash else ""
        return f"must be a name, got {short(v)}{quote}"
    allowed = "_-" if dash else "_"
    why = "starts with '-'" if v[:1] == "-" and dash else "starts with a digit" if v[:1].isdigit() and not dash \
        else "is empty" if not v \
        else f"has {next(c for c in v if not (c.isalnum() or c in allowed))!r}" if v.isascii() else "is not ASCII"
    rule = "names are letters, digits, _ and -, not starting with -" if dash else \
        "names that stand in expressions are letters, digits and _, not starting with a digit"
    return f"{short(v)} is not a valid name: it {why} ({rule})"


def path_problem(v, templates: bool = False) -> str:
    """Why `v` is not a module path: the first of its names that is not a name."""
    if not isinstance(v, str):
        return name_problem(v, dash=True).replace("a name", "a module path", 1)
    for part in v.split("."):
        if not is_module_name(part) and not (templates and "{" in part):
            return f"{short(v)} is not a valid module path: " + name_problem(part, dash=True)
    return f"{short(v)} is not a valid module path (names joined by '.')"


@dataclass(frozen=True)
class Const:
    value: object

    @property
    def what(self) -> str:
        return repr(self.value)

    def matches(self, v) -> bool:
        return v == self.value

    def schema(self) -> dict:
        return {"const": self.value}

    def problem(self, v) -> str | None:
        return None if type(v) is type(self.value) and v == self.value else f"must be {self.value!r}, got {short(v)}"

    def resolve(self, v, ev: Evaluate):
        return v


@dataclass(frozen=True)
class Table:
    """A table bound in expressions: named columns and rows of values (a `repeat` over it binds each row's
    columns)."""

    columns: tuple
    rows: tuple

    def __len__(self) -> int:
        return len(self.rows)

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row)) for row in self.rows]


_DATUM = (int, float, str)  # a number, true/false (an int), or a name such as an op's, a block's or a variant's


def _datum(v) -> bool:
    return isinstance(v, _DATUM) and (not isinstance(v, str) or is_module_name(v))


@dataclass(frozen=True)
class ParamValue:
    """A spec parameter's value, as written (data: nothing in it is evaluated): a number, true/false, a name (an
    op, a block, a mode, a variant), a list of those, or a table `{columns: [...], rows: [[...], ...]}`."""

    what = "a number, true/false, a name, a list of them, or a table {columns: [...], rows: [[...], ...]}"

    def matches(self, v) -> bool:
        return _datum(v) or isinstance(v, (list, dict))

    def schema(self) -> dict:
        datum = {"anyOf": [{"type": ["number", "boolean"]}, {"type": "string", "pattern": MODULE_NAME}]}
        return {"anyOf": [datum, {"type": "array", "items": datum},
                          {"type": "object", "required": ["columns", "rows"], "additionalProperties": False,
                           "properties": {"columns": {"type": "array", "minItems": 1,
                                                      "items": {"type": "string", "pattern": NAME}},
                                          "rows": {"type": "array", "items": {"type": "array", "items": datum}}}}]}

    def problem(self, v) -> str | None:
        if _datum(v) or isinstance(v, list) and all(_datum(x) for x in v):
            return None
        if isinstance(v, dict) and set(v) == {"columns", "rows"}:
            return table_problem(v["columns"], v["rows"])
        if isinstance(v, str):
            return f"must be a number, true/false or a name (a parameter is data, not an expression), got {short(v)}"
        return f"must be {self.what}, got {short(v)}"

    def resolve(self, v, ev: Evaluate):
        return to_value(v)


def table_problem(columns, rows) -> str | None:
    if not isinstance(columns, list) or not columns or not all(is_identifier(c) for c in columns):
        return f"a table's columns must be a list of names, got {short(columns)}"
    if len(set(columns)) != len(columns):
        return f"a table's columns must differ, got {short(columns)}"
    if not isinstance(rows, list):
        return f"a table's rows must be a list of rows, got {short(rows)}"
    for i, row in enumerate(rows):  # a row's length is checked where the table is used (as the schema cannot)
        if not isinstance(row, list) or not all(_datum(x) for x in row):
            return f"table row {i} must be a list of numbers, true/false or names, got {short(row)}"
    return None


def to_value(v):
    """A parameter as written -> the value expressions see: lists as tuples, tables as Table."""
    if isinstance(v, dict):
        return Table(tuple(v["columns"]), tuple(tuple(r) for r in v["rows"]))
    return tuple(v) if isinstance(v, list) else v


_ATOM = (int, float, str)  # bool is an int


@dataclass(frozen=True)
class Value:
    """Any value a block argument or `let` can hold: a number, true/false, an expression, or a list of those."""

    what = "a number, true/false, an expression or a list of them"

    def matches(self, v) -> bool:
        return isinstance(v, _ATOM) or isinstance(v, list) and all(isinstance(x, _ATOM) for x in v)

    def schema(self) -> dict:
        atom = {"type": ["number", "string", "boolean"]}
        return {"anyOf": [atom, {"type": "array", "items": atom}]}

    def problem(self, v) -> str | None:
        return None if self.matches(v) else f"must be {self.what}, got {short(v)}"

    def resolve(self, v, ev: Evaluate):
        if isinstance(v, list):
            return tuple(self.resolve(x, ev) for x in v)
        return ev(v) if isinstance(v, str) else v


@dataclass(frozen=True)
class Symbol:
    """The name of an op or a block, or `none` (nothing): what a block argument that is a block holds
    (`attn: se`); an expression may compute it (`"se if use_se else none"`)."""

    what = "an op or block name, or none"

    def matches(self, v) -> bool:
        return isinstance(v, str)

    def schema(self) -> dict:
        return {"type": "string"}

    def problem(self, v) -> str | None:
        return None if isinstance(v, str) else f"must be {self.what}, got {short(v)}"

    def resolve(self, v, ev: Evaluate) -> str:
        if isinstance(v, str):
            try:
                v = ev(v)
            except SpecError:
                if is_identifier(v):  # a bare name that names nothing
                    raise SpecError(f"{v!r} is not an op, a block or none") from None
                raise
        if not isinstance(v, str):
            raise SpecError(f"must be {self.what}, got {short(v)}")
        return v


NONE = "none"  # the symbol for "no block": a call of it is left out, as `when: false`


@dataclass(frozen=True)
class Arg:
    """One argument of an op: its kind, its default (REQUIRED: none; None: absent) and what it means."""

    kind: object
    default: object = REQUIRED
    doc: str = ""


VALUE = Value()

# Kinds a block argument can be declared with: `args: {planes: int, k: int2, widths: ints}`.
KINDS: dict[str, object] = {
    "int": Int(),
    "float": Float(),
    "bool": Bool(),
    "int2": Pair(),
    "ints": List(Int(), min=1, expr=True),
    "block": Symbol(),
}


@dataclass(frozen=True)
class ArgDecl:
    """A block argument declaration: a kind's name from KINDS (required), or a default value."""

    what = "a kind (" + ", ".join(KINDS) + ") or a default value"
    kinds: dict = field(default_factory=lambda: KINDS)

    def matches(self, v) -> bool:
        return VALUE.matches(v)

    def schema(self) -> dict:
        return VALUE.schema()

    def problem(self, v) -> str | None:
        return VALUE.problem(v)

    def arg(self, v) -> Arg:
        return Arg(self.kinds[v]) if isinstance(v, str) and v in self.kinds else Arg(VALUE, v)
