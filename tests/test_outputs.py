"""The one output writer (archc/files.py) and every command's outputs through it (issue 22): targets checked
first, nothing written through a link or over the command's inputs, atomic writes, a failed write (disk full)
leaving the old file and ending in exit 2 — never SIGABRT. Every case is made here, in tmp_path."""

import ast
import contextlib
import errno
import io
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from archc import cli, files
from archc.errors import OutputError

ROOT = Path(__file__).resolve().parent.parent
TINY = "archc: 1\nname: tiny\ninput: [3, 8, 8]\ngraph:\n  - c: {conv: {out: 2, k: 3}}\n  - gap\n  - flatten\n"
EXPORTS = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt"}


def run(*argv):
    """archc ARGV in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def refused(*argv) -> str:
    """archc ARGV exits 2 with one line that says `cannot write`; that line."""
    rc, _, err = run(*argv)
    assert rc == 2 and "Traceback" not in err and len(err.splitlines()) == 1, (rc, err)
    assert err.startswith("cannot write "), err
    return err.strip()


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working folder holding tiny.yaml; the current folder while the test runs."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY)
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def victim(tmp_path):
    """A file outside the working folder that a planted link points to."""
    f = tmp_path / "outside" / "victim.txt"
    f.parent.mkdir()
    f.write_text("precious\n")
    return f


def needs(module: str):
    return pytest.importorskip(module)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


# -- the writer ----------------------------------------------------------------------------------------------------
def test_writes_new_and_replaced_files_with_the_usual_permissions(tmp_path):
    f = tmp_path / "a.txt"
    files.write_text(f, "one")
    umask = os.umask(0)
    os.umask(umask)
    assert f.read_text() == "one" and stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask
    f.chmod(0o600)
    inode = f.stat().st_ino
    files.write_bytes(f, b"two")
    assert f.read_bytes() == b"two" and stat.S_IMODE(f.stat().st_mode) == 0o600
    assert f.stat().st_ino != inode  # a new file renamed over the old one, not the old one rewritten
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("make,words", [
    (lambda t, v: (t / "x").symlink_to(v), "it is a symbolic link"),
    (lambda t, v: (t / "x").symlink_to(t / "nowhere" / "x.pth"), "it is a symbolic link"),  # dangling
    (lambda t, v: (t / "x").symlink_to(v.parent), "it is a symbolic link"),
    (lambda t, v: (t / "x").mkdir(), "it is a folder"),
    (lambda t, v: os.mkfifo(t / "x"), "not a regular file"),
])
def test_targets_that_are_refused(tmp_path, victim, make, words):
    make(tmp_path, victim)
    for write in (lambda p: files.write_text(p, "x"), lambda p: files.check(p),
                  lambda p: files.write_with(p, lambda tmp: tmp.write_text("x"))):
        with pytest.raises(OutputError, match=f"^cannot write {re.escape(str(tmp_path / 'x'))}: {words}"):
            write(tmp_path / "x")
    assert victim.read_text() == "precious\n" and not (tmp_path / "nowhere").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("path,words", [
    ("/dev/full", "not a regular file"), ("/dev/null", "not a regular file"),
    ("{t}/missing/x.html", "folder {t}/missing does not exist (archc creates no folders)"),
    ("{t}/file.txt/x.html", "{t}/file.txt is not a folder"), ("{t}/sub/", "it names a folder, not a file"),
    (".", "it names a folder, not a file"), ("", "not a file name"),
])
def test_paths_that_are_refused(tmp_path, path, words):
    (tmp_path / "file.txt").write_text("x")
    path, words = path.format(t=tmp_path), words.format(t=tmp_path)
    with pytest.raises(OutputError) as e:
        files.check(path)
    assert str(e.value).endswith(": " + words), str(e.value)
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_folder_that_takes_no_new_file_fails_the_check(tmp_path):
    for path in ("/proc/self/status", "/proc/self/new.html"):
        with pytest.raises(OutputError, match="cannot create a file in /proc/self"):
            files.check(path)


def test_inputs_are_never_outputs(tmp_path, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text("x")
    (tmp_path / "hard.yaml").hardlink_to(spec)
    (tmp_path / "via").symlink_to(tmp_path, target_is_directory=True)
    protect = {spec: "the spec being read"}
    for target in (spec, tmp_path / "hard.yaml", tmp_path / "via" / "spec.yaml"):
        with pytest.raises(OutputError, match=r"it is the spec being read \(.*spec.yaml\): archc does not overwrite"):
            files.write_text(target, "y", protect=protect)
    with pytest.raises(OutputError, match="it is an input of this command"):
        files.write_text(spec, "y", protect=[spec])
    files.write_text(tmp_path / "other.yaml", "y", protect=[spec, tmp_path / "absent.yaml"])
    assert spec.read_text() == "x"


def disk_full_after(limit: int):
    """A replacement for files._write_all: a disk that fills after `limit` bytes."""
    real, room = files._write_all, [limit]

    def write_all(fd, data, tmp):
        data = bytes(memoryview(data).cast("B"))
        real(fd, data[:room[0]], tmp)
        room[0] -= min(room[0], len(data))
        if not room[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return write_all


def test_a_full_disk_leaves_the_old_file(tmp_path, monkeypatch):
    f = tmp_path / "m.bin"
    f.write_bytes(b"old")
    monkeypatch.setattr(files, "_write_all", disk_full_after(5))
    with pytest.raises(OutputError, match=f"^cannot write {re.escape(str(f))}: No space left on device$"):
        files.write_bytes(f, b"0123456789")
    with pytest.raises(OutputError, match="No space left on device"):  # a streamed writer: raised after it returns
        files.write_with(f, lambda out: [out.write(b"0123") for _ in range(3)], stream=True)
    assert f.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_a_stream_keeps_the_first_failure_and_drops_later_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_write_all", disk_full_after(2))
    seen = []

    def write(out):
        seen.extend([out.write(b"abcd"), out.write(b"ef"), out.seekable(), out.tell()])
    with pytest.raises(OutputError, match="No space left on device"):
        files.write_with(tmp_path / "s.bin", write, stream=True)
    assert seen == [4, 2, True, 2] and not (tmp_path / "s.bin").exists() and leftovers(tmp_path) == []


def test_a_writers_own_errors_and_a_failed_verify_leave_nothing(tmp_path):
    f = tmp_path / "m.onnx"
    f.write_text("old")

    def half_then(error):
        def write(tmp):
            assert tmp.parent == tmp_path and tmp.name.startswith(".m.") and tmp.suffix == ".onnx"
            tmp.write_text("half")
            raise error
        return write
    with pytest.raises(OutputError, match="cannot write .*: No space left on device"):
        files.write_with(f, half_then(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(ValueError, match="a bug"):  # not a write failure: propagates as it is
        files.write_with(f, half_then(ValueError("a bug")))
    with pytest.raises(OutputError, match="the check failed"):
        files.write_with(f, lambda tmp: tmp.write_text("new"),
                         verify=lambda tmp: (_ for _ in ()).throw(OutputError("the check failed")))
    assert f.read_text() == "old" and leftovers(tmp_path) == []


def test_a_temporary_file_swapped_for_a_link_is_not_renamed(tmp_path, victim):
    def swap(tmp):
        tmp.unlink()
        tmp.symlink_to(victim)
    with pytest.raises(OutputError, match="the temporary file .* was replaced during the write"):
        files.write_with(tmp_path / "x.html", swap)
    assert not (tmp_path / "x.html").exists() and leftovers(tmp_path) == [] and victim.read_text() == "precious\n"


def test_the_check_leaves_no_probe_behind(tmp_path):
    assert files.check(tmp_path / "x.html") == tmp_path / "x.html"
    assert list(tmp_path.iterdir()) == []


# -- critical: writes outside the folder -------------------------------------------------------------------------
def test_view_default_output_through_a_planted_link(here, victim):
    (here / "tiny.html").symlink_to(victim)
    assert "it is a symbolic link" in refused("view", "tiny.yaml")
    assert victim.read_text() == "precious\n" and (here / "tiny.html").is_symlink()


def test_a_dangling_link_into_site_packages_makes_no_pth_file(here, tmp_path):
    """The attack: `tiny.html -> site-packages/tiny.pth`, dangling; the spec's name a line that Python's site
    module would run at its next start. archc refuses the link, and no .pth file appears."""
    site = tmp_path / "venv" / "lib" / "python3" / "site-packages"
    site.mkdir(parents=True)
    (here / "evil.yaml").write_text(TINY.replace("name: tiny", "name: \"import os; os.system('touch PWNED')\""))
    for name in ("evil.html", "evil.onnx", "evil.pt2", "evil.pt"):
        (here / name).symlink_to(site / "evil.pth")
    assert "it is a symbolic link" in refused("view", "evil.yaml")
    for fmt in EXPORTS:
        assert "it is a symbolic link" in refused("export", "evil.yaml", "--format", fmt)
    assert list(site.iterdir()) == []


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_export_default_outputs_through_links_refused_before_exporting(here, victim, fmt, monkeypatch):
    from archc import export

    (here / f"tiny{EXPORTS[fmt]}").symlink_to(victim)
    (here / f"tiny.fused{EXPORTS[fmt]}").symlink_to(here / "missing" / "x")
    monkeypatch.setattr(export, "export", lambda *a, **k: pytest.fail("exported before the target was checked"))
    assert "it is a symbolic link" in refused("export", "tiny.yaml", "--format", fmt)
    assert "it is a symbolic link" in refused("export", "tiny.yaml", "--format", fmt, "--fused")
    assert victim.read_text() == "precious\n" and not (here / "missing").exists()


@pytest.mark.parametrize("argv", [
    ["compile", "tiny.yaml", "-o"], ["dot", "tiny.yaml", "-o"], ["view", "tiny.yaml", "-o"],
    ["compare", "tiny.yaml", "--plot"], ["export", "tiny.yaml", "--format", "pt2", "-o"],
])
def test_explicit_outputs_through_links(here, victim, argv):
    if argv[0] == "compare":
        needs("matplotlib")
    for name, points_to in (("link.svg", victim), ("dangling.svg", here.parent / "outside" / "new.pth")):
        (here / name).symlink_to(points_to)
        assert "it is a symbolic link" in refused(*argv, name)
    assert victim.read_text() == "precious\n" and not (here.parent / "outside" / "new.pth").exists()


@pytest.mark.parametrize("argv", [
    ["compile", "SPEC", "-o"], ["dot", "SPEC", "-o"], ["view", "SPEC", "-o"],
    *[["export", "SPEC", "--format", fmt, "-o"] for fmt in EXPORTS],
])
def test_the_spec_and_its_imports_are_never_overwritten(here, argv):
    (here / "lib.yaml").write_text("archc: 1\nlibrary: l\nblocks:\n  u: {seq: [relu]}\n")
    (here / "main.yaml").write_text(TINY.replace("graph:\n", "import: [lib.yaml]\ngraph:\n  - u\n"))
    before = {p.name: p.read_text() for p in here.iterdir()}
    argv = [a.replace("SPEC", "main.yaml") for a in argv]
    assert "it is the spec being read (main.yaml)" in refused(*argv, "main.yaml")
    assert "it is a library the spec imports" in refused(*argv, "lib.yaml")
    assert "it is the spec being read" in refused(*argv, here / "main.yaml")  # another name for it
    assert {p.name: p.read_text() for p in here.iterdir()} == before


def test_weights_read_are_not_overwritten(here):
    import torch

    import archc

    torch.save(archc.build(here / "tiny.yaml").state_dict(), here / "w.pt")
    before = (here / "w.pt").read_bytes()
    assert "it is an input of this command" in refused("compile", "tiny.yaml", "--weights", "w.pt", "-o", "w.pt")
    assert "it is an input of this command" in refused("export", "tiny.yaml", "--format", "torchscript",
                                                       "--weights", "w.pt", "-o", "w.pt")
    assert (here / "w.pt").read_bytes() == before


def test_plot_never_overwrites_a_spec(here):
    needs("matplotlib")
    (here / "odd.svg").write_text(TINY)  # a spec may have any name
    assert "it is the spec being read" in refused("compare", "tiny.yaml", "odd.svg", "--plot", "odd.svg")
    assert (here / "odd.svg").read_text() == TINY


# -- high and medium: unchecked targets, folders ---------------------------------------------------------------------
TARGETS = [("{h}", "it is a folder"), ("{h}/no/x{s}", "does not exist"), ("/dev/full", "not a regular file")]
if Path("/proc/self/status").exists():
    TARGETS.append(("/proc/self/status", "cannot create a file in /proc/self"))


@pytest.mark.parametrize("argv,suffix", [
    (["compile", "tiny.yaml", "-o"], ".pt"), (["dot", "tiny.yaml", "-o"], ".dot"),
    (["view", "tiny.yaml", "-o"], ".html"),
    (["view", "tiny.yaml", "-o"], ".png"), (["compare", "tiny.yaml", "--plot"], ".svg"),
    *[(["export", "tiny.yaml", "--format", fmt, "-o"], ext) for fmt, ext in EXPORTS.items()],
])
def test_targets_that_cannot_be_written_exit_2_before_the_work(here, argv, suffix, monkeypatch):
    if argv[0] == "compare":
        needs("matplotlib")
    import archc
    from archc.view import headless

    monkeypatch.setattr(archc, "build", lambda *a, **k: pytest.fail("built before the target was checked"))
    monkeypatch.setattr(headless, "screenshot", lambda *a, **k: pytest.fail("rendered before the check"))
    for target, words in TARGETS:
        target = target.format(h=here, s=suffix)
        line = refused(*argv, target)
        assert line.startswith(f"cannot write {target}: ") and words in line, line
    assert not (here / "no").exists() and sorted(p.name for p in here.iterdir()) == ["tiny.yaml"]


def test_export_and_plot_create_no_folders(here):
    needs("matplotlib")
    assert "folder new does not exist (archc creates no folders)" in refused("export", "tiny.yaml", "--format", "pt2",
                                                                            "-o", "new/t.pt2")
    assert "folder new does not exist" in refused("compare", "tiny.yaml", "--plot", "new/c.svg")
    assert not (here / "new").exists()


def test_outputs_are_written_beside_links_to_folders(here, tmp_path):
    """The folders along a path are the user's: `-o out/x` with `out` a link to a folder writes in it."""
    (tmp_path / "real").mkdir()
    (here / "out").symlink_to(tmp_path / "real", target_is_directory=True)
    assert run("dot", "tiny.yaml", "-o", "out/g.dot")[0] == 0
    assert (tmp_path / "real" / "g.dot").read_text().startswith('digraph "tiny"')


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_a_failed_export_check_leaves_the_old_file(here, fmt, monkeypatch):
    if fmt == "onnx":
        needs("onnx")
    from archc import export

    (here / f"tiny{EXPORTS[fmt]}").write_text("old")
    monkeypatch.setattr(export, "TOLERANCE", -1.0)  # every check fails
    rc, _, err = run("export", "tiny.yaml", "--format", fmt)
    assert rc == 2 and "differs from the module" in err
    assert (here / f"tiny{EXPORTS[fmt]}").read_text() == "old" and leftovers(here) == []
    monkeypatch.undo()
    monkeypatch.chdir(here)
    rc, out, err = run("export", "tiny.yaml", "--format", fmt)
    assert rc == 0 and out.startswith(f"wrote tiny{EXPORTS[fmt]} "), err
    assert leftovers(here) == []


