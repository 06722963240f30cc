"""Retrieval quality of mining teachers on a judged split: is a teacher stronger than the student?

Each teacher ranks the corpus for the split's queries through its own ``candidates()`` (the pool the miner
sees, cached), and the ranking is scored as ``hardneg evaluate`` scores a model (MTEB's metrics)::

    python benchmarks/teacher_quality.py --data nfcorpus --split test --teacher minilm,bm25,fuse:minilm+bm25 \
        --max-length 128

prints NDCG@10 and Recall@100 per teacher, with the paired-bootstrap interval of each against the first.
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="BEIR folder or dataset name")
    p.add_argument("--split", default="test", help="(default: test)")
    p.add_argument("--teacher", required=True, help="comma list of teacher specs; the first is the reference")
    p.add_argument("--max-length", type=int, default=None, help="dense teachers' truncation (default: the model's)")
    p.add_argument("--depth", type=int, default=100, help="pool depth (default: 100)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import hardneg as hn
    from hardneg.analysis.significance import paired_bootstrap
    from hardneg.evaluation.metrics import score_run

    data = hn.load_data(args.data, args.split)
    qids = [q for q in data.query_ids() if data.relevant(q)]
    ids = data.corpus.ids
    rows = []
    for spec in args.teacher.split(","):
        t0 = time.time()
        c = hn.load_teacher(spec, max_length=args.max_length).candidates(data, qids, args.depth)
        run = {q: {ids[d]: float(s) for d, s in zip(c.doc_idx[i], c.scores[i]) if d >= 0} for i, q in enumerate(c.qids)}
        m = score_run(data.qrels, run, ["ndcg@10", "recall@100"])
        rows.append((spec, m, time.time() - t0))
    ref = rows[0][1].per_query["ndcg@10"]
    print(f"\n{args.data} {args.split}: {len(qids)} judged queries, pool depth {args.depth}\n")
    print("| teacher | NDCG@10 | Recall@100 | Δ NDCG@10 vs first [95% CI] | seconds |")
    print("|---|---|---|---|---|")
    for spec, m, sec in rows:
        per = m.per_query["ndcg@10"]
        if per is ref:
            delta = "–"
        else:
            b = paired_bootstrap(ref, per)
            delta = f"{b.mean:+.4f} [{b.lo:+.4f}, {b.hi:+.4f}]"
        print(f"| {spec} | {m.means['ndcg@10']:.4f} | {m.means['recall@100']:.4f} | {delta} | {sec:.1f} |")


if __name__ == "__main__":
    main()
