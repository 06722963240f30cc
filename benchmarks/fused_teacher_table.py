"""An ablation with several teachers as one table: each (row, teacher) against the peer and MiniLM PercPos.

    hardneg ablate --config nfcorpus-sparse-fused --output runs/nfcorpus-sparse-fused
    python benchmarks/fused_teacher_table.py runs/nfcorpus-sparse-fused
    hardneg ablate --config nfcorpus-sparse-long --output runs/nfcorpus-sparse-long
    python benchmarks/fused_teacher_table.py runs/nfcorpus-sparse-long

Reads the finished cells (``DIR/cells/*.json``); each Δ compares two rows on the seeds both have (NDCG@10 per
query averaged over those seeds), by a paired bootstrap over the test queries (2,000 resamples, 95%;
``*``: the interval excludes 0). FN rate: the share of mined negatives that are held-out judged positives.
"""

from __future__ import annotations

import glob
import json
import sys

import numpy as np

ROWS = ("base", "peer", "inbatch", "percpos:0.95", "percpos:0.95+kl", "naive+kl-only", "percpos:0.95+pad+bucket",
        "percpos:0.95+kl+pad+bucket")


def main(run: str) -> None:
    from hardneg.analysis.significance import paired_bootstrap

    cells = [json.load(open(f)) for f in sorted(glob.glob(f"{run}/cells/*.json"))]
    rows: dict[tuple[str, str], dict[int, dict]] = {}  # (row, teacher) -> seed -> cell
    for c in cells:
        key = ("base", "-") if c["kind"] == "base" else ("peer" if c["kind"] == "peer" else c["row"], c["teacher"] or "-")
        rows.setdefault(key, {})[c["seed"]] = c

    def mean_pq(cs):
        return {q: float(np.mean([c["per_query"]["ndcg@10"][q] for c in cs])) for q in cs[0]["per_query"]["ndcg@10"]}

    keys = [("base", "-"), ("peer", "minilm")] + sorted(k for k in rows if k[0] not in ("base", "peer") and k[0] in ROWS)
    refs = {"peer": ("peer", "minilm"), "pp": ("percpos:0.95", "minilm")}
    print("Δ: paired over the seeds both rows have (the base row has one: the untrained model)\n")
    print("| row | teacher | seeds | NDCG@10 | Δ vs peer [95% CI] | Δ vs MiniLM PercPos [95% CI] | FN rate | "
          "rows with 4 negatives | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in [k for k in keys if k in rows]:
        by_seed = rows[k]
        cs = list(by_seed.values())

        def delta(name):
            ref = refs.get(name)
            if ref == k or ref not in rows:
                return "–"
            common = sorted(set(by_seed) & set(rows[ref])) if k[0] != "base" else sorted(rows[ref])
            if not common:
                return "–"
            mine = mean_pq([by_seed[s] for s in common] if k[0] != "base" else cs)
            b = paired_bootstrap(mean_pq([rows[ref][s] for s in common]), mine)
            return f"{b.mean:+.4f} [{b.lo:+.4f}, {b.hi:+.4f}]" + (" *" if b.lo > 0 or b.hi < 0 else "")

        fn = [c["fn"]["rate"] for c in cs if (c.get("fn") or {}).get("rate") is not None]
        full = [c["mining"]["stats"]["negatives_per_row"].get("4", 0) for c in cs
                if "negatives_per_row" in (c.get("mining") or {}).get("stats", {})]
        nd = np.mean([c["metrics"]["ndcg@10"] for c in cs])
        print(f"| {k[0]} | {k[1]} | {','.join(map(str, sorted(by_seed)))} | {nd:.4f} | {delta('peer')} | {delta('pp')} | "
              f"{f'{100 * np.mean(fn):.1f}%' if fn else '–'} | {int(np.mean(full)) if full else '–'} | "
              f"{np.mean([c['seconds'].get('train', 0) for c in cs]):.0f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/nfcorpus-sparse-fused")
