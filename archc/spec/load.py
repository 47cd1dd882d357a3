"""Load a spec: safe YAML with line/column marks, its block libraries, then read against the grammar (read.py).

Specs are untrusted. Files are read only when they are regular files, at most `Limits.bytes` in all; YAML is
composed without recursion from the parser's events, every collection's depth and every value counted (aliases
expanded), every number through the numeric policy (expr.number); a library is read once per spec however often
it is imported, from the folder of the spec's real path (a spec reached through a symlink imports from where it
really is), and never from outside that folder — or, imported by a library name (`archc/resnet`), from archc's own
libraries or a folder of the library search path, never from outside it (archc/spec/zoo.py).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from archc.errors import ArchcError, Loc, SpecError, UnknownNameError
from archc.spec import zoo
from archc.spec.document import About, Document, Preprocessing, Published, Variant
from archc.spec.expr import number
from archc.spec.grammar import IMPORT, LIBRARY_NAME
from archc.spec.kinds import ParamValue, short, to_value
from archc.spec.limits import IMPORT_DEPTH, YAML_DEPTH, Limits
from archc.spec.read import read
from archc.spec.tree import Program

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_MERGE = _TAG + "merge"
_MERGE_KEY = object()  # a `<<` key, before its value is merged
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present; the same events either way

YPath = tuple  # a path into the YAML document: keys and list indices


@dataclass
class Spec:
    """A spec document: its data, where each value was written, its libraries, its parameters, its limits, and
    (once read against the grammar) its typed Document. `folder`: the real folder its imports are read from (None:
    a spec without file access, such as a checkpoint's)."""

    file: str
    data: dict
    marks: dict[YPath, tuple[int, int]] = field(repr=False)
    key_marks: dict[YPath, tuple[int, int]] = field(repr=False)
    params: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    text: str = field(default="", repr=False)
    imports: list[Spec] = field(default_factory=list, repr=False)
    document: Document | None = field(default=None, repr=False)  # set once read against the grammar
    folder: Path | None = field(default=None, repr=False)
    limits: Limits = field(default_factory=Limits, repr=False)

    @property
    def program(self) -> Program:
        return self.document.program

    @property
    def name(self) -> str:
        """The network's name (the selected variant's); a library's name for a library."""
        if self.document is None:  # a library, or a spec being read
            return self.data["library"] if "library" in self.data else self.data.get("name", "")
        return self.about.name

    @cached_property
    def blocks(self) -> dict[str, tuple[dict, Spec]]:
        """Every block this spec can call: its own and its imports', each with the spec that defines it. A library
        imported twice, or through two others, is one library: its blocks are not defined twice."""
        blocks = {}
        for lib in {id(lib): lib for lib in self.imports}.values():
            for name, (bdef, origin) in lib.blocks.items():
                if name in blocks and blocks[name][1] is not origin:
                    raise SpecError(f"block {name!r} is defined both in {blocks[name][1].file} and in "
                                    f"{origin.file}", origin.loc(("blocks", name), key=True))
                blocks[name] = (bdef, origin)
        own = self.data.get("blocks")
        for name, bdef in (own.items() if isinstance(own, dict) else ()):
            if name in blocks:
                raise SpecError(f"block {name!r} is also defined in {blocks[name][1].file} (imported)",
                                self.loc(("blocks", name), key=True))
            blocks[name] = (bdef, self)
        return blocks

    def documents(self) -> list[Spec]:
        """The spec and every library it imports, each once, importers first."""
        order, seen, todo = [], set(), [self]
        while todo:
            doc = todo.pop()
            if id(doc) not in seen:
                seen.add(id(doc))
                order.append(doc)
                todo.extend(reversed(doc.imports))
        return order

    def standalone(self) -> str:
        """The spec as one YAML document with its imported blocks inlined (for checkpoints)."""
        data = {k: v for k, v in self.data.items() if k != "import"}
        data["blocks"] = {name: bdef for name, (bdef, _) in self.blocks.items()}
        return yaml.safe_dump(data, sort_keys=False)

    @property
    def variants(self) -> dict[str, Variant]:
        """Variant name -> its row (parameters, and what it says about its network)."""
        return self.document.variants

    @property
    def variant(self) -> str | None:
        """The selected variant's name (`--set variant=NAME`, else params.variant), if the spec has variants."""
        if not self.variants:
            return None
        return self.overrides.get("variant", self.document.default_variant)

    @property
    def about(self) -> About:
        """What the spec says about the network it describes with the selected variant."""
        return self.document.network(self.variant)

    @property
    def torchvision(self) -> str | None:
        """The torchvision model this spec (its selected variant) loads the state_dict of, if any."""
        return self.about.torchvision

    @property
    def as_written(self) -> bool:
        """Whether the network is the one the spec describes (no parameter but the variant overridden): its
        expected figures and published accuracy hold only then."""
        return not set(self.overrides) - {"variant"}

    @property
    def expect(self) -> tuple[dict, tuple] | None:
        """The figures to check and where they are written: the selected variant's, or the spec's own at its
        defaults; None when parameters other than the variant are overridden."""
        expect = self.about.expect
        return (expect.figures, expect.at) if expect and self.as_written else None

    @property
    def published(self) -> Published | None:
        """The accuracy published for the network as written (the selected variant's); None when parameters other
        than the variant are overridden (the figure would be for another network)."""
        return self.about.published if self.as_written else None

    @property
    def preprocessing(self) -> Preprocessing | None:
        """The input pipeline the network's weights expect, if the spec states one."""
        return self.about.preprocessing

    def with_params(self, overrides: dict) -> Spec:
        """A copy with spec parameters overridden (as `--set k=v` does): `variant` selects a variant's row,
        then the other overrides apply. Unknown names, values of another kind and numbers outside
        the numeric policy are errors."""
        overrides = {**self.overrides, **overrides}
        declared = self.document.params
        values = dict(declared)
        if self.variants:
            name = overrides.get("variant", declared.get("variant"))
            if not isinstance(name, str) or name not in self.variants:
                raise UnknownNameError(f"unknown variant {short(name)} (variants: {', '.join(self.variants)})",
                                       self.loc(("params", "variant")))
            values.update(self.variants[name].params)
        for k, v in overrides.items():
            if k not in values:
                known = ", ".join(values) or "none"
                raise SpecError(f"unknown parameter {k!r} (the spec declares: {known})", self.loc(("params",)))
            if not _fits(values[k], v):
                raise SpecError(f"parameter {k!r} is {short(values[k])}; {short(v)} does not fit",
                                self.loc(("params", k)))
            try:
                values[k] = [number(x, f" (parameter {k!r})") for x in v] if isinstance(v, list) else \
                    number(v, f" (parameter {k!r})")
            except ArchcError as e:
                raise SpecError(e.message, self.loc(("params", k))) from None
        params = {k: to_value(v) for k, v in values.items()}
        return dataclasses.replace(self, params=params, overrides=overrides)

    def with_limits(self, limits: Limits | dict | None) -> Spec:
        return self if limits is None else dataclasses.replace(self, limits=Limits.of(limits))

    def loc(self, ypath: YPath, key: bool = False) -> Loc:
        """Where the value (or, with key=True, the key) at ypath was written; the nearest enclosing one if unknown."""
        ypath = tuple(ypath)
        if key and ypath in self.key_marks:
            return Loc(self.file, *self.key_marks[ypath])
        while ypath not in self.marks and ypath:
            ypath = ypath[:-1]
        return Loc(self.file, *self.marks.get(ypath, (1, 1)))


_FROM_FILE = object()


def _fits(old, new) -> bool:
    """Whether an override `new` may replace the parameter value `old`: the same kind (an int for an int, a number
    for a float, true/false for true/false, a name for a name, a list for a list; tables are not overridden)."""
    if isinstance(old, dict) or ParamValue().problem(new) or isinstance(new, dict):
        return False
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (list, str)):
        return type(new) is type(old)
    return isinstance(new, int) if isinstance(old, int) else isinstance(new, (int, float))


