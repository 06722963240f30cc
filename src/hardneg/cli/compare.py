"""``hardneg compare``: is run B really better than run A? Paired bootstrap over the shared queries."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  hardneg evaluate --model minilm --data scifact --output base.json
  hardneg evaluate --model runs/ft --data scifact --output ft.json
  hardneg compare base.json ft.json
  hardneg compare base.json ft.json other.per_query.json --metric ndcg@10,mrr@10 --json cmp.json
  hardneg compare runs/abl/cells/<base id>.json runs/abl/cells/<cell id>.json

inputs (the first is the baseline, every other run is compared with it):
  X.json             written by 'hardneg evaluate --output X.json'; its per-query values are read
                     from the sibling X.per_query.json (written with it)
  X.per_query.json   per-query values {metric: {qid: value}}
  cells/<id>.json    an ablation cell ('hardneg ablate'), its "per_query" values

For each metric: the baseline's mean, the other run's mean (both over the compared queries), the
difference other - baseline and its 95% paired-bootstrap interval (queries resampled as pairs);
'*' marks an interval that excludes 0. Runs must score the same queries (else an error naming the
counts) unless --intersect. Metric names match loosely (NDCG@10 = ndcg_cut_10)."""

SUMMARY = "test evaluation runs against a baseline for a real difference (paired bootstrap)"  # the line in `hardneg --help`


def _bootstrap_defaults() -> dict:
    import inspect

    from hardneg.analysis.significance import paired_bootstrap

    return {k: p.default for k, p in inspect.signature(paired_bootstrap).parameters.items()
            if p.default is not inspect.Parameter.empty}


def register(subparsers) -> None:
    from hardneg.core.options import ListAction

    defaults = _bootstrap_defaults()
    p = subparsers.add_parser(
        "compare", help=SUMMARY,
        description="Compare evaluation runs query by query with the first one (the baseline): means, "
        "difference and a paired-bootstrap interval per metric, like ranx's compare.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="baseline, then the runs to compare with it (evaluate output, .per_query.json or cell file)")
    p.add_argument("--metric", action=ListAction, default=None, metavar="NAME",
                   help="metric to compare; repeat it or give a comma list "
                   "(default: ndcg@10, then every other metric all runs have)")
    p.add_argument("--resamples", type=int, default=defaults["n_resamples"], metavar="N",
                   help=f"bootstrap resamples (default: {defaults['n_resamples']})")
    p.add_argument("--seed", type=int, default=defaults["seed"], help=f"bootstrap seed (default: {defaults['seed']})")
    p.add_argument("--intersect", action="store_true",
                   help="compare on the queries the runs share (default: off, queries scored by only one run "
                   "are an error)")
    p.add_argument("--json", default=None, metavar="OUT",
                   help="also write the table as JSON here (+ OUT.meta.json) (default: none)")
    p.set_defaults(func=run)


def load_run(path: Path) -> dict[str, dict[str, float]]:
    """The per-query values ``{metric: {qid: value}}`` of one input file (see the epilog)."""
    from hardneg.core.errors import HardnegError

    obj = _read(path)
    if not isinstance(obj, dict) or not obj:
        raise HardnegError(f"{path}: expected a JSON object of metrics, got {type(obj).__name__}")
    if "per_query" in obj:  # an ablation cell
        return _checked(path, obj["per_query"])
    if "cells" in obj:
        raise HardnegError(f"{path} is an ablation's results file; pass two of its cells/<id>.json instead")
    if "kind" in obj and "id" in obj:
        raise HardnegError(f"{path} is an ablation cell of kind {obj['kind']!r} without per-query metrics "
                           "(only evaluated cells have them)")
    if all(isinstance(v, dict) for v in obj.values()):
        return _checked(path, obj)
    if all(_is_number(v) for v in obj.values()):  # evaluate's means: read the sibling
        sibling = _sibling(path)
        if not sibling.is_file():
            raise HardnegError(f"{path} holds metric means only and its per-query file {sibling} is missing; "
                               f"rerun 'hardneg evaluate --output {path}' (it writes both) or pass a "
                               ".per_query.json or an ablation cell file")
        return _checked(sibling, _read(sibling))
    raise HardnegError(f"{path}: not an evaluate output, a .per_query.json or an ablation cell file")


def _sibling(path: Path) -> Path:
    """The per-query file the meta names, else the sibling ``write_eval`` writes."""
    from hardneg.core.provenance import read_meta
    from hardneg.evaluation.run import per_query_path

    name = (read_meta(path) or {}).get("per_query")
    return path.with_name(name) if isinstance(name, str) and name else per_query_path(path)


def _read(path: Path):
    import json

    from hardneg.core.errors import HardnegError
    from hardneg.core.files import read_json

    try:
        return read_json(path)
    except FileNotFoundError:
        raise HardnegError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError) as e:
        raise HardnegError(f"{path}: cannot read it as JSON ({e})") from None


