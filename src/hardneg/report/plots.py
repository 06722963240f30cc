"""Plots of an ablation and of a negatives file (matplotlib, Agg backend, imported lazily).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from hardneg.analysis.significance import mean_std
from hardneg.core.files import atomic_open
from hardneg.report.tables import REFERENCE_LABELS, Row


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    _plt().close(fig)
    return path


def plot_methods(rows: Sequence[Row], path: Path) -> Path:
    """Left: NDCG@10 per row (mean ± std over seeds, seeds as dots). Right: Δ vs naive (or vs base)
    with the 95% bootstrap interval. Horizontal, so long method names stay readable."""
    plt = _plt()
    rows = [r for r in rows if r.primary and not all(math.isnan(v) for v in r.primary)]
    names = [f"{r.name}" + (f" ({r.teacher})" if r.teacher else "") for r in rows]
    y = list(range(len(rows)))[::-1]
    label_in = 0.075 * max((len(n) for n in names), default=0)  # long row names must not squeeze the panels
    fig, (a, b) = plt.subplots(1, 2, figsize=(6 + max(5.0, label_in), 1.6 + 0.45 * len(rows)), sharey=True)
    for yi, r in zip(y, rows):
        m, s = mean_std(r.primary)
        a.errorbar(m, yi, xerr=s, fmt="o", color="C0", capsize=4)
        a.scatter(r.primary, [yi] * len(r.primary), s=12, color="C0", alpha=0.4, zorder=3)
    base = next((r for r in rows if r.kind == "base"), None)
    if base:
        a.axvline(mean_std(base.primary)[0], ls="--", color="grey", lw=1, label="base")
        a.legend(loc="best", fontsize=8)
    a.set_yticks(y, names)
    a.set_ylim(-0.7, len(rows) - 0.3)  # room around the first/last row so no marker sits on the frame
    lo, hi = a.get_xlim()
    a.set_xlim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
    a.set_xlabel("NDCG@10\n(axis zoomed to the data; it does not start at 0)")
    a.set_title("NDCG@10 per method\n(mean ± std over seeds)", fontsize=10)
    use_naive = any(r.vs_naive for r in rows)
    for yi, r in zip(y, rows):
        d = r.vs_naive if use_naive else r.vs_base
        if d is not None:
            b.errorbar(d.mean, yi, xerr=[[d.mean - d.lo], [d.hi - d.mean]], fmt="s",
                       color="C2" if d.significant else "C7", capsize=4)
    b.axvline(0, color="black", lw=1)
    b.set_xlabel(f"Δ NDCG@10 vs {'naive' if use_naive else 'base'}\n(95% paired bootstrap CI)")
    b.set_title("mean per-query difference\n(green: CI excludes 0)", fontsize=10)
    for ax in (a, b):
        ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_score_hist(cells: Sequence[Mapping], path: Path) -> Path | None:
    """Teacher scores of positives vs mined negatives, one panel per method (paper Fig. 4)."""
    seen: dict[tuple, Mapping] = {}
    for c in cells:
        m = c.get("mining") or {}
        if c["kind"] == "method" and m.get("neg_scores"):
            seen.setdefault((c["row"], c.get("teacher")), c)
    if not seen:
        return None
    plt = _plt()
    import numpy as np

    allv = np.concatenate([np.asarray(c["mining"]["neg_scores"] + c["mining"]["pos_scores"], float)
                           for c in seen.values()])
    allv = allv[np.isfinite(allv)]
    bins = np.linspace(allv.min(), allv.max(), 41)
    n = len(seen)
    ncol = min(3, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False, sharex=True)
    for ax, ((row, teacher), c) in zip(axes.flat, seen.items()):
        ax.hist(c["mining"]["pos_scores"], bins=bins, density=True, alpha=0.6, color="C2", label="positives")
        ax.hist(c["mining"]["neg_scores"], bins=bins, density=True, alpha=0.6, color="C3", label="mined negatives")
        ax.set_title(f"{REFERENCE_LABELS.get(c['kind'], row)} ({teacher or '–'})", fontsize=10)
        ax.set_xlabel("teacher score")
        ax.set_ylabel("density")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    return _save(fig, path)


def plot_fn_rate(cells: Sequence[Mapping], path: Path) -> Path | None:
    """Share of mined negatives that are judged relevant, per method, split by grade (bars from 0)."""
    probes = [c for c in cells if c["kind"] == "fn_probe" and not math.isnan(c["fn"]["rate"])][::-1]
    if not probes:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.5 * len(probes)))
    names = [f"{c['row']} ({c.get('teacher') or '–'})" for c in probes]
    grades = sorted({int(g) for c in probes for g in c["fn"].get("by_grade", {"1": 0})}, reverse=True)
    left = [0.0] * len(probes)
    for j, g in enumerate(grades):  # highest grade first, darkest
        share = [100 * c["fn"].get("by_grade", {}).get(str(g), 0) / c["fn"]["negatives"] for c in probes]
        if "by_grade" not in probes[0]["fn"]:
            share = [100 * c["fn"]["rate"] for c in probes]
        ax.barh(names, share, left=left, color=plt.cm.Reds(0.9 - 0.25 * j), label=f"grade {g}")
        left = [a + b for a, b in zip(left, share)]
    for i, c in enumerate(probes):
        ax.text(left[i] - 1, i, f"{c['fn']['false_negatives']}/{c['fn']['negatives']}", va="center", ha="right",
                color="white", fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("mined negatives that are judged relevant (%)")
    ax.set_title(f"false negatives on {probes[0].get('data', '')}: all but each query's best positive "
                 "hidden from mining", fontsize=9)
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(1.0, 0.0))
    return _save(fig, path)


def plot_teachers(rows: Sequence[Row], path: Path) -> Path | None:
    """Student NDCG@10 per teacher, one marker series per method (only with two or more teachers)."""
    rows = [r for r in rows if r.kind == "method"]
    teachers = list(dict.fromkeys(r.teacher for r in rows))
    if len(teachers) < 2:
        return None
    plt = _plt()
    methods = list(dict.fromkeys(r.label for r in rows))
    fig, ax = plt.subplots(figsize=(1.5 + 1.6 * len(teachers), 4))
    for j, m in enumerate(methods):
        for i, t in enumerate(teachers):
            r = next((r for r in rows if r.teacher == t and r.label == m), None)
            if r:
                mu, sd = mean_std(r.primary)
                ax.errorbar(i + (j - (len(methods) - 1) / 2) * 0.1, mu, yerr=sd, fmt="o", color=f"C{j}",
                            capsize=3, label=m if i == 0 else None)
    ax.set_xticks(range(len(teachers)), teachers)
    ax.set_xlim(-0.5, len(teachers) - 0.5)
    ax.set_xlabel("teacher that mined the negatives")
    ax.set_ylabel("student NDCG@10 (zoomed; not from 0)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_all(cells: Sequence[Mapping], rows: Sequence[Row], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    made = [plot_methods(rows, out_dir / "methods.png") if rows else None,
            plot_score_hist(cells, out_dir / "score_hist.png"),
            plot_fn_rate(cells, out_dir / "fn_rate.png"),
            plot_teachers(rows, out_dir / "teachers.png")]
    return [p for p in made if p is not None]


def plot_negatives(report: dict, path: str | Path, title: str = "") -> Path:
    """PNG: positive vs negative score histograms, neg - pos histogram, FN rate per rank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
