"""``hardneg evaluate``: NDCG@10 and friends of an embedding model on a retrieval split."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  hardneg evaluate --model minilm --data ../shared/data/scifact --split test
  hardneg evaluate --model out/checkpoint --data scifact --output results.json --backend onnx-int8

metrics (as MTEB computes them, with pytrec_eval): ndcg@10 (main), ndcg@100, map@100,
recall@10, recall@100, mrr@10, p@10. A document whose id equals the query id is ignored
(BEIR/MTEB), unless --keep-identical-ids. --output X.json writes the seven means as flat JSON
{metric: value}, X.per_query.json with every query's value {metric: {qid: value}} (what
'hardneg compare X.json Y.json' tests for a significant difference) and X.json.meta.json
(version, model and data fingerprints, split, backend, timings, the per-query file's name)."""

SUMMARY = "evaluate an embedding model on a retrieval split (NDCG@10, MRR@10, ...)"  # the line in `hardneg --help`


def register(subparsers) -> None:
    from hardneg.core.options import add_config_args
    from hardneg.evaluation.run import EvalConfig

    p = subparsers.add_parser(
        "evaluate", help=SUMMARY,
        description="Encode the split's queries and the whole corpus (embeddings cached), retrieve "
        "the exact top-k by dot product, and score the ranking as MTEB does.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, EvalConfig, only=("model", "data", "split"))
    p.add_argument("--output",
                   help="write the metric means here as JSON (+ its .per_query.json and OUTPUT.meta.json)")
    add_config_args(p, EvalConfig, exclude=("model", "data", "split"))
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def format_table(metrics: dict[str, float]) -> str:
    """Two aligned columns, NDCG@10 first.

    >>> print(format_table({"mrr@10": 0.5, "ndcg@10": 0.25}))
    metric       value
    ndcg@10     0.2500
    mrr@10      0.5000
    """
    order = sorted(metrics, key=lambda m: (m != "ndcg@10",))
    lines = [f"{'metric':<10} {'value':>7}"] + [f"{m:<10} {metrics[m]:>7.4f}" for m in order]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from hardneg.cli.guard import data_paths, model_paths
    from hardneg.core.options import config_from_args
    from hardneg.core.outputs import guard_output
    from hardneg.evaluation.run import EvalConfig, per_query_path

    config = config_from_args(EvalConfig, args)  # validate before any loading
    also = [per_query_path(args.output)] if args.output else []
    with guard_output(args.output, inputs=[*data_paths(config.data), *model_paths(config.model)], also=also):
        return _run(args, config)


def _run(args: argparse.Namespace, config) -> int:
    from hardneg.data.load import load_data
    from hardneg.encode.load import load_encoder
    from hardneg.evaluation.run import evaluate, per_query_path, write_eval

    data = load_data(config.data, config.split)
    encoder = load_encoder(config.model, **config.encoder_kwargs())
    res = evaluate(encoder, data, k=config.k, cache_dir=config.cache_dir, progress=not args.no_progress,
                   ignore_identical_ids=not config.keep_identical_ids)
    print(f"{config.model} on {data.source or config.data} ({config.split}, {res.n_queries} queries, "
          f"{len(data.corpus)} passages)")
    print(format_table(res.metrics))
    t = res.timings
    print(f"time: encode {t['encode_s']:.1f}s, search {t['search_s']:.1f}s, metrics {t['metrics_s']:.2f}s")
    if args.output:
        write_eval(args.output, res, config, data=data, model_fingerprint=getattr(encoder, "fingerprint", None))
        print(f"wrote {args.output} (per-query values: {per_query_path(args.output)})")
    return 0
