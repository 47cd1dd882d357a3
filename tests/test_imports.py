"""Block libraries: `import: [lib/x.yaml]` brings blocks from `library:` files, located errors included."""

import pytest

import archc
from archc.errors import ShapeError, SpecError

LIB = """archc: 1
library: blocks
blocks:
  unit:
    args: {out: int}
    seq:
      - conv: {conv: {out: out, k: 3, pad: 1, groups: groups}}
      - relu: relu
"""


def write(tmp_path, spec: str, lib: str = LIB, lib_path: str = "lib/blocks.yaml"):
    (tmp_path / lib_path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / lib_path).write_text(lib)
    f = tmp_path / "net.yaml"
    f.write_text("archc: 1\nname: net\ninput: [4, 8, 8]\nparams: {groups: 1}\n" + spec)
    return f


def test_imported_block_expands_with_the_importers_params(tmp_path):
    f = write(tmp_path, "import: [lib/blocks.yaml]\ngraph:\n  - a: {block: unit, with: {out: 8}}\n")
    assert archc.analyze(f).params == 8 * 4 * 9 + 8
    assert archc.analyze(archc.load(f, groups=2)).params == 8 * 2 * 9 + 8


def test_error_in_imported_block_points_into_the_library(tmp_path):
    f = write(tmp_path, "import: [lib/blocks.yaml]\ngraph:\n  - a: {block: unit, with: {out: 6}}\n")
    with pytest.raises(ShapeError) as e:
        archc.analyze(archc.load(f, groups=4))
    assert e.value.loc.file == str(tmp_path / "lib" / "blocks.yaml")
    assert (e.value.loc.line, e.value.path) == (7, "a.conv")


@pytest.mark.parametrize("ref,words", [
    ("lib/missing.yaml", "cannot read import"),
    ("../outside.yaml", "must be a relative path inside"),
    ("net.yaml", "forms a cycle"),
])
def test_bad_imports_are_located(tmp_path, ref, words):
    f = write(tmp_path, f"import: [{ref}]\ngraph:\n  - relu\n")
    (tmp_path.parent / "outside.yaml").write_text(LIB)
    with pytest.raises(SpecError, match=words) as e:
        archc.load(f)
    assert (e.value.loc.file, e.value.loc.line, e.value.loc.col) == (str(f), 5, 10)


def test_importing_a_spec_or_loading_a_library_is_an_error(tmp_path):
    f = write(tmp_path, "import: [other.yaml]\ngraph:\n  - relu\n")
    (tmp_path / "other.yaml").write_text("archc: 1\nname: o\ninput: [1]\ngraph: [relu]\n")
    with pytest.raises(SpecError, match="is a spec, not a block library"):
        archc.load(f)
    with pytest.raises(SpecError, match="is a block library"):
        archc.load(tmp_path / "lib" / "blocks.yaml")


def test_a_block_defined_twice_is_an_error(tmp_path):
    f = write(tmp_path, "import: [lib/blocks.yaml]\nblocks:\n  unit:\n    seq: [relu]\ngraph:\n  - relu\n")
    with pytest.raises(SpecError, match="also defined in") as e:
        archc.load(f)
    assert (e.value.loc.line, e.value.loc.col) == (7, 3)


def test_checkpoint_inlines_imported_blocks(tmp_path):
    import torch

    from archc.checkpoint import load, save

    f = write(tmp_path, "import: [lib/blocks.yaml]\ngraph:\n  - a: {block: unit, with: {out: 8}}\n")
    m = archc.build(f)
    save(m, str(tmp_path / "m.pt"))
    (tmp_path / "lib" / "blocks.yaml").unlink()  # the checkpoint stands alone
    again = load(str(tmp_path / "m.pt"))
    x = torch.randn(1, 4, 8, 8)
    assert torch.equal(again(x), m(x))