def load(path: str | Path, ops, overrides: dict | None = None, limits: Limits | dict | None = None,
         shown: str | None = None) -> Spec:
    """Read, check and parameterise the spec at `path`; `ops`: the ops a spec may write (name -> op); `shown`:
    how messages name the file (default: `path` as given). Raises SpecError (ArchcErrors when there are several)
    with locations."""
    reading = _Reading(Limits.of(limits))
    file = str(path) if shown is None else shown
    try:
        real = Path(path).resolve()
    except (OSError, RuntimeError, ValueError, TypeError) as e:  # a symlink loop, a NUL in the name
        raise SpecError(f"cannot read spec: {getattr(e, 'strerror', None) or e}", Loc(file, 1, 1)) from None
    text = reading.file(real, Loc(file, 1, 1), "spec")
    reading.chain.append(real)
    return _finish(reading.parse(text, file, real.parent), ops, overrides)


def loads(text: str, file: str, ops, overrides: dict | None = None, limits: Limits | dict | None = None,
          folder=_FROM_FILE) -> Spec:
    """A spec from text; `file` names it in messages and (unless `folder` is given: a folder, or None for no file
    access at all, where any import is an error) anchors its imports."""
    reading = _Reading(Limits.of(limits))
    if not isinstance(text, str):
        raise SpecError(f"a spec is text, got {type(text).__name__}", Loc(file, 1, 1))
    if len(text) > reading.limits.bytes or reading.count_bytes(len(text.encode("utf-8", "surrogatepass"))):
        raise SpecError(f"spec larger than {reading.limits.bytes:,} bytes {reading.limits.exceeded('bytes')}",
                        Loc(file, 1, 1))
    if folder is _FROM_FILE:
        try:
            real = Path(file).resolve()
        except (OSError, RuntimeError, ValueError) as e:
            raise SpecError(f"cannot anchor imports at {file!r}: {e}", Loc(file, 1, 1)) from None
        folder = real.parent
        reading.chain.append(real)
    return _finish(reading.parse(text, file, folder), ops, overrides)


