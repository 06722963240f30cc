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


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect", help="score histograms and false-negative rate of a negatives file",
        description="Diagnose mined negatives: positive vs negative score distributions, negative - positive, "
        "and how many negatives the qrels mark relevant (held-out false negatives).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("negatives", type=Path, help="negatives JSONL written by 'hardneg mine'")
    p.add_argument("--data", required=True, help="the data it was mined from (BEIR folder or dataset name)")
    p.add_argument("--split", default="train", help="qrels split that judges the negatives (default: train)")
    p.add_argument("--plot", type=Path, default=None, help="write histograms + FN rate per rank to this PNG")
    p.add_argument("--output", type=Path, default=None, help="write the report as JSON (+ OUTPUT.meta.json)")
    p.add_argument("--bins", type=int, default=40, help="histogram bins (default: 40)")
    p.set_defaults(func=run)


def _mined_anchor_only(negatives: Path) -> bool | None:
    from hardneg.core.files import read_json
    from hardneg.core.provenance import meta_path

    try:
        return bool(read_json(meta_path(negatives))["config"]["anchor_only"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run(args) -> int:
    from hardneg.data.load import load_data
    from hardneg.core.errors import HardnegError
    from hardneg.data.negatives import check_ids
    from hardneg.analysis.negatives import format_report, inspect_rows
    from hardneg.report.plots import plot_negatives as plot_report
    from hardneg.core.files import sha256_file, write_json
    from hardneg.core.provenance import write_meta
    from hardneg.data.negatives import read_negatives

    if args.bins < 1:
        raise HardnegError("--bins must be >= 1")
    rows = read_negatives(args.negatives)
    data = load_data(args.data, args.split)
    check_ids(rows, data, args.negatives)
    missing = len({r.qid for r in rows} - set(data.qrels))
    if missing:
        print(f"warning: {missing} queries of the file have no qrels in split {args.split!r}; "
              "their negatives count as not relevant")
    report = inspect_rows(rows, data.qrels, bins=args.bins)
    print(format_report(report, _mined_anchor_only(args.negatives)))
    if args.plot:
        title = f"{args.negatives.name} — {Path(str(args.data)).name} {args.split}"
        print(f"wrote {plot_report(report, args.plot, title)}")
    if args.output:
        write_json(args.output, report)
        write_meta(args.output, {"negatives": str(args.negatives), "data": data.source, "split": args.split,
                                 "bins": args.bins}, negatives_sha256=sha256_file(args.negatives),
                   data_fingerprint=data.fingerprint())
        print(f"wrote {args.output}")
    return 0
