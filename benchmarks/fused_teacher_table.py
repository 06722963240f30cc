"""An ablation with several teachers as one table: each (row, teacher) against the peer and MiniLM PercPos.

    hardneg ablate --config nfcorpus-sparse-fused --output runs/nfcorpus-sparse-fused
    python benchmarks/fused_teacher_table.py runs/nfcorpus-sparse-fused
    hardneg ablate --config nfcorpus-sparse-long --output runs/nfcorpus-sparse-long
    python benchmarks/fused_teacher_table.py runs/nfcorpus-sparse-long

Reads the finished cells (``DIR/cells/*.json``) of the seeds that have a fused-teacher cell; NDCG@10 per query
is averaged over seeds, and each Δ is a paired bootstrap over the test queries (2,000 resamples, 95%;
``*``: the interval excludes 0). FN rate: the share of mined negatives that are held-out judged positives.
"""

from __future__ import annotations

import glob
import json
import sys

import numpy as np

ROWS = ("base", "peer", "inbatch", "percpos:0.95", "percpos:0.95+kl", "naive+kl-only")


def main(run: str) -> None:
    from hardneg.analysis.significance import paired_bootstrap

    cells = [json.load(open(f)) for f in sorted(glob.glob(f"{run}/cells/*.json"))]
    seeds = sorted({c["seed"] for c in cells if (c.get("teacher") or "").startswith("fuse:")})
    rows: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        if c["kind"] == "base":
            rows.setdefault(("base", "-"), []).append(c)
        elif c["seed"] in seeds:
            rows.setdefault(("peer" if c["kind"] == "peer" else c["row"], c["teacher"] or "-"), []).append(c)

    def mean_pq(cs):
        return {q: float(np.mean([c["per_query"]["ndcg@10"][q] for c in cs])) for q in cs[0]["per_query"]["ndcg@10"]}

    keys = [("base", "-"), ("peer", "minilm")] + sorted(k for k in rows if k[0] not in ("base", "peer") and k[0] in ROWS)
    refs = {"peer": ("peer", "minilm"), "pp": ("percpos:0.95", "minilm")}
    ref_pq = {name: mean_pq(rows[k]) for name, k in refs.items() if k in rows}
    print(f"seeds {seeds}\n")
    print("| row | teacher | seeds | NDCG@10 | Δ vs peer [95% CI] | Δ vs MiniLM PercPos [95% CI] | FN rate | "
          "rows with 4 negatives | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in [k for k in keys if k in rows]:
        cs, m = rows[k], mean_pq(rows[k])

        def delta(name):
            if refs.get(name) == k or name not in ref_pq:
                return "–"
            b = paired_bootstrap(ref_pq[name], m)
            return f"{b.mean:+.4f} [{b.lo:+.4f}, {b.hi:+.4f}]" + (" *" if b.lo > 0 or b.hi < 0 else "")

        fn = [c["fn"]["rate"] for c in cs if (c.get("fn") or {}).get("rate") is not None]
        full = [c["mining"]["stats"]["negatives_per_row"].get("4", 0) for c in cs
                if "negatives_per_row" in (c.get("mining") or {}).get("stats", {})]
        nd = np.mean([c["metrics"]["ndcg@10"] for c in cs])
        print(f"| {k[0]} | {k[1]} | {len(cs)} | {nd:.4f} | {delta('peer')} | {delta('pp')} | "
              f"{f'{100 * np.mean(fn):.1f}%' if fn else '–'} | {int(np.mean(full)) if full else '–'} | "
              f"{np.mean([c['seconds'].get('train', 0) for c in cs]):.0f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/nfcorpus-sparse-fused")
