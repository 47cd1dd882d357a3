"""archc command line: thin. Parses arguments, calls the API, maps ArchcError to exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys

from archc.errors import ArchcError, SpecError

EXIT_OK, EXIT_INTERNAL, EXIT_SPEC = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
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
    return f"{d.loc}: {d.path}: warning: {d.message}" if d.severity == "warning" else str(d)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="archc", description="Compile CNN architecture specs (YAML) to PyTorch.")
    sub = p.add_subparsers(required=True, metavar="COMMAND")
    fmt = argparse.ArgumentParser(add_help=False)
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
    c.set_defaults(run=_compile)

    v = sub.add_parser("validate", parents=[fmt], help="check specs (every check of compile, no module built)")
    v.add_argument("specs", nargs="+")
    v.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V")
    v.set_defaults(run=_validate)

    d = sub.add_parser("dot", help="write the graph as Graphviz DOT (render: dot -Tsvg)")
    d.add_argument("spec")
    d.add_argument("--set", action="extend", nargs="+", default=[], metavar="K=V")
    d.add_argument("--depth", type=int, metavar="N", help="one box per module group (layer1.0)")
    d.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    d.set_defaults(run=_dot)

    m = sub.add_parser("compare", help="compare specs: parameters, MACs, activation memory")
    m.add_argument("specs", nargs="+")
    m.add_argument("--json", action="store_true")
    m.set_defaults(run=_compare)

    s = sub.add_parser("schema", help="print the spec JSON Schema (archc/spec/schema.json is this)")
    s.set_defaults(run=_schema)
    return p


def _overrides(pairs: list[str]) -> dict:
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(f"--set expects K=V, got {pair!r}")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise SpecError(f"--set {key}: cannot read value {value!r}") from None
    return out


def _analyze(path: str, args):
    import archc

    spec = archc.load(path, **_overrides(args.set))
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
    if not args.json:
        print(report.table(analysis, args.depth), flush=True)
    import archc

    module = archc.build(analysis)
    built = sum(p.numel() for p in module.parameters())
    if built != analysis.params:  # the static count and the module must agree
        raise RuntimeError(f"built module has {built} parameters, analysis says {analysis.params}")
    if args.output:
        from archc.checkpoint import save

        save(module, args.output)
    if args.json:
        print(json.dumps({**analysis.to_dict(), "module": {"params": built,
                                                           "state_dict": len(module.state_dict())}}, indent=1))
    else:
        saved = f"; saved to {args.output}" if args.output else ""
        print(f"built nn.Module {module.name}: {built:,} parameters, "
              f"{len(module.state_dict())} state_dict entries{saved}")
    return EXIT_OK


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

    text = to_dot(_analyze(args.spec, args), args.depth)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        print(text, end="")
    return EXIT_OK


def _compare(args) -> int:
    from archc import report

    analyses = [_analyze(path, argparse.Namespace(set=[])) for path in args.specs]
    if args.json:
        print(json.dumps([{k: v for k, v in a.to_dict().items() if k != "layers"} for a in analyses], indent=1))
    else:
        print(report.comparison(analyses))
    return EXIT_OK


def _schema(args) -> int:
    from archc.ir.ops import spec_ops
    from archc.spec.schema import generate

    print(json.dumps(generate(spec_ops()), indent=1))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
