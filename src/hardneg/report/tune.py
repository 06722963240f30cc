"""The trade-off plot of ``hardneg tune``: held-out false-negative rate vs yield, one marker per
mining setting (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from hardneg.report.plots import _plt, _save

FAMILY_COLORS = {"naive": "tab:red", "shifted": "tab:brown", "abs": "tab:olive", "marginpos": "tab:blue",
                 "percpos": "tab:green"}


def plot_tradeoff(results: Sequence[Mapping], path: str | Path, *, recommended: int | None = None,
                  max_fn_rate: float | None = None, title: str = "") -> Path:
    """FN rate (y) against the share of rows with the full n negatives (x), labelled per setting;
    the target as a dashed line, the recommended setting as a star. ``results`` are
    ``analysis.tune.measure`` dicts with a ``setting`` label (``params`` colours them by method)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    seen: set[str] = set()
    at: dict[tuple[float, float], list[str]] = {}  # settings with identical numbers share one label
    for i, r in enumerate(results):
        x, y = r["yield"], r["fn_rate"]
        if any(v is None or math.isnan(v) for v in (x, y)):
            continue
        params = r.get("params") or {}
        family = params.get("method", r["setting"].split(":")[0])
        judged = bool(params.get("judge")) and params.get("judge") != "none"
        kind = f"{family} + judge" if judged else family
        ax.scatter(100 * x, 100 * y, s=40, marker="D" if judged else "o", color=FAMILY_COLORS.get(family, "tab:gray"),
                   label=None if kind in seen else kind, zorder=3)
        seen.add(kind)
        at.setdefault((round(100 * x, 6), round(100 * y, 6)), []).append(r["setting"])
        if i == recommended:
            ax.scatter(100 * x, 100 * y, s=260, marker="*", facecolors="none", edgecolors="black", lw=1.2,
                       label="recommended", zorder=4)
    for (x, y), names in at.items():
        text = "\n".join(", ".join(names[k:k + 2]) for k in range(0, len(names), 2))
        right = x > 60  # labels grow away from the right edge
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(-5 if right else 5, 3), fontsize=7,
                    va="bottom", ha="right" if right else "left")
    top = max([y for _, y in at] + [100 * (max_fn_rate or 0)], default=100)
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 1.25 * top + 5)  # room for the labels above the highest point
    if max_fn_rate is not None:
        ax.axhline(100 * max_fn_rate, color="black", ls="--", lw=1, label=f"target FN rate {max_fn_rate:.0%}")
    ax.set(xlabel="rows with the full n negatives (%)", ylabel="held-out false negatives among negatives (%)",
           title=title or "mining settings: false negatives vs yield")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, Path(path))
