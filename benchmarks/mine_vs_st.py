"""hardneg mining vs sentence-transformers' ``mine_hard_negatives``: same data, model and settings.

    HF_HUB_OFFLINE=1 python benchmarks/mine_vs_st.py --data ../shared/data/scifact --split train
    python benchmarks/mine_vs_st.py --limit-corpus 300            # quick run
    python benchmarks/mine_vs_st.py --backend onnx-int8           # + agreement with torch fp32

Each run is a separate process (wall time = the whole process: imports, model load, encoding,
search, mining, writing; peak RSS = that process's ``ru_maxrss``), run one after the other:

1. peer     ``mine_hard_negatives(relative_margin=1-P, num_negatives=n, sampling_strategy="top",
            output_format="n-tuple")``
2. cold     hardneg ``mine()`` with a DenseTeacher (percpos P, n negatives, top) and an EMPTY cache
3. re-run   hardneg with another method (marginpos 0.05), same cache: embeddings and the candidate
            pool are reused
4. ref      (only with ``--backend`` other than torch) hardneg torch fp32, for the agreement of the
            faster backend's negatives with fp32 negatives (share of rows identical; target >= 95%)

Rows are compared in text space, keyed by (query text, positive text): the peer deduplicates
texts, so ids are not comparable one to one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"

DISAGREEMENT_NOTES = """Why the peer's negatives can differ (sentence_transformers/util/hard_negatives.py):
* threshold: the peer drops s > p - |p|*margin (keeps s == threshold); hardneg keeps s < p - |p|*(1-P)
  (strict, as in the paper). p = the minimum positive score of the query in both.
* texts, not ids: the peer deduplicates corpus texts and queries by text; a passage whose text equals
  a positive's is removed as a positive, two queries with the same text share their positives.
* depth: the peer retrieves range_max + max_positives = 10*n + 2*max_positives candidates, hardneg
  100 (--depth); with few survivors the peer's pool can run dry first.
* shortfall: the peer's n-tuple output drops rows with fewer than n negatives; hardneg keeps them
  (counted in the meta file; --on-shortfall drop|deepen).
* ties: torch.topk orders equal scores arbitrarily; hardneg by passage id. Float32 matmul order
  (torch vs numpy BLAS) can swap two candidates whose scores differ in the last bit.
