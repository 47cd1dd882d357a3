#!/usr/bin/env python3
"""Reference data from torchvision, for checking archc-built modules.

This tool needs torchvision; archc's own tests and CI do not. It is run by
hand, in a separate environment that has torch and torchvision installed.
It covers every CNN builder of torchvision's classification zoo: MODELS,
which is ``torchvision.models.list_models(module=torchvision.models)`` less
the transformers (``vit_*``, ``swin_*``, ``maxvit_t``); ``dump`` refuses to
run if torchvision lists a builder that is in neither.

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
          "input": [3, 224, 224],      # C, H, W: the crop size of the
                                       # model's default weights (below)
          "output": [1000],            # output shape for one image
          "macs": 1814073344,          # multiply-accumulates of Conv2d and
                                       # Linear layers for one image at
                                       # "input" size, in eval mode (bias
                                       # adds, BN, pooling, ReLU not counted)
          "kwargs": {},                # builder arguments besides weights=None
          "weights": "IMAGENET1K_V1",  # the builder's DEFAULT weights enum
          "published_params": 11689512,  # that entry's meta["num_params"]
          "published_gflops": 1.814,   # and its meta["_ops"] (GMACs, at the
                                       # weights' crop size)
          "ops": {"addmm": 1, ...},    # aten ops of the eval forward pass
                                       # and how often each runs
          "mul_elements": 0,           # elementwise tensor products per
                                       # image (SE gating, layer scale):
                                       # multiplies "macs" leaves out
          "norms": {"BatchNorm2d(eps=1e-05, momentum=0.1)": 20},
                                       # normalisation modules by settings
          "dropout": [],               # p of each nn.Dropout, module order
          "stochastic_depth": {},      # mode: [p of each StochasticDepth]
          "state_dict": [              # state_dict() order, buffers included
            ["conv1.weight", [64, 3, 7, 7]],
            ...
          ]
        }

    The input size is read from the weights enum without downloading
    anything: ``Weights.DEFAULT.transforms`` is a ``functools.partial`` of
    ``ImageClassification`` whose keywords hold ``crop_size`` (299 for
    inception_v3, 240...600 for efficientnet_b1...b7, 384 for regnet_y_128gf,
    whose default weights are SWAG_E2E_V1).

    googlenet and inception_v3 are built with ``aux_logits=True,
    init_weights=False``, so their state_dicts include the auxiliary heads
    (``aux1.``/``aux2.``, ``AuxLogits.``) and "params" counts them; they also
    have "params_without_aux", the count of the ``aux_logits=False`` build
    (googlenet 6,624,904, the published figure). "macs" is the eval-mode
    path, where the aux heads do not run.

    Each model is built on the CPU (so the state_dict and parameter count are
    those of the real module), then moved to the meta device, where the
    counting forward pass runs on shapes alone: regnet_y_128gf at 384x384 and
    efficientnet_b7 at 600x600 take seconds. ``--real`` runs that pass on the
    CPU instead (2.5 minutes for all models, against 1.5); both give the same
    files.
    MACs are counted twice, by forward hooks on Conv2d (out elements x
    in_channels/groups x kernel area) and Linear (out elements x
    in_features), and by torch.utils.flop_counter at the aten level (which
    also sees functional convolutions and matmuls); ``dump`` stops if they
    differ.

compare SPEC MODEL
    Check that ``archc.build(SPEC)`` computes the same function as
    torchvision's MODEL: build MODEL with ``weights=None`` under a fixed seed
    and the builder arguments ``dump`` uses, randomise every parameter and
    buffer that the builder initialises to a constant, so that it matters
    (BatchNorm affine parameters and running statistics, LayerNorm and
    GroupNorm affine parameters, ConvNeXt's layer scale, zero biases), load
    its state_dict into the archc module with ``strict=True``, put both in
    eval mode and float64, run both on the same random input (batch 2; the
    spec's ``input`` size unless ``--input``) and print the max absolute
    difference and the relative error ``max|a - b| / max|b|``. Exits 1 if
    the load fails or the relative error is above ``--tol`` (default
    1e-10). For googlenet and inception_v3 the aux heads are built iff the
    archc module's state_dict has their keys. archc is imported from the
    repository root.

compare-all --out FILE
    Run ``compare`` for every spec in ``archc/zoo/`` that declares
    ``torchvision: <model>``, each variant of a spec with variants that
    names its torchvision model (with ``--set variant=NAME``), and write a
    markdown table of the results
    (spec, model, input, params, strict load, max abs diff, relative error,
    result; the date and versions in its header) to FILE. Exits 1 if any
    row fails.

tables
    Print, as markdown, the stage tables torchvision's builders compute
    (RegNet's quantised widths, EfficientNet's scaled stages, MobileNet's,
    MNASNet's and ShuffleNetV2's channel lists), computed by torchvision's
    own code; tests/data/torchvision/README.md quotes them.

Examples::

    python tools/torchvision_manifest.py dump tests/data/torchvision
    python tools/torchvision_manifest.py compare resnet18 resnet18   (a spec path or a zoo name)
    python tools/torchvision_manifest.py compare-all --out results.md
"""

