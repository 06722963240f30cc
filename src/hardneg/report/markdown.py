"""``write_report``: the ablation's ``report.md`` (tables from ``report.tables``) and its plots (``report.plots``)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from hardneg.core.files import atomic_open
from hardneg.report.plots import plot_all
from hardneg.report.tables import (Row, fn_table, judge_table, method_table, mining_table, summarize, teacher_table,
                                   timing_table)


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
                        ("## The false-negative judge", judge_table(cells)),
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
