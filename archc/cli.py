"""archc command line: thin. Parses arguments, calls the API, maps ArchcError to exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from archc.errors import ArchcError, ArchcWarning, SpecError, one_line

EXIT_OK, EXIT_INTERNAL, EXIT_SPEC = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # text from a spec (its name) never fails to print
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = _parser().parse_args(argv)
    from archc import _no_gc

    try:
        with _no_gc(), warnings.catch_warnings():
            warnings.simplefilter("ignore", ArchcWarning)  # the commands print archc's warnings themselves, located
            return args.run(args)
    except ArchcError as e:
        _diagnose(e, args)
        return EXIT_SPEC
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # an archc bug, not the user's: one line, traceback on request
        if os.environ.get("ARCHC_DEBUG"):
            raise
        print(f"archc: internal error: {type(e).__name__}: {e} (set ARCHC_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _diagnose(e: ArchcError, args) -> None:
    """Errors and warnings on stderr: `file:line:col: path: message` lines, or JSON lines (--format json)."""
    as_json = getattr(args, "format", "text") == "json"
    for d in e.errors:
        print(json.dumps(d.to_dict()) if as_json else _text(d), file=sys.stderr)
    more = getattr(e, "more", 0)
    if more:
        note = f"{more} more error{'s' * (more > 1)} not shown"
        print(json.dumps({"file": e.loc.file if e.loc else None, "line": None, "column": None, "path": None,
                          "message": note, "severity": "note"}) if as_json else f"archc: {note}", file=sys.stderr)


def _text(d: ArchcError) -> str:
    return one_line(f"{d.loc}: {d.path}: warning: {d.message}") if d.severity == "warning" else str(d)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="archc", description="Compile CNN architecture specs (YAML) to PyTorch.")
    sub = p.add_subparsers(required=True, metavar="COMMAND")
    lim = argparse.ArgumentParser(add_help=False)
    lim.add_argument("--limit", action="extend", nargs="+", default=[], metavar="NAME=N",
                     help="raise a limit: --limit params=5e9 nodes=200000 (limits: bytes, yaml_nodes, nodes, steps, "
                          "repeat, params, activations; see docs/language.md, Limits)")
    fmt = argparse.ArgumentParser(add_help=False, parents=[lim])
    fmt.add_argument("--format", choices=("text", "json"), default="text",
                     help="errors and warnings on stderr as text lines or as JSON lines (file, line, column, "
                          "path, message, severity)")

    c = sub.add_parser("compile", parents=[fmt], help="validate, analyse and build a spec; print per-layer figures")
    c.add_argument("spec")
    c.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V",
                   help="override spec parameters: --set classes=10 width=2")
    c.add_argument("--json", action="store_true", help="print the analysis as JSON")
    c.add_argument("--depth", type=int, metavar="N", help="group the table by the first N names (layer1.0)")
    c.add_argument("-o", "--output", metavar="FILE", help="save the built module as an archc checkpoint (.pt)")
    c.add_argument("--weights", metavar="FILE|torchvision:NAME",
                   help="load a state_dict (torchvision .pth, .safetensors, an archc checkpoint), or the published "
                        "weights of the spec's torchvision model by name (torchvision:IMAGENET1K_V2, needs "
                        "archc[weights]); report what did not match")
    c.add_argument("--memory", action="store_true",
                   help="also print the memory plan of archc.fuse's CPU forward (arena, slices, peak)")
    c.add_argument("--batch", type=int, default=1, metavar="N", help="batch size of the memory plan (default 1)")
    c.set_defaults(run=_compile)

    v = sub.add_parser("validate", parents=[fmt], help="check specs (every check of compile, no module built)")
    v.add_argument("specs", nargs="+")
    v.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V")
    v.set_defaults(run=_validate)

    d = sub.add_parser("dot", parents=[fmt], help="write the graph as Graphviz DOT (render: dot -Tsvg)")
    d.add_argument("spec")
    d.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V")
    d.add_argument("--depth", type=int, metavar="N", help="one box per module group (layer1.0)")
    d.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    d.set_defaults(run=_dot)

    w = sub.add_parser("view", parents=[fmt],
                       help="write the graph as one self-contained interactive HTML page (or a PNG of it)")
    w.add_argument("spec")
    w.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V")
    w.add_argument("--depth", type=int, metavar="N", help="open groups to N names at first (default: a small view)")
    w.add_argument("-o", "--output", metavar="FILE", help="FILE.html (default: the spec's name .html in the current "
                                                        "folder), or FILE.png: a screenshot by headless Chromium")
    w.add_argument("--select", metavar="NAME", help="a node or module group shown and selected at first")
    w.add_argument("--size", default="1600x1000", metavar="WxH", help="the screenshot's size in pixels")
    w.set_defaults(run=_view)

    m = sub.add_parser("compare", parents=[fmt],
                       help="compare specs: parameters, MACs, activation memory, published accuracy")
    m.add_argument("specs", nargs="+")
    m.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V",
                   help="override parameters of every spec given (each must declare them)")
    m.add_argument("--json", action="store_true")
    m.add_argument("--plot", metavar="FILE", help="also draw the lecture's chart: accuracy against MACs, bubble "
                                                  "area ~ parameters (.svg, .png, .pdf; needs matplotlib)")
    m.set_defaults(run=_compare)

    e = sub.add_parser("export", parents=[lim],
                       help="write the module as ONNX, a torch.export program or TorchScript, checked")
    e.add_argument("spec")
    e.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V")
    e.add_argument("--format", required=True, choices=("onnx", "pt2", "torchscript"))
    e.add_argument("--fused", action="store_true", help="export archc.fuse(module): BN folded, conv+BN+act fused")
    e.add_argument("--weights", metavar="FILE|torchvision:NAME", help="load these weights first (as compile --weights)")
    e.add_argument("-o", "--output", metavar="FILE", help="default: the spec's name[.fused].onnx|.pt2|.pt")
    e.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    e.add_argument("--no-check", action="store_true", help="skip running the export against the module")
    e.add_argument("--safetensors", action="store_true",
                   help="also write the weights beside it: OUTPUT's name .safetensors (the module's state_dict, "
                        "its input pipeline as metadata)")
    e.set_defaults(run=_export)

    b = sub.add_parser("bench", parents=[fmt],
                       help="latency and throughput: eager, eager channels_last and archc.fuse, side by side")
    b.add_argument("spec")
    b.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V")
    b.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    b.add_argument("--batch", default="1,8", metavar="N,N,...", help="batch sizes (default 1,8)")
    b.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    b.add_argument("--runs", type=int, default=11, help="timed runs of each variant, interleaved (default 11)")
    b.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    b.add_argument("--json", action="store_true", help="print the measurements as JSON")
    b.set_defaults(run=_bench)

    t = sub.add_parser("train", parents=[lim], help="train the spec's module on a dataset, validating every epoch "
                                                   "(torchrun --nproc_per_node=N: on N processes)")
    t.add_argument("spec", nargs="?", help="the spec (leave it out with --resume: the run's own)")
    t.add_argument("--data", help="a folder of class folders of images (with train/ and val/ inside, or split by "
                                  "--val-split), or a torchvision dataset: cifar10, cifar100, mnist, fashionmnist, "
                                  "svhn, stl10, ...")
    t.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V",
                   help="override spec parameters (classes is set from the data)")
    _train_options(t)
    t.set_defaults(run=_train)

    r = sub.add_parser("predict", parents=[lim], help="classify images: the top classes, with their names")
    r.add_argument("spec")
    r.add_argument("images", nargs="+", metavar="IMAGE")
    r.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V")
    r.add_argument("--weights", metavar="FILE|torchvision:NAME",
                   help="default: the weights the spec publishes its accuracy for (torchvision's, by name)")
    r.add_argument("--top", type=int, default=5, metavar="K", help="classes shown per image (default 5)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(run=_predict)

    z = sub.add_parser("list", help="list the zoo: every network archc ships, by the name compile, view, ... take")
    z.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                   help="a table (default), JSON (every network's figures), or docs/zoo.md's Markdown table")
    z.set_defaults(run=_list)

    s = sub.add_parser("schema", help="print the spec JSON Schema (archc/spec/schema.json is this)")
    s.set_defaults(run=_schema)
    return p


def _pairs(pairs: list[str], option: str) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(f"{option} expects K=V, got {pair!r}")
        out[key] = value
    return out


def _overrides(pairs: list[str]) -> dict:
    """--set values, read as a spec's values are (YAML scalars, the numeric policy)."""
    from archc.spec.load import scalar

    return {k: scalar(v, f"--set {k}") for k, v in _pairs(pairs, "--set").items()}


