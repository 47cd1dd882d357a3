"""archc.fuse's generated CPU forward (archc/backends/torch/codegen.py): the eager module's function on every
spec, straight-line code over the memory plan, no value changed while still to be read (checked on real data
after every step), the measured peak equal to the plan's and within the static peak, outputs that never alias
the arena, and the interpreter wherever the generated forward does not apply."""

import copy
import pickle
import re

import pytest
import torch

import archc
from archc.backends.torch.cpu import forward as codegen, probes
from archc.backends.torch.executor import ArchcModule
from archc_kernels import ACTIVATIONS, cpu
from conftest import ROOT, SPECS, spec_id
from test_fuse import randomise_bn

if not cpu.available():
    pytest.skip("this PyTorch lacks oneDNN's fused convolution ops", allow_module_level=True)

EXAMPLE = ROOT / "examples" / "inception_resnet_cifar.yaml"
# The widest spec takes seconds to build and run; its smaller siblings (the CIFAR ResNets, the families' default
# variants) have every op and construct it has.
HEAVY = {"wrn_28_10"}


def fused_pair(path, batch=2):
    torch.manual_seed(0)
    model = randomise_bn(archc.build(path)).eval()
    return model, archc.fuse(model), torch.randn(batch, *model.analysis.input_shape)


def model_is_large(path):
    return archc.analyze(archc.load(path)).input_shape[-1] > 64


def close(got, want, tol=1e-5):
    assert got.shape == want.shape and got.dtype == want.dtype
    err = ((got.double() - want.double()).norm() / want.double().norm()).item()
    assert err < tol, f"relative error {err:.1e}"


@pytest.mark.parametrize("path", [p for p in SPECS if p.stem not in HEAVY] + [EXAMPLE], ids=spec_id)
def test_generated_forward_computes_the_eager_function(path):
    model, fused, x = fused_pair(path, batch=1 if model_is_large(path) else 2)
    with torch.inference_mode():
        want, got = model(x), fused(x)
        forward = fused.generated(x)
    close(got, want)
    assert "for " not in forward.source and "while " not in forward.source  # straight-line
    assert forward.source.count("\n    # ") == len(forward.plan.order) - 1  # one entry per node


@pytest.mark.parametrize("name", ["densenet_bc100", "fractalnet_cifar", "nin_cifar10", "lenet5", "squeezenet1_1",
                                  "inception_resnet_cifar"])
def test_no_value_changes_while_still_to_be_read(name):
    path = EXAMPLE if name == "inception_resnet_cifar" else name
    model, fused, x = fused_pair(path, batch=2)
    with torch.inference_mode():
        plain = codegen.Forward(fused, x)
        checked = codegen.Forward(fused, x, probe=probes.Checker(plain.plan.order, plain.plan.life))
        close(checked(x), model(x))


def test_checker_catches_a_value_overwritten_while_still_read():
    model, fused, x = fused_pair("googlenet", batch=1)
    with torch.inference_mode():
        forward = codegen.Forward(fused, x)
        life = forward.plan.life
        victim = "inception3a.~concat"  # read by the four branches of inception3b
        assert life[victim][1] - life[victim][0] > 3
        checker = probes.Checker(forward.plan.order, life)

        def clobber(step, value, local_values):  # one step after it is written, write over it
            checker(step, value, local_values)
            if step == life[victim][0] + 1:
                local_values["v" + str(forward.plan.order.index(victim))].zero_()

        broken = codegen.Forward(fused, x, probe=clobber)
        with pytest.raises(AssertionError, match="inception3a.~concat changed while still to be read"):
            broken(x)


@pytest.mark.parametrize("name", ["densenet121", "googlenet", "resnet50", "squeezenet1_0"])
@pytest.mark.parametrize("batch", [1, 3])
def test_measured_peak_is_the_plans_and_within_the_static_peak(name, batch):
    model, fused, x = fused_pair(name, batch)
    meter = probes.Meter()
    with torch.inference_mode():
        forward = codegen.Forward(fused, x, probe=meter)
        forward(x)
    assert meter.peak == forward.plan.peak_bytes
    assert meter.peak <= model.analysis.peak_activations * batch * 4
    assert forward.arena.numel() == forward.plan.arena_bytes


def test_arena_contents_are_never_read_before_written_and_outputs_never_alias_it():
    model, fused, x = fused_pair("densenet_bc100")
    with torch.inference_mode():
        forward = fused.generated(x)
        assert forward.plan.arena_bytes > 0
        forward.arena.view(torch.float32).fill_(float("nan"))  # poison
        first = fused(x)
        kept = first.clone()
        close(first, model(x))
        fused(torch.randn_like(x))
        assert torch.equal(first, kept)
        arena = forward.arena.untyped_storage().data_ptr()
        assert first.untyped_storage().data_ptr() != arena


