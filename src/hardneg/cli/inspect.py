"""``hardneg inspect``: score distributions and held-out false-negative rate of a negatives file."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  hardneg mine --teacher minilm --data ../shared/data/nfcorpus --split train --anchor-only --output neg.jsonl
  hardneg inspect neg.jsonl --data ../shared/data/nfcorpus --split train --plot neg.png

prints: rows, negatives per row; count / mean / quantiles of positive scores, negative scores and
negative - positive (the paper's Fig. 4); the false-negative rate = share of negatives the qrels
mark relevant (grade > 0) for their query, overall, over rows with held-out positives and per rank.
Mined without --anchor-only every known positive is removed, so that rate is 0 by construction.
--plot writes a PNG of the three; --output writes the full report as JSON (+ .meta.json)."""

SUMMARY = "score histograms and false-negative rate of a negatives file"  # the line in `hardneg --help`


def register(subparsers) -> None:
    from hardneg.analysis.negatives import InspectConfig
    from hardneg.core.options import add_config_args

    p = subparsers.add_parser(
        "inspect", help=SUMMARY,
        description="Diagnose mined negatives: positive vs negative score distributions, negative - positive, "
        "and how many negatives the qrels mark relevant (held-out false negatives).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, InspectConfig, only=("negatives", "data", "split"))
    p.add_argument("--plot", default=None, help="write histograms + FN rate per rank to this PNG (default: no plot)")
    p.add_argument("--output", default=None, help="write the report as JSON (+ OUTPUT.meta.json) (default: printed "
                   "only)")
    add_config_args(p, InspectConfig, exclude=("negatives", "data", "split"))
    p.set_defaults(func=run)


def _mined_anchor_only(negatives: Path) -> bool | None:
    from hardneg.core.files import read_json
    from hardneg.core.provenance import meta_path

    try:
        return bool(read_json(meta_path(negatives))["config"]["anchor_only"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


PLOT_SUFFIXES = (".png",)  # report.plots.plot_negatives writes PNG bytes whatever the name


def check_plot_path(path) -> None:
    """``--plot`` must name a .png file: the plot is a PNG, and PNG bytes in ``x.txt`` / ``x.pdf`` mislead."""
    from hardneg.core.errors import HardnegError

    if path is not None and str(path).strip() and Path(path).suffix.lower() not in PLOT_SUFFIXES:
        raise HardnegError(f"--plot writes a PNG image: name it {Path(path).with_suffix('.png').name} "
                           f"(got {Path(path).name!r}; PDF and SVG are not written)")


def run(args) -> int:
    from hardneg.analysis.negatives import InspectConfig
    from hardneg.cli.guard import data_paths, negatives_paths
    from hardneg.core.options import config_from_args
    from hardneg.core.outputs import check_distinct, guard_output

    config = config_from_args(InspectConfig, args)
    negatives = Path(config.negatives)
    inputs = [*negatives_paths(negatives), *data_paths(config.data)]
    check_distinct({"--plot": args.plot, "--output": args.output})
    check_plot_path(args.plot)
    with guard_output(args.plot, inputs=inputs, flag="--plot"), guard_output(args.output, inputs=inputs):
        return _run(args, config, negatives)


def _run(args, config, negatives: Path) -> int:
    from hardneg.analysis.negatives import audit_sample, format_report, inspect_rows, write_inspection
    from hardneg.data.load import load_data
    from hardneg.data.negatives import audit_path, check_ids, read_audit, read_negatives, require_rows
    from hardneg.report.plots import plot_negatives as plot_report

    rows = require_rows(read_negatives(negatives), negatives)
    data = load_data(config.data, config.split)
    check_ids(rows, data, negatives)
    missing = len({r.qid for r in rows} - set(data.qrels))
    if missing:
        print(f"warning: {missing} queries of the file have no qrels in split {config.split!r}; "
              "their negatives count as not relevant")
    report = inspect_rows(rows, data.qrels, bins=config.bins)
    print(format_report(report, _mined_anchor_only(negatives)))
    audit = read_audit(negatives)
    if audit and config.audit_sample:
        print(f"judge audit ({len(audit)} flagged entries in {audit_path(negatives).name}); a sample:")
        for line in audit_sample(audit, data, config.audit_sample, config.seed):
            print("  " + line)
    if args.plot:
        title = f"{negatives.name} — {Path(str(config.data)).name} {config.split}"
        print(f"wrote {plot_report(report, args.plot, title)}")
    if args.output:
        write_inspection(args.output, report, config, data=data)
        print(f"wrote {args.output}")
    return 0
