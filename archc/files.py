"""The one output writer: every file archc writes goes through `write_bytes`, `write_text` or `write_with` —
`compile -o` (checkpoints), `dot -o`, `view` (its default `STEM.html` too, and PNGs), `export` (every format),
`compare --plot`, and the benchmark scripts' results. Commands call `check` before their costly work (an export,
a render), so that a target that cannot be written fails first. See docs/security.md, Outputs.

The promises:
- **The target is checked first.** Its folder must exist (archc creates none) and be writable; the target
  itself must be absent or a regular file. A folder, a device (`/dev/full`), a FIFO, a symbolic link —
  dangling or not — and any of `protect` (the command's inputs: the spec, the libraries it imports, the
  weights read) are refused with an `OutputError` (exit 2): `cannot write PATH: REASON`.
- **Nothing is written through a link.** A link at the target is refused, never followed nor replaced (a link
  planted in the working folder, say `resnet18.html -> ~/.bashrc` or a dangling `x.html ->
  site-packages/x.pth`, is reported, and its target untouched). The folders along the path are the user's
  own: `-o out/x.html` with `out` a link to a folder writes in that folder.
- **Atomic.** The data goes to a new temporary file in the target's folder (created with O_EXCL|O_NOFOLLOW
  relative to a descriptor of that folder, `.NAME.RANDOM.tmp.SUFFIX`), is fsynced, then renamed over the
  target; the rename replaces the directory entry, so a link swapped in at the last moment is replaced, not
  followed. A reader, a crash or a kill sees the old file or the new one, never half of one. The new file gets
  the permissions the replaced file had, or `0o666 & ~umask` (as `open` would) when there was none.
- **A failed write changes nothing.** Disk full, a quota, an I/O error, or a writer's own failure: the
  temporary file is removed, the old target stays as it was, and the error is an `OutputError` with the
  OS's reason. torch's zip writer (torch.save, torch.jit.save, torch.export.save) aborts the process
  (SIGABRT) when a write fails under it; with `stream=True` its writes never fail under it: the first
  failure is remembered, later writes are dropped, and the failure is raised once the writer has returned.

The checks and the write use names relative to the target's folder, opened once; what remains outside
archc's reach is a process that can write that folder swapping files during the write (the temporary file
is checked to be the one created before it is renamed).
"""

from __future__ import annotations

import io
import os
import secrets
import stat
from pathlib import Path
from collections.abc import Callable, Iterable, Mapping

from archc.errors import OutputError

_NOFOLLOW, _DIRECTORY, _CLOEXEC = (getattr(os, f, 0) for f in ("O_NOFOLLOW", "O_DIRECTORY", "O_CLOEXEC"))

def inputs(spec, *others: str | os.PathLike | None) -> dict[Path, str]:
    """The `protect` of a command that read `spec` (and `others`, weights say): the spec, each library it
    imports, each other file given; described for the message."""
    found: dict[Path, str] = {}
    for k, doc in enumerate(spec.documents()):
        found.setdefault(Path(doc.file), "the spec being read" if k == 0 else "a library the spec imports")
    for other in others:
        if other is not None:
            found.setdefault(Path(other), "an input of this command")
    return found


def protected(*groups: Iterable | Mapping) -> dict[Path, str]:
    """Several `protect` arguments (paths, or paths mapped to what they are) as one mapping."""
    found: dict[Path, str] = {}
    for group in groups:
        items = group.items() if isinstance(group, Mapping) else ((p, "an input of this command") for p in group)
        for p, what in items:
            if p is not None:
                found.setdefault(Path(p), what)
    return found


def check(path: str | os.PathLike, *, protect: Iterable | Mapping = ()) -> Path:
    """`path` as a Path when a file can be written there — see the module's promises — else OutputError. Also
    creates and removes a probe file in the folder, so that a folder that takes no new file (read-only,
    `/proc/...`, no permission) fails here, before the costly work, not after it."""
    target, shown = _checked(path, protect)
    folder = _open_folder(target, shown)
    try:
        name, fd = _create(folder, target, shown)
        os.close(fd)
        _unlink(folder, name)
    finally:
        os.close(folder)
    return target


def write_bytes(path: str | os.PathLike, data: bytes, *, protect: Iterable | Mapping = ()) -> None:
    """Write `data` to `path`: checked, atomic, never through a link; OutputError when it cannot be."""
    _write(path, lambda fd, tmp: _write_all(fd, data, tmp), protect)


def write_text(path: str | os.PathLike, text: str, *, protect: Iterable | Mapping = (),
               encoding: str = "utf-8") -> None:
    """Write `text` (utf-8) to `path`, as write_bytes."""
    write_bytes(path, text.encode(encoding), protect=protect)


def write_with(path: str | os.PathLike, write: Callable, *, protect: Iterable | Mapping = (), stream: bool = False,
               verify: Callable[[Path], None] | None = None) -> None:
    """Write `path` by calling `write(tmp)`: `tmp` is the Path of a new temporary file in the target's folder
    that `write` fills (torch.save, onnx.save, savefig, ...; its name ends in the target's suffix, for writers
    that read the format from it). With `stream=True`, `write(file)` gets a binary file object instead, whose
    writes never raise: use it for torch's zip writers (torch.save, torch.jit.save, torch.export.save), which
    abort the process when a write fails under them. Then `verify(tmp)`, if given, may check the complete file
    (load it back, run it) before it replaces the target; what it raises propagates, the target untouched.
    OSErrors of `write` are OutputErrors; its other exceptions propagate, the temporary file removed."""
    def fill(fd: int, tmp: Path) -> None:
        if stream:
            f = _Stream(fd)
            write(f)
            if f.error is not None:
                raise f.error
        else:
            write(tmp)

    _write(path, fill, protect, verify)