def _checked(path: Path, per_query) -> dict[str, dict[str, float]]:
    from hardneg.core.errors import HardnegError

    if not isinstance(per_query, dict) or not per_query:
        raise HardnegError(f"{path}: no per-query values (expected {{metric: {{qid: value}}}})")
    for m, values in per_query.items():
        if not isinstance(values, dict) or not all(_is_number(v) for v in values.values()):
            raise HardnegError(f"{path}: metric {m!r} is not a {{qid: number}} object")
    return per_query


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def format_rows(rows, level: float = 0.95) -> str:
    """One aligned table; ``*`` where the interval excludes 0."""
    pct = f"{level:.0%}"
    lines = [f"{'metric':<10} {'baseline':>8} {'other':>8} {'diff':>8}  {pct} interval"]
    for r in rows:
        d = r.delta
        lines.append(f"{r.metric:<10} {r.baseline_mean:>8.4f} {r.other_mean:>8.4f} {d.mean:>+8.4f}  "
                     f"[{d.lo:+.4f}, {d.hi:+.4f}]{'  *' if r.significant else ''}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from hardneg.core.errors import HardnegError
    from hardneg.core.outputs import guard_output
    from hardneg.evaluation.run import per_query_path

    if len(args.runs) < 2:
        raise HardnegError("give a baseline and at least one run to compare with it")
    names = [str(p) for p in args.runs]
    if len(set(names)) < len(names):
        raise HardnegError("the same file is given twice")
    metrics = [m.strip() for arg in args.metric or () for m in arg.split(",") if m.strip()] or None
    with guard_output(args.json, inputs=[q for p in args.runs for q in (p, per_query_path(p))], flag="--json"):
        return _run(args, names, metrics)


def _run(args: argparse.Namespace, names: list[str], metrics: list[str] | None) -> int:
    from hardneg.analysis.compare import compare
    from hardneg.core.files import write_json
    from hardneg.core.provenance import write_meta

    level = _bootstrap_defaults()["level"]
    runs = {name: load_run(path) for name, path in zip(names, args.runs)}
    rows = compare(runs, metrics=metrics, n_resamples=args.resamples, seed=args.seed, level=level,
                   intersect=args.intersect)
    for other in names[1:]:
        mine = [r for r in rows if r.other == other]
        n = sorted({r.delta.n for r in mine})
        print(f"{other} vs baseline {names[0]}: {'/'.join(map(str, n))} queries, {level:.0%} paired bootstrap "
              f"({args.resamples} resamples, seed {args.seed})")
        print(format_rows(mine, level))
        print()
    print(f"* the {level:.0%} interval of the difference excludes 0")
    if args.json:
        settings = {"runs": names, "metrics": metrics, "resamples": args.resamples, "seed": args.seed,
                    "level": level, "intersect": args.intersect}
        write_json(args.json, {"baseline": names[0], **settings, "rows": [r.to_dict() for r in rows]})
        write_meta(args.json, settings)
        print(f"wrote {args.json}")
    return 0
