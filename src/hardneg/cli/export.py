"""``hardneg export``: a negatives file (ids) -> FlagEmbedding / sentence-transformers / Tevatron / HF datasets data."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  hardneg export negatives.jsonl --data ../shared/data/scifact --format flagembedding --output fe.jsonl
  hardneg export negatives.jsonl --data scifact --format sentence-transformers --output st.parquet
  hardneg export negatives.jsonl --data scifact --format hf-dataset --output st-data   # load_from_disk("st-data")
  hardneg export negatives.jsonl --data scifact --format tevatron --group-by-query --output tev.jsonl

formats:
  flagembedding          JSONL {"query", "pos": [text], "neg": [text], "pos_scores", "neg_scores"}
  sentence-transformers  table like mine_hard_negatives(): anchor, positive, negative_1..n (n-tuple)
                         or anchor, positive, negative (triplet); .parquet -> parquet, else JSONL
                         (the other JSONL formats refuse a .parquet / .csv output)
  hf-dataset             the same table as a datasets folder (Dataset.save_to_disk; load_from_disk gives
                         the Dataset SentenceTransformerTrainer takes), written to a temporary folder and
                         renamed into place; a .parquet or .jsonl output is that one file instead
  tevatron               JSONL {"query_id", "query", "positive_passages": [{"docid", "title", "text",
                         "score"}], "negative_passages": [...]}
teacher scores (--scores / --no-scores; default: on for flagembedding and tevatron, off for the
sentence-transformers and hf-dataset tables, as mine_hard_negatives(output_scores=False)):
  flagembedding pos_scores / neg_scores; tevatron a "score" in each passage (what its train_distil
  reads); the tables a last column "scores" = [pos, neg_1..neg_n] (triplet: [pos, neg]), the layout of
  mine_hard_negatives(output_scores=True). A positive without a score (judge-relabelled) gets none.
One output row per (query, positive) row of the negatives file; --group-by-query merges a query's
rows (flagembedding, tevatron). n-tuple rows short of n negatives are dropped and counted.
Writes OUTPUT.meta.json (source file hash, data fingerprint, counts; for a folder the sha256 of each file)."""

SUMMARY = ("turn a negatives file into FlagEmbedding / sentence-transformers / Tevatron / HF datasets "
           "training data")  # the line in `hardneg --help`


def register(subparsers) -> None:
    from hardneg.cli.mine import add_column_args
    from hardneg.data.export import FORMATS, ST_FORMATS

    p = subparsers.add_parser(
        "export", help=SUMMARY,
        description="Replace the ids of a negatives file (from 'hardneg mine') with query and passage texts "
        "in the training format of another library.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("negatives", type=Path, help="negatives JSONL written by 'hardneg mine'")
    p.add_argument("--data", required=True, help="the data it was mined from (BEIR folder, dataset name, pairs JSONL, "
                   "parquet / JSONL table, save_to_disk or hub-style folder)")
    p.add_argument("--split", default="train", help="qrels split it was mined from (default: train)")
    add_column_args(p)
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="target library's format")
    p.add_argument("--output", required=True,
                   help="output file (.jsonl; .parquet for the tables) or folder (hf-dataset)")
    p.add_argument("--group-by-query", action="store_true",
                   help="one row per query instead of per (query, positive) (flagembedding, tevatron) "
                        "(default: off, one row per (query, positive))")
    p.add_argument("--st-format", choices=ST_FORMATS, default=ST_FORMATS[0],
                   help="sentence-transformers / hf-dataset layout (default: n-tuple)")
    p.add_argument("--num-negatives", type=int, default=None,
                   help="n of the n-tuple columns (default: the most negatives any row has)")
    p.add_argument("--scores", action=argparse.BooleanOptionalAction, default=None,
                   help="carry the teacher scores (default: on for flagembedding and tevatron, off for "
                        "sentence-transformers and hf-dataset)")
    p.set_defaults(func=run)


def run(args) -> int:
    from hardneg.cli.guard import data_paths, negatives_paths
    from hardneg.core.errors import HardnegError
    from hardneg.core.outputs import guard_output, lock_path
    from hardneg.data.export import (TABLE_FORMATS, check_folder_output, check_output_format,
                                     clean_stale_dataset_dirs, export_negatives, writes_folder)
    from hardneg.data.load import load_data

    if args.num_negatives is not None and args.num_negatives < 1:
        raise HardnegError("--num-negatives must be >= 1")
    if args.num_negatives is not None and (args.format not in TABLE_FORMATS or args.st_format != "n-tuple"):
        raise HardnegError("--num-negatives sets the n of the sentence-transformers n-tuple columns; the other "
                           "formats write every negative of a row (drop --num-negatives)")
    if args.group_by_query and args.format in TABLE_FORMATS:
        raise HardnegError(f"--group-by-query applies to flagembedding and tevatron; {args.format} "
                           "rows are (anchor, positive, negatives)")
    check_output_format(args.format, args.output)  # before the guard takes the output
    folder = writes_folder(args.format, args.output)
    with guard_output(args.output, inputs=[*negatives_paths(args.negatives), *data_paths(args.data)],
                      kind="dir" if folder else "file") as out:
        if folder:  # under the lock, before any work: only an earlier export of ours is replaced
            check_folder_output(out)
            clean_stale_dataset_dirs(out, before=lock_path(out).stat().st_mtime)
        data = load_data(args.data, args.split, anchor_column=args.anchor_column,
                         positive_column=args.positive_column)
        stats = export_negatives(args.negatives, data, args.format, args.output, group_by_query=args.group_by_query,
                                 st_format=args.st_format, num_negatives=args.num_negatives, scores=args.scores)
    with_scores = " with teacher scores" if stats["scores"] else ""
    print(f"read {stats['rows_in']} rows, wrote {stats['rows_written']} {args.format} rows{with_scores} to {args.output}")
    if stats["rows_dropped"]:
        print(f"dropped {stats['rows_dropped']} rows with too few negatives to fill the columns")
    if stats["scores_missing"]:
        print(f"warning: {stats['scores_missing']} rows have a positive without a teacher score "
              "(judge-relabelled positives): written without it")
    return 0
