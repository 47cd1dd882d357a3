"""A small whitelisted evaluator for arithmetic in spec arguments.

Allowed: numbers, booleans, names bound in the environment, + - * / // % **,
unary - + not, comparisons, and/or, `a if c else b`, min(...), max(...) and sum(...) (of several values, or of
one list value such as a block argument `[4, 9, 2]`), and the arithmetic compound scaling needs, computed as
torchvision computes it (Python floats): ceil(x), floor(x), round(x) (halves to even, as Python's round),
int(x) (towards zero), make_divisible(v, divisor[, min_value]) (torchvision's `_make_divisible`: the nearest
multiple of divisor, at least min_value (default divisor) and never more than 10% below v).
Nothing else parses: no attributes, subscripts, other calls, comprehensions or lambdas.

Every number, wherever it comes from, passes one numeric policy, `number()`: YAML literals (the loader), constants and
every result here (functions added to _FUNCS included), `--set` values and parameters, and the figures computed from
a graph. A number is a bool, or an int or float that is finite and within +-2^62.

A name bound to UNKNOWN (the input size of a block whose input failed to expand) makes the whole expression
unknown: evaluation raises UnknownValue, which the expander treats as "already reported", not as an error.
"""

from __future__ import annotations

import ast
import math
import operator
from fractions import Fraction
from collections.abc import Mapping

from archc.errors import ExprError