def scalar(text: str, what: str):
    """A single value written outside a spec (`--set k=v`), read as a spec's values are: YAML, the numeric
    policy. Raises SpecError naming `what`."""
    try:
        value, _, _ = _Reading(Limits()).compose(text, what)
    except ArchcError as e:
        raise SpecError(f"{what}: {e.message}") from None
    if isinstance(value, dict):
        raise SpecError(f"{what}: expected a number, true/false, a name or a list, got {short(value)}")
    return value


def _finish(spec: Spec, ops, overrides: dict | None) -> Spec:
    if "library" in spec.data:
        raise SpecError(f"{spec.file} is a block library ({spec.name!r}): import it from a spec",
                        spec.loc(("library",)))
    spec.document = read(spec, ops)
    return spec.with_params(overrides or {})


class _Reading:
    """One spec's reading: its limits, what it has read so far (bytes, YAML values), and its libraries, each read
    once by real path."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.bytes = 0
        self.yaml_nodes = 0
        self.libraries: dict[Path, Spec] = {}
        self.chain: list[Path] = []  # the files being read, importers first (the spec's own, when it has one)

    def count_bytes(self, n: int) -> bool:
        """Count n more bytes; whether that passes the limit."""
        self.bytes += n
        return self.bytes > self.limits.bytes

    def file(self, path: Path, loc: Loc, what: str) -> str:
        """The text of a regular file, refused (located at `loc`) past the byte limit or when unreadable: a
        device, a FIFO or a directory is never opened for reading."""
        budget = self.limits.bytes - self.bytes
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise SpecError(f"cannot read {what} {path}: not a regular file", loc)
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped since the check
                    raise SpecError(f"cannot read {what} {path}: not a regular file", loc)
                data = f.read(max(budget, 0) + 1)
        except OSError as e:
            raise SpecError(f"cannot read {what}: {e.strerror or e}", loc) from None
        if self.count_bytes(len(data)):
            whole = "spec" if what == "spec" else "spec and its libraries together"
            raise SpecError(f"{whole} larger than {self.limits.bytes:,} bytes {self.limits.exceeded('bytes')}", loc)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SpecError(f"cannot read {what}: not UTF-8 text ({e.reason} at byte {e.start})", loc) from None

    def parse(self, text: str, file: str, folder: Path | None) -> Spec:
        data, marks, key_marks = self.compose(text, file)
        if not isinstance(data, dict):
            raise SpecError(f"a spec is a mapping of keys (archc, name, input, graph, ...), got "
                            f"{type(data).__name__}", Loc(file, 1, 1))
        spec = Spec(file, data, marks, key_marks, text=text, folder=folder, limits=self.limits)
        refs = data.get("import", [])  # its form is checked with the rest, by the reader
        spec.imports = [self.library(spec, i, ref)
                        for i, ref in enumerate(refs if isinstance(refs, list) else []) if isinstance(ref, str)]
        _ = spec.blocks  # a block defined twice is an error now, located, not at its first call
        return spec

    def library(self, spec: Spec, i: int, ref: str) -> Spec:
        """A block library named by `import:`, relative to the importing file's real folder and inside it."""
        loc = spec.loc(("import", i))
        if spec.folder is None:
            raise SpecError(f"import {ref!r}: this spec cannot read files (a checkpoint's spec is self-contained)",
                            loc)
        base = spec.folder
        if problem := IMPORT.problem(ref):  # read before the grammar reads the rest: its form first
            raise SpecError(f"import {problem}", loc)
        if re.fullmatch(LIBRARY_NAME, ref):  # a library name: archc/resnet, or mylab/blocks on the search path
            path, _ = zoo.library(ref, loc)
        else:
            try:
                path = (base / ref).resolve()
            except (OSError, RuntimeError, ValueError):
                path = None
            if path is None or Path(ref).is_absolute() or base not in path.parents:
                raise SpecError(f"import {ref!r} must be a relative path inside {base.name}/, or a library name "
                                "such as archc/resnet", loc)
        if path in self.chain or len(self.chain) > IMPORT_DEPTH:
            raise SpecError(f"import {ref!r} forms a cycle or nests deeper than {IMPORT_DEPTH}", loc)
        if path not in self.libraries:
            shown = Path(spec.file).parent / ref
            try:
                file = str(shown) if shown.resolve() == path else zoo.shown(path)
            except (OSError, RuntimeError):
                file = str(path)
            self.chain.append(path)
            try:
                lib = self.parse(self.file(path, loc, "import"), file, path.parent)
            finally:
                self.chain.pop()
            self.libraries[path] = lib
        lib = self.libraries[path]
        if "library" not in lib.data:
            raise SpecError(f"import {ref!r} is a spec, not a block library (`library: name`)", loc)
        return lib

    def compose(self, text: str, file: str):
        """YAML -> plain data, plus marks for every value and key, keyed by path."""
        try:
            loader = _LOADER(text)
        except (UnicodeError, ValueError) as e:
            raise SpecError(f"YAML: cannot read the text ({type(e).__name__})", Loc(file, 1, 1)) from None
        try:
            return _Composer(loader, file, self).run()
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            problem = e.problem or e.context
            raise SpecError(f"YAML: {problem}{_yaml_hint(problem, text, mark)}",
                            Loc(file, mark.line + 1, mark.column + 1)) from None
        except yaml.YAMLError as e:  # a reader error: characters YAML does not allow
            raise SpecError(f"YAML: {str(e).splitlines()[0]}", Loc(file, 1, 1)) from None
        except (UnicodeError, ValueError) as e:
            raise SpecError(f"YAML: cannot read the text ({type(e).__name__})", Loc(file, 1, 1)) from None
        finally:
            loader.dispose()


