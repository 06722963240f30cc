"""Run statistics of a mining run: what the filters removed, shortfalls, score summaries (Fig. 4) and
the counted warnings of a run that quietly yields little (``stats["warnings"]``, ``warning_messages``).

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
    zero: Counter = Counter()  # teacher -> queries whose positive-relative threshold is 0
    seen = zero_queries = 0
    for qo in query_outs:
        removed.update(qo.removed)
        seen += qo.seen
        zero.update(qo.zero_threshold)
        zero_queries += bool(qo.zero_threshold)
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
        "warnings": run_warnings(len(rows) + shortfall.get("dropped", 0), short_rows + shortfall.get("dropped", 0),
                                 zero_queries, zero),
    }
    return stats, {"pos_score": pos, "neg_score": neg, "neg_minus_pos": diff}


def run_warnings(rows: int, short: int, zero_queries: int, zero_by_teacher: dict[str, int]) -> dict:
    """The counted warnings of a run (only those that fired): ``zero_positive_threshold_queries``
    (queries whose PercPos / MarginPos threshold is 0, per teacher in ``..._by_teacher``) and
    ``short_rows`` (rows short of n, kept or dropped, when they are more than half of all rows).

    >>> run_warnings(rows=4, short=3, zero_queries=0, zero_by_teacher={})
    {'short_rows': 3}
    >>> run_warnings(rows=4, short=1, zero_queries=2, zero_by_teacher={"bm25": 2})
    {'zero_positive_threshold_queries': 2, 'zero_positive_threshold_by_teacher': {'bm25': 2}}
    """
    out: dict = {}
    if zero_queries:
        out["zero_positive_threshold_queries"] = zero_queries
        out["zero_positive_threshold_by_teacher"] = dict(sorted(zero_by_teacher.items()))
    if rows and 2 * short > rows:
        out["short_rows"] = short
    return out


def warning_messages(stats: dict, config) -> list[str]:
    """One line per counted warning in ``stats["warnings"]``, each saying what to change."""
    w = stats.get("warnings", {})
    out = []
    if w.get("zero_positive_threshold_queries"):
        teachers = ", ".join(f"{t} ({n})" for t, n in w["zero_positive_threshold_by_teacher"].items())
        out.append(f"{w['zero_positive_threshold_queries']} of {stats['queries']} queries yield no {config.method} "
                   f"negatives from {teachers}: their positive score p (--positive-score {config.positive_score}) "
                   f"is 0 (BM25 gives 0 to a positive that shares no word with its query), so the threshold is 0 "
                   f"and every candidate is removed. Fix: --positive-score mean or max, a fixed band instead of the "
                   f"positive (--method abs --max-score X with a floor --min-score Y), or a dense teacher")
    if w.get("short_rows"):
        total = stats["rows"] + stats["shortfall"].get("dropped", 0)
        deepen = "" if config.on_shortfall == "deepen" else "--on-shortfall deepen, "
        out.append(f"{w['short_rows']} of {total} rows ({100 * w['short_rows'] / total:.0f}%) have fewer than "
                   f"{config.num_negatives} negatives (--on-shortfall {config.on_shortfall}). Fix: raise --depth "
                   f"(now {config.depth}), {deepen}loosen the filter (--method {config.method}: see "
                   f"'hardneg tune'), or lower --num-negatives")
    return out
