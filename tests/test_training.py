"""Built modules train under torch.compile with the whole forward and backward in one graph (fullgraph=True: a
graph break fails), and under DistributedDataParallel (gloo, two processes on the CPU), plain and with
`features=`. One small spec writes every construct: residual with stochastic depth, branches, an aux head, a
dense block, a fractal with drop-path, dropout. (Inductor compiles the same graphs; its C++ build takes minutes
on this machine, so the suite uses the aot_eager backend, which runs the captured forward and backward graphs.)"""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import archc

TINY = """archc: 1
name: tiny
input: [3, 16, 16]
params: {classes: 5, p: 0.2}
blocks:
  cbr:
    args: {out: int, k: 3}
    seq: [conv: {conv: {out: out, k: k, pad: k // 2, bias: false}}, bn: bn, relu: relu]
graph:
  - stem: {block: cbr, with: {out: 8}}
  - stage1:
      residual:
        body:
          - mix: {branches: {a: {block: cbr, with: {out: 4, k: 1}}, b: {block: cbr, with: {out: 4}}}}
        drop_path: p
        post: {relu: relu}
  - head: {aux: [gap, flatten, {linear: {out: classes}}]}
  - dense: {dense: {layers: 2, body: {block: cbr, with: {out: 4}}}}
  - pool: {maxpool: {k: 2}}
  - fractal: {fractal: {columns: 2, body: {block: cbr, with: {out: 8}}, drop_path: p}}
  - gap: gap
  - flatten: flatten
  - drop: {dropout: {p: p}}
  - fc: {linear: {out: classes}}
"""
FEATURES = ["stage1", "dense", "fractal"]


def tiny(**kw):
    return archc.build(archc.loads(TINY, "tiny.yaml"), **kw)


def loss_of(out) -> torch.Tensor:
    if isinstance(out, dict):
        return sum(v.square().mean() for v in out.values())
    if isinstance(out, tuple):  # (main, aux): the aux head's loss counts, as GoogLeNet's did
        return out[0].square().mean() + 0.3 * out[1].square().mean()
    return out.square().mean()


def grads(model) -> dict:
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def test_train_step_compiles_to_one_graph_and_matches_eager():
    torch.manual_seed(0)
    eager = tiny().train()
    compiled_module = tiny().train()
    compiled_module.load_state_dict(eager.state_dict())
    compiled = torch.compile(compiled_module, fullgraph=True, backend="aot_eager")
    x = torch.randn(4, 3, 16, 16)
    for model in (eager, compiled):
        torch.manual_seed(1)  # the same drop-path and dropout draws
        loss_of(model(x)).backward()
    g_eager, g_compiled = grads(eager), grads(compiled_module)
    assert g_eager.keys() == g_compiled.keys()
    for k in g_eager:
        torch.testing.assert_close(g_compiled[k], g_eager[k], rtol=1e-4, atol=1e-6, msg=k)
    opt = torch.optim.SGD(compiled.parameters(), lr=0.1)
    before = compiled_module.fc.weight.detach().clone()
    opt.step()
    torch.manual_seed(2)
    loss_of(compiled(x)).backward()  # a second step reuses the graph
    assert not torch.equal(before, compiled_module.fc.weight)


@pytest.mark.parametrize("kind", ["fused", "features"])
def test_inference_and_features_compile_to_one_graph(kind):
    torch.manual_seed(0)
    model = tiny(features=FEATURES) if kind == "features" else archc.fuse(tiny().eval())
    model.eval()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        want = model(x)
        got = torch.compile(model, fullgraph=True, backend="aot_eager")(x)
    if kind == "features":
        assert list(got) == FEATURES and all(torch.allclose(got[k], want[k], atol=1e-6) for k in FEATURES)
    else:
        torch.testing.assert_close(got, want)


VARIANTS = {"module": None, "features": FEATURES}


def _ddp_worker(rank: int, world: int, init: str, out: str) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        for variant, features in VARIANTS.items():
            torch.manual_seed(0)  # the same initial weights on both ranks (DDP also broadcasts rank 0's)
            model = DDP(tiny(p=0.0, features=features).train())
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for x in batches():
                opt.zero_grad()
                loss_of(model(x.chunk(world)[rank])).backward()  # DDP averages the gradients over the ranks
                opt.step()
            torch.save(dict(model.module.state_dict()), f"{out}/{variant}{rank}.pt")
    finally:
        dist.destroy_process_group()


def batches():
    g = torch.Generator().manual_seed(3)
    return [torch.randn(8, 3, 16, 16, generator=g) for _ in range(2)]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Both variants trained two steps by two gloo processes (one spawn: starting them is most of the time)."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_ddp_worker, args=(2, f"file://{out}/store", str(out)), nprocs=2, join=True)
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_distributed_data_parallel_two_processes(ddp_run, variant):
    features = VARIANTS[variant]
    ranks = [torch.load(ddp_run / f"{variant}{r}.pt", weights_only=True) for r in range(2)]
    # The same steps in one process: each half of the batch through the module (BatchNorm sees its half, as on
    # each rank), the gradients averaged.
    torch.manual_seed(0)
    ref = tiny(p=0.0, features=features).train()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for x in batches():
        opt.zero_grad()
        per_half = []
        for half in x.chunk(2):
            ref.zero_grad()
            loss_of(ref(half)).backward()
            per_half.append(grads(ref))
        for k, p in ref.named_parameters():
            p.grad = (per_half[0][k] + per_half[1][k]) / 2
        opt.step()
    params = dict(ref.named_parameters())
    assert params.keys() <= ranks[0].keys()
    for k, p in params.items():
        torch.testing.assert_close(ranks[0][k], ranks[1][k], rtol=0, atol=0, msg=k)  # in step on both ranks
        torch.testing.assert_close(ranks[0][k], p.detach(), rtol=1e-5, atol=1e-6, msg=k)
    if features:  # the backbone only: the classifier and aux head are not part of it
        assert not any(k.startswith(("fc.", "head.")) for k in ranks[0])
