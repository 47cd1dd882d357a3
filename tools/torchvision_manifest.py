#!/usr/bin/env python3
"""Reference data from torchvision, for checking archc-built modules.

This tool needs torchvision; archc's own tests and CI do not. It is run by
hand, in a separate environment that has torch and torchvision installed.

Subcommands
-----------
dump OUTDIR
    For each model in MODELS, build it with ``weights=None`` (no download,
    random init) and write ``OUTDIR/<model>.json``::

        {
          "model": "resnet18",
          "torchvision": "0.29.1",
          "torch": "2.14.1",
          "params": 11689512,          # sum(p.numel() for p in parameters())
          "input": [3, 224, 224],      # C, H, W of the input used below
          "output": [1000],            # output shape for one image
          "macs": 1814073344,          # multiply-accumulates of Conv2d and
                                       # Linear layers for one image at
                                       # "input" size, in eval mode (bias
                                       # adds, BN, pooling, ReLU not counted)
          "state_dict": [              # state_dict() order, buffers included
            ["conv1.weight", [64, 3, 7, 7]],
            ...
          ]
        }

    googlenet is built with ``aux_logits=True, init_weights=False``, so its
    state_dict includes the ``aux1.`` / ``aux2.`` heads and "params" counts
    them; it also has "params_without_aux", the count of
    ``googlenet(aux_logits=False)`` (6,624,904, the published figure).
    "macs" for googlenet is the eval-mode path, where the aux heads do not
    run.

compare SPEC MODEL
    Check that ``archc.build(SPEC)`` computes the same function as
    torchvision's MODEL: build MODEL with ``weights=None`` under a fixed seed
    (BatchNorm affine parameters and running statistics are randomised too,
    so that they matter), load its state_dict into the archc module with
    ``strict=True``, put both in eval mode and float64, run both on the same
    random input (batch 2) and print the max absolute difference and the
    relative error ``max|a - b| / max|b|``. Exits 1 if the relative error is
    above ``--tol`` (default 1e-10). For googlenet the aux heads are included
    in the torchvision model iff the archc module's state_dict has ``aux1.``
    keys. archc is imported from the repository root.

Examples::

    python tools/torchvision_manifest.py dump tests/data/torchvision
    python tools/torchvision_manifest.py compare specs/resnet18.yaml resnet18
"""

import argparse
import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = [
    "alexnet",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg16_bn",
    "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d",
    "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet169", "densenet201", "densenet161",
    "squeezenet1_0", "squeezenet1_1",
]

INPUT = (3, 224, 224)


def build_torchvision(name, aux_logits=True):
    """torchvision model NAME with random init and no pretrained weights."""
    import torchvision.models as tvm

    kwargs = {"weights": None}
    if name == "googlenet":
        kwargs.update(aux_logits=aux_logits, init_weights=False)
    return getattr(tvm, name)(**kwargs)


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def count_macs(model, x):
    """Conv2d and Linear multiply-accumulates of one forward pass of X."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(mod, inp, out):
        nonlocal total
        k = mod.in_channels // mod.groups
        for s in mod.kernel_size:
            k *= s
        total += out.numel() * k

    def linear_hook(mod, inp, out):
        nonlocal total
        total += out.numel() * mod.in_features

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return total // x.shape[0], out


def manifest(name):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = build_torchvision(name).eval()
    macs, out = count_macs(model, torch.randn(1, *INPUT))
    entry = {
        "model": name,
        "torchvision": torchvision.__version__.split("+")[0],
        "torch": torch.__version__.split("+")[0],
        "params": count_params(model),
    }
    if name == "googlenet":
        entry["params_without_aux"] = count_params(
            build_torchvision(name, aux_logits=False))
    entry.update({
        "input": list(INPUT),
        "output": list(out.shape[1:]),
        "macs": macs,
        "state_dict": [[k, list(v.shape)]
                       for k, v in model.state_dict().items()],
    })
    return entry


def to_json(entry):
    """Compact JSON: one state_dict entry per line."""
    head = {k: v for k, v in entry.items() if k != "state_dict"}
    lines = ["{"]
    for k, v in head.items():
        lines.append("  %s: %s," % (json.dumps(k), json.dumps(v)))
    lines.append('  "state_dict": [')
    rows = [json.dumps(row) for row in entry["state_dict"]]
    lines.extend("    " + r + ("," if i < len(rows) - 1 else "")
                 for i, r in enumerate(rows))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def cmd_dump(args):
    os.makedirs(args.outdir, exist_ok=True)
    for name in args.models or MODELS:
        entry = manifest(name)
        path = os.path.join(args.outdir, name + ".json")
        with open(path, "w") as f:
            f.write(to_json(entry))
        print("%-18s params=%-11d keys=%-5d macs=%d -> %s" % (
            name, entry["params"], len(entry["state_dict"]), entry["macs"],
            path))
    return 0


def randomise_batchnorm(model):
    import torch
    from torch import nn

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                if mod.affine:
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.normal_(0.0, 0.1)
                if mod.track_running_stats:
                    mod.running_mean.normal_(0.0, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)


def first_tensor(out):
    """The logits, if a model returns a tuple (e.g. GoogLeNetOutputs)."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def cmd_compare(args):
    import torch

    sys.path.insert(0, REPO_ROOT)
    import archc

    mine = archc.build(args.spec)
    aux = any(k.startswith("aux1.") for k in mine.state_dict())

    torch.manual_seed(args.seed)
    ref = build_torchvision(args.model, aux_logits=aux)
    randomise_batchnorm(ref)

    try:
        mine.load_state_dict(ref.state_dict(), strict=True)
    except RuntimeError as e:  # missing/unexpected keys or shape mismatch
        print(e)
        return 1
    ref = ref.double().eval()
    mine = mine.double().eval()

    size = tuple(args.input) if args.input else INPUT
    x = torch.randn(2, *size, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(args.seed + 1))
    with torch.no_grad():
        want = first_tensor(ref(x))
        got = first_tensor(mine(x))

    if got.shape != want.shape:
        print("shape mismatch: archc %s, torchvision %s"
              % (tuple(got.shape), tuple(want.shape)))
        return 1
    scale = want.abs().max().item()
    diff = (got - want).abs().max().item()
    rel = diff / max(scale, 1e-300)
    print("%s: params archc=%d torchvision=%d" % (
        args.model, count_params(mine), count_params(ref)))
    print("max |output| %.3e, max abs diff %.3e, relative error %.3e"
          " (tol %.0e)" % (scale, diff, rel, args.tol))
    return 0 if rel <= args.tol else 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("dump", help="write OUTDIR/<model>.json manifests")
    d.add_argument("outdir")
    d.add_argument("--models", nargs="+", choices=MODELS,
                   help="only these models (default: all)")
    d.set_defaults(func=cmd_dump)

    c = sub.add_parser("compare",
                       help="check archc.build(SPEC) against torchvision")
    c.add_argument("spec", help="archc spec, passed to archc.build")
    c.add_argument("model", choices=MODELS, help="torchvision model name")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--tol", type=float, default=1e-10)
    c.add_argument("--input", type=int, nargs=3, metavar=("C", "H", "W"),
                   help="input size (default 3 224 224)")
    c.set_defaults(func=cmd_compare)

    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
