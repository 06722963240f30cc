"""Ablation report: per-method summary rows, markdown tables (paper Tables 1 and 3) and plots.

Input is the list of cell results an ablation writes to ``results.json``; each cell is a dict:
``{"kind": "base" | "random" | "inbatch" | "method" | "fn_probe", "row": "percpos:0.95",
"teacher": "minilm" | None, "seed": 0, "metrics": {...}, "per_query": {metric: {qid: value}},
"mining": {"pos_scores": [...], "neg_scores": [...]}, "fn": {"rate": ...}}``.
Report functions only read these dicts, so a report can be rebuilt from ``results.json`` alone.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from hardneg.io import atomic_open
from hardneg.stats import Delta, mean_per_query, mean_std, metric_key, paired_bootstrap

log = logging.getLogger(__name__)

PRIMARY, SECONDARY = "ndcg@10", "recall@100"
REFERENCE_LABELS = {"base": "base (untrained)", "random": "random negatives", "inbatch": "in-batch only"}
KIND_ORDER = {"base": 0, "random": 1, "inbatch": 2, "method": 3}


@dataclass
class Row:
    """One table row: a (method, teacher) pair summarised over its seeds."""

    label: str
    teacher: str | None
    kind: str
    seeds: list[int]
    primary: list[float]  # per seed
    secondary: list[float]
    per_query: dict[str, float] = field(default_factory=dict)  # primary, averaged over seeds
    vs_base: Delta | None = None
    vs_naive: Delta | None = None

    @property
    def name(self) -> str:
        return REFERENCE_LABELS.get(self.kind, self.label)


def _value(metrics: Mapping[str, float], name: str) -> float:
    try:
        return float(metrics[metric_key(metrics, name)])
    except KeyError:
        return math.nan


def summarize(cells: Sequence[Mapping], *, n_resamples: int = 2000, seed: int = 0) -> list[Row]:
    """Group cells into rows (reference rows first, then methods in first-seen order) and attach
    paired-bootstrap deltas of the primary metric vs the base model and vs naive (same teacher)."""
    groups: dict[tuple, list[Mapping]] = {}
    for c in cells:
        if c["kind"] != "fn_probe":
            groups.setdefault((c["kind"], c["row"], c.get("teacher")), []).append(c)
    rows = []
    for (kind, label, teacher), cs in sorted(groups.items(), key=lambda kv: KIND_ORDER.get(kv[0][0], 9)):
        cs = sorted(cs, key=lambda c: c.get("seed", 0))
        per_seed = [c["per_query"][metric_key(c["per_query"], PRIMARY)] for c in cs if c.get("per_query")]
        rows.append(Row(label, teacher, kind, [c.get("seed", 0) for c in cs],
                        [_value(c["metrics"], PRIMARY) for c in cs], [_value(c["metrics"], SECONDARY) for c in cs],
                        mean_per_query(per_seed)))
    base = next((r for r in rows if r.kind == "base" and r.per_query), None)
    naives = [r for r in rows if r.kind == "method" and r.label == "naive" and r.per_query]
    for r in rows:
        if base is not None and r is not base and r.per_query:
            r.vs_base = paired_bootstrap(base.per_query, r.per_query, n_resamples=n_resamples, seed=seed)
        naive = next((n for n in naives if n.teacher == r.teacher), naives[0] if len(naives) == 1 else None)
        if naive is not None and r is not naive and r.per_query and r.kind != "base":
            r.vs_naive = paired_bootstrap(naive.per_query, r.per_query, n_resamples=n_resamples, seed=seed)
    return rows


def _pm(values: Sequence[float]) -> str:
    m, s = mean_std([v for v in values if not math.isnan(v)])
    if math.isnan(m):
        return "–"
    return f"{m:.4f}" if len(values) == 1 else f"{m:.4f} ± {s:.4f}"


def _delta(d: Delta | None) -> str:
    if d is None:
        return "–"
    return d.fmt() + (" *" if d.significant else "")


def method_table(rows: Sequence[Row]) -> str:
    """Markdown table shaped like the paper's Table 3 (one row per method and teacher)."""
    lines = [f"| method | teacher | seeds | NDCG@10 | Recall@100 | Δ NDCG@10 vs base [95% CI] "
             f"| Δ NDCG@10 vs naive [95% CI] |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.teacher or '–'} | {len(r.seeds)} | {_pm(r.primary)} | {_pm(r.secondary)} "
                     f"| {_delta(r.vs_base)} | {_delta(r.vs_naive)} |")
    return "\n".join(lines)