def test_regenerated_when_weights_change_and_per_kind_of_input():
    model, fused, x = fused_pair("resnet18", batch=1)
    other = randomise_bn(archc.build("resnet18")).eval()
    with torch.inference_mode():
        before = fused(x)
        forward = fused.generated(x)
        fused.load_state_dict(archc.fuse(other).state_dict())
        close(fused(x), other(x))
        assert fused.generated(x) is not forward
        x3 = torch.randn(3, *x.shape[1:])
        close(fused(x3), other(x3))
        assert len(fused._forwards) == 2
        assert not torch.equal(before, fused(x))


def test_the_interpreter_runs_what_the_generated_forward_does_not(monkeypatch):
    model, fused, x = fused_pair("resnet18", batch=1)
    with torch.no_grad():
        wide = copy.deepcopy(model).double()
        fused64 = archc.fuse(wide)
        close(fused64(x.double()), wide(x.double()), 1e-12)  # float64: not oneDNN's
        assert not fused64._forwards
        monkeypatch.setenv("ARCHC_KERNELS", "reference")
        close(fused(x), model(x))
        assert not fused._forwards
        monkeypatch.delenv("ARCHC_KERNELS")
        close(fused(x), model(x))
        assert len(fused._forwards) == 1
    y = fused(x.requires_grad_(True))  # autograd: the interpreter, which keeps the graph
    y.sum().backward()
    assert x.grad is not None and len(fused._forwards) == 1
    with pytest.raises(ValueError, match="generated forward"):
        fused.train().generated(x)


def test_a_busy_forward_falls_back_to_the_interpreter():
    model, fused, x = fused_pair("resnet18", batch=1)
    with torch.inference_mode():
        forward = fused.generated(x)
        assert forward._lock.acquire()
        try:
            assert forward(x) is None
            close(fused(x), model(x))  # another thread holds the arena: interpreted
        finally:
            forward._lock.release()


def test_fused_modules_copy_and_pickle_after_generating():
    model, fused, x = fused_pair("resnet18", batch=1)
    with torch.inference_mode():
        fused(x)
        for twin in (copy.deepcopy(fused), pickle.loads(pickle.dumps(fused))):
            assert not twin._forwards
            close(twin(x), model(x))


def test_interpreted_and_generated_forwards_agree_in_bfloat16():
    if torch.bfloat16 not in cpu.dtypes():
        pytest.skip("oneDNN computes no bfloat16 on this CPU")
    model, fused, x = fused_pair("googlenet", batch=1)
    fused = fused.to(torch.bfloat16)
    with torch.inference_mode():
        xb = x.to(torch.bfloat16)
        close(fused(xb), ArchcModule.forward(fused, xb), 2e-2)
        assert fused.generated(xb).dtype == torch.bfloat16


@pytest.mark.parametrize("act", sorted(set(ACTIVATIONS) - {"none"}))
def test_generated_forward_runs_every_fused_activation(act):
    """Each activation the fuser absorbs, in every form the generated forward gives it: fused into a 3x3 conv's
    oneDNN post-op, after a residual add (oneDNN fuses only ReLU there), into a small 1x1 conv run as one GEMM,
    and in place after a BN no conv precedes."""
    from test_fuse import randomise_bn

    text = ("archc: 1\nname: acts\ninput: [8, 9, 7]\ngraph:\n"
            f"  - c1: {{conv: {{out: 16, k: 3, pad: 1}}}}\n  - b1: bn\n  - a1: {act}\n"
            f"  - r: {{residual: {{body: [{{conv: {{out: 16, k: 3, pad: 1, bias: false}}}}, bn], post: {act}}}}}\n"
            f"  - c2: {{conv: {{out: 12, k: 1}}}}\n  - a2: {act}\n"
            f"  - b3: bn\n  - a3: {act}\n")
    model = randomise_bn(archc.build(archc.loads(text, "acts.yaml"))).eval()
    fused = archc.fuse(model)
    acts = {n.attrs["act"] for n in fused.graph.nodes() if n.op == "conv_bn_act"}
    assert acts == {act}, "every conv absorbed the activation"
    x = torch.randn(2, 8, 9, 7) * 4
    with torch.inference_mode():
        want, got = model(x), fused(x)
        source = fused.generated(x).source
    assert re.search(r"\bM\d+\(", source) is None, "no op runs as a module call: each has its generated form"
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5
