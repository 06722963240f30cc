"""``hardneg export``: a negatives file (ids) -> FlagEmbedding / sentence-transformers / Tevatron data."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  hardneg export negatives.jsonl --data ../shared/data/scifact --format flagembedding --output fe.jsonl
  hardneg export negatives.jsonl --data scifact --format sentence-transformers --output st.parquet
  hardneg export negatives.jsonl --data scifact --format tevatron --group-by-query --output tev.jsonl

formats:
  flagembedding          JSONL {"query", "pos": [text], "neg": [text], "pos_scores", "neg_scores"}
  sentence-transformers  table like mine_hard_negatives(): anchor, positive, negative_1..n (n-tuple)
                         or anchor, positive, negative (triplet); .parquet -> parquet, else JSONL
                         (the other formats write JSONL only: a .parquet / .csv output is refused)
  tevatron               JSONL {"query_id", "query", "positive_passages": [{"docid", "title", "text"}],
                         "negative_passages": [...]}
One output row per (query, positive) row of the negatives file; --group-by-query merges a query's
rows (flagembedding, tevatron). n-tuple rows short of n negatives are dropped and counted.
Writes OUTPUT.meta.json (source file hash, data fingerprint, counts)."""

SUMMARY = "turn a negatives file into FlagEmbedding / sentence-transformers / Tevatron training data"  # the line in `hardneg --help`


def register(subparsers) -> None:
    from hardneg.data.export import FORMATS, ST_FORMATS

    p = subparsers.add_parser(
        "export", help=SUMMARY,
        description="Replace the ids of a negatives file (from 'hardneg mine') with query and passage texts "
        "in the training format of another library.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("negatives", type=Path, help="negatives JSONL written by 'hardneg mine'")
    p.add_argument("--data", required=True, help="the data it was mined from (BEIR folder or dataset name)")
    p.add_argument("--split", default="train", help="qrels split it was mined from (default: train)")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="target library's format")
    p.add_argument("--output", required=True, help="output file (.jsonl; .parquet for sentence-transformers)")
    p.add_argument("--group-by-query", action="store_true",
                   help="one row per query instead of per (query, positive) (flagembedding, tevatron)")
    p.add_argument("--st-format", choices=ST_FORMATS, default=ST_FORMATS[0],
                   help="sentence-transformers layout (default: n-tuple)")
    p.add_argument("--num-negatives", type=int, default=None,
                   help="n of the n-tuple columns (default: the most negatives any row has)")
    p.set_defaults(func=run)


def run(args) -> int:
    from hardneg.cli.guard import data_paths, negatives_paths
    from hardneg.core.errors import HardnegError
    from hardneg.core.outputs import guard_output
    from hardneg.data.export import check_output_format, export_negatives
    from hardneg.data.load import load_data

    if args.num_negatives is not None and args.num_negatives < 1:
        raise HardnegError("--num-negatives must be >= 1")
    if args.num_negatives is not None and (args.format, args.st_format) != ("sentence-transformers", "n-tuple"):
        raise HardnegError("--num-negatives sets the n of the sentence-transformers n-tuple columns; the other "
                           "formats write every negative of a row (drop --num-negatives)")
    if args.group_by_query and args.format == "sentence-transformers":
        raise HardnegError("--group-by-query applies to flagembedding and tevatron; "
                           "sentence-transformers rows are (anchor, positive, negatives)")
    check_output_format(args.format, args.output)  # before the guard takes the output
    with guard_output(args.output, inputs=[*negatives_paths(args.negatives), *data_paths(args.data)]):
        data = load_data(args.data, args.split)
        stats = export_negatives(args.negatives, data, args.format, args.output, group_by_query=args.group_by_query,
                                 st_format=args.st_format, num_negatives=args.num_negatives)
    print(f"read {stats['rows_in']} rows, wrote {stats['rows_written']} {args.format} rows to {args.output}")
    if stats["rows_dropped"]:
        print(f"dropped {stats['rows_dropped']} rows with too few negatives to fill the columns")
    return 0
