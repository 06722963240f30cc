"""``hardneg data download NAME [--dir D]`` and ``hardneg data info SPEC [--split S]``."""

from __future__ import annotations

import argparse

SUMMARY = "download BEIR datasets and inspect data"  # the line in `hardneg --help`


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "data", help=SUMMARY,
        description="Fetch standard BEIR datasets and check/count any supported data input.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    d = sub.add_parser(
        "download", help="fetch a BEIR dataset zip by name (checksum verified, resumable)",
        description="Fetch {NAME}.zip from the BEIR server (or $HARDNEG_BEIR_URL), verify its published "
        "md5, and unzip it to DIR/NAME. An interrupted download resumes where it stopped.")
    d.add_argument("name", metavar="NAME", help="BEIR dataset name, e.g. scifact, nfcorpus, fiqa")
    d.add_argument("--dir", default=None,
                   help="destination folder (default: $HARDNEG_CACHE/datasets or ~/.cache/hardneg/datasets)")
    d.add_argument("--url", default=None, help="base URL of a mirror serving NAME.zip (default: $HARDNEG_BEIR_URL "
                   "or the BEIR server)")
    d.set_defaults(func=run_download)

    i = sub.add_parser(
        "info", help="validate data and print its counts",
        description="Load SPEC (a BEIR folder, a dataset name, a {query,pos,neg} JSONL, a parquet file "
        "or a HF datasets folder), validate it and print counts: documents, queries, qrels rows, "
        "positives per query and warnings.")
    i.add_argument("spec", metavar="SPEC", help="data folder, file or dataset name")
    i.add_argument("--split", default="train",
                   help="qrels split of a BEIR folder: train, the split mine, train, export, inspect and tune read "
                        "(it was test before; evaluate keeps test, the held-out split); a missing split is an error "
                        "that lists the splits there are (default: train)")
    i.set_defaults(func=run_info)


def run_download(args: argparse.Namespace) -> int:
    from hardneg.data.download import download_beir

    path = download_beir(args.name, args.dir, base_url=args.url)
    print(path)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from hardneg.data.load import load_data

    data = load_data(args.spec, args.split)
    summary = data.summary()
    width = max(map(len, summary))
    for k, v in summary.items():
        shown = "-" if v is None else f"{v:.2f}" if isinstance(v, float) else v
        print(f"{k:<{width}}  {shown}")
    for w in data.warnings:
        print(f"  warning: {w}")
    return 0
