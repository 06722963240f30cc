"""Diagnostics of a negatives file: score distributions (paper Fig. 4) and false-negative rates.

Pure functions over ``NegRow``s (``qid, pos_id, pos_score, neg_ids, neg_scores``) and the split's
qrels; ``hardneg.report.plots.plot_negatives`` draws them.

Held-out false-negative rate: the share of mined negatives that the qrels mark relevant
(grade > 0) for the row's query. Mining removes every known positive, so the rate is 0 by
construction unless the file was mined with ``anchor_only`` (each query's first positive is the
anchor, its other positives are held out and may be mined): then it measures how often the
method picks an unlabelled-but-relevant passage. Only rows whose query has held-out positives
can show one, so the rate is also given over those rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.options import opt
from hardneg.core.summary import summarize


@dataclass(frozen=True)
class InspectConfig:
    """What an inspection report is computed from; saved as the ``config`` of its meta file."""

    negatives: str = opt(help="negatives JSONL written by 'hardneg mine'", flag="negatives")
    data: str = opt(help="the data it was mined from (BEIR folder or dataset name)")
    split: str = opt("train", "qrels split that judges the negatives")
    bins: int = opt(40, "histogram bins")
    audit_sample: int = opt(5, "flagged pairs of the judge's audit file (if any) to show with their texts, "
                            "for a human spot check; 0 = none")
    seed: int = opt(0, "seed of the audit sample")

    def __post_init__(self) -> None:
        if self.bins < 1:
            raise HardnegError("--bins must be >= 1")
        if self.audit_sample < 0:
            raise HardnegError("--audit-sample must be >= 0")


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


def _field(row, name: str):
    """A row field from a ``NegRow`` or from its dict form (the ablation keeps rows as dicts)."""
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def false_negatives(rows, qrels: Mapping[str, Mapping[str, int]]) -> dict:
    """False negatives = mined negatives with qrels grade > 0 for the row's query: THE count that
    ``inspect`` and the ablation's probe cells (``false_negative_rate``) both report.

    Returns overall and per-rank (1 = the row's first negative) counts and rates, the rate over
    rows whose query has held-out positives, how many negatives are judged non-relevant (grade 0),
    and the false negatives per grade. ``rows`` are ``NegRow``s or their dicts. Example: one row,
    negatives [a, b], qrels {q: {p: 1, b: 2}} -> rate 0.5, per-rank rates [0.0, 1.0].
    """
    total = fn = judged0 = 0
    held_rows = held_total = held_fn = rows_with_fn = 0
    per_rank_n: list[int] = []
    per_rank_fn: list[int] = []
    by_grade: dict[int, int] = {}
    for r in rows:
        qid, pos_id, neg_ids = _field(r, "qid"), _field(r, "pos_id"), _field(r, "neg_ids")
        grades = qrels.get(qid, {})
        held_out = any(g > 0 and d != pos_id for d, g in grades.items())
        row_fn = 0
        for k, d in enumerate(neg_ids):
            if k == len(per_rank_n):
                per_rank_n.append(0), per_rank_fn.append(0)
            is_fn = grades.get(d, 0) > 0
            if is_fn:
                by_grade[grades[d]] = by_grade.get(grades[d], 0) + 1
            judged0 += d in grades and grades[d] <= 0
            per_rank_n[k] += 1
            per_rank_fn[k] += is_fn
            row_fn += is_fn
        total += len(neg_ids)
        fn += row_fn
        rows_with_fn += row_fn > 0
        if held_out:
            held_rows += 1
            held_total += len(neg_ids)
            held_fn += row_fn
    return {"negatives": total, "false_negatives": fn, "rate": fn / total if total else 0.0,
            "rows_with_false_negative": rows_with_fn, "judged_nonrelevant": judged0,
            "rows_with_held_out": held_rows, "negatives_with_held_out": held_total,
            "rate_with_held_out": held_fn / held_total if held_total else 0.0,
            "by_grade": {str(g): by_grade[g] for g in sorted(by_grade)},
            "per_rank": [{"rank": k + 1, "negatives": n, "false_negatives": f, "rate": f / n if n else 0.0}
                         for k, (n, f) in enumerate(zip(per_rank_n, per_rank_fn))]}


def false_negative_rate(rows: Iterable, judged: Mapping[str, Mapping[str, int]]) -> dict:
    """The probe cells' summary of ``false_negatives``: share of mined negatives that the judgements
    call relevant (grade > 0), counts per grade; only rows whose query has judgements count, and the
    rate is NaN when there are none.

    ``judged`` is ``{qid: {doc_id: grade}}`` with the positives the miner was NOT told about.

    >>> false_negative_rate([{"qid": "q", "neg_ids": ["a", "b", "c", "d"]}], {"q": {"b": 2, "c": 0}})
    {'rate': 0.25, 'false_negatives': 1, 'negatives': 4, 'queries': 1, 'by_grade': {'2': 1}}
    """
    kept = [r for r in rows if _field(r, "qid") in judged]
    f = false_negatives(kept, judged)
    return {"rate": f["false_negatives"] / f["negatives"] if f["negatives"] else math.nan,
            "false_negatives": f["false_negatives"], "negatives": f["negatives"],
            "queries": len({_field(r, "qid") for r in kept}), "by_grade": f["by_grade"]}


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
             f"{(report['negatives_per_row']['mean'] or 0):.2f} negatives per row"]
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


def write_inspection(output: str | Path, report: dict, config: InspectConfig, *, data) -> Path:
    """Write ``report`` (``inspect_rows``' output, JSON) to ``output`` and its meta file; returns ``output``."""
    from hardneg.core.files import sha256_file, write_json
    from hardneg.core.provenance import write_meta

    write_json(output, report)
    write_meta(output, config, negatives_sha256=sha256_file(config.negatives), data_source=data.source,
               data_fingerprint=data.fingerprint())
    return Path(output)


def audit_sample(audit: list[dict], data, n: int = 5, seed: int = 0, width: int = 160) -> list[str]:
    """A seeded sample of ``n`` distinct flagged (query, passage) pairs of a judge's audit, as readable
    lines with the query and passage texts (cut to ``width`` characters), its decision and whether the
    split's qrels call it relevant.

    >>> from hardneg.data.types import Corpus, RetrievalData
    >>> d = RetrievalData(Corpus(["p"], ["T"], ["body"]), {"q": "what?"}, {"q": {"p": 1}}, "train")
    >>> print(audit_sample([{"qid": "q", "doc_id": "p", "decision": "removed", "judge_scores": {"votes": 2.0}}], d)[0])
    [removed, judged relevant: yes, votes=2] q: what?  |  p: T body
    """
    pairs = list(dict.fromkeys((e["qid"], e["doc_id"]) for e in audit))
    first = {}
    for e in audit:
        first.setdefault((e["qid"], e["doc_id"]), e)
    rng = np.random.default_rng(seed)
    chosen = [pairs[i] for i in sorted(rng.choice(len(pairs), min(n, len(pairs)), replace=False))] if pairs else []
    lines = []
    for q, d in chosen:
        e = first[(q, d)]
        rel = data.qrels.get(q, {}).get(d)
        judged = "yes" if rel is not None and rel > 0 else ("no (grade 0)" if rel is not None else "unjudged")
        scores = ", ".join(f"{k}={v:g}" for k, v in e.get("judge_scores", {}).items())
        query, (passage,) = data.queries[q], [data.corpus.passage_texts_at(data.corpus.index[d])]
        lines.append(f"[{e['decision']}, judged relevant: {judged}, {scores}] {q}: {query[:width]}  |  {d}: {passage[:width]}")
    return lines