MAX_LENGTH = 400
MAX_EXPONENT = 64
MAX_DEPTH = 50
MAX_MAGNITUDE = 2**62

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
def make_divisible(v, divisor, min_value=None):
    """torchvision's `_make_divisible` (models/_utils.py), as it computes it."""
    new = max(min_value or divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


_AGGREGATES = {"min": min, "max": max, "sum": sum}  # of several values, or of one list
_FUNCS = {"ceil": (math.ceil, 1, 1), "floor": (math.floor, 1, 1), "round": (round, 1, 1), "int": (int, 1, 1),
          "make_divisible": (make_divisible, 2, 3)}  # name: (function, fewest and most arguments)


def number(v, where: str = ""):
    """The numeric policy: `v` if it is not a number or is an acceptable one (a bool; an int or float, finite and
    within +-MAX_MAGNITUDE; a Fraction within it, its denominator too); otherwise ExprError. `where` follows the
    number in the message (" in 'w * 2'")."""
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        if -MAX_MAGNITUDE <= v <= MAX_MAGNITUDE:
            return v
    elif isinstance(v, float):
        if math.isnan(v):
            raise ExprError(f"NaN{where} is not a number")
        if abs(v) <= MAX_MAGNITUDE:
            return v
    elif isinstance(v, Fraction):
        if abs(v) <= MAX_MAGNITUDE and v.denominator <= MAX_MAGNITUDE:
            return v
    elif isinstance(v, complex):
        raise ExprError(f"{v!r}{where} is not a real number")
    else:
        return v
    raise ExprError(f"{show(v)}{where} is out of range (numbers are finite and within +-2^62)")


def show(v) -> str:
    """A number as a message shows it: short even when it is huge."""
    if isinstance(v, int) and v.bit_length() > 200:
        return f"a {int(v.bit_length() * 0.30103) + 1}-digit {'negative ' * (v < 0)}number"
    if isinstance(v, Fraction):
        return show(float(v)) if abs(v) < 1e300 else show(int(v))
    return repr(v)


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


class UnknownValue(Exception):
    """The expression reads a value that is not known (see UNKNOWN); not a user error in itself."""


def evaluate(text: str, env: Mapping[str, object]) -> object:
    """Evaluate `text` with names from `env`. Raises ExprError (message only; callers add the location)."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"cannot parse expression {text!r}: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError) as e:  # characters Python refuses; nesting its parser refuses
        raise ExprError(f"cannot parse expression {text!r}: {type(e).__name__}") from None
    if _depth(tree.body) > MAX_DEPTH:
        raise ExprError(f"expression nests deeper than {MAX_DEPTH} in {text!r}")
    return _eval(tree.body, env, text)


def _depth(tree: ast.AST) -> int:
    """How deep an expression's tree nests (without recursing: the evaluator's recursion stays bounded)."""
    deepest, todo = 0, [(tree, 1)]
    while todo:
        node, d = todo.pop()
        deepest = max(deepest, d)
        todo.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _eval(node: ast.AST, env: Mapping[str, object], text: str) -> object:
    match node:
        case ast.Constant(value=v) if isinstance(v, (int, float)):
            return number(v, f" in {text!r}")
        case ast.Name(id=name):
            if name in ("True", "False"):
                return name == "True"
            if name not in env:
                known = ", ".join(sorted(k for k in env if not k.startswith("_"))) or "none"
                raise ExprError(f"unknown name {name!r} in {text!r} (known: {known})")
            if env[name] is UNKNOWN:
                raise UnknownValue(name)
            return env[name]
        case ast.BinOp(left=l, op=op, right=r) if type(op) in _BINOPS:
            a, b = _eval(l, env, text), _eval(r, env, text)
            _check_number(a, text), _check_number(b, text)
            if isinstance(op, ast.Pow) and (abs(b) > MAX_EXPONENT):
                raise ExprError(f"exponent {b} too large in {text!r} (limit {MAX_EXPONENT})")
            return _result(_BINOPS[type(op)], (a, b), text)
        case ast.UnaryOp(op=op, operand=x) if type(op) in _UNARY:
            return _result(_UNARY[type(op)], (_eval(x, env, text),), text)
        case ast.BoolOp(op=op, values=values):
            result = _eval(values[0], env, text)
            for v in values[1:]:
                if isinstance(op, ast.And) and not result or isinstance(op, ast.Or) and result:
                    return result
                result = _eval(v, env, text)
            return result
        case ast.Compare(left=left, ops=ops, comparators=rights) if all(type(o) in _COMPARE for o in ops):
            a = _eval(left, env, text)
            for o, r in zip(ops, rights):
                b = _eval(r, env, text)
                if not _result(_COMPARE[type(o)], (a, b), text):
                    return False
                a = b
            return True
        case ast.IfExp(test=t, body=b, orelse=e):
            return _eval(b, env, text) if _eval(t, env, text) else _eval(e, env, text)
        case ast.Call(func=ast.Name(id=fn), args=args, keywords=[]) if fn in _AGGREGATES and args:
            values = [_eval(a, env, text) for a in args]
            if len(values) == 1 and isinstance(values[0], tuple):  # max(widths): over a list argument
                values = list(values[0])
            if not values:
                raise ExprError(f"{fn} of an empty list in {text!r}")
            for v in values:
                _check_number(v, text)
            return _result(_AGGREGATES[fn], (values,), text)
        case ast.Call(func=ast.Name(id=fn), args=args, keywords=[]) if fn in _FUNCS:
            function, fewest, most = _FUNCS[fn]
            if not fewest <= len(args) <= most:
                n = f"{fewest}" if fewest == most else f"{fewest} to {most}"
                raise ExprError(f"{fn} takes {n} argument{'s' * (most > 1)}, got {len(args)} in {text!r}")
            values = [_eval(a, env, text) for a in args]
            for v in values:
                _check_number(v, text)
            try:
                value = function(*values)
            except (ArithmeticError, ValueError, TypeError):  # a zero divisor
                raise ExprError(f"{fn} of {', '.join(map(repr, values))} is undefined in {text!r}") from None
            return number(value, f" in {text!r}")
    raise ExprError(f"not allowed in an expression: {ast.unparse(node)!r} in {text!r}")


def _check_number(v: object, text: str) -> None:
    if not isinstance(v, (int, float)):
        raise ExprError(f"arithmetic on non-number {v!r} in {text!r}")


def _result(fn, args: tuple, text: str) -> object:
    """fn(*args) under the numeric policy: arithmetic errors and numbers out of range are ExprErrors."""
    try:
        value = fn(*args)
    except ZeroDivisionError:
        raise ExprError(f"division by zero in {text!r}") from None
    except (OverflowError, ValueError, TypeError) as e:
        raise ExprError(f"cannot compute {text!r}: {e}") from None
    return number(value, f" in {text!r}")