# -- the checks --------------------------------------------------------------------------------------------------

def _fail(shown: str, reason: str) -> OutputError:
    return OutputError(f"cannot write {shown}: {reason}")




def _checked(path, protect) -> tuple[Path, str]:
    """The target, and the path as the user wrote it (for messages), or OutputError."""
    try:
        shown = os.fspath(path)
    except TypeError:
        raise OutputError(f"cannot write {path!r}: not a file name") from None
    if isinstance(shown, bytes):
        shown = os.fsdecode(shown)
    if not shown or "\x00" in shown:
        raise _fail(repr(shown), "not a file name")
    if shown.endswith(("/", os.sep)) or os.path.basename(shown) in (".", ".."):
        raise _fail(shown, "it names a folder, not a file")
    target = Path(shown)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise _fail(shown, f"{_folder_shown(target)} is not a folder") from None
    except OSError as e:
        raise _fail(shown, _reason(e)) from None
    if st is None:
        _check_folder(target, shown)
        return target, shown
    if stat.S_ISLNK(st.st_mode):
        raise _fail(shown, "it is a symbolic link: archc does not write through links (remove it, or name the file "
                           "it points to)")
    if stat.S_ISDIR(st.st_mode):
        raise _fail(shown, "it is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(shown, "not a regular file")
    for source, what in protected(protect).items():
        try:
            if os.path.samestat(os.stat(source), st):
                raise _fail(shown, f"it is {what} ({source}): archc does not overwrite its inputs")
        except OSError:  # an input that is not a file (a name given to loads): nothing to protect
            continue
    return target, shown


def _folder_shown(target: Path) -> str:
    return str(target.parent) if str(target.parent) != "." else "the current folder"


def _check_folder(target: Path, shown: str) -> None:
    try:
        st = os.stat(target.parent)
    except FileNotFoundError:
        raise _fail(shown, f"folder {target.parent} does not exist (archc creates no folders)") from None
    except NotADirectoryError:
        raise _fail(shown, f"{target.parent} is not a folder") from None
    except OSError as e:
        raise _fail(shown, _reason(e)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise _fail(shown, f"{target.parent} is not a folder")


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# -- the write ---------------------------------------------------------------------------------------------------

def _open_folder(target: Path, shown: str) -> int:
    try:
        return os.open(target.parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    except OSError as e:
        raise _fail(shown, _reason(e)) from None


def _create(folder: int, target: Path, shown: str) -> tuple[str, int]:
    """A new temporary file beside the target: its name and a descriptor open for writing."""
    suffix = target.suffix if len(target.suffix) <= 16 else ""
    for _ in range(100):
        name = f".{target.stem[:64]}.{secrets.token_hex(4)}.tmp{suffix}"
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666, dir_fd=folder)
            return name, fd
        except FileExistsError:
            continue
        except OSError as e:
            raise _fail(shown, f"cannot create a file in {_folder_shown(target)}: {_reason(e)}") from None
    raise _fail(shown, f"no free temporary file name in {_folder_shown(target)}")


def _unlink(folder: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        pass


def _write_all(fd: int, data, tmp: Path) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view):]


def _write(path, fill: Callable[[int, Path], None], protect, verify=None) -> None:
    target, shown = _checked(path, protect)
    folder = _open_folder(target, shown)
    name = None
    try:
        name, fd = _create(folder, target, shown)
        tmp = target.parent / name
        try:
            try:
                old = os.stat(target.name, dir_fd=folder, follow_symlinks=False)
                if stat.S_ISREG(old.st_mode):
                    os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o777)
            except FileNotFoundError:
                pass
            fill(fd, tmp)
            try:  # the file renamed below is the one created above, not one swapped in by its name
                same = os.path.samestat(os.fstat(fd), os.stat(name, dir_fd=folder, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if not same:
                raise _fail(shown, f"the temporary file {tmp} was replaced during the write")
            os.fsync(fd)
        finally:
            os.close(fd)
        if verify is not None:
            verify(tmp)
        os.replace(name, target.name, src_dir_fd=folder, dst_dir_fd=folder)
        name = None
        try:
            os.fsync(folder)  # the rename itself, on disk
        except OSError:
            pass
    except OSError as e:
        raise _fail(shown, _reason(e)) from None
    finally:
        if name is not None:
            _unlink(folder, name)
        os.close(folder)


class _Stream(io.RawIOBase):
    """A binary file over a descriptor whose writes never raise: the first failure is kept in `error` and every
    later write dropped (torch's zip writer aborts the process when a write raises under it)."""

    def __init__(self, fd: int):
        super().__init__()
        self._fd = fd
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                _write_all(self._fd, view, None)
            except OSError as e:
                self.error = e
        return len(view)

    def seek(self, pos: int, whence: int = 0) -> int:
        return os.lseek(self._fd, pos, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:  # the descriptor is the writer's, closed after the fsync
        super().close()