# -- a full disk, for real: every writer in a process whose files may not grow past 16 KiB --------------------------
LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as a full disk's ENOSPC
import torch, archc.cli
try:
    import onnx, onnxscript, matplotlib
except ImportError:
    pass
resource.setrlimit(resource.RLIMIT_FSIZE, (16384, resource.RLIM_INFINITY))
sys.exit(archc.cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv,name", [
    (["compile", "tiny.yaml", "-o", "OUT"], "m.pt"), (["view", "tiny.yaml"], "tiny.html"),
    (["dot", "tiny.yaml", "-o", "OUT"], "g.dot"), (["compare", "tiny.yaml", "--plot", "OUT"], "c.svg"),
    *[(["export", "tiny.yaml", "--format", fmt], f"tiny{ext}") for fmt, ext in EXPORTS.items()],
])
def test_a_full_disk_ends_in_exit_2_never_sigabrt(here, argv, name):
    if argv[0] == "compare":
        needs("matplotlib")
    if "onnx" in argv:
        needs("onnx")
    bigger = TINY.replace("out: 2", "out: 256")  # every file past 16 KiB: 7,000 parameters
    if argv[0] == "dot":  # and a DOT file of 300 nodes
        bigger = bigger.replace("  - gap", "  - {conv: {out: 2, k: 1}}\n" * 300 + "  - gap")
    (here / "tiny.yaml").write_text(bigger)
    (here / name).write_bytes(b"old")
    p = subprocess.run([sys.executable, "-c", LIMITED, *[a.replace("OUT", name) for a in argv]], capture_output=True,
                       text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 2, (p.returncode, -p.returncode == signal.SIGABRT, p.stderr[-2000:])
    assert p.stderr.strip().splitlines()[-1] == f"cannot write {name}: File too large", p.stderr[-2000:]
    assert (here / name).read_bytes() == b"old" and leftovers(here) == []


# -- one writer ------------------------------------------------------------------------------------------------------
WRITES = {"write_text", "write_bytes", "savefig", "save", "mkdir", "makedirs", "rename", "symlink_to", "hardlink_to",
          "touch"}
OS_WRITES = {"replace", "rename", "move", "copy", "copyfile", "copy2", "copytree", "symlink", "link", "mkfifo"}
ALLOWED = {("archc/view/headless.py", "write_text"): "the page Chromium renders, in its own TemporaryDirectory",
           ("archc/training/run.py", "mkdir"): "archc train's run folder, made new (its files go through the writer)",
           ("archc/training/data.py", "mkdir"): "the dataset cache torchvision downloads into (removed if it fails)"}


def test_every_write_in_the_package_goes_through_the_writer():
    """No module but archc/files.py writes a file, makes a folder or renames one, except inside a writer given to
    files.write_with (and the allowed cases, each with its reason); no open() for writing."""
    found = []
    for path in sorted((ROOT / "archc").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "archc/files.py":
            continue
        tree = ast.parse(path.read_text())
        inside = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "write_with":
                inside |= {id(n) for arg in node.args[1:] for n in ast.walk(arg)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in inside:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            mode = None
            if name in ("open", "fdopen"):
                mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords
                                                                     if k.arg == "mode"), None)
            flags = ast.unparse(node.args[1]) if owner == "os" and name == "open" and len(node.args) > 1 else ""
            writing = (isinstance(func, ast.Attribute) and name in WRITES and owner != "files"
                       or owner in ("os", "shutil") and name in OS_WRITES
                       or isinstance(mode, ast.Constant) and bool(set(str(mode.value)) & set("wax+"))
                       or any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")))
            if writing and (rel, name) not in ALLOWED:
                found.append(f"{rel}:{node.lineno}: {name}")
    assert found == [], found
