"""Diagnostics of a negatives file: score distributions (paper Fig. 4) and false-negative rates.

Pure functions over ``NegRow``s (``qid, pos_id, pos_score, neg_ids, neg_scores``) and the split's
qrels; ``plot_report`` draws them (matplotlib, Agg, imported lazily).

Held-out false-negative rate: the share of mined negatives that the qrels mark relevant
(grade > 0) for the row's query. Mining removes every known positive, so the rate is 0 by
construction unless the file was mined with ``anchor_only`` (each query's first positive is the
anchor, its other positives are held out and may be mined): then it measures how often the
method picks an unlabelled-but-relevant passage. Only rows whose query has held-out positives
can show one, so the rate is also given over those rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def score_values(rows) -> dict[str, np.ndarray]:
    """Positive scores (one per row), negative scores, and each negative minus its row's positive.

    >>> from types import SimpleNamespace as R
    >>> v = score_values([R(pos_score=0.9, neg_scores=[0.8, 0.5]), R(pos_score=None, neg_scores=[0.1])])
    >>> v["pos_score"].tolist(), v["neg_minus_pos"].round(2).tolist()
    ([0.9], [-0.1, -0.4])
    """
    pos = [r.pos_score for r in rows if r.pos_score is not None]
    neg = [s for r in rows for s in r.neg_scores]
    diff = [s - r.pos_score for r in rows if r.pos_score is not None for s in r.neg_scores]
    return {k: np.asarray(v, dtype=np.float64) for k, v in
            (("pos_score", pos), ("neg_score", neg), ("neg_minus_pos", diff))}


def summarize(x: np.ndarray) -> dict[str, float | int]:
    """count, mean, std, min, quantiles (q05 .. q95), max; only ``count`` when empty."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return {"count": 0}
    out: dict[str, float | int] = {"count": int(x.size), "mean": float(x.mean()), "std": float(x.std()),
                                   "min": float(x.min())}
    out.update({f"q{int(q * 100):02d}": float(v) for q, v in zip(QUANTILES, np.quantile(x, QUANTILES))})
    out["max"] = float(x.max())
    return out


def histograms(values: dict[str, np.ndarray], bins: int = 40) -> dict[str, dict]:
    """Counts per bin: positive and negative scores on SHARED edges (comparable), and neg - pos."""
    both = np.concatenate([values["pos_score"], values["neg_score"]])
    out = {}
    if both.size:
        edges = np.histogram_bin_edges(both, bins=bins)
        out["scores"] = {"edges": edges.tolist(),
                         "pos": np.histogram(values["pos_score"], edges)[0].tolist(),
                         "neg": np.histogram(values["neg_score"], edges)[0].tolist()}
    if values["neg_minus_pos"].size:
        counts, edges = np.histogram(values["neg_minus_pos"], bins=bins)
        out["neg_minus_pos"] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return out


def false_negatives(rows, qrels: dict[str, dict[str, int]]) -> dict:
    """False negatives = mined negatives with qrels grade > 0 for the row's query.

    Returns overall and per-rank (1 = the row's first negative) counts and rates, the rate over
    rows whose query has held-out positives, and how many negatives are judged non-relevant
    (grade 0). Example: one row, negatives [a, b], qrels {q: {p: 1, b: 2}} -> rate 0.5, per-rank
    rates [0.0, 1.0].
    """
    total = fn = judged0 = 0
    held_rows = held_total = held_fn = rows_with_fn = 0
    per_rank_n: list[int] = []
    per_rank_fn: list[int] = []
    for r in rows:
        grades = qrels.get(r.qid, {})
        held_out = any(g > 0 and d != r.pos_id for d, g in grades.items())
        row_fn = 0
        for k, d in enumerate(r.neg_ids):
            if k == len(per_rank_n):
                per_rank_n.append(0), per_rank_fn.append(0)
            is_fn = grades.get(d, 0) > 0
            judged0 += d in grades and grades[d] <= 0
            per_rank_n[k] += 1
            per_rank_fn[k] += is_fn
            row_fn += is_fn
        total += len(r.neg_ids)
        fn += row_fn
        rows_with_fn += row_fn > 0
        if held_out:
            held_rows += 1
            held_total += len(r.neg_ids)
            held_fn += row_fn
    return {"negatives": total, "false_negatives": fn, "rate": fn / total if total else 0.0,
            "rows_with_false_negative": rows_with_fn, "judged_nonrelevant": judged0,
            "rows_with_held_out": held_rows, "negatives_with_held_out": held_total,
            "rate_with_held_out": held_fn / held_total if held_total else 0.0,
            "per_rank": [{"rank": k + 1, "negatives": n, "false_negatives": f, "rate": f / n if n else 0.0}
                         for k, (n, f) in enumerate(zip(per_rank_n, per_rank_fn))]}


