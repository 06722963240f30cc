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

# The peers' parameters -> hardneg's flags: (peer parameter, example hardneg argv, note). Semantics as
# hardneg.compat.window / compat.sentence_transformers (the drop-in) implement them; tests parse every argv.
# An argv starting with "export" is `hardneg export`'s; an empty one has no CLI counterpart.
ST_MAPPING = (
    ("range_min=10", ("--method", "shifted", "--shift", "10"),
     "skip the top 10 non-positives (the peer cuts its window after its score rules; shifted is a method "
     "of its own, so it does not stack with a margin)"),
    ("range_max=100", ("--depth", "100"), "candidates retrieved per query, positives included (the peer "
     "retrieves range_max + the most positives of an anchor)"),
    ("max_score=0.7", ("--method", "abs", "--max-score", "0.7"), "keep s < 0.7 (the peer keeps s <= 0.7)"),
    ("min_score=0.2", ("--min-score", "0.2"), "floor: keep s >= 0.2 (as the peer), with any --method"),
    ("absolute_margin=0.05", ("--method", "marginpos", "--margin", "0.05"), "keep s < p - 0.05 (peer: <=)"),
    ("relative_margin=0.05", ("--method", "percpos", "--perc", "0.95"),
     "--perc = 1 - r: keep s < p - |p| * 0.05 (peer: <=); NV-Retriever's TopK-PercPos 95%"),
    ("(several positives)", ("--positive-score", "min"), "p = the anchor's lowest positive score, as the peer"),
    ("num_negatives=3", ("--num-negatives", "3"), "negatives per (query, positive) row (default here 4)"),
    ('sampling_strategy="top"', ("--select", "top"), "the highest-scoring survivors"),
    ('sampling_strategy="random"', ("--select", "sampled", "--sample-from", "30", "--sample-temperature", "100"),
     "softmax(s / T) draws without replacement from the top --sample-from survivors (the peer draws "
     "uniformly from its window; a large T approaches that)"),
    ("use_faiss=True", ("--search-backend", "exact"), "exact blocked search already (as the peer's flat "
     "index); ivf-flat / hnsw / ivf-pq: approximate FAISS indexes"),
    ("cross_encoder=CE", ("--rescore-with", "CE"), "rescore every pool with CE before the rules (always; the "
     "peer only when a score rule is set)"),
    ("batch_size=32", ("--batch-size", "32"), "encoding (and cross-encoder) batch size"),
    ('query_prompt="query: "', ("--query-prompt", "query: "), "*_prompt_name: give the prompt's text"),
    ('corpus_prompt="passage: "', ("--passage-prompt", "passage: "), ""),
    ("anchor_column_name=q", ("--anchor-column", "q"), "and positive_column_name -> --positive-column"),
    ("cache_folder=DIR", ("--cache-dir", "DIR"), "hardneg's cache root (embeddings and pools)"),
    ("use_multi_process=True", ("--engine", "ray"), "encode on Ray workers (docs/scale.md)"),
    ('output_format="n-tuple"', ("export", "--format", "sentence-transformers", "--st-format", "n-tuple"),
     "mine writes ids; `hardneg export` writes the peer's table (triplet: --st-format triplet)"),
    ("output_scores=True", ("export", "--format", "sentence-transformers", "--scores"), "the scores column"),
    ("include_positives=True", (), "none in the CLI: hardneg.mine_hard_negatives(include_positives=True)"),
)
FE_MAPPING = (
    ("range_for_sampling 10-210", ("--method", "shifted", "--shift", "10", "--depth", "210", "--select", "sampled",
                                   "--sample-from", "200", "--sample-temperature", "100"),
     "FlagEmbedding skips the top 10 of the ranking with positives, then draws uniformly; hardneg skips 10 "
     "non-positives and draws softmax(s / T)"),
    ("negative_number 15", ("--num-negatives", "15"), "short rows: FlagEmbedding fills them with random "
     "passages; here --on-shortfall keep / drop / deepen (counted)"),
    ("query_instruction_for_retrieval", ("--query-prompt", "Represent this sentence for searching: "), ""),
    ("embedder_query/passage_max_length", ("--max-length", "512"), "one limit for queries and passages"),
    ("batch_size 3000", ("--batch-size", "3000"), "encoding batch size"),
    ("use_gpu_for_searching", ("--search-backend", "exact"), "no GPU search: exact blocked search on CPU, or a "
     "FAISS index (ivf-flat, hnsw, ivf-pq)"),
    ("input_file / candidate_pool", ("--data", "pairs.jsonl"), "a {query, pos} JSONL or a BEIR folder; the "
     "candidates are the data's corpus"),
    ("output_file", ("export", "--format", "flagembedding", "--output", "fe.jsonl"), "mine --output writes "
     "ids; export writes FlagEmbedding's {query, pos, neg} JSONL"),
)


def mapping_epilog() -> str:
    """The peer-parameter table at the end of ``mine --help``."""
    import textwrap

    def block(title: str, rows) -> list[str]:
        out = [title]
        for peer, argv, note in rows:
            flags = " ".join(f"'{a}'" if " " in a else a for a in argv) if argv else "-"
            flags = ("hardneg " + flags) if argv[:1] == ("export",) else flags
            out.append(f"  {peer:<34} {flags}" if len(peer) <= 34 else f"  {peer}\n  {'':<34} {flags}")
            out += textwrap.wrap(note, 100, initial_indent=" " * 39, subsequent_indent=" " * 39,
                                 break_on_hyphens=False)
        return out

    lines = ["sentence-transformers and FlagEmbedding parameters -> hardneg (s = a candidate's score, p = the "
             "positive's):"]
    lines += block("sentence-transformers mine_hard_negatives(...):", ST_MAPPING)
    lines += block("FlagEmbedding hn_mine (scripts/hn_mine.py):", FE_MAPPING)
    lines.append("Drop-in for Python code: from hardneg import mine_hard_negatives (the peer's call, unchanged).")
    return "\n".join(lines)


def register(subparsers) -> None:
    from hardneg.core.options import ListAction, add_config_args
    from hardneg.mining.config import MineConfig
    from hardneg.mining.teachers.load import TeacherSettings

    p = subparsers.add_parser("mine", help=SUMMARY, description=DESCRIPTION, epilog=mapping_epilog(),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", action=ListAction, required=True, metavar="MODEL",
                   help="teacher: a model path/alias (e.g. minilm), 'bm25', 'random', or 'fuse:minilm+bm25' (one hybrid "
                        "teacher: the pools fused by per-query z-scores; 'fuse:minilm=2+bm25' weighs them 2:1); several "
                        "(an ensemble): repeat the flag or give a comma list, as in tune and ablate")
    p.add_argument("--judge-teacher", action=ListAction, default=(), metavar="MODEL",
                   help="a teacher that only votes in the agreement judge (its candidates are never negatives), "
                        "e.g. bm25 judging a dense teacher; repeat or comma list (default: none)")
    p.add_argument("--data", required=True, help="BEIR folder, dataset name, pairs JSONL, parquet / JSONL table, "
                   "save_to_disk or hub-style folder")
    p.add_argument("--split", default="train", help="qrels split to mine (default: train, as train, export, "
                   "inspect, tune and data info; evaluate's default is test, the held-out split)")
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
