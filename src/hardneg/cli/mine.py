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

SUMMARY = "mine hard negatives (NV-Retriever methods) into JSONL"  # the line in `hardneg --help`


def register(subparsers) -> None:
    from hardneg.core.options import add_config_args
    from hardneg.mining.config import MineConfig
    from hardneg.mining.teachers.load import TeacherSettings

    p = subparsers.add_parser("mine", help=SUMMARY,
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", action="append", required=True, metavar="MODEL",
                   help="teacher: a model path/alias (e.g. minilm), 'bm25' or 'random'; repeat for an ensemble")
    p.add_argument("--judge-teacher", action="append", default=[], metavar="MODEL",
                   help="a teacher that only votes in the agreement judge (its candidates are never negatives), "
                        "e.g. bm25 judging a dense teacher; repeatable (default: none)")
    p.add_argument("--data", required=True, help="BEIR folder, dataset name, pairs JSONL, parquet / JSONL table, "
                   "save_to_disk or hub-style folder")
    p.add_argument("--split", default="train", help="qrels split to mine (default: train)")
    p.add_argument("--output", required=True, help="output JSONL; a .meta.json is written beside it")
    add_column_args(p)
    add_config_args(p, MineConfig)
    add_config_args(p, TeacherSettings)
    add_engine_args(p)
    p.set_defaults(func=run)


def add_column_args(p) -> None:
    """--anchor-column / --positive-column: the text columns of a table input (also used by export)."""
    p.add_argument("--anchor-column", default=None, metavar="NAME",
                   help="table input (parquet, HF datasets folder): the query column (default: query|anchor|question, "
                        "else the first column when the first two hold text, as sentence-transformers)")
    p.add_argument("--positive-column", default=None, metavar="NAME",
                   help="table input: the positive column (default: pos|positive|positives|answer, else the second column)")


def add_engine_args(p) -> None:
    """The ``EngineConfig`` flags (--engine, --ray-address, --workers, --cpus-per-worker, --max-memory,
    --shard-dtype) of commands that encode."""
    from hardneg.core.options import add_config_args
    from hardneg.scale.engine import EngineConfig

    add_config_args(p, EngineConfig, exclude=ENGINE_INTERNAL)


ENGINE_INTERNAL = ("gpus_per_worker", "shard_rows", "search_block")  # library-only EngineConfig knobs


def engine_config(args):
    from hardneg.core.options import config_from_args
    from hardneg.scale.engine import EngineConfig

    return config_from_args(EngineConfig, args)


def run(args) -> int:
    """Guard the output (its audit file too), then mine; a rerun overwrites the previous result."""
    from hardneg.cli.guard import data_paths, model_paths
    from hardneg.core.outputs import guard_output
    from hardneg.data.negatives import audit_path

    inputs = [*data_paths(args.data),
              *model_paths(*args.teacher, *args.judge_teacher, getattr(args, "rescore_with", None))]
    also = [audit_path(args.output)] if str(args.output).strip() else []
    with guard_output(args.output, inputs=inputs, also=also):
        return _run(args)


def _run(args) -> int:
    from hardneg.core.options import config_from_args
    from hardneg.data.load import load_data
    from hardneg.data.negatives import audit_path, write_negatives
    from hardneg.mining.config import MineConfig
    from hardneg.mining.mine import mine
    from hardneg.mining.stats import warning_messages
    from hardneg.mining.teachers.judge import load_judge
    from hardneg.mining.teachers.load import TeacherSettings, load_teacher, unused_settings

    t0 = time.perf_counter()
    config = config_from_args(MineConfig, args)  # validate before any loading
    settings = config_from_args(TeacherSettings, args)
    unused = unused_settings([*args.teacher, *args.judge_teacher], settings)
    if unused:
        print(f"warning: {', '.join(unused)} apply to dense teachers only; "
              f"{', '.join(dict.fromkeys([*args.teacher, *args.judge_teacher]))} ignore them")
    engine = engine_config(args)
    data = load_data(args.data, args.split, anchor_column=args.anchor_column, positive_column=args.positive_column)
    teachers = [load_teacher(t, settings, seed=config.seed, engine=engine) for t in args.teacher]
    voters = [load_teacher(t, settings, seed=config.seed, engine=engine) for t in args.judge_teacher]
    judge = load_judge(config, len(teachers) + len(voters), batch_size=settings.batch_size)
    result = mine(data, teachers, config, judge=judge, voters=voters)
    result.timings["total_s"] = round(time.perf_counter() - t0, 3)
    out = write_negatives(args.output, result, config, data=str(args.data), split=args.split,
                          teacher_specs=list(args.teacher), judge_teachers=list(args.judge_teacher),
                          rescore_with=settings.rescore_with,
                          teacher_settings=settings)
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
    if "judge" in st:
        j, q = st["judge"], st["judge"]["held_out"]
        voters = f", voters {', '.join(j['voters'])}" if j.get("voters") else ""
        print(f"judge {j['judge']}{voters}: {j['flagged']} flagged ({j['action']}: {j['removed']} removed, "
              f"{j.get('relabeled', 0)} relabelled as positives, {j['queries_dropped']} queries dropped); "
              f"audit in {audit_path(out)}")
        if q and q["flagged"]:
            print(f"judge vs held-out positives: precision {q['precision']:.3f}, recall {q['recall']:.3f}")
    for message in warning_messages(st, config):  # repeated last, so they are not lost above the counts
        print(f"warning: {message}")
    print(f"wrote {out}")
    return 0