def teacher_table(rows: Sequence[Row]) -> str:
    """Markdown table shaped like the paper's Table 1: student NDCG@10 per teacher (rows) and method."""
    methods = list(dict.fromkeys(r.label for r in rows if r.kind == "method"))
    teachers = list(dict.fromkeys(r.teacher for r in rows if r.kind == "method"))
    by = {(r.teacher, r.label): r for r in rows if r.kind == "method"}
    lines = ["| teacher | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for t in teachers:
        cells = [_pm(by[(t, m)].primary) if (t, m) in by else "–" for m in methods]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fn_table(cells: Sequence[Mapping]) -> str:
    """Markdown table of false-negative rates from ``fn_probe`` cells ('' when there are none):
    judged grade >= 1, and grade >= 2 (TREC-DL's 'relevant'; grade 1 is 'related')."""
    probes = [c for c in cells if c["kind"] == "fn_probe"]
    if not probes:
        return ""
    lines = ["| method | teacher | data | false negatives / mined | rate (grade ≥ 1) | rate (grade ≥ 2) |",
             "|---|---|---|---|---|---|"]
    for c in probes:
        fn = c["fn"]
        high = sum(k for g, k in fn.get("by_grade", {}).items() if int(g) >= 2)
        rate2 = f"{high / fn['negatives']:.1%}" if fn["negatives"] and "by_grade" in fn else "–"
        lines.append(f"| {c['row']} | {c.get('teacher') or '–'} | {c.get('data', '')} "
                     f"| {fn['false_negatives']} / {fn['negatives']} | {fn['rate']:.1%} | {rate2} |")
    return "\n".join(lines)


def mining_table(cells: Sequence[Mapping]) -> str:
    """Negatives per example and rows left short (fewer survivors than asked), per mined cell."""
    mined = [c for c in cells if c.get("mining", {}).get("summary") and c["kind"] != "fn_probe"]
    if not mined:
        return ""
    lines = ["| method | teacher | seed | rows | mean negatives | rows short of n |", "|---|---|---|---|---|---|"]
    for c in mined:
        s = c["mining"]["summary"]
        lines.append(f"| {c['row']} | {c.get('teacher') or '–'} | {c.get('seed', 0)} | {s['rows']} "
                     f"| {s['mean_negatives']:.2f} | {s['short_rows']} |")
    return "\n".join(lines)


def timing_table(cells: Sequence[Mapping]) -> str:
    """Seconds per stage for each cell ('' when no cell recorded timings)."""
    timed = [c for c in cells if c.get("seconds")]
    if not timed:
        return ""
    lines = ["| cell | method | teacher | seed | mine s | train s | evaluate s |", "|---|---|---|---|---|---|---|"]
    for c in timed:
        t = c["seconds"]
        lines.append(f"| {c['kind']} | {c['row']} | {c.get('teacher') or '–'} | {c.get('seed', 0)} | "
                     + " | ".join(f"{t[k]:.0f}" if k in t else "–" for k in ("mine", "train", "evaluate")) + " |")
    return "\n".join(lines)


def render_markdown(cells: Sequence[Mapping], rows: Sequence[Row], plots: Sequence[Path], title: str,
                    notes: Sequence[str] = ()) -> str:
    parts = [f"# {title}", "", *notes, ""]
    if rows:
        parts += ["## Methods (NDCG@10 and Recall@100 on the held-out split)", "", method_table(rows), "",
                  "Mean ± sample std over seeds. Δ: mean per-query difference of NDCG@10 (seed-averaged), "
                  "paired bootstrap over queries, 2000 resamples; * = interval excludes 0.", ""]
    if sum(r.kind == "method" for r in rows):
        parts += ["## Teachers (student NDCG@10 per teacher and method)", "", teacher_table(rows), ""]
    for head, table in (("## False negatives among mined negatives", fn_table(cells)),
                        ("## Mining", mining_table(cells)), ("## Time per cell", timing_table(cells))):
        if table:
            parts += [head, "", table, ""]
    if plots:
        parts += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    return "\n".join(parts)


def write_report(cells: Sequence[Mapping], out_dir: str | Path, *, title: str = "hardneg ablation",
                 notes: Sequence[str] = (), plots: bool = True) -> tuple[Path, list[Row], list[Path]]:
    """Write ``report.md`` and the PNG plots into ``out_dir``; return (report path, rows, plot paths)."""
    out_dir = Path(out_dir)
    rows = summarize(cells)
    pngs = plot_all(cells, rows, out_dir) if plots else []
    path = out_dir / "report.md"
    with atomic_open(path) as f:
        f.write(render_markdown(cells, rows, pngs, title, notes))
    return path, rows, pngs


# ---------------------------------------------------------------- plots (matplotlib imported lazily)

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
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 1.2 + 0.45 * len(rows)), sharey=True)
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
    a.set_xlabel("NDCG@10 (axis zoomed to the data; it does not start at 0)")
    a.set_title("NDCG@10 per method (mean ± std over seeds)", fontsize=10)
    use_naive = any(r.vs_naive for r in rows)
    for yi, r in zip(y, rows):
        d = r.vs_naive if use_naive else r.vs_base
        if d is not None:
            b.errorbar(d.mean, yi, xerr=[[d.mean - d.lo], [d.hi - d.mean]], fmt="s",
                       color="C2" if d.significant else "C7", capsize=4)
    b.axvline(0, color="black", lw=1)
    b.set_xlabel(f"Δ NDCG@10 vs {'naive' if use_naive else 'base'} (95% paired bootstrap CI)")
    b.set_title("mean per-query difference (green: CI excludes 0)", fontsize=10)
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
