"""Run statistics of a mining run: what the filters removed, shortfalls, and score summaries (Fig. 4).

Score summaries use ``hardneg.core.summary.summarize`` (the one the diagnostics use too).
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

from hardneg.core.summary import summarize


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
