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
(version, model and data fingerprints, split, backend, timings, the per-query file's name).
--mteb-json DIR writes the result in MTEB's layout, DIR/MODEL/REVISION/TASK.json + model_meta.json
(what mteb.ResultCache reads under its results/ folder): MTEB's ndcg/map/recall/precision/mrr at
its cut-offs 1,3,5,10,20,100 (1000 with --k 1000); TASK from the data folder's name (scifact ->
SciFact) unless --mteb-task-name; REVISION = the encoder's fingerprint."""

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
                   help="write the metric means here as JSON (+ its .per_query.json and OUTPUT.meta.json) "
                        "(default: printed only)")
    p.add_argument("--mteb-json", metavar="DIR",
                   help="also write the result in MTEB's result layout under DIR (default: not written)")
    p.add_argument("--mteb-task-name", metavar="NAME",
                   help="task name in the MTEB result (default: MTEB's name of a BEIR folder, e.g. SciFact, "
                        "else the folder's name)")
    p.add_argument("--card", action="store_true",
                   help="write this result into the evaluation table of the model folder's README.md (a model "
                        "trained by 'hardneg train'; the row of the same --data and --split is replaced) (default: off)")
    add_config_args(p, EvalConfig, exclude=("model", "data", "split"))
    p.add_argument("--no-progress", action="store_true",
                   help="hide progress bars, model-loading bars included (default: off, bars shown on a terminal)")
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
    if getattr(args, "card", False):
        from hardneg.encode.models import resolve_model
        from hardneg.training.card import card_path

        card_path(resolve_model(config.model))  # refuse before the work, not after it
    also = [per_query_path(args.output)] if args.output else []
    inputs = [*data_paths(config.data), *model_paths(config.model)]
    with guard_output(args.output, inputs=inputs, also=also), \
            guard_output(getattr(args, "mteb_json", None), inputs=inputs, kind="dir", flag="--mteb-json"):
        return _run(args, config)


def _run(args: argparse.Namespace, config) -> int:
    from hardneg.data.load import load_data
    from hardneg.encode.load import load_encoder
    from hardneg.evaluation.metrics import DEFAULT_METRICS
    from hardneg.evaluation.run import evaluate, per_query_path, write_eval

    data = load_data(config.data, config.split)
    encoder = load_encoder(config.model, **config.encoder_kwargs())
    mteb_dir = getattr(args, "mteb_json", None)
    extra = _mteb_metrics(config.k) if mteb_dir else []
    res = evaluate(encoder, data, k=config.k, cache_dir=config.cache_dir, progress=not args.no_progress,
                   ignore_identical_ids=not config.keep_identical_ids, metrics=[*DEFAULT_METRICS, *extra])
    every = res.metrics
    res.metrics = {m: every[m] for m in DEFAULT_METRICS}  # the table and --output keep their seven metrics
    res.per_query = {m: res.per_query[m] for m in DEFAULT_METRICS}
    print(f"{config.model} on {data.source or config.data} ({config.split}, {res.n_queries} queries, "
          f"{len(data.corpus)} passages)")
    print(format_table(res.metrics))
    t = res.timings
    print(f"time: encode {t['encode_s']:.1f}s, search {t['search_s']:.1f}s, metrics {t['metrics_s']:.2f}s")
    if args.output:
        write_eval(args.output, res, config, data=data, model_fingerprint=getattr(encoder, "fingerprint", None))
        print(f"wrote {args.output} (per-query values: {per_query_path(args.output)})")
    if getattr(args, "card", False):
        print(f"wrote the result into {_update_card(config, data, res, encoder)}")
    if mteb_dir:
        print(f"wrote {_write_mteb(args, config, encoder, data, every, res.timings)} (MTEB's result layout)")
    return 0


def _update_card(config, data, res, encoder):
    from hardneg.encode.models import resolve_model
    from hardneg.training.card import update_card_evaluation

    return update_card_evaluation(resolve_model(config.model), {
        "data": config.data, "split": config.split, "n_queries": res.n_queries, "metrics": res.metrics,
        "encoder_fingerprint": getattr(encoder, "fingerprint", None), "data_fingerprint": data.fingerprint()})


def _mteb_metrics(k: int) -> list[str]:
    from hardneg.evaluation.mteb_results import mteb_metric_names

    return mteb_metric_names(k)


def _write_mteb(args, config, encoder, data, metrics: dict, timings: dict):
    from hardneg.encode.base import encoder_dim
    from hardneg.evaluation.mteb_results import model_name_for, task_name_for, write_mteb_results

    return write_mteb_results(
        args.mteb_json, {m: metrics[m] for m in _mteb_metrics(config.k)},
        task_name=args.mteb_task_name or task_name_for(data.source or config.data),
        model_name=model_name_for(config.model), revision=str(getattr(encoder, "fingerprint", None) or "unknown"),
        split=config.split, dataset_revision=data.fingerprint(),
        evaluation_time=round(sum(v for k, v in timings.items() if k != "encode_s"), 3),
        max_tokens=config.max_length or getattr(getattr(encoder, "model", None), "max_seq_length", None), embed_dim=encoder_dim(encoder))