import argparse
import datetime
import json
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = [
    "alexnet",
    "vgg11", "vgg13", "vgg16", "vgg19",
    "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "googlenet", "inception_v3",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet169", "densenet201", "densenet161",
    "squeezenet1_0", "squeezenet1_1",
    "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
    "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_b4", "efficientnet_b5",
    "efficientnet_b6", "efficientnet_b7",
    "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l",
    "regnet_x_400mf", "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf",
    "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf",
    "regnet_y_400mf", "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf",
    "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf",
    "convnext_tiny", "convnext_small", "convnext_base", "convnext_large",
]

# Builders in list_models() that are not CNNs (attention-based).
NOT_CNN = ("vit_", "swin_", "maxvit_")

# Builder arguments besides weights=None. The aux heads are built so that
# their keys are in the manifests; init_weights=False skips the
# truncated-normal init (and the FutureWarning weights=None gives).
KWARGS = {
    "googlenet": {"aux_logits": True, "init_weights": False},
    "inception_v3": {"aux_logits": True, "init_weights": False},
}

# state_dict prefix of the first auxiliary head, per model that has them.
AUX_PREFIX = {"googlenet": "aux1.", "inception_v3": "AuxLogits."}

# aten ops that allocate or re-lay out weights: not listed under "ops".
UNLISTED_OPS = {"empty", "t", "as_strided"}


def check_model_list():
    """MODELS is exactly torchvision's classification builders less NOT_CNN."""
    import torchvision.models as tvm

    listed = set(tvm.list_models(module=tvm))
    cnn = {m for m in listed if not m.startswith(NOT_CNN)}
    if cnn != set(MODELS):
        sys.exit("MODELS is out of date: torchvision lists %s; MODELS has %s"
                 % (sorted(cnn - set(MODELS)), sorted(set(MODELS) - cnn)))


def default_weights(name):
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def default_input(name):
    """C, H, W: the crop size of the model's default weights' transforms."""
    crop = default_weights(name).transforms.keywords["crop_size"]
    return (3, crop, crop)