def _limits(args):
    from archc.spec.limits import Limits

    return Limits.of(_pairs(getattr(args, "limit", []), "--limit"))


def _analyze(path: str, args):
    import archc

    spec = archc.load(path, limits=_limits(args), **_overrides(args.set))
    analysis = archc.analyze(spec, check=False)
    for w in analysis.warnings:  # before a failed `expect`, which they may explain
        print(json.dumps(w.to_dict()) if getattr(args, "format", "text") == "json" else _text(w), file=sys.stderr)
    analysis.check_expect()  # the spec's figures, or its variant's; none when other parameters are overridden
    return analysis


def _validated(path: str, args):
    """_analyze, and the checks the module makes before it allocates anything (its names)."""
    from archc.backends.torch.names import check

    analysis = _analyze(path, args)
    check(analysis.graph)
    return analysis


def _compile(args) -> int:
    from archc import report

    analysis = _validated(args.spec, args)
    if args.output:  # before anything is built: a path that cannot be written is the user's error, exit 2
        from archc import files

        files.check(args.output, protect=files.inputs(analysis.spec, args.weights))
    if args.weights:  # read before anything is printed: a file that is not weights fails first
        from archc import weights

        fetched = weights.fetch(args.weights, analysis)
    if not args.json:
        print(report.table(analysis, args.depth), flush=True)
    import archc

    module = archc.build(analysis)
    built = sum(p.numel() for p in module.parameters())
    if built != analysis.params:  # the static count and the module must agree
        raise RuntimeError(f"built module has {built} parameters, analysis says {analysis.params}")
    loaded = None
    if args.weights:
        loaded = weights.install(module, fetched)
        if not args.json:
            print(loaded, flush=True)
    if args.output:
        from archc.checkpoint import save

        save(module, args.output, protect=[args.weights] if args.weights else [])
    plan = _memory_plan(module, args) if args.memory else None
    if args.json:
        extra = {"weights": loaded.to_dict()} if loaded else {}
        if plan:
            extra["memory"] = {**plan.to_dict(), "static_peak_bytes": analysis.peak_activations * args.batch * 4}
        print(json.dumps({**analysis.to_dict(), "module": {"params": built, "state_dict": len(module.state_dict())},
                          **extra}, indent=1))
    else:
        saved = f"; saved to {args.output}" if args.output else ""
        print(f"built nn.Module {module.name}: {built:,} parameters, "
              f"{len(module.state_dict())} state_dict entries{saved}")
        if plan:
            from archc.backends.torch.cpu.memory import describe

            print("\n" + describe(plan, analysis.peak_activations, "archc.fuse's CPU forward (float32)"))
    return EXIT_OK


