"""examples/: architectures written from the README. Each builds, trains (loss goes down, every
parameter gets a gradient, auxiliary heads included) and fuses for inference."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import archc

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_trains_and_fuses(path):
    torch.manual_seed(0)
    model = archc.build(path).train()
    classes = model.analysis.outputs[0]["shape"][0]
    x = torch.randn(8, *model.analysis.input_shape)
    y = torch.randint(classes, (8,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loss_fn():
        out = model(x)
        main, *aux = out if isinstance(out, tuple) else (out,)
        return F.cross_entropy(main, y) + 0.3 * sum(F.cross_entropy(a, y) for a in aux)

    losses = []
    for step in range(8):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        if step == 0:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses

    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(archc.fuse(model)(x), model(x), rtol=1e-4, atol=1e-4)