def build_torchvision(name, aux_logits=True):
    """torchvision model NAME with random init and no pretrained weights."""
    import torchvision.models as tvm

    kwargs = dict(KWARGS.get(name, {}))
    if "aux_logits" in kwargs:
        kwargs["aux_logits"] = aux_logits
    return tvm.get_model(name, weights=None, **kwargs)


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def count_macs(model, x):
    """Conv2d and Linear multiply-accumulates of one forward pass of X.

    Returns (macs per image, output, ops, mul_elements per image): ops maps
    each aten op of the pass (in-place variants merged) to its call count.
    """
    import torch
    from torch import nn
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    total = 0
    ops = {}
    muls = 0

    def conv_hook(mod, inp, out):
        nonlocal total
        k = mod.in_channels // mod.groups
        for s in mod.kernel_size:
            k *= s
        total += out.numel() * k

    def linear_hook(mod, inp, out):
        nonlocal total
        total += out.numel() * mod.in_features

    class OpRecorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            nonlocal muls
            out = func(*args, **(kwargs or {}))
            op = func.overloadpacket.__name__.rstrip("_")
            if op not in UNLISTED_OPS:
                ops[op] = ops.get(op, 0) + 1
            if op == "mul" and all(isinstance(a, torch.Tensor)
                                   for a in args[:2]):
                muls += out.numel()
            return out

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as flops, \
                OpRecorder():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    if 2 * total != flops.get_total_flops():
        raise AssertionError("hooks count %d MACs, the aten flop counter %d"
                             % (total, flops.get_total_flops() // 2))
    n = x.shape[0]
    return total // n, out, dict(sorted(ops.items())), muls // n


def module_settings(model):
    """What the state_dict does not show: normalisation settings, dropout
    and stochastic-depth probabilities, in module order."""
    from torch import nn
    from torchvision.ops import StochasticDepth

    norms = {}
    dropout = []
    depth = {}
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            key = "%s(eps=%r, momentum=%r)" % (type(mod).__name__, mod.eps,
                                               mod.momentum)
        elif isinstance(mod, (nn.LayerNorm, nn.GroupNorm)):
            key = "%s(eps=%r)" % (type(mod).__name__, mod.eps)
        else:
            key = None
        if key:
            norms[key] = norms.get(key, 0) + 1
        if isinstance(mod, nn.Dropout):
            dropout.append(mod.p)
        if isinstance(mod, StochasticDepth):
            depth.setdefault(mod.mode, []).append(mod.p)
    return {"norms": norms, "dropout": dropout,
            "stochastic_depth": depth}


def manifest(name, real=False):
    import torch
    import torchvision

    torch.manual_seed(0)
    model = build_torchvision(name).eval()
    size = default_input(name)
    params = count_params(model)
    state_dict = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    device = "cpu" if real else "meta"
    macs, out, ops, muls = count_macs(model.to(device),
                                      torch.randn(1, *size, device=device))
    weights = default_weights(name)
    entry = {
        "model": name,
        "torchvision": torchvision.__version__.split("+")[0],
        "torch": torch.__version__.split("+")[0],
        "params": params,
    }
    if name in AUX_PREFIX:
        entry["params_without_aux"] = count_params(
            build_torchvision(name, aux_logits=False))
    entry.update({
        "input": list(size),
        "output": list(out.shape[1:]),
        "macs": macs,
        "kwargs": KWARGS.get(name, {}),
        "weights": weights.name,
        "published_params": weights.meta["num_params"],
        "published_gflops": weights.meta["_ops"],
        "ops": ops,
        "mul_elements": muls,
        **module_settings(model),
        "state_dict": state_dict,
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
    check_model_list()
    os.makedirs(args.outdir, exist_ok=True)
    for name in args.models or MODELS:
        start = time.time()
        entry = manifest(name, real=args.real)
        path = os.path.join(args.outdir, name + ".json")
        with open(path, "w") as f:
            f.write(to_json(entry))
        print("%-18s params=%-10d keys=%-5d input=%-3d macs=%-12d %5.1fs"
              " -> %s" % (name, entry["params"], len(entry["state_dict"]),
                          entry["input"][1], entry["macs"],
                          time.time() - start, path), flush=True)
    return 0


def randomise(model):
    """Redraw what torchvision initialises to constants, so that it matters."""
    import torch
    from torch import nn

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.track_running_stats:
                mod.running_mean.normal_(0.0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
            if isinstance(mod, (nn.modules.batchnorm._BatchNorm,
                                nn.LayerNorm, nn.GroupNorm)):
                if mod.weight is not None:
                    mod.weight.uniform_(0.5, 1.5)
                if mod.bias is not None:
                    mod.bias.normal_(0.0, 0.1)
            elif isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None and not mod.bias.any():
                mod.bias.normal_(0.0, 0.1)
            layer_scale = getattr(mod, "layer_scale", None)
            if isinstance(layer_scale, nn.Parameter):
                layer_scale.uniform_(0.5, 1.5)


def key_mismatch(mine, ref):
    """None if state_dicts MINE and REF have the same keys and shapes, else
    a one-line account: counts, and the first few names of each kind."""
    missing = [k for k in ref if k not in mine]
    unexpected = [k for k in mine if k not in ref]
    shape = ["%s %s!=%s" % (k, list(mine[k].shape), list(ref[k].shape))
             for k in ref if k in mine and mine[k].shape != ref[k].shape]
    parts = ["%s %d (%s%s)" % (what, len(keys), ", ".join(keys[:3]),
                               ", ..." if len(keys) > 3 else "")
             for what, keys in (("missing", missing),
                                ("unexpected", unexpected),
                                ("shape", shape)) if keys]
    return "; ".join(parts) if parts else None


def first_tensor(out):
    """The logits, if a model returns a tuple (e.g. GoogLeNetOutputs)."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def compare(spec, model, seed=0, tol=1e-10, size=None, params=None):
    """Load MODEL's state_dict into archc.build(SPEC) and compare outputs.

    Returns a dict: load (None if it succeeded, else the error), params,
    input, scale, diff, rel, ok.
    """
    import torch

    sys.path.insert(0, REPO_ROOT)
    import archc

    mine = archc.build(spec, **(params or {}))
    prefix = AUX_PREFIX.get(model)
    aux = prefix is not None and any(k.startswith(prefix)
                                     for k in mine.state_dict())

    torch.manual_seed(seed)
    ref = build_torchvision(model, aux_logits=aux)
    randomise(ref)
    size = tuple(size or mine.analysis.input_shape)
    result = {"load": None, "params": count_params(ref), "input": size,
              "scale": None, "diff": None, "rel": None, "ok": False}
    result["load"] = key_mismatch(mine.state_dict(), ref.state_dict())
    if result["load"] is None:
        try:
            mine.load_state_dict(ref.state_dict(), strict=True)
        except RuntimeError as e:
            result["load"] = str(e).strip().splitlines()[0]
    if result["load"] is not None:
        return result
    ref = ref.double().eval()
    mine = mine.double().eval()

    x = torch.randn(2, *size, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        want = first_tensor(ref(x))
        got = first_tensor(mine(x))
    if got.shape != want.shape:
        result["load"] = ("output shape mismatch: archc %s, torchvision %s"
                          % (tuple(got.shape), tuple(want.shape)))
        return result
    scale = want.abs().max().item()
    diff = (got - want).abs().max().item()
    rel = diff / max(scale, 1e-300)
    result.update(scale=scale, diff=diff, rel=rel, ok=rel <= tol)
    return result


def parse_set(items):
    """--set k=v pairs, values read as YAML scalars (as archc's --set)."""
    import yaml

    params = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise SystemExit("--set wants NAME=VALUE, got %r" % item)
        params[k] = yaml.safe_load(v)
    return params


def cmd_compare(args):
    r = compare(args.spec, args.model, args.seed, args.tol, args.input,
                parse_set(args.set))
    if r["load"] is not None:
        print(r["load"])
        return 1
    print("%s: params %d, input %s" % (args.model, r["params"],
                                       list(r["input"])))
    print("max |output| %.3e, max abs diff %.3e, relative error %.3e"
          " (tol %.0e)" % (r["scale"], r["diff"], r["rel"], args.tol))
    return 0 if r["ok"] else 1


def torchvision_specs(folder):
    """(spec path, model, parameters) for every spec in FOLDER declaring
    torchvision, and for every variant of a spec with variants that declares
    one (parameters {"variant": NAME})."""
    sys.path.insert(0, REPO_ROOT)
    import archc

    found = []
    for fn in sorted(os.listdir(folder)):
        if fn.endswith(".yaml"):
            path = os.path.join(folder, fn)
            spec = archc.load(path)
            for variant in list(spec.variants) or [None]:
                params = {"variant": variant} if variant else {}
                model = archc.load(path, **params).torchvision
                if model:
                    found.append((path, model, params))
    return found


def cmd_compare_all(args):
    import torch
    import torchvision

    rows = []
    failed = 0
    for path, model, params in torchvision_specs(args.specs):
        spec = os.path.splitext(os.path.basename(path))[0]
        if params:
            spec += " (%s)" % params["variant"]
        start = time.time()
        if model not in MODELS:
            r = {"load": "unknown torchvision model %r" % model,
                 "params": None, "input": None}
        else:
            r = compare(path, model, args.seed, args.tol, params=params)
        ok = r["load"] is None and r["ok"]
        failed += not ok
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            spec, model,
            "x".join(map(str, r["input"][1:])) if r["input"] else "",
            r["params"] if r["params"] is not None else "",
            "yes" if r["load"] is None else "no: " + r["load"],
            "%.3e" % r["diff"] if r["load"] is None else "",
            "%.3e" % r["rel"] if r["load"] is None else "",
            "ok" if ok else "FAIL"))
        print("%-24s %-20s %s %5.1fs" % (spec, model, rows[-1].split(
            " | ")[-1].rstrip(" |"), time.time() - start), flush=True)
        if r["load"] is not None:
            print("  " + r["load"])
    with open(args.out, "w") as f:
        f.write("# archc modules vs torchvision: strict state_dict load and"
                " outputs\n\n")
        f.write("date %s; torch %s, torchvision %s (a separate venv; "
                "torchvision is never a test dependency).\n" % (
                    datetime.date.today().isoformat(),
                    torch.__version__.split("+")[0],
                    torchvision.__version__.split("+")[0]))
        f.write("`python tools/torchvision_manifest.py compare-all` runs, for"
                " every spec in `archc/zoo/` declaring\n`torchvision: MODEL` (and "
                "every variant that declares one, `--set variant=NAME`), "
                "`compare SPEC MODEL`: MODEL is built with weights=None under"
                " a fixed seed,\nits constant-initialised parameters and "
                "buffers (BN/LN affine and running statistics, layer scale,"
                "\nzero biases) are randomised, its state_dict is loaded into"
                " the archc module with strict=True,\nand both run in eval "
                "mode in float64 on the same random batch of 2 at the spec's"
                " input size.\nA row passes when the relative error "
                "max|a - b| / max|b| is at most %.0e.\n\n" % args.tol)
        f.write("| spec | torchvision model | input | params | strict load |"
                " max abs diff | relative error | result |\n")
        f.write("|---|---|---|---:|---|---:|---:|---|\n")
        f.write("\n".join(rows) + "\n")
    print("%d specs, %d failed -> %s" % (len(rows), failed, args.out))
    return 1 if failed else 0


def captured(module, function, builder):
    """Call BUILDER with MODULE.FUNCTION replaced by a stub that returns its
    arguments: (args, kwargs) of the call the builder makes."""
    real = getattr(module, function)
    setattr(module, function, lambda *a, **k: (a, k))
    try:
        return builder(weights=None)
    finally:
        setattr(module, function, real)


def markdown(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "---:|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def regnet_widths_float64(depth, w_0, w_a, w_m, group_width,
                          bottleneck_multiplier=1.0, **_):
    """BlockParams.from_init_params in Python floats (float64), to check
    that torchvision's float32 torch arithmetic gives the same tables."""
    import math
    from torchvision.models._utils import _make_divisible

    widths = [round(w_0 * w_m ** round(math.log((i * w_a + w_0) / w_0)
                                       / math.log(w_m)) / 8) * 8
              for i in range(depth)]
    stages = []
    for w in widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    out = []
    for w, d in stages:
        w_bot = int(w * bottleneck_multiplier)
        g = min(group_width, w_bot)
        out.append((d, int(_make_divisible(w_bot, g) / bottleneck_multiplier),
                    g, w))
    return out


def regnet_tables():
    import torchvision.models as tvm
    from torchvision.models import regnet

    real = regnet.BlockParams.from_init_params.__func__
    calls = []

    def recording(cls, **kwargs):
        calls.append(kwargs)
        return real(cls, **kwargs)

    regnet.BlockParams.from_init_params = classmethod(recording)
    try:
        for name in [m for m in MODELS if m.startswith("regnet")]:
            (bp, _, _), _ = captured(regnet, "_regnet",
                                     getattr(tvm, name))
            init = calls[-1]
            print("\n#### %s\n" % name)
            print("`BlockParams.from_init_params(%s)`; stem 32, %s\n" % (
                ", ".join("%s=%r" % kv for kv in init.items()),
                "SE ratio %r of each block's input width" % bp.se_ratio
                if bp.se_ratio else "no SE"))
            f64 = regnet_widths_float64(**init)
            rows = []
            w_in = 32
            for i, (w, s, d, g, b) in enumerate(bp._get_expanded_params()):
                w_b = int(round(w * b))
                se = ("%d / %d" % (int(round(bp.se_ratio * w_in)),
                                   int(round(bp.se_ratio * w)))
                      if bp.se_ratio else "-")
                rows.append(("block%d" % (i + 1), d, f64[i][3], w, g, b, w_b,
                             w_b // g, s, se))
                w_in = w
            print(markdown(("stage", "depth", "quantised width", "width",
                            "group width", "bottleneck", "w_b", "groups",
                            "stride", "SE squeeze (first / other blocks)"),
                           rows))
            same = [r[:3] for r in f64] == [(d, w, g) for w, _, d, g, _ in
                                            bp._get_expanded_params()]
            print("\nfloat64 recomputation %s." % (
                "agrees" if same else "DIFFERS: %s" % f64))
    finally:
        regnet.BlockParams.from_init_params = classmethod(real)


def efficientnet_tables():
    import torchvision.models as tvm
    from torchvision.models import efficientnet
    from torchvision.models._utils import _make_divisible

    for name in [m for m in MODELS if m.startswith("efficientnet")]:
        (setting, dropout, last, _, _), kw = captured(
            efficientnet, "_efficientnet", getattr(tvm, name))
        norm = kw.get("norm_layer")
        total = sum(c.num_layers for c in setting)
        print("\n#### %s\n" % name)
        print("stem %d; head 1x1 conv to %d; %d blocks; dropout %r;"
              " stochastic depth %r x block index / %d; norm %s\n" % (
                  setting[0].input_channels,
                  last or 4 * setting[-1].out_channels, total, dropout,
                  kw.get("stochastic_depth_prob", 0.2), total,
                  "BatchNorm2d(%s)" % ", ".join(
                      "%s=%r" % kv for kv in norm.keywords.items())
                  if norm else "BatchNorm2d (defaults)"))
        rows = []
        for i, c in enumerate(setting):
            fused = type(c).__name__.startswith("Fused")
            exp = "%d / %d" % tuple(_make_divisible(ch * c.expand_ratio, 8)
                                    for ch in (c.input_channels,
                                               c.out_channels))
            se = "-" if fused else "%d / %d" % (max(1, c.input_channels // 4),
                                                max(1, c.out_channels // 4))
            rows.append(("features.%d" % (i + 1),
                         "FusedMBConv" if fused else "MBConv",
                         c.expand_ratio, c.kernel, c.stride,
                         c.input_channels, exp, c.out_channels,
                         c.num_layers, se))
        print(markdown(("stage", "block", "expand", "k", "stride", "in",
                        "expanded (first / other)", "out", "layers",
                        "SE squeeze (first / other)"), rows))


def mobilenet_v3_tables():
    from torchvision.models._utils import _make_divisible
    from torchvision.models.mobilenetv3 import _mobilenet_v3_conf

    for name in ("mobilenet_v3_large", "mobilenet_v3_small"):
        setting, last = _mobilenet_v3_conf(name)
        print("\n#### %s\n" % name)
        print("stem 3x3/2 to %d, hardswish; head 1x1 conv to %d, hardswish;"
              " classifier Linear(%d, %d), hardswish, dropout, Linear\n" % (
                  setting[0].input_channels, 6 * setting[-1].out_channels,
                  6 * setting[-1].out_channels, last))
        rows = [("features.%d" % (i + 1), c.input_channels, c.kernel,
                 c.expanded_channels, c.out_channels,
                 _make_divisible(c.expanded_channels // 4, 8)
                 if c.use_se else "-",
                 "hardswish" if c.use_hs else "relu", c.stride,
                 "yes" if c.stride == 1 and c.input_channels ==
                 c.out_channels else "")
                for i, c in enumerate(setting)]
        print(markdown(("module", "in", "k", "expanded", "out", "SE squeeze",
                        "activation", "stride", "residual"), rows))


def small_tables():
    import torchvision.models as tvm
    from torchvision.models import mnasnet, shufflenetv2

    print("\n#### mnasnet: mnasnet._get_depths(alpha)\n")
    print(markdown(("model", "alpha", "depths"), [
        (name, a, mnasnet._get_depths(a)) for name, a in (
            ("mnasnet0_5", 0.5), ("mnasnet0_75", 0.75),
            ("mnasnet1_0", 1.0), ("mnasnet1_3", 1.3))]))
    print("\n#### shufflenet_v2: _shufflenetv2(weights, progress, repeats,"
          " channels)\n")
    rows = []
    for name in [m for m in MODELS if m.startswith("shufflenet")]:
        (_, _, repeats, channels), _ = captured(
            shufflenetv2, "_shufflenetv2", getattr(tvm, name))
        rows.append((name, repeats, channels))
    print(markdown(("model", "stages_repeats", "stages_out_channels"), rows))


def cmd_tables(args):
    print("### RegNet")
    regnet_tables()
    print("\n### EfficientNet")
    efficientnet_tables()
    print("\n### MobileNetV3")
    mobilenet_v3_tables()
    print("\n### MNASNet and ShuffleNetV2")
    small_tables()
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("dump", help="write OUTDIR/<model>.json manifests")
    d.add_argument("outdir")
    d.add_argument("--models", nargs="+", choices=MODELS, metavar="MODEL",
                   help="only these models (default: all)")
    d.add_argument("--real", action="store_true",
                   help="count MACs with a CPU forward pass, not on meta")
    d.set_defaults(func=cmd_dump)

    c = sub.add_parser("compare",
                       help="check archc.build(SPEC) against torchvision")
    c.add_argument("spec", help="archc spec, passed to archc.build")
    c.add_argument("model", choices=MODELS, metavar="MODEL",
                   help="torchvision model name (any of MODELS)")
    c.add_argument("--set", nargs="+", metavar="NAME=VALUE",
                   help="spec parameters, as archc compile --set")
    c.add_argument("--input", type=int, nargs=3, metavar=("C", "H", "W"),
                   help="input size (default: the spec's input)")
    a = sub.add_parser("compare-all",
                       help="compare every spec declaring torchvision:")
    a.add_argument("--out", required=True, help="markdown table to write")
    a.add_argument("--specs", default=os.path.join(REPO_ROOT, "archc", "zoo"),
                   help="folder of specs (default: the zoo, archc/zoo/)")
    for q in (c, a):
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--tol", type=float, default=1e-10)
    c.set_defaults(func=cmd_compare)
    a.set_defaults(func=cmd_compare_all)

    t = sub.add_parser("tables", help="print the builders' stage tables")
    t.set_defaults(func=cmd_tables)

    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
