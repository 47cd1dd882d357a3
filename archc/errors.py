"""Typed errors. Every failure a user can cause is an ArchcError: one line, located.

A stage that can find several independent errors (reading a spec, expanding it) collects them in a
`Diagnostics` and raises them together as one `ArchcErrors`, sorted by position, first one first.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ERRORS = 20


@dataclass(frozen=True)
class Loc:
    """A place in a spec file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def one_line(text: str) -> str:
    """Text with every character that is not printable (a newline in a name, a NUL) escaped: one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ArchcError(Exception):
    """Base of every error a user can cause. Formats as `file:line:col: node.path: message`."""

    severity = "error"

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
        return one_line(": ".join(parts))

    @property
    def errors(self) -> list[ArchcError]:
        """The independent errors this one stands for: itself."""
        return [self]

    def to_dict(self) -> dict:
        """For editors and CI (`--format json`)."""
        loc = self.loc
        return {"file": loc.file if loc else None, "line": loc.line if loc else None,
                "column": loc.col if loc else None, "path": self.path, "message": self.message,
                "severity": self.severity}


class SpecError(ArchcError):
    """The spec is malformed: YAML syntax, schema, unknown names, bad arguments."""


class UnknownNameError(SpecError):
    """A name that refers to nothing: an op or block that does not exist, a block argument it lacks."""


class ExprError(SpecError):
    """An arithmetic expression in the spec is invalid or not allowed."""


class ShapeError(SpecError):
    """Shapes do not fit together (concat, add, conv groups, non-positive sizes)."""


class LimitError(SpecError):
    """The spec expands past a safety limit (node count, recursion depth, exponent size)."""


class CheckpointError(ArchcError):
    """A checkpoint file that cannot be used: unreadable, not an archc checkpoint, tampered with, or weights that do
    not fit its spec."""


class OutputError(ArchcError):
    """A file archc was asked to write cannot be written there (archc/files.py): its folder is missing, it is a
    folder, a device, a symbolic link or one of the command's inputs, or the write failed (disk full). One line,
    `cannot write PATH: REASON`; the old file, if any, is left as it was."""


class ExpectError(SpecError):
    """A figure the spec declares under `expect:` differs from the computed one."""


class SpecWarning(ArchcError):
    """A located warning (conv arithmetic that ignores input pixels). Printed, never raised."""

    severity = "warning"


Warning_ = SpecWarning  # the 0.1 name


class ArchcWarning(UserWarning):
    """archc's category of Python warnings: what archc.load/analyze/validate/build warn about (an analysis's
    SpecWarnings, weights that did not all load), one `warnings.warn` each. `loc` and `path` locate it when it comes
    from a spec. Filter it as any category: `warnings.simplefilter("error", archc.ArchcWarning)`."""

    def __init__(self, message: str, loc: Loc | None = None, path: str | None = None):
        super().__init__(message)
        self.loc, self.path = loc, path

    @classmethod
    def of(cls, w: ArchcError) -> ArchcWarning:
        return cls(str(w), w.loc, w.path)


class ArchcErrors(SpecError):
    """Several independent errors, sorted by position. Reads as its first error, with a count of the rest;
    `errors` lists them all (at most MAX_ERRORS; `more` counts the ones left out)."""

    def __init__(self, errors: list[ArchcError], more: int = 0):
        first = errors[0]
        super().__init__(first.message, first.loc, first.path)
        self._errors, self.more = errors, more

    @property
    def errors(self) -> list[ArchcError]:
        return self._errors

    def __str__(self) -> str:
        rest = len(self._errors) - 1 + self.more
        return super().__str__() + (f" (and {rest} more error{'s' * (rest > 1)})" if rest else "")


class Diagnostics:
    """Collects independent errors; `raise_if_any` raises them in file order, duplicates dropped (an error
    inside a block is reported once, not once per call)."""

    def __init__(self):
        self._errors: list[ArchcError] = []
        self._seen: set = set()

    def add(self, error: ArchcError) -> None:
        for e in error.errors:
            key = (e.loc, e.message)
            if key not in self._seen:
                self._seen.add(key)
                self._errors.append(e)

    def __bool__(self) -> bool:
        return bool(self._errors)

    def __len__(self) -> int:
        return len(self._errors)

    def sorted(self) -> list[ArchcError]:
        files: dict[str | None, int] = {}
        for e in self._errors:
            files.setdefault(e.loc.file if e.loc else None, len(files))
        return sorted(self._errors, key=lambda e: (files[e.loc.file if e.loc else None],
                                                   (e.loc.line, e.loc.col) if e.loc else (1 << 30, 0)))

    def raise_if_any(self) -> None:
        if not self._errors:
            return
        errors = self.sorted()
        if len(errors) == 1:
            raise errors[0]
        raise ArchcErrors(errors[:MAX_ERRORS], max(0, len(errors) - MAX_ERRORS))