* int8 backends: hard negatives sit within ~0.01 of each other and of the percpos threshold, so
  per-channel int8 (cos 0.993 to fp32) reorders many of them (measured on SciFact train: only 36%
  of rows keep the fp32 negative set) -- int8 cannot carry the speed claim."""


def load_split(data: str, split: str, limit_corpus: int | None):
    """The split, with the corpus cut to its positives + the first ``limit_corpus`` other passages."""
    from hardneg.data.load import load_data
    from hardneg.data.types import Corpus, RetrievalData

    d = load_data(data, split)
    if not limit_corpus:
        return d
    pos = {doc for q in d.query_ids() for doc in d.relevant(q)}
    keep, others = [], 0
    for i, doc in enumerate(d.corpus.ids):
        if doc in pos or others < limit_corpus:
            keep.append(i)
            others += doc not in pos
    c = d.corpus
    corpus = Corpus([c.ids[i] for i in keep], [c.titles[i] for i in keep], [c.texts[i] for i in keep])
    return RetrievalData(corpus, d.queries, d.qrels, d.split, d.source)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_peer(args) -> dict:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    from hardneg.encode.models import resolve_model

    data = load_split(args.data, args.split, args.limit_corpus)
    texts = data.corpus.passage_texts()
    qs, ps = [], []
    for q in data.query_ids():
        for d in data.relevant(q):
            qs.append(data.queries[q]), ps.append(texts[data.corpus.index[d]])
    model = SentenceTransformer(resolve_model(args.model))
    out = mine_hard_negatives(Dataset.from_dict({"anchor": qs, "positive": ps}), model, corpus=texts,
                              relative_margin=1 - args.perc, num_negatives=args.num_negatives,
                              sampling_strategy="top", output_format="n-tuple", batch_size=32, verbose=False)
    rows = [[r["anchor"], r["positive"], [r[f"negative_{i}"] for i in range(1, args.num_negatives + 1)]]
            for r in out]
    return {"rows": rows, "pairs": len(qs)}


def worker_hardneg(args) -> dict:
    from hardneg.data.negatives import write_negatives
    from hardneg.mining.config import MineConfig
    from hardneg.mining.mine import mine
    from hardneg.mining.teachers.load import load_teacher

    data = load_split(args.data, args.split, args.limit_corpus)
    teacher = load_teacher(args.model, backend=args.backend, cache_dir=args.cache_dir)
    config = MineConfig(method=args.method, perc=args.perc, margin=args.margin, num_negatives=args.num_negatives)
    result = mine(data, [teacher], config)
    write_negatives(Path(args.out_dir) / f"hardneg-{args.tag}.jsonl", result, config)
    texts, index = data.corpus.passage_texts(), data.corpus.index
    rows = [[data.queries[r.qid], texts[index[r.pos_id]], [texts[index[d]] for d in r.neg_ids]] for r in result.rows]
    return {"rows": rows, "timings": result.timings, "shortfall": result.stats.get("shortfall")}


def run_worker(kind: str, tag: str, args, **over) -> dict:
    """Run one measured job in a fresh process; returns its result with wall time and peak RSS."""
    out = Path(args.out_dir) / f"{tag}.json"
    cmd = [sys.executable, __file__, "--worker", kind, "--tag", tag, "--result", str(out)]
    opts = {**vars(args), **over}
    for k in ("data", "split", "model", "perc", "margin", "num_negatives", "backend", "method", "cache_dir",
              "out_dir", "limit_corpus"):
        if opts.get(k) is not None:
            cmd += [f"--{k.replace('_', '-')}", str(opts[k])]
    print(f"[{tag}] {' '.join(cmd[2:])}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    res = json.loads(out.read_text())
    res["wall_s"] = time.perf_counter() - t0
    print(f"[{tag}] {res['wall_s']:.1f}s, peak RSS {res['peak_rss_mb']:.0f} MB, {len(res['rows'])} rows", flush=True)
    return res


def compare(a: list, b: list) -> dict:
    """Overlap of two row lists keyed by (query, positive): Jaccard of negative sets, identical rows."""
    ka = {(q, p): negs for q, p, negs in a}
    kb = {(q, p): negs for q, p, negs in b}
    common = [k for k in ka if k in kb]
    jac = [len(set(ka[k]) & set(kb[k])) / len(set(ka[k]) | set(kb[k])) if ka[k] or kb[k] else 1.0 for k in common]
    return {"rows_a": len(ka), "rows_b": len(kb), "common": len(common), "only_a": len(ka) - len(common),
            "only_b": len(kb) - len(common), "mean_jaccard": sum(jac) / len(jac) if jac else 0.0,
            "identical_sets": sum(set(ka[k]) == set(kb[k]) for k in common) / max(len(common), 1),
            "identical_lists": sum(ka[k] == kb[k] for k in common) / max(len(common), 1)}


def report(res: dict, args) -> str:
    peer = res["peer"]
    lines = [f"data {args.data} ({args.split}{', corpus cut to positives + ' + str(args.limit_corpus) if args.limit_corpus else ''}), "
             f"model {args.model}, percpos {args.perc}, n {args.num_negatives}, top; hardneg backend {args.backend}",
             f"{'run':<34}{'wall s':>8}{'x peer':>8}{'peak RSS MB':>13}{'rows':>7}"]
    for tag, label in (("peer", "peer mine_hard_negatives (cold)"), ("cold", f"hardneg cold ({args.backend})"),
                       ("rerun", "hardneg re-run, marginpos 0.05"), ("ref", "hardneg torch fp32 (reference)")):
        if tag in res:
            r = res[tag]
            lines.append(f"{label:<34}{r['wall_s']:>8.1f}{r['wall_s'] / peer['wall_s']:>8.3f}"
                         f"{r['peak_rss_mb']:>13.0f}{len(r['rows']):>7}")
    lines.append("targets: cold <= 0.5x peer, re-run <= 0.05x peer")
    for name, (a, b) in {"hardneg cold vs peer": ("cold", "peer"), "hardneg fp32 vs peer": ("ref", "peer"),
                         f"{args.backend} vs torch fp32 (all rows)": ("cold", "ref")}.items():
        if a in res and b in res:
            c = compare(res[a]["rows"], res[b]["rows"])
            res.setdefault("overlap", {})[name] = c
            lines.append(f"{name}: {c['common']} common rows (only hardneg {c['only_a']}, only other {c['only_b']}); "
                         f"mean Jaccard {c['mean_jaccard']:.4f}; identical sets {c['identical_sets']:.2%}, "
                         f"identical ordered {c['identical_lists']:.2%}")
    sf = res["cold"].get("shortfall") or {}
    lines.append(f"hardneg rows short of n (kept): {sf.get('rows_short_initially', '?')}; "
                 f"peer pairs in: {peer['pairs']}, rows out: {len(peer['rows'])}")
    return "\n".join(lines + ["", DISAGREEMENT_NOTES])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="BEIR folder (default: ../shared/data/scifact)")
    p.add_argument("--split", default="train")
    p.add_argument("--model", default="minilm")
    p.add_argument("--perc", type=float, default=0.95, help="PercPos P; the peer gets relative_margin = 1 - P")
    p.add_argument("--margin", type=float, default=0.05, help="margin of the marginpos re-run")
    p.add_argument("--num-negatives", type=int, default=4)
    p.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"],
                   help="hardneg encoder backend of the cold run (not torch: adds a torch fp32 reference run)")
    p.add_argument("--limit-corpus", type=int, default=None, help="keep the positives + this many other passages")
    p.add_argument("--ref-cache-dir", default=None,
                   help="cache for the fp32 reference run (default: $HARDNEG_CACHE; it is not timed against targets)")
    p.add_argument("--out-dir", default=None, help="where results go (default: a temp dir)")
    p.add_argument("--worker", choices=["peer", "hardneg"], help=argparse.SUPPRESS)
    p.add_argument("--tag", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--method", default="percpos", help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        res = (worker_peer if args.worker == "peer" else worker_hardneg)(args)
        res["peak_rss_mb"] = peak_rss_mb()
        Path(args.result).write_text(json.dumps(res))
        return 0
    args.out_dir = args.out_dir or tempfile.mkdtemp(prefix="mine_vs_st-")
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    cold_cache = tempfile.mkdtemp(prefix="hardneg-cold-cache-")
    try:
        res = {"peer": run_worker("peer", "peer", args)}
        res["cold"] = run_worker("hardneg", "cold", args, cache_dir=cold_cache)
        res["rerun"] = run_worker("hardneg", "rerun", args, cache_dir=cold_cache, method="marginpos")
        if args.backend != "torch":
            ref_cache = args.ref_cache_dir or os.environ.get("HARDNEG_CACHE") or tempfile.mkdtemp()
            res["ref"] = run_worker("hardneg", "ref", args, cache_dir=ref_cache, backend="torch")
    finally:
        shutil.rmtree(cold_cache, ignore_errors=True)
    text = report(res, args)
    print("\n" + text)
    summary = {k: {kk: vv for kk, vv in v.items() if kk != "rows"} for k, v in res.items() if k != "overlap"}
    summary["overlap"] = res.get("overlap", {})
    (Path(args.out_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
    (Path(args.out_dir) / "report.txt").write_text(text + "\n")
    print(f"\nresults in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
