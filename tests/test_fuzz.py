"""Specs are untrusted input: whatever the YAML, archc answers with an ArchcError or a result, never
another exception. Mutations of the real specs, and random documents, bounded to stay fast."""

import random
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc
from archc.errors import ArchcError
from conftest import SPECS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import fuzz  # noqa: E402  (the campaign's generators; a slice of it runs below)

SCALARS = [0, -1, 1, 3, 2**40, 0.5, -2.5, True, False, None, "", "x", "i", "1 +", "in_channels * 2",
           "relu", "conv", "2 if i == 0 else 1", [], {}, [1, 2], {"conv": {"out": 4, "k": 3}}, "bottleneck"]


def mutate(data, rng: random.Random):
    parent, key = fuzz.target(data, rng)
    path = (key,)
    choice = rng.random()
    if choice < 0.6:
        parent[path[-1]] = rng.choice(SCALARS)
    elif choice < 0.8 and isinstance(parent, dict):
        parent[rng.choice(["out", "k", "stride", "from", "when", "names", "body", "zzz"])] = rng.choice(SCALARS)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return data


def analyze_or_error(text: str):
    try:
        archc.analyze(archc.loads(text, "fuzz.yaml"))
    except ArchcError as e:
        assert "\n" not in str(e)
        for error in e.errors:
            assert "\n" not in str(error) and (error.loc is not None or error.path is not None), str(error)


@pytest.mark.parametrize("seed", range(200))
def test_mutated_specs_fail_cleanly(seed):
    rng = random.Random(seed)
    small = [p for p in SPECS if p.stem in ("resnet18", "googlenet", "densenet_bc100", "fractalnet_cifar",
                                             "lenet5", "squeezenet1_1", "preact_resnet164")]
    data = yaml.safe_load(rng.choice(small).read_text())
    for _ in range(rng.randint(1, 3)):
        data = mutate(data, rng)
    analyze_or_error(yaml.safe_dump(data))


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.sampled_from(["relu", "conv", "x", "1/0", "i"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["conv", "out", "k", "graph", "residual", "body", "repeat", "block", "a", "from"]),
        children, max_size=3),
    max_leaves=12)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_like)
def test_random_graphs_fail_cleanly(graph):
    doc = {"archc": 1, "name": "fuzz", "input": [3, 16, 16], "graph": graph}
    analyze_or_error(yaml.safe_dump(doc))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_random_text_fails_cleanly(text):
    analyze_or_error(text)


# A slice of the fuzzing campaign (bench/fuzz.py: 10,000 cases, results in bench/results/fuzz.md): a few cases of
# each family, the hostile structures at small sizes, each through the command line or checkpoint loader.
TOTAL = 10_000
SLICE = [case for name, _ in fuzz.FAMILIES
         for case in [c for c in range(TOTAL) if fuzz.family_of(c, TOTAL) == name][:12:2]]


@pytest.mark.parametrize("case", SLICE)
def test_campaign_slice(case, tmp_path, monkeypatch):
    import archc.passes

    monkeypatch.setattr(archc.passes, "VERIFY_BETWEEN", False)  # as the campaign runs it
    result = fuzz.run_case(case, TOTAL, tmp_path, small=True)
    assert result["ok"], result