def _yaml_hint(problem: str, text: str, mark) -> str:
    """What a raw YAML message usually means in a spec: a string that needs quotes."""
    if "mapping values are not allowed" in problem:
        return " (a ': ' inside a plain value starts a mapping: quote the string, \"a: b\")"
    if "did not find expected ',' or '}'" in problem or "did not find expected ',' or ']'" in problem:
        return (" (a closing bracket is missing, or a value holds ', ', ': ' or a quote: quote the whole value, "
                "\"make_divisible(c * width, 8)\")")
    if "cannot start any token" in problem:
        lines = text.splitlines()
        line = lines[mark.line] if mark.line < len(lines) else ""
        char = line[mark.column] if mark.column < len(line) else ""
        if char == "\t":
            return " (a tab: YAML indents with spaces)"
        return f" ({char!r} cannot start a plain value: quote the string)" if char else " (quote the string)"
    return ""


@dataclass
class _Open:
    """A collection being composed."""

    value: dict | list
    ypath: tuple
    anchor: str | None
    log: int  # where its marks start in the composer's log
    key: object = None  # a mapping's key waiting for its value
    size: int = 1  # values inside, itself included (aliases expanded)
    height: int = 1  # collections nested inside, itself included
    merges: list = field(default_factory=list)  # a mapping's `<<:` values


