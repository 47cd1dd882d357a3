"""Every spec of the zoo (archc/zoo/) is tested: figures, static shapes against a real forward pass, train and eval,
and, where torchvision ships the model, its exact state_dict keys and shapes.

A spec with variants (`--set variant=NAME`) is checked statically in every variant: its `expect:` figures, and,
where the variant names its torchvision builder, the keys and shapes of its state_dict (built on the meta device:
no memory, no initialisation), parameters, MACs, dropout and stochastic-depth probabilities against the manifest.
Real forward passes run for each spec's default variant, at a small input where FORWARD says so."""

import functools
import json

import pytest
import torch
import yaml

import archc
from conftest import FORWARD, MANIFESTS, SPECS, spec_id


def variants(path) -> list:
    """A spec's variants, read from its YAML alone (collection stays cheap), or [None]."""
    return list(yaml.safe_load(path.read_text()).get("variants") or {}) or [None]


VARIANTS = [(path, v) for path in SPECS for v in variants(path)]


@functools.cache
def loaded(path):
    return archc.load(path)


def variant_spec(path, variant):
    """The spec with its variant selected (loaded and schema-checked once per spec)."""
    return loaded(path).with_params({"variant": variant}) if variant else loaded(path)


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(path):
        if path not in cache:
            torch.manual_seed(0)
            cache[path] = archc.build(path, **FORWARD.get(path.stem, {}))
        return cache[path]

    yield get
    cache.clear()


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_declares_expected_figures(path):
    """Every spec states its published parameter count (and, where the architecture's name has one, its depth:
    weight layers on the longest path, 152 for ResNet-152), each variant its own; analysis raises ExpectError if a
    figure differs."""
    spec = loaded(path)
    for variant in spec.variants or [None]:
        figures, _ = variant_spec(path, variant).expect  # the variant's own, or the spec's for its default
        assert {"params", "macs"} <= set(figures), "every network states its parameter count and MACs"
    archc.analyze(spec)


@pytest.mark.parametrize("path,variant", VARIANTS, ids=[f"{spec_id(p)}-{v}" if v else spec_id(p) for p, v in VARIANTS])
def test_variant_figures_and_torchvision_manifest(path, variant):
    """Each variant's `expect:` holds; a variant (or spec) declaring `torchvision: <model>` has exactly that model's
    state_dict keys and shapes, parameter count and MACs, and its dropout and stochastic-depth probabilities."""
    spec = variant_spec(path, variant)
    analysis = archc.analyze(spec)  # checks the variant's expect
    if spec.torchvision is None:
        return
    tv = json.loads((MANIFESTS / f"{spec.torchvision}.json").read_text())
    with torch.device("meta"):
        module = archc.build(analysis)
    assert sorted([k, list(v.shape)] for k, v in module.state_dict().items()) == sorted(tv["state_dict"])
    assert analysis.params_without_aux == tv.get("params_without_aux", tv["params"])
    assert analysis.input_shape == tv["input"] and analysis.macs == tv["macs"]
    nodes = analysis.nodes()
    assert [n.attrs["p"] for n in nodes if n.op == "dropout"] == tv["dropout"]
    for mode, ps in tv["stochastic_depth"].items():  # torchvision has one per block; archc where a branch is added
        ours = iter(ps)
        assert all(any(n.attrs["p"] == p for p in ours)
                   for n in nodes if n.op == "drop_path" and n.attrs["mode"] == mode)
    assert not any(n.op == "drop_path" and n.attrs["mode"] not in tv["stochastic_depth"] for n in nodes)


def test_every_torchvision_spec_has_a_manifest():
    names = {variant_spec(p, v).torchvision for p, v in VARIANTS} - {None}
    assert all((MANIFESTS / f"{n}.json").exists() for n in names)


# torchvision builders no spec covers yet (a manifest added for a new builder is listed here until its spec lands).
NOT_YET_COVERED: set[str] = set()  # every builder is covered; one added to torchvision goes here first


