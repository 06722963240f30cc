"""``hardneg evaluate``: NDCG@10 and friends of an embedding model on a retrieval split."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  hardneg evaluate --model minilm --data ../shared/data/scifact --split test
  hardneg evaluate --model out/checkpoint --data scifact --output results.json --backend onnx-int8

metrics (as MTEB computes them, with pytrec_eval): ndcg@10 (main), ndcg@100, map@100,
recall@10, recall@100, mrr@10, p@10. A document whose id equals the query id is ignored
(BEIR/MTEB), unless --keep-identical-ids. --output writes the seven means as JSON plus
OUTPUT.meta.json (version, model and data fingerprints, split, backend, timings)."""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate an embedding model on a retrieval split (NDCG@10, MRR@10, ...)",
        description="Encode the split's queries and the whole corpus (embeddings cached), retrieve "
        "the exact top-k by dot product, and score the ranking as MTEB does.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="local model path, hub id (offline when cached) or alias 'minilm'")
    p.add_argument("--data", required=True,
                   help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv) or a dataset name")
    p.add_argument("--split", default="test", help="qrels split to evaluate (default: test)")
    p.add_argument("--output", type=Path, help="write the metric means here as JSON (+ OUTPUT.meta.json)")
    p.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default="torch",
                   help="inference runtime (default: torch)")
    p.add_argument("--batch-size", type=int, default=32, help="encoding batch size (default: 32)")
    p.add_argument("--max-length", type=int, default=None, help="max tokens per text (default: the model's)")
    p.add_argument("--query-prompt", default="", help="text prepended to every query, e.g. 'query: '")
    p.add_argument("--passage-prompt", default="", help="text prepended to every passage, e.g. 'passage: '")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default: $HARDNEG_CACHE or ~/.cache/hardneg)")
    p.add_argument("--k", type=int, default=100, help="retrieval depth per query (default: 100)")
    p.add_argument("--keep-identical-ids", action="store_true",
                   help="do not drop a retrieved document whose id equals the query id")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def load_split(spec: str, split: str):
    """``data.load_data`` when present (dirs, names, JSONL, parquet ...), else a BEIR folder."""
    from hardneg import data as data_mod

    loader = getattr(data_mod, "load_data", None) or data_mod.load_beir
    return loader(spec, split)


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
    from hardneg.encode.load import load_encoder
    from hardneg.evaluation.run import evaluate
    from hardneg.core.files import write_json
    from hardneg.core.provenance import write_meta

    if args.batch_size < 1 or (args.max_length is not None and args.max_length < 1) or args.k < 1:
        from hardneg.core.errors import HardnegError

        raise HardnegError("--batch-size, --max-length and --k must be positive integers")
    data = load_split(args.data, args.split)
    enc_kwargs = dict(backend=args.backend, max_length=args.max_length, batch_size=args.batch_size,
                      query_prompt=args.query_prompt, passage_prompt=args.passage_prompt)
    if args.cache_dir:
        enc_kwargs["cache_dir"] = args.cache_dir
    encoder = load_encoder(args.model, **enc_kwargs)
    res = evaluate(encoder, data, k=args.k, cache_dir=args.cache_dir, progress=not args.no_progress,
                   ignore_identical_ids=not args.keep_identical_ids)
    print(f"{args.model} on {data.source or args.data} ({args.split}, {res.n_queries} queries, "
          f"{len(data.corpus)} passages)")
    print(format_table(res.metrics))
    t = res.timings
    print(f"time: encode {t['encode_s']:.1f}s, search {t['search_s']:.1f}s, metrics {t['metrics_s']:.2f}s")
    if args.output:
        write_json(args.output, res.metrics)
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
        write_meta(args.output, config, model_fingerprint=getattr(encoder, "fingerprint", None),
                   data_fingerprint=data.fingerprint(), data_source=data.source, split=args.split,
                   backend=args.backend, timings=t, n_queries=res.n_queries, n_passages=len(data.corpus))
        print(f"wrote {args.output}")
    return 0