_NO_KEY = object()


class _Composer:
    """Builds plain data from the parser's events with an explicit stack (no recursion, however deep the text),
    counting values against the yaml_nodes limit (an alias counts everything it stands for) and nesting against
    YAML_DEPTH. An alias shares its anchor's value; its values are located where the anchor's were written."""

    def __init__(self, loader, file: str, reading: _Reading):
        self.loader, self.file, self.reading = loader, file, reading
        self.marks: dict = {}
        self.key_marks: dict = {}
        self.log: list = []  # (marks or key_marks, path, mark) in the order written: an anchor's are a slice
        self.anchors: dict[str, tuple] = {}  # name -> (value, size, height, path, slice of the log)
        self.open_anchors: set[str] = set()

    def error(self, message: str, mark) -> SpecError:
        return SpecError(message, Loc(self.file, mark.line + 1, mark.column + 1))

    def mark(self, marks: dict, ypath: tuple, mark) -> None:
        marks[ypath] = at = (mark.line + 1, mark.column + 1)
        self.log.append((marks, ypath, at))

    def run(self):
        loader, stack = self.loader, []
        root, documents = _NO_KEY, 0
        while True:
            event = loader.get_event()
            kind = type(event)
            if kind is yaml.StreamEndEvent:
                break
            if kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.error("a spec is one YAML document (found a second '---')", event.start_mark)
                continue
            if kind in (yaml.StreamStartEvent, yaml.DocumentEndEvent):
                continue
            if kind is yaml.ScalarEvent:
                value, size, height = self.scalar(event, stack), 1, 0
            elif kind is yaml.AliasEvent:
                value, size, height = self.alias(event, stack)
            elif kind in (yaml.SequenceStartEvent, yaml.MappingStartEvent):
                stack.append(self.start(event, stack))
                continue
            else:  # SequenceEndEvent, MappingEndEvent
                done = stack.pop()
                value, size, height = self.end(done), done.size, done.height
                if done.anchor is not None:
                    self.open_anchors.discard(done.anchor)
                    self.anchors[done.anchor] = (value, size, height, done.ypath, slice(done.log, len(self.log)))
            if not stack:
                root = value
            else:
                self.place(stack[-1], value, size, height, event)
        if root is _NO_KEY:
            raise SpecError("empty spec", Loc(self.file, 1, 1))
        return root, self.marks, self.key_marks

    def count(self, n: int, depth: int, mark) -> None:
        reading = self.reading
        reading.yaml_nodes += n
        if reading.yaml_nodes > reading.limits.yaml_nodes:
            raise self.error(f"spec has more than {reading.limits.yaml_nodes:,} YAML nodes (aliases expanded) "
                             f"{reading.limits.exceeded('yaml_nodes')}", mark)
        if depth > YAML_DEPTH:
            raise self.error(f"YAML nests deeper than {YAML_DEPTH} levels", mark)

    @staticmethod
    def at_key(stack: list) -> bool:
        return bool(stack) and isinstance(stack[-1].value, dict) and stack[-1].key is None

    def ypath(self, stack: list, event) -> tuple:
        """The path of a value starting now: the next index of a list, or the waiting key of a mapping."""
        if not stack:
            return ()
        parent = stack[-1]
        if isinstance(parent.value, list):
            return parent.ypath + (len(parent.value),)
        if parent.key is None:
            raise self.error("mapping keys must be plain scalars", event.start_mark)
        return parent.ypath + (parent.key,)

    def tag(self, event, node_class) -> str:
        tag = event.tag
        if tag is None or tag == "!":
            value = event.value if node_class is yaml.ScalarNode else None
            tag = self.loader.resolve(node_class, value, event.implicit)
        return tag

    def start(self, event, stack: list) -> _Open:
        is_map = type(event) is yaml.MappingStartEvent
        tag = self.tag(event, yaml.MappingNode if is_map else yaml.SequenceNode)
        self.count(1, len(stack) + 1, event.start_mark)
        ypath = self.ypath(stack, event)
        if tag != _TAG + ("map" if is_map else "seq"):
            raise self.error(f"tag {tag!r} is not allowed (specs are data: no tags)", event.start_mark)
        log = len(self.log)
        self.mark(self.marks, ypath, event.start_mark)
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        return _Open({} if is_map else [], ypath, event.anchor, log)

    def scalar(self, event, stack: list):
        tag = self.tag(event, yaml.ScalarNode)
        key = self.at_key(stack)
        self.count(1, len(stack), event.start_mark)
        if tag == _MERGE and key:
            value = _MERGE_KEY
        elif tag not in _SCALAR_TAGS:
            raise self.error(f"tag {tag!r} is not allowed (specs are data: no tags)", event.start_mark)
        elif tag == _TAG + "str":
            value = event.value
        else:
            value = self.construct(tag, event)
        log = len(self.log)
        if not key:
            ypath = self.ypath(stack, event)
            self.mark(self.marks, ypath, event.start_mark)
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, 1, 0, ypath, slice(log, log + 1))
        elif event.anchor is not None:
            self.anchors[event.anchor] = (value, 1, 0, None, slice(log, log))
        return value

    def construct(self, tag: str, event):
        """An int, float, bool or null scalar, under the numeric policy."""
        what = tag[len(_TAG):]
        text = event.value
        if what in ("int", "float") and len(text) > 100:  # no number in range is written this long
            raise self.error(f"number {text[:20]}... ({len(text)} characters) is out of range (numbers are "
                             "finite and within +-2^62)", event.start_mark)
        node = yaml.ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
        try:
            value = self.loader.yaml_constructors[tag](self.loader, node)
        except (ValueError, KeyError, TypeError, IndexError, OverflowError, yaml.YAMLError):
            raise self.error(f"cannot read {short(text)} as !!{what}", event.start_mark) from None
        try:
            return number(value)
        except ArchcError as e:
            raise self.error(e.message, event.start_mark) from None

    def alias(self, event, stack: list):
        name = event.anchor
        if name in self.open_anchors:
            raise self.error(f"alias *{name} stands inside its own anchor (a cycle)", event.start_mark)
        if name not in self.anchors:
            raise self.error(f"alias *{name} names no earlier anchor", event.start_mark)
        value, size, height, root, written = self.anchors[name]
        self.count(size, len(stack) + height, event.start_mark)
        if not self.at_key(stack):
            ypath = self.ypath(stack, event)
            if root is None:
                self.mark(self.marks, ypath, event.start_mark)
            for marks, path, at in self.log[written]:  # the anchor's marks, under the alias's path
                marks[ypath + path[len(root):]] = at
                self.log.append((marks, ypath + path[len(root):], at))
        return value, size, height

    def place(self, parent: _Open, value, size: int, height: int, event) -> None:
        parent.size += size
        parent.height = max(parent.height, height + 1)
        if isinstance(parent.value, list):
            parent.value.append(value)
            return
        if parent.key is None:  # a key
            if isinstance(value, (dict, list)):
                raise self.error("mapping keys must be plain scalars", event.start_mark)
            if value is not _MERGE_KEY and not isinstance(value, str):
                value = str(value)
            if value is not _MERGE_KEY and value in parent.value:
                raise self.error(f"duplicate key {short(value)}", event.start_mark)
            parent.key = value
            if value is not _MERGE_KEY:
                self.mark(self.key_marks, parent.ypath + (value,), event.start_mark)
            return
        if parent.key is _MERGE_KEY:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                raise self.error("a merge key (<<) takes a mapping or a list of mappings", event.start_mark)
            parent.merges.extend(sources)
        else:
            parent.value[parent.key] = value
        parent.key = None

    def end(self, done: _Open):
        if not done.merges:
            return done.value
        merged = {}
        for source in done.merges:  # earlier mappings first, keys written in the mapping itself over all
            for k, v in source.items():
                merged.setdefault(k, v)
        merged.update(done.value)
        return merged