def _memory_plan(module, args):
    """The memory plan archc.fuse's generated CPU forward materialises, float32, at --batch."""
    if args.batch < 1:
        raise SpecError(f"--batch must be at least 1, got {args.batch}")
    import archc
    from archc.backends.torch.cpu.forward import memory_plan

    return memory_plan(archc.fuse(module).graph, args.batch)


def _validate(args) -> int:
    """Every file, each reported on its own: ok with its figures, or its errors. Exit 2 if any failed."""
    from archc import report

    failed = False
    for path in args.specs:
        try:
            analysis = _validated(path, args)
        except ArchcError as e:
            _diagnose(e, args)
            failed = True
            continue
        print(f"{path}: ok: {report.summary(analysis)}", flush=True)
    return EXIT_SPEC if failed else EXIT_OK


def _dot(args) -> int:
    from archc.dot import to_dot

    analysis = _analyze(args.spec, args)
    text = to_dot(analysis, args.depth)
    if args.output:
        from archc import files

        files.write_text(args.output, text, protect=files.inputs(analysis.spec))
    else:
        print(text, end="")
    return EXIT_OK


def _view(args) -> int:
    from archc import files
    from archc.view import page

    analysis = _analyze(args.spec, args)
    out = args.output or f"{Path(args.spec).stem}.html"  # the default too: a link planted there is refused
    protect = files.inputs(analysis.spec)
    files.check(out, protect=protect)  # before the page is made, and before Chromium renders it
    html = page(analysis, args.depth, args.select)
    if Path(out).suffix.lower() != ".png":
        files.write_text(out, html, protect=protect)
        print(f"wrote {out}: {analysis.name}, {len(analysis.nodes()) - 1} ops, {len(html) // 1024} KiB, "
              "self-contained (open it in a browser)")
        return EXIT_OK
    from archc.view.headless import screenshot

    files.write_bytes(out, screenshot(html, out, args.size), protect=protect)
    print(f"wrote {out}: {analysis.name} as headless Chromium shows it ({args.size})")
    return EXIT_OK


def _compare(args) -> int:
    from archc import report

    analyses = [_analyze(path, args) for path in args.specs]
    if args.plot:  # before anything is printed or drawn
        from archc import files

        protect = files.protected(*(files.inputs(a.spec) for a in analyses))
        files.check(args.plot, protect=protect)
    if args.json:
        print(json.dumps([{k: v for k, v in a.to_dict().items() if k != "layers"} for a in analyses], indent=1))
    else:
        print(report.comparison(analyses))
    if args.plot:
        from archc.chart import plot

        for note in plot(analyses, args.plot, protect=protect):
            print(f"archc: not on the accuracy chart: {note}", file=sys.stderr)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK


def _export(args) -> int:
    import archc
    from archc import export, files, weights

    analysis = _validated(args.spec, args)
    out = args.output or f"{Path(args.spec).stem}{'.fused' if args.fused else ''}{export.FORMATS[args.format]}"
    local = args.weights if args.weights and not args.weights.startswith(weights.PREFIX) else None
    protect = files.inputs(analysis.spec, local)
    files.check(out, protect=protect)  # before anything is built or exported
    if args.safetensors:
        files.check(Path(out).with_suffix(".safetensors"), protect=protect)
    fetched = weights.fetch(args.weights, analysis) if args.weights else None
    module = archc.build(analysis)
    if fetched:
        print(weights.install(module, fetched), flush=True)
    meta = export.metadata(module)  # the pipeline and classes of the weights, from the trained module
    trained = module
    module = archc.fuse(module) if args.fused else module.eval()
    print(export.export(module, args.format, out, check=not args.no_check, opset=args.opset or export.OPSET,
                        protect=protect, meta=meta))
    if args.safetensors:  # the weights beside the model, under the spec's keys (archc.build(spec, weights=...))
        saved = export.save_weights(trained, Path(out).with_suffix(".safetensors"), meta, protect=protect)
        print(f"wrote {saved} (the module's state_dict, {len(trained.state_dict())} tensors; metadata: "
              f"{', '.join(meta) or 'none'})")
    return EXIT_OK


def _bench(args) -> int:
    from archc import bench

    try:
        batches = [int(b) for b in args.batch.split(",")]
    except ValueError:
        raise SpecError(f"--batch {args.batch!r}: expected sizes separated by commas, such as 1,8,32") from None
    result = bench.bench(_analyze(args.spec, args).spec, args.device, batches, args.dtype, args.runs, args.warmup,
                         progress=bench.stderr_progress)
    print(json.dumps(result, indent=1) if args.json else bench.table(result))
    return EXIT_OK


def _train_options(p: argparse.ArgumentParser) -> None:
    """One option per field of archc.training.config.TrainConfig (its help, flag and choices live there); only the
    options given reach archc.train (a resumed run keeps its own settings)."""
    import dataclasses

    from archc.training.config import TrainConfig

    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        shown = f" (default {' '.join(map(str, f.default)) if isinstance(f.default, list) else f.default})" \
            if f.default is not None and "default" not in meta["help"] else ""
        kw = {"dest": f.name, "default": argparse.SUPPRESS, "help": meta["help"] + shown}
        if "bool" in kind:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = float if "float" in kind else int if "int" in kind else str
            for key in ("choices", "metavar", "nargs"):
                if meta.get(key) is not None:
                    kw[key] = meta[key]
        p.add_argument(flag, **kw)


def _train(args) -> int:
    """archc.train with the options given; under torchrun, only rank 0 prints (errors included)."""
    import archc
    from archc.training.config import FIELDS

    options = {k: v for k, v in vars(args).items() if k in FIELDS}
    try:
        result = archc.train(args.spec, args.data, params=_overrides(args.set), limits=_limits(args),
                             log=lambda line: print(line, flush=True), **options)
    except ArchcError:
        if os.environ.get("RANK", "0") != "0":
            return EXIT_SPEC  # rank 0 says it
        raise
    if result.folder is not None and result.best is not None:
        print(f"best: epoch {result.best['epoch']}, validation top-1 {result.best['val_top1']:.2f}%; weights in "
              f"{result.folder / 'best.safetensors'} (and last.safetensors), metrics in "
              f"{result.folder / 'metrics.jsonl'}", flush=True)
    return EXIT_OK


def _predict(args) -> int:
    import archc
    from archc import predict, weights

    analysis = _validated(args.spec, args)
    ref = args.weights
    if ref is None:
        spec = analysis.spec
        if spec.torchvision is None:
            raise SpecError(f"{spec.name} names no torchvision model, so it has no published weights: give "
                            "--weights FILE")
        ref = weights.PREFIX + (spec.published.weights if spec.published and spec.published.weights else "DEFAULT")
    fetched = weights.fetch(ref, analysis)
    module = archc.build(analysis)
    report = weights.install(module, fetched)
    if not report.complete:
        print(report, file=sys.stderr)
    found = predict.predict(module, args.images, args.top)
    if args.json:
        print(json.dumps({"network": module.name, "weights": report.file,
                          "preprocessing": module.preprocessing.to_dict(),
                          "predictions": [p.to_dict() for p in found]}, indent=1))
    else:
        pre = module.preprocessing
        print(f"{module.name} with {report.file}; images resized to {pre.resize} ({pre.interpolation}), cropped to "
              f"{pre.crop}")
        print(predict.text(found))
    return EXIT_OK


def _list(args) -> int:
    from archc import catalog

    fams = catalog.families()
    print({"text": catalog.text, "json": catalog.as_json, "markdown": catalog.markdown}[args.format](fams))
    return EXIT_OK


def _schema(args) -> int:
    from archc.ir.ops import spec_ops
    from archc.spec.schema import generate

    print(json.dumps(generate(spec_ops()), indent=1))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
