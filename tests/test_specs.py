"""Every spec in specs/ is tested: figures, static shapes against a real forward pass, train and eval,
and, where torchvision ships the model, its exact state_dict keys and shapes."""

import json

import pytest
import torch

import archc
from conftest import MANIFESTS, SPECS, spec_id

pytestmark = pytest.mark.parametrize("path", SPECS, ids=spec_id)


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(path):
        if path not in cache:
            torch.manual_seed(0)
            cache[path] = archc.build(path)
        return cache[path]

    yield get
    cache.clear()


def test_declares_expected_figures(path):
    """Every spec states its published parameter count (and, where the architecture's name has one, its depth:
    weight layers on the longest path, 152 for ResNet-152); analysis raises ExpectError if a figure differs."""
    spec = archc.load(path)
    assert "params" in spec.data.get("expect", {}), "every spec states its published parameter count"
    archc.analyze(spec)


def test_params_match_module(path, built):
    m = built(path)
    assert sum(p.numel() for p in m.parameters()) == m.analysis.params


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
    outs = out if isinstance(out, tuple) else (out,)
    names = [o["name"] for o in m.analysis.outputs if mode == "train" or not o["aux"]]
    assert len(outs) == len(names)
    for o, meta in zip(outs, [o for o in m.analysis.outputs if mode == "train" or not o["aux"]]):
        assert tuple(o.shape) == (batch, *meta["shape"])
        assert torch.isfinite(o).all()
    m.eval()


def test_torchvision_state_dict(path, built):
    """A spec declaring `torchvision: <model>` has exactly that model's state_dict keys and shapes."""
    spec = archc.load(path)
    if "torchvision" not in spec.data:
        pytest.skip("not a torchvision model")
    tv = json.loads((MANIFESTS / f"{spec.data['torchvision']}.json").read_text())
    m = built(path)
    ours = [[k, list(v.shape)] for k, v in m.state_dict().items()]
    assert sorted(ours) == sorted(tv["state_dict"])
    assert m.analysis.params_without_aux == tv.get("params_without_aux", tv["params"])
    if "macs" in tv:
        assert m.analysis.macs == tv["macs"]


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