def inspect_rows(rows, qrels: dict[str, dict[str, int]], bins: int = 40) -> dict:
    """The whole report: counts, score summaries, histograms, false negatives."""
    values = score_values(rows)
    n_neg = [len(r.neg_ids) for r in rows]
    return {"rows": len(rows), "queries": len({r.qid for r in rows}),
            "negatives_per_row": summarize(np.asarray(n_neg)),
            "summaries": {k: summarize(v) for k, v in values.items()},
            "histograms": histograms(values, bins), "false_negatives": false_negatives(rows, qrels)}


def format_report(report: dict, anchor_only: bool | None = None) -> str:
    """A readable multi-line summary of ``inspect_rows``' output."""
    lines = [f"{report['rows']} rows, {report['queries']} queries, "
             f"{report['negatives_per_row'].get('mean', 0):.2f} negatives per row"]
    lines.append(f"{'':<14}{'count':>7}{'mean':>9}{'q05':>9}{'median':>9}{'q95':>9}")
    for name, label in (("pos_score", "positive"), ("neg_score", "negative"), ("neg_minus_pos", "neg - pos")):
        s = report["summaries"][name]
        if s["count"]:
            lines.append(f"{label:<14}{s['count']:>7}{s['mean']:>9.4f}{s['q05']:>9.4f}{s['q50']:>9.4f}{s['q95']:>9.4f}")
        else:
            lines.append(f"{label:<14}{0:>7}")
    f = report["false_negatives"]
    lines.append(f"false negatives (qrels grade > 0): {f['false_negatives']}/{f['negatives']} = {f['rate']:.2%}; "
                 f"over the {f['rows_with_held_out']} rows with held-out positives: {f['rate_with_held_out']:.2%}")
    if f["per_rank"]:
        lines.append("per rank: " + ", ".join(f"{p['rank']}: {p['rate']:.1%}" for p in f["per_rank"]))
    lines.append(f"negatives judged non-relevant (grade 0): {f['judged_nonrelevant']}")
    if anchor_only is False:
        lines.append("note: mined without --anchor-only, so every known positive was removed and the "
                     "false-negative rate is 0 by construction; mine with --anchor-only to measure it")
    return "\n".join(lines)


def plot_report(report: dict, path: str | Path, title: str = "") -> Path:
    """PNG: positive vs negative score histograms, neg - pos histogram, FN rate per rank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hardneg.io import atomic_open

    h, f = report["histograms"], report["false_negatives"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    if "scores" in h:
        e = np.asarray(h["scores"]["edges"])
        for key, label, color in (("neg", "negatives", "tab:red"), ("pos", "positives", "tab:blue")):
            c = np.asarray(h["scores"][key], dtype=float)
            ax.stairs(c / max(c.sum(), 1), e, fill=True, alpha=0.45, color=color,
                      label=f"{label} (n={int(c.sum())})")
    ax.set(xlabel="teacher score", ylabel="share of scores", title="positive vs negative scores")
    ax.legend()
    ax = axes[1]
    if "neg_minus_pos" in h:
        e = np.asarray(h["neg_minus_pos"]["edges"])
        ax.stairs(h["neg_minus_pos"]["counts"], e, fill=True, alpha=0.6, color="tab:purple",
                  label="negative − its positive")
        ax.axvline(0, color="black", lw=1, ls="--", label="0 (= positive's score)")
    ax.set(xlabel="negative score − positive score", ylabel="negatives", title="negative − positive (Fig. 4)")
    ax.legend(loc="best")
    ax = axes[2]
    ranks = [p["rank"] for p in f["per_rank"]]
    bars = ax.bar(ranks, [100 * p["rate"] for p in f["per_rank"]], color="tab:orange",
                  label=f"overall {f['rate']:.1%} of {f['negatives']}")
    ax.bar_label(bars, labels=[f"{p['false_negatives']}/{p['negatives']}" for p in f["per_rank"]], fontsize=8)
    ax.set(xlabel="rank of the negative in its row", ylabel="false negatives (%)",
           title="held-out false-negative rate per rank")
    ax.set_xticks(ranks)
    ax.legend()
    fig.suptitle(title or "hard negatives")
    fig.tight_layout()
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return path