def test_every_torchvision_builder_is_covered_by_a_spec():
    """Every builder of torchvision's CNN zoo (one manifest each) is named by the `torchvision:` field of some spec
    or spec variant, except those listed as not yet covered; a listed builder that a spec now covers must leave
    the list."""
    manifests = {p.stem for p in MANIFESTS.glob("*.json")}
    covered = {variant_spec(p, v).torchvision for p, v in VARIANTS} - {None}
    assert sorted(manifests - covered - NOT_YET_COVERED) == [], "torchvision builders no spec covers"
    assert sorted(NOT_YET_COVERED & covered) == [], "covered now: remove them from NOT_YET_COVERED"
    assert sorted(NOT_YET_COVERED - manifests) == [], "not a torchvision builder with a manifest"


def _run_with_hooks(module, x):
    """Forward x, recording each graph node's output shape through forward hooks on its module."""
    nodes_of = {}
    for node, mod in module.node_modules().items():
        nodes_of.setdefault(id(mod), []).append(node)
    active = {n for n in module.node_modules() if module.training or not module.graph[n].meta["aux"]}
    seen, handles = {}, []
    calls = {}

    def hook(mod, args, out):
        k = calls.get(id(mod), 0)
        candidates = [n for n in nodes_of[id(mod)] if n in active]
        seen[candidates[k]] = tuple(out.shape)
        calls[id(mod)] = k + 1

    for mod in {id(m): m for m in module.node_modules().values()}.values():
        handles.append(mod.register_forward_hook(hook))
    try:
        out = module(x)
    finally:
        for h in handles:
            h.remove()
    return out, seen


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_params_match_module(path, built):
    m = built(path)
    assert sum(p.numel() for p in m.parameters()) == m.analysis.params


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_static_shapes_equal_forward_pass(path, built, mode):
    m = built(path)
    m.train(mode == "train")
    batch = 2
    x = torch.randn(batch, *m.analysis.input_shape)
    with torch.no_grad():
        out, seen = _run_with_hooks(m, x)
    g = m.graph
    expected = {n: (batch, *g[n].shape) for n in seen}
    assert seen == expected
    ran = {n for n in g if n != g.input and (mode == "train" or not g[n].meta["aux"])}
    assert set(seen) == ran, "every node ran exactly in the modes it should"
    active = [o for o in m.analysis.outputs if mode == "train" or not o["aux"]]
    outs = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, tuple) else [out]
    if isinstance(out, dict):
        assert list(out) == [o["name"] for o in active]
    assert len(outs) == len(active)
    for o, meta in zip(outs, active):
        assert tuple(o.shape) == (batch, *meta["shape"])
        assert torch.isfinite(o).all()
    m.eval()


@pytest.mark.parametrize("path", SPECS, ids=spec_id)
def test_peak_activations_match_a_real_forward_pass(path, built):
    """The static peak equals the most output storage alive at once in a real eval forward pass,
    tracked through forward hooks and storage finalizers."""
    import weakref

    m = built(path).eval()
    live, peak = {}, [0]
    x = torch.randn(1, *m.analysis.input_shape)
    live[x.untyped_storage().data_ptr()] = x.numel()

    def hook(mod, args, out):
        key = out.untyped_storage().data_ptr()
        if key not in live:  # a new storage (a view's is already live); addresses are reused once freed
            live[key] = out.untyped_storage().nbytes() // out.element_size()
            weakref.finalize(out.untyped_storage(), live.pop, key, None)
        peak[0] = max(peak[0], sum(live.values()))

    handles = [mod.register_forward_hook(hook) for mod in {id(v): v for v in m.node_modules().values()}.values()]
    try:
        with torch.no_grad():
            out = m(x)
    finally:
        for h in handles:
            h.remove()
    del out
    assert peak[0] == m.analysis.peak_activations


def test_docs_zoo_table_is_what_archc_list_writes():
    """docs/zoo.md's table of the zoo is `archc list --format markdown`, between its markers: regenerate it with
    `python -m archc.catalog docs/zoo.md` when a spec changes."""
    from archc import catalog
    from conftest import ROOT

    text = (ROOT / "docs" / "zoo.md").read_text()
    assert catalog.BEGIN in text and catalog.END in text
    assert catalog.replace_table(text, catalog.markdown(catalog.families())) == text, \
        "docs/zoo.md is stale: run python -m archc.catalog docs/zoo.md"
