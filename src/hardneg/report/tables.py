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
from typing import Mapping, Sequence

from hardneg.analysis.significance import Delta, mean_per_query, mean_std, metric_key, paired_bootstrap

log = logging.getLogger(__name__)


PRIMARY, SECONDARY = "ndcg@10", "recall@100"
REFERENCE_LABELS = {"base": "base (untrained)", "random": "random negatives", "inbatch": "in-batch only",
                    "peer": "peer: sentence-transformers mine_hard_negatives + MNRL"}

KIND_ORDER = {"base": 0, "random": 1, "inbatch": 2, "peer": 3, "method": 4}


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
    vs_peer: Delta | None = None

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
    peers = [r for r in rows if r.kind == "peer" and r.per_query]
    for r in rows:
        peer = next((p for p in peers if p.teacher == r.teacher), peers[0] if len(peers) == 1 else None)
        if peer is not None and r.kind == "method" and r.per_query:
            r.vs_peer = paired_bootstrap(peer.per_query, r.per_query, n_resamples=n_resamples, seed=seed)
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
    """Markdown table shaped like the paper's Table 3 (one row per method and teacher); a "vs peer"
    column when the grid has the peer row."""
    peer = any(r.vs_peer is not None for r in rows)
    lines = ["| method | teacher | seeds | NDCG@10 | Recall@100 | Δ NDCG@10 vs base [95% CI] "
             "| Δ NDCG@10 vs naive [95% CI] |" + (" Δ NDCG@10 vs peer [95% CI] |" if peer else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if peer else "")]
    for r in rows:
        lines.append(f"| {r.name} | {r.teacher or '–'} | {len(r.seeds)} | {_pm(r.primary)} | {_pm(r.secondary)} "
                     f"| {_delta(r.vs_base)} | {_delta(r.vs_naive)} |" + (f" {_delta(r.vs_peer)} |" if peer else ""))
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
    """Markdown table of false-negative rates from ``fn_probe`` cells and from trained cells mined with
    sparse labels ('' when there are none): judged grade >= 1, and grade >= 2 (TREC-DL's 'relevant';
    grade 1 is 'related')."""
    probes = [c for c in cells if c["kind"] == "fn_probe" or (c["kind"] in ("method", "random", "peer") and "fn" in c)]
    if not probes:
        return ""
    lines = ["| method | teacher | data | false negatives / mined | rate (grade ≥ 1) | rate (grade ≥ 2) |",
             "|---|---|---|---|---|---|"]
    for c in probes:
        fn = c["fn"]
        high = sum(k for g, k in fn.get("by_grade", {}).items() if int(g) >= 2)
        rate2 = f"{high / fn['negatives']:.1%}" if fn["negatives"] and "by_grade" in fn else "–"
        lines.append(f"| {c['row']} | {c.get('teacher') or '–'} | {c.get('data') or c.get('spec', {}).get('data', '')} "
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


def judge_table(cells: Sequence[Mapping]) -> str:
    """The false-negative judge of each judged cell: what it flagged, did, and how it fared against the
    held-out positives; and what training then had (rows, relabelled rows added, mask hits)."""
    judged = [c for c in cells if c.get("judge")]
    if not judged:
        return ""
    lines = ["| method | teacher | seed | flagged (query, passage) | action | relabelled | precision | recall "
             "| training rows | relabelled rows added | rows where the mask fired |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in judged:
        j, q = c["judge"], c["judge"].get("held_out") or {}
        tr = c.get("train") or {}
        data = (tr.get("data") or [{}])[0]
        mask = tr.get("positives_mask") or {}
        pr = lambda k: f"{q[k]:.3f}" if isinstance(q.get(k), (int, float)) and q[k] == q[k] else "–"  # noqa: E731
        fired = f"{mask['rows_masked']} / {mask['rows']}" if mask.get("rows") else "–"
        lines.append(f"| {c['row']} | {c.get('teacher') or '–'} | {c.get('seed', 0)} | {q.get('flagged', j.get('flagged'))} "
                     f"| {j.get('action')} | {j.get('relabeled', 0)} | {pr('precision')} | {pr('recall')} "
                     f"| {tr.get('examples', '–')} | {data.get('relabeled_rows_added', '–')} | {fired} |")
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
