"""Run statistics of a mining run: what the filters removed, shortfalls, and score summaries (Fig. 4).

>>> summarize([1.0, 2.0, 3.0])["mean"], summarize([])["count"]
(2.0, 0)
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

QUANTILES = (5, 25, 50, 75, 95)


def summarize(values) -> dict:
    """count, mean, std, min, quantiles 5/25/50/75/95, max of ``values`` (None when empty)."""
    v = np.asarray(list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None,
                **{f"q{q}": None for q in QUANTILES}, "max": None}
    qs = np.percentile(v, QUANTILES)
    out = {"count": int(v.size), "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min())}
    out.update({f"q{q}": float(x) for q, x in zip(QUANTILES, qs)})
    out["max"] = float(v.max())
    return {k: round(x, 6) if isinstance(x, float) else x for k, x in out.items()}


def build_stats(rows: list, diffs: list[list[float]], query_outs: Iterable, config, shortfall: dict,
                n_queries: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Stats dict (JSON-ready) and raw value arrays from the emitted rows and per-query counts.

    Removal counts are per (query, teacher) pool — a candidate removed for a query counts once,
    however many positives (rows) that query has.
    """
    removed: Counter = Counter()
    seen = 0
    for qo in query_outs:
        removed.update(qo.removed)
        seen += qo.seen
    n = config.num_negatives
    short_rows = sum(len(r.neg_ids) < n for r in rows)
    shortfall = dict(shortfall)
    shortfall["rows_short_in_output"] = short_rows
    if "rows_short_initially" in shortfall and config.on_shortfall == "deepen":
        shortfall["resolved_by_deepen"] = shortfall["rows_short_initially"] - short_rows
    pos = np.array([r.pos_score for r in rows if r.pos_score is not None], dtype=np.float64)
    neg = np.array([s for r in rows for s in r.neg_scores], dtype=np.float64)
    diff = np.array([d for ds in diffs for d in ds], dtype=np.float64)
    hist = Counter(len(r.neg_ids) for r in rows)
    stats = {
        "queries": n_queries,
        "rows": len(rows),
        "candidates_seen": seen,
        "removed": {k: int(v) for k, v in removed.items()},
        "shortfall": shortfall,
        "negatives_per_row": {str(k): hist[k] for k in sorted(hist)},
        "pos_score": summarize(pos),
        "neg_score": summarize(neg),
        "neg_minus_pos": summarize(diff),
    }
    return stats, {"pos_score": pos, "neg_score": neg, "neg_minus_pos": diff}
