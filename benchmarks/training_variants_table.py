"""Table of an ablation's training-variant rows against the paper's recipe (a reference row), from its cells.

For each row: seeds, NDCG@10 mean ± sd over seeds, Δ vs the reference row and vs the peer (seed-averaged
per-query NDCG@10, paired bootstrap over queries, 2,000 resamples, 95%), FN rate of the mined negatives,
and the mean train / evaluate seconds per cell (wall, as recorded by the cells).

    python benchmarks/training_variants_table.py runs/nfcorpus-sparse --reference percpos:0.95
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from hardneg.analysis.significance import mean_per_query, mean_std, paired_bootstrap


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="ablation output folder (its cells/*.json)")
    p.add_argument("--reference", default="percpos:0.95", help="the row every other is compared with (default: %(default)s)")
    p.add_argument("--rows", default=None, help="comma list of rows to show (default: the reference, base, peer and every row "
                   "that starts with the reference and a '+')")
    args = p.parse_args(argv)
    rows = defaultdict(list)
    for f in sorted((args.run / "cells").glob("*.json")):
        c = json.loads(f.read_text())
        if "per_query" in c:
            rows[c["row"] if c["kind"] in ("method", "base") else c["kind"]].append(c)
    wanted = args.rows.split(",") if args.rows else ["base", "peer", args.reference] + sorted(
        r for r in rows if r.startswith(args.reference + "+") and not r.endswith(("+judge", "+relabel")))
    ref = mean_per_query([c["per_query"]["ndcg@10"] for c in rows[args.reference]])
    peer = mean_per_query([c["per_query"]["ndcg@10"] for c in rows["peer"]]) if rows.get("peer") else None
    print("| row | seeds | NDCG@10 | Δ vs " + args.reference + " | Δ vs peer | FN rate | train s | evaluate s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in wanted:
        cells = rows.get(r, [])
        if not cells:
            continue
        m, s = mean_std([c["metrics"]["ndcg@10"] for c in cells])
        pq = mean_per_query([c["per_query"]["ndcg@10"] for c in cells])

        def delta(base):
            if base is None or pq is base:
                return "–"
            d = paired_bootstrap(base, pq)
            return f"{d.mean:+.4f} [{d.lo:+.4f}, {d.hi:+.4f}]{' *' if d.significant else ''}"

        fn = [c["fn"]["rate"] for c in cells if isinstance(c.get("fn"), dict) and c["fn"].get("rate") is not None]
        fn_s = f"{100 * sum(fn) / len(fn):.1f}%" if fn else "–"
        last = [((c.get("train") or {}).get("refresh") or {}).get("rounds", [{}])[-1].get("fn") or {} for c in cells]
        last = [f["rate"] for f in last if f.get("rate") is not None]
        if last:  # a refresh row: the FN rate of the negatives it trained on last
            fn_s += f" → {100 * sum(last) / len(last):.1f}% after refresh"
        secs = lambda k: sum(c["seconds"].get(k, 0) for c in cells) / len(cells)  # noqa: E731
        print(f"| {r} | {len(cells)} | {m:.4f} ± {s:.4f} | {delta(ref if r != args.reference else None)} | "
              f"{delta(peer if r != 'peer' else None)} | {fn_s} | {secs('train'):.0f} | {secs('evaluate'):.0f} |")
    print("\n* interval excludes 0. Δ: seed-averaged per-query NDCG@10 difference, paired bootstrap over queries.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
