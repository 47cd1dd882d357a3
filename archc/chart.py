"""`archc compare --plot FILE`: the lecture's complexity chart (after Canziani et al. 2016): top-1 accuracy against
multiply-accumulates per image, one bubble per spec, its area proportional to the parameters. Accuracy is what a
spec declares under `published:` (for the architecture as written: a spec whose parameters were overridden has
none); one panel per dataset. Without any accuracy, parameters against MACs. Needs matplotlib
(`pip install 'archc[plot]'`); the format follows FILE's suffix (.svg, .png, .pdf)."""

from __future__ import annotations

from pathlib import Path

from archc.analysis import Analysis
from archc.errors import ArchcError

AREA_PER_MPARAM = 6.0  # points^2 of bubble per million parameters


def plot(analyses: list[Analysis], path: str | Path, *, protect=()) -> list[str]:
    """Draw the chart to `path` (through archc.files: checked, atomic, never over `protect` nor through a link, its
    folder made by nobody); returns notes for the user (specs left off the accuracy chart)."""
    from archc import files

    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ArchcError("--plot needs matplotlib: pip install 'archc[plot]'") from None
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in ("svg", "png", "pdf"):
        raise ArchcError(f"--plot {path}: write a .svg, .png or .pdf file")
    files.check(path, protect=protect)
    matplotlib.rcParams["svg.hashsalt"] = "archc"  # the same SVG for the same figures
    with_accuracy = [a for a in analyses if a.published]
    notes = [f"{a.name}: no published accuracy" + (" (parameters overridden)" if not a.spec.as_written and
                                                    a.spec.about.published else "")
             for a in analyses if not a.published] if with_accuracy else []
    datasets = sorted({a.published["dataset"] for a in with_accuracy}, key=lambda d: (d != "ImageNet-1k", d))
    panels = datasets or [None]
    fig = Figure(figsize=(7.5 * len(panels), 5.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colours = matplotlib.colormaps["tab20"]
    for ax, dataset in zip(axes, panels):
        points = [a for a in with_accuracy if a.published["dataset"] == dataset] if dataset else analyses
        xy = [(a.macs / 1e9, a.published["top1"] if dataset else a.params_without_aux / 1e6) for a in points]
        span = [max(v) - min(v) or 1.0 for v in zip(*xy)]
        placed: list[tuple[float, float]] = []
        for k, (a, (x, y)) in enumerate(zip(points, xy)):
            ax.scatter([x], [y], s=max(a.params_without_aux / 1e6 * AREA_PER_MPARAM, 12), alpha=0.55,
                       color=colours(k % 20), edgecolors="black", linewidths=0.6, zorder=2)
            crowded = any(abs(x - px) < 0.08 * span[0] and abs(y - py) < 0.05 * span[1] for px, py in placed)
            placed.append((x, y))
            ax.annotate(a.name, (x, y), xytext=(0, -13 if crowded else 7), textcoords="offset points", ha="center",
                        fontsize=8, zorder=3)
        ax.set_xlabel("GMACs per image (conv and linear multiply-accumulates)")
        ax.grid(True, alpha=0.3, zorder=0)
        ax.margins(0.12)
        if dataset:
            ax.set_ylabel(f"top-1 accuracy on {dataset} [%]")
            ax.set_title(f"{dataset}: accuracy against operations; bubble area ~ parameters", fontsize=10)
        else:
            ax.set_ylabel("parameters [M] (without auxiliary heads)")
            ax.set_title("parameters against operations (no spec declares published accuracy)", fontsize=10)
    if with_accuracy:
        fig.suptitle("top-1 accuracy: each spec's `published:` figure, with its source in the spec", fontsize=8,
                     color="#555555", x=0.01, ha="left")
    files.write_with(path, lambda tmp: fig.savefig(tmp, format=fmt, metadata={"Date": None} if fmt == "svg" else None),
                     protect=protect)
    return notes
