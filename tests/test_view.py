"""archc view: the page is one self-contained file, and, in a real headless Chromium, loads with no console error,
draws every spec, groups by module path, collapses and opens groups, shows node details and finds names.

The browser tests skip (with the reason) where no Chromium is installed; `.ci/run` installs Debian's."""

import json
import re
from importlib import resources
import subprocess
import sys

import pytest

import archc
from archc.view import args_text, headless, page
from conftest import SPECS, spec_id

CLICK = "document.querySelector('[data-toggle=\"%s\"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))"

CHROMIUM = headless.find_chromium()
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")


def embedded(html: str) -> dict:
    payload = re.search(r'<script type="application/json" id="archc-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(payload)


def test_page_is_self_contained_and_carries_the_figures():
    a = archc.analyze("resnet18")
    html = page(a)
    assert not re.search(r"<script[^>]+src=|<link|@import|https?://(?!www\.w3\.org/2000/svg)", html)
    d = embedded(html)
    assert [n["name"] for n in d["nodes"]] == [n.name for n in a.nodes()]
    conv = next(n for n in d["nodes"] if n["name"] == "layer2.0.conv1")
    assert conv["op"] == "conv" and conv["params"] == 73728 and conv["macs"] == 57802752
    assert conv["loc"].startswith("archc/zoo/lib/resnet.yaml:") and conv["shape"] == [128, 28, 28]
    assert conv["rf"]["size"] == a.graph["layer2.0.conv1"].meta["rf"].to_dict()["size"]
    assert d["totals"]["params"] == a.params and d["totals"]["macs"] == a.macs
    assert "Permission is hereby granted" in (resources.files("archc.view") / "vendor/LICENSE").read_text()


def test_untrusted_text_cannot_break_out_of_the_page(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text('archc: 1\nname: "</script><script>alert(1)</script>"\nsource: "<!-- x /*DATA*/"\n'
                 "input: [3, 8, 8]\ngraph:\n  - a: {conv: {out: 4, k: 3}}\n")
    html = page(archc.analyze(f))
    assert html.count("</script>") == 3 and "<script>alert" not in html  # data, library, page script
    assert embedded(html)["name"] == "</script><script>alert(1)</script>"


def test_args_text_shows_what_differs_from_the_defaults():
    assert args_text("conv", {"out": 64, "k": 7, "stride": 2, "pad": 3, "dilation": 1, "groups": 1, "bias": False,
                              "table": None}) == "out=64 k=7 stride=2 pad=3 bias=false"
    assert args_text("conv", {"out": 16, "k": 5, "stride": 1, "pad": 0, "dilation": 1, "groups": 1, "bias": True,
                              "table": [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]}) == "out=16 k=5 table=[5 rows]"


def test_view_command_writes_html(tmp_path):
    out = tmp_path / "g.html"
    p = subprocess.run([sys.executable, "-m", "archc.cli", "view", "googlenet", "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"wrote {out}: googlenet, 215 ops" in p.stdout
    assert embedded(out.read_text())["name"] == "googlenet"


def test_view_png_without_chromium_is_a_located_error(tmp_path, monkeypatch, capsys):
    from archc import cli

    monkeypatch.setenv("ARCHC_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert cli.main(["view", "lenet5", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "Chromium not found" in err and err.count("\n") == 1


def test_select_names_a_node_or_group(tmp_path, capsys):
    from archc import cli

    assert cli.main(["view", "resnet18", "--select", "layer5", "-o", str(tmp_path / "x.html")]) == 2
    assert "did you mean 'layer4'" in capsys.readouterr().err


# -- in a real browser ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    with headless.Chromium() as b:
        yield b


@pytest.fixture
def open_page(browser, tmp_path):
    """open_page(spec, **page_options) -> (Page, Analysis): the spec's page in a new tab, closed after the test."""
    tabs = []

    def open_(spec, **kw):
        f = tmp_path / "page.html"
        a = archc.analyze(spec)
        f.write_text(page(a, **kw))
        tabs.append(browser.open(f.as_uri()))
        assert tabs[-1].evaluate("document.body.dataset.ready") == "1", tabs[-1].errors
        return tabs[-1], a

    yield open_
    for tab in tabs:
        tab.close()


def boxes_cover_every_node(p, a) -> None:
    """Every graph node is drawn exactly once: as its own box, or inside the box of the closed group holding it."""
    drawn = p.evaluate("[...document.querySelectorAll('#viewport .node, #viewport .group')].map(e => e.dataset.id)")
    assert len(drawn) == len(set(drawn)) == int(p.evaluate("document.body.dataset.boxes"))
    for n in a.nodes():
        parts = n.name.split(".")
        owners = [f"g:{'.'.join(parts[:i])}" for i in range(1, len(parts))] + [f"n:{n.name}"]
        assert sum(o in drawn for o in owners) == 1, n.name


@needs_browser
@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_every_spec_renders_without_errors(open_page, spec):
    p, a = open_page(spec)
    assert p.errors == []
    assert [r for r in p.requests if not r.startswith("file:")] == []  # nothing fetched
    boxes_cover_every_node(p, a)
    assert p.evaluate("document.querySelectorAll('#viewport .edge path').length") > 0
    assert p.evaluate("document.querySelector('[data-total=params]').textContent").replace(",", "").endswith(
        str(a.params_without_aux) + (f" ({a.params:,} with aux)".replace(",", "") if a.params != a.params_without_aux
                                     else ""))


@needs_browser
def test_groups_collapse_and_open(open_page):
    p, a = open_page("resnet152")
    first = int(p.evaluate("document.body.dataset.boxes"))
    assert 20 < first <= 80  # a ResNet-152 starts readable: its stages open, its blocks closed
    assert p.evaluate("!!document.querySelector('[data-group=\"layer3.17\"]')")
    p.evaluate(CLICK % "layer3")
    closed = int(p.evaluate("document.body.dataset.boxes"))
    assert closed == first - 35  # layer3's 36 blocks became one box
    assert p.evaluate("!!document.querySelector('[data-group=\"layer3\"]')")
    assert not p.evaluate("!!document.querySelector('[data-group=\"layer3.17\"]')")
    p.evaluate(CLICK % "layer3")
    p.evaluate(CLICK % "layer1.0")
    assert int(p.evaluate("document.body.dataset.boxes")) == first + 11 - 1  # 10 ops and the downsample group
    assert p.evaluate("!!document.querySelector('[data-group=\"layer1.0.downsample\"]')")
    p.evaluate("document.querySelector('[data-group=\"layer1.0.downsample\"]')"
               ".dispatchEvent(new MouseEvent('dblclick', {bubbles: true}))")
    assert int(p.evaluate("document.body.dataset.boxes")) == first + 11
    assert p.evaluate("!!document.querySelector('[data-node=\"layer1.0.downsample.0\"]')")
    boxes_cover_every_node(p, a)
    p.evaluate("document.getElementById('collapse-all').click()")
    assert int(p.evaluate("document.body.dataset.boxes")) == len(a.groups(1))
    assert p.errors == []


@needs_browser
def test_node_details_and_edge_shapes(open_page):
    p, a = open_page("googlenet", depth=9)
    assert int(p.evaluate("document.querySelectorAll('#viewport .node').length")) == len(a.nodes())
    p.evaluate("document.querySelector('[data-node=\"inception4a.branch2.1.conv\"]')"
               ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    rows = dict(p.evaluate("[...document.querySelectorAll('#details tr')].map(r => [r.cells[0].textContent, "
                           "r.cells[1].textContent])"))
    n = a.graph["inception4a.branch2.1.conv"]
    assert rows["op"] == "conv" and rows["params"] == f"{n.meta['params']:,}"
    assert rows["MACs"].startswith(f"{n.meta['macs']:,}") and rows["output"] == str(list(n.shape))
    assert rows["receptive field"].startswith(f"{n.meta['rf'].size[0]} px")
    assert rows["spec"] == f"{n.loc.file}:{n.loc.line}:{n.loc.col}"
    labels = p.evaluate("[...document.querySelectorAll('#viewport .edge')].filter(e => e.dataset.to === "
                        "'n:inception4a.branch2.1.conv').map(e => e.textContent)")
    assert labels == ["x".join(map(str, a.graph["inception4a.branch2.0.relu"].shape)).replace("x", "\u00d7")]
    assert p.errors == []


@needs_browser
def test_search_reveals_and_selects(open_page):
    p, a = open_page("resnet50")
    assert not p.evaluate("!!document.querySelector('[data-node=\"layer3.4.conv2\"]')")  # inside a closed block
    p.evaluate("const s = document.getElementById('search'); s.value = 'layer3.4.conv'; "
               "s.dispatchEvent(new Event('input'))")
    hits = p.evaluate("[...document.querySelectorAll('#results li[data-name]')].map(l => l.dataset.name)")
    assert hits == ["layer3.4.conv1", "layer3.4.conv2", "layer3.4.conv3"]
    p.evaluate("document.querySelector('#results li[data-name=\"layer3.4.conv2\"]').click()")
    assert p.evaluate("document.querySelector('[data-node=\"layer3.4.conv2\"]').classList.contains('selected')")
    assert p.evaluate("document.querySelector('#details h2').textContent") == "layer3.4.conv2"
    box = p.evaluate("(() => { const r = document.querySelector('[data-node=\"layer3.4.conv2\"] rect.box')"
                     ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    hit = p.evaluate(f"document.elementFromPoint({box[0]}, {box[1]}).closest('[data-node]').dataset.node")
    assert hit == "layer3.4.conv2"  # centred on screen and on top
    assert len(p.screenshot()) > 20_000
    assert p.errors == []


@needs_browser
def test_view_command_writes_png(tmp_path, capsys):
    from archc import cli

    out = tmp_path / "lenet.png"
    assert cli.main(["view", "lenet5", "-o", str(out), "--size", "900x600", "--select", "c3"]) == 0
    assert "as headless Chromium shows it (900x600)" in capsys.readouterr().out
    png = out.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 900  # IHDR width
