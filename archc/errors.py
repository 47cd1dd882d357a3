"""Typed errors. Every failure a user can cause is an ArchcError: one line, located."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    """A place in a spec file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class ArchcError(Exception):
    """Base of every error a user can cause. Formats as `file:line:col: node.path: message`."""

    def __init__(self, message: str, loc: Loc | None = None, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.path = path

    def __str__(self) -> str:
        parts = [str(self.loc)] if self.loc else []
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


class SpecError(ArchcError):
    """The spec is malformed: YAML syntax, schema, unknown names, bad arguments."""


class ExprError(SpecError):
    """An arithmetic expression in the spec is invalid or not allowed."""


class ShapeError(SpecError):
    """Shapes do not fit together (concat, add, conv groups, non-positive sizes)."""


class LimitError(SpecError):
    """The spec expands past a safety limit (node count, recursion depth, exponent size)."""


class ExpectError(SpecError):
    """A figure the spec declares under `expect:` differs from the computed one."""


class Warning_(ArchcError):
    """A located warning (non-integral conv arithmetic). Printed, never raised."""
