"""How long each zoo spec is against the PyTorch source it replaces: code lines (not blank, not comments, not
docstrings; a spec's `source:`/`description:` text is documentation too), the spec's imported libraries counted
with it. PyTorch sides: torchvision 0.29's model files (their weights enums and builders of other families left
out) with the helpers they use from torchvision/ops/misc.py, ops/stochastic_depth.py and models/_utils.py;
SE-ResNet-50: Cadene's pretrainedmodels senet.py (the port of the authors' Caffe models) for what se_resnet50 uses;
U-Net: milesial/Pytorch-UNet's unet_model.py and unet_parts.py (a padded variant of the same network; counted by
hand from its source: 55 + 31 lines), there being no PyTorch source by the authors. A library counts only the
blocks a spec uses from it (`lib/misc.yaml:cna,se`).

Needs torchvision and pretrainedmodels, so it runs in a separate environment:
    /work/tvenv/bin/python bench/line_counts.py   -> bench/results/line_counts.md
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import io
import tokenize
from pathlib import Path

from _harness import ROOT, environment, markdown_table, write_atomic


def python_lines(source: str) -> int:
    """Code lines of Python source: lines holding a token other than comments, and not only a docstring."""
    tree = ast.parse(source)
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                docs |= set(range(first.lineno, first.end_lineno + 1))
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENDMARKER):
            lines |= set(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docs)


def definitions(module: str, names: list[str]) -> int:
    """Code lines of the named top-level classes and functions of a module, read from its file (not imported)."""
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])
    path = Path(spec.origin).parent.joinpath(*parts[1:]).with_suffix(".py")
    source = path.read_text()
    found = {n.name: ast.get_source_segment(source, n, padded=True) for n in ast.parse(source).body
             if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    missing = [n for n in names if n not in found]
    assert not missing, f"{module} has no {missing}"
    return sum(python_lines(found[n]) for n in names)


def spec_lines(*files: str) -> int:
    """Code lines of specs and libraries; `lib/x.yaml:a,b` counts only blocks a and b of a library."""
    total = 0
    for f in files:
        f, _, blocks = f.partition(":")
        skipping = False
        text_lines = (ROOT / "archc" / "zoo" / f).read_text().splitlines()
        for line in _blocks(text_lines, blocks.split(",") if blocks else None):
            text = line.split(" #")[0].rstrip() if not line.lstrip().startswith("#") else ""
            if skipping and (line.startswith(" ") or not line.strip()):
                continue
            skipping = text.startswith(("source: >", "description: >"))
            total += bool(text.strip())
    return total


def _blocks(lines: list[str], names: list[str] | None) -> list[str]:
    """The lines of the named blocks (a block runs from `  name:` to the next line indented two or less)."""
    if names is None:
        return lines
    keep, inside = [], False
    for line in lines:
        if line.startswith("  ") and not line.startswith("   ") and line.strip() and not line.lstrip().startswith("#"):
            inside = line.strip().split(":")[0] in names
        elif line.strip() and not line.startswith("  "):
            inside = False
        keep += [line] if inside else []
    return keep


MISC = [("torchvision.ops.misc", ["ConvNormActivation", "Conv2dNormActivation"])]
SE = [("torchvision.ops.misc", ["SqueezeExcitation"])]
SD = [("torchvision.ops.stochastic_depth", ["stochastic_depth", "StochasticDepth"])]
DIV = [("torchvision.models._utils", ["_make_divisible"])]
M = "torchvision.models."
FAMILIES = [
    ("ShuffleNetV2 (4 sizes)", ["shufflenet_v2.yaml"],
     [(M + "shufflenetv2", ["channel_shuffle", "InvertedResidual", "ShuffleNetV2", "_shufflenetv2",
                            "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"])]),
    ("MobileNetV2", ["mobilenet_v2.yaml"],
     [(M + "mobilenetv2", ["InvertedResidual", "MobileNetV2", "mobilenet_v2"])] + MISC + DIV),
    ("EfficientNet B0-B7", ["efficientnet.yaml", "lib/efficientnet.yaml:mbconv", "lib/misc.yaml:cna,se"],
     [(M + "efficientnet", ["_MBConvConfig", "MBConvConfig", "MBConv", "EfficientNet", "_efficientnet",
                            "_efficientnet_conf"] + [f"efficientnet_b{i}" for i in range(8)])]
     + MISC + SE + SD + DIV),
    ("RegNet X and Y (15 sizes)", ["regnet.yaml", "lib/misc.yaml:cna,se"],
     [(M + "regnet", ["SimpleStemIN", "BottleneckTransform", "ResBottleneckBlock", "AnyStage", "BlockParams",
                      "RegNet", "_regnet"] + [f"regnet_{k}" for k in (
                          "x_400mf", "x_800mf", "x_1_6gf", "x_3_2gf", "x_8gf", "x_16gf", "x_32gf", "y_400mf",
                          "y_800mf", "y_1_6gf", "y_3_2gf", "y_8gf", "y_16gf", "y_32gf", "y_128gf")])]
     + MISC + SE + DIV),
    ("ConvNeXt (4 sizes)", ["convnext.yaml"],
     [(M + "convnext", ["LayerNorm2d", "CNBlock", "CNBlockConfig", "ConvNeXt", "_convnext", "convnext_tiny",
                        "convnext_small", "convnext_base", "convnext_large"]),
      ("torchvision.ops.misc", ["Permute"])] + MISC + SD),
    ("MobileNetV3 (large, small)", ["mobilenet_v3.yaml", "lib/misc.yaml:cna,se"],
     [(M + "mobilenetv3", ["InvertedResidualConfig", "InvertedResidual", "MobileNetV3", "_mobilenet_v3_conf",
                           "_mobilenet_v3", "mobilenet_v3_large", "mobilenet_v3_small"])] + MISC + SE + DIV),
    ("MNASNet (4 sizes)", ["mnasnet.yaml"],
     [(M + "mnasnet", ["_InvertedResidual", "_stack", "_round_to_multiple_of", "_get_depths", "MNASNet", "_mnasnet",
                       "mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"])]),
    ("EfficientNetV2 S, M, L", ["efficientnet_v2.yaml", "lib/efficientnet.yaml:mbconv,fused_mbconv",
                                "lib/misc.yaml:cna,se"],
     [(M + "efficientnet", ["_MBConvConfig", "MBConvConfig", "FusedMBConvConfig", "MBConv", "FusedMBConv",
                            "EfficientNet", "_efficientnet", "_efficientnet_conf", "efficientnet_v2_s",
                            "efficientnet_v2_m", "efficientnet_v2_l"])] + MISC + SE + SD + DIV),
    ("Inception-v3", ["inception_v3.yaml"],
     [(M + "inception", ["Inception3", "InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE",
                         "InceptionAux", "BasicConv2d", "inception_v3"])]),
    ("SE-ResNet-50", ["se_resnet50.yaml", "lib/resnet.yaml:bottleneck", "lib/misc.yaml:se"],
     [("pretrainedmodels.models.senet", ["SEModule", "Bottleneck", "SEResNetBottleneck", "SENet", "se_resnet50"])]),
]


def main() -> None:
    rows = []
    for family, specs, sources in FAMILIES:
        ours = spec_lines(*specs)
        theirs = sum(definitions(m, names) for m, names in sources)
        rows.append([family, " + ".join(specs), ours, theirs, f"{ours / theirs:.2f}"])
    ours = spec_lines("unet.yaml")
    rows.append(["U-Net", "unet.yaml", ours, 86, f"{ours / 86:.2f}"])
    env = environment(torchvision=importlib.import_module("torchvision").__version__)
    text = ("# Spec length against the PyTorch source it replaces\n\n"
            + ", ".join(f"{k} {v}" for k, v in env.items()) + "\n\n" + (__doc__ or "").split("\n\nNeeds")[0]
            + "\n\n" + markdown_table(["family", "spec (+ libraries)", "spec lines", "PyTorch lines", "ratio"], rows)
            + "\n")
    write_atomic(ROOT / "bench" / "results" / "line_counts.md", text)
    print(text)


if __name__ == "__main__":
    main()
