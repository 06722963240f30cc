"""Mining only, sparse labels: each teacher's false-negative rate and full rows per method, no training.

    python benchmarks/sparse_mining_probe.py --data nfcorpus --teacher minilm,fuse:minilm+bm25 --max-length 128

Every training query keeps its best-graded positive (``experiment.stages.sparse_labels``); the held-out
judgements count how many mined negatives are in fact relevant. Seconds per teacher on cached pools.
"""

from __future__ import annotations

import argparse
import os

METHODS = [dict(method="naive"), dict(method="percpos", perc=0.95), dict(method="marginpos", margin=0.1),
           dict(method="marginpos", margin=0.3)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="nfcorpus", help="(default: nfcorpus)")
    p.add_argument("--split", default="train", help="(default: train)")
    p.add_argument("--teacher", default="minilm,fuse:minilm+bm25", help="comma list (default: %(default)s)")
    p.add_argument("--max-length", type=int, default=None, help="dense teachers' truncation (default: the model's)")
    p.add_argument("--num-negatives", type=int, default=4, help="(default: 4)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import hardneg as hn
    from hardneg.experiment.refresh import fn_rate
    from hardneg.experiment.stages import sparse_labels

    data, hidden = sparse_labels(hn.load_data(args.data, args.split))
    n = args.num_negatives
    print(f"| teacher | method | rows | rows with {n} negatives | FN rate |")
    print("|---|---|---|---|---|")
    for spec in args.teacher.split(","):
        teacher = hn.load_teacher(spec, max_length=args.max_length)
        for m in METHODS:
            rows = hn.mine(data, [teacher], hn.MineConfig(num_negatives=n, depth=100, anchor_only=True, **m)).rows
            full = sum(len(r.neg_ids) >= n for r in rows)
            name = ":".join(str(v) for v in m.values())
            print(f"| {spec} | {name} | {len(rows)} | {full} | {100 * fn_rate(rows, hidden)['rate']:.1f}% |")


if __name__ == "__main__":
    main()
