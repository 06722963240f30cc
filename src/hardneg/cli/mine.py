"""``hardneg mine``: mine hard negatives with one or more teachers into a JSONL file + meta."""

from __future__ import annotations

import argparse
import time

DESCRIPTION = """\
Mine hard negatives for every (query, positive) of a split. Candidates come from each --teacher
(top --depth per query), known positives are removed by id, then a method filters them
(s = candidate's teacher score, p = the query's positive score, --positive-score min by default):
  naive      keep all: the top-n non-positives (most false negatives)
  shifted    skip the top --shift non-positives (paper's best N = 10)
  abs        keep s < --max-score (paper's best 0.7)
  marginpos  keep s < p - --margin (paper's best 0.05)
  percpos    keep s < p - |p|*(1 - --perc), i.e. s < p*perc for p > 0 (paper's best and the default: 0.95)
Then --select picks --num-negatives of the survivors: top (highest), sampled (softmax(score/T)
without replacement from the top --sample-from), top1-sampled (best, then sampled; the paper's
best by a hair). Several teachers combine with --ensemble (paper's best: intra-nodedup).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("mine", help="mine hard negatives (NV-Retriever methods) into JSONL",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", action="append", required=True, metavar="MODEL",
                   help="teacher: a model path/alias (e.g. minilm), 'bm25' or 'random'; repeat for an ensemble")
    p.add_argument("--data", required=True, help="data folder (BEIR layout) or dataset name")
    p.add_argument("--split", default="train", help="qrels split to mine (default: train)")
    p.add_argument("--output", required=True, help="output JSONL; a .meta.json is written beside it")
    m = p.add_argument_group("method")
    m.add_argument("--method", default="percpos", choices=["naive", "shifted", "abs", "marginpos", "percpos"],
                   help="filter (default: percpos, the paper's best)")
    m.add_argument("--shift", type=int, default=10, help="shifted: skip this many top non-positives (default 10)")
    m.add_argument("--max-score", type=float, default=0.7, help="abs: keep scores below this (default 0.7)")
    m.add_argument("--margin", type=float, default=0.05, help="marginpos: keep s < p - margin (default 0.05)")
    m.add_argument("--perc", type=float, default=0.95, help="percpos: keep s < p - |p|(1-perc) (default 0.95)")
    m.add_argument("--min-score", type=float, default=None, help="optional floor: also require s >= this")
    m.add_argument("--positive-score", default="min", choices=["min", "mean", "max"],
                   help="p from several positives (default: min, as NVIDIA's code)")
    s = p.add_argument_group("selection")
    s.add_argument("--num-negatives", type=int, default=4, help="negatives per row (default 4)")
    s.add_argument("--select", default="top", choices=["top", "sampled", "top1-sampled"], help="default: top")
    s.add_argument("--sample-from", type=int, default=10, help="sampled: from the top K survivors (default 10)")
    s.add_argument("--sample-temperature", type=float, default=0.1,
                   help="sampled: softmax temperature on the teacher's score scale (default 0.1; ~1-2 for BM25)")
    s.add_argument("--depth", type=int, default=100, help="candidates retrieved per query before filtering (default 100)")
    s.add_argument("--on-shortfall", default="keep", choices=["keep", "drop", "deepen"],
                   help="rows with fewer than n survivors: keep them short, drop them, or re-search deeper (all counted)")
    s.add_argument("--ensemble", default="intra-nodedup", choices=["cross-sample", "intra-dedup", "intra-nodedup"],
                   help="how several teachers combine (default: intra-nodedup, the paper's best)")
    s.add_argument("--seed", type=int, default=42, help="random seed; same seed -> identical output (default 42)")
    s.add_argument("--anchor-only", action="store_true",
                   help="only each query's first positive is known (for the false-negative analysis of 'inspect')")
    e = p.add_argument_group("teacher models")
    e.add_argument("--backend", default="torch", help="encoder backend for dense teachers (default: torch)")
    e.add_argument("--batch-size", type=int, default=32, help="encoding batch size (default 32)")
    e.add_argument("--max-length", type=int, default=None, help="max tokens per text (default: the model's)")
    e.add_argument("--query-prompt", default="", help="prefix for queries, e.g. 'query: '")
    e.add_argument("--passage-prompt", default="", help="prefix for passages, e.g. 'passage: '")
    e.add_argument("--rescore-with", default=None, metavar="CROSS_ENCODER",
                   help="rescore each teacher's pool with this cross-encoder before filtering")
    e.add_argument("--cache-dir", default=None, help="embedding/pool cache (default: $HARDNEG_CACHE or ~/.cache/hardneg)")
    e.add_argument("--search-backend", default="exact", choices=["exact", "ivf-flat", "hnsw", "ivf-pq"],
                   help="dense teachers' corpus search: exact (default) or a FAISS index (faster, approximate)")
    e.add_argument("--recall-check", type=int, default=0, metavar="N",
                   help="with a FAISS backend: compare N sampled queries with exact search; recall@depth goes "
                        "into the meta file (default 0: off)")
    add_engine_args(p)
    p.set_defaults(func=run)


def add_engine_args(p) -> None:
    """--engine / --ray-address / --workers / --max-memory / --shard-dtype (shared by commands that encode)."""
    g = p.add_argument_group("scale (see docs/scale.md)")
    g.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="where dense teachers encode and search: this process (default) or a Ray cluster; "
                        "same output either way")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster to join ('auto', 'ray://head:10001'); default: start a local Ray instance")
    g.add_argument("--workers", type=int, default=None,
                   help="ray: encoding actors (default: one per GPU, else one per CPU)")
    g.add_argument("--cpus-per-worker", type=float, default=1.0,
                   help="ray: CPUs (and torch threads) per encoding actor / search task (default 1). Output is "
                        "byte-identical to --engine local when workers run the same kernels: same device and "
                        "threads as the local run (torch may split some reductions by thread count)")
    g.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="bound the corpus vectors held in RAM (e.g. 2GB): the corpus is encoded into shards on disk "
                        "(resumable) and search streams them; default: hold the whole matrix")
    g.add_argument("--shard-dtype", default="float32", choices=["float32", "float16"],
                   help="on-disk dtype of corpus shards (float16 halves disk and memory; default float32)")


def engine_config(args):
    from hardneg.scale.engine import EngineConfig
    from hardneg.scale.shards import parse_bytes

    return EngineConfig(name=args.engine, address=args.ray_address, workers=args.workers,
                        cpus_per_worker=args.cpus_per_worker,
                        max_memory=parse_bytes(args.max_memory) if args.max_memory else None,
                        shard_dtype=args.shard_dtype)


def _config(args):
    from hardneg.mining.config import MineConfig

    return MineConfig(method=args.method, shift=args.shift, max_score=args.max_score, margin=args.margin,
                      perc=args.perc, min_score=args.min_score, positive_score=args.positive_score,
                      num_negatives=args.num_negatives, select=args.select, sample_from=args.sample_from,
                      sample_temperature=args.sample_temperature, depth=args.depth,
                      on_shortfall=args.on_shortfall, ensemble=args.ensemble, seed=args.seed,
                      anchor_only=args.anchor_only)


def _load_data(spec: str, split: str):
    try:
        from hardneg.data.load import load_data
    except ImportError:
        from hardneg.data.beir import load_beir as load_data
    return load_data(spec, split)


def run(args) -> int:
    from hardneg.data.negatives import write_negatives
    from hardneg.mining.mine import mine
    from hardneg.mining.teachers.load import load_teacher

    t0 = time.perf_counter()
    config = _config(args)  # validate before any loading
    engine = engine_config(args)
    data = _load_data(args.data, args.split)
    teachers = [load_teacher(t, backend=args.backend, batch_size=args.batch_size, max_length=args.max_length,
                             query_prompt=args.query_prompt, passage_prompt=args.passage_prompt,
                             rescore_with=args.rescore_with, cache_dir=args.cache_dir, seed=args.seed,
                             search_backend=args.search_backend, recall_check=args.recall_check, engine=engine)
                for t in args.teacher]
    result = mine(data, teachers, config)
    result.timings["total_s"] = round(time.perf_counter() - t0, 3)
    out = write_negatives(args.output, result, config, data=str(args.data), split=args.split,
                          teacher_specs=list(args.teacher), rescore_with=args.rescore_with)
    st = result.stats
    sf = st["shortfall"]
    print(f"mined {st['rows']} rows for {st['queries']} queries with {', '.join(args.teacher)} "
          f"({config.method}, {config.select}, n={config.num_negatives})")
    print(f"candidates seen {st['candidates_seen']}; removed: "
          + ", ".join(f"{k} {v}" for k, v in st["removed"].items()))
    print(f"rows short of {config.num_negatives}: {sf['rows_short_initially']} ({config.on_shortfall}; "
          f"{sf['rows_short_in_output']} short in output, {sf['dropped']} dropped)")
    print(f"time: candidates {result.timings['candidates_s']:.1f}s, mining {result.timings['mining_s']:.1f}s, "
          f"total {result.timings['total_s']:.1f}s")
    for t, info in zip(result.teachers, result.search):
        sh = info.get("corpus_shards")
        if sh:
            print(f"{t['name']}: corpus in {sh['shards']} {sh['dtype']} shards at {sh['path']} "
                  f"(engine {info['engine']['name']})")
        rc = info.get("recall_check")
        if rc:
            print(f"{t['name']}: {rc['queries']} sampled queries, recall@{rc['depth']} vs exact = {rc['recall']:.4f}")
    print(f"wrote {out}")
    return 0
