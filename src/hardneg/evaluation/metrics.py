"""Retrieval metrics as MTEB computes them: pure functions over ``qrels`` and a ``run``.

    qrels  {qid: {doc_id: grade}}   grade > 0 relevant, grade 0 judged not relevant
    run    {qid: {doc_id: score}}   higher score = better; dict order = our ranking (search.rank)

``ndcg@k``, ``map@k``, ``recall@k`` and ``p@k`` come from pytrec_eval (``ndcg_cut``, ``map_cut``,
``recall``, ``P``) exactly as ``mteb/_evaluators/retrieval_metrics.py`` calls it; ``mrr@k`` is
MTEB's own definition (pytrec_eval's ``recip_rank`` has no cut-off).

How our scores feed pytrec_eval, so results equal MTEB's:
* Raw similarity scores go in unchanged (float32 widened to Python float), as MTEB passes them.
  pytrec_eval (trec_eval) re-ranks each query by score descending and breaks exact ties by doc id
  DESCENDING; MTEB inherits that, and so do we. The run's own order is ignored by these metrics.
* ``mrr@k`` follows MTEB (2.26, its issue #5092): sorted by score, exact ties by doc id descending,
  like trec_eval, so the run's own order never matters.
* Queries evaluated: those in ``qrels`` with at least one judged row (MTEB's
  ``_filter_queries_without_positives`` drops only empty qrels). A query judged but with no grade > 0
  doc is kept and scores 0 on every metric, as in MTEB. A judged query missing from the run scores
  0 (it was retrieved for and nothing came back); run queries without qrels are ignored.
* ``ignore_identical_ids`` (BEIR's default, MTEB's per-task flag) drops a doc whose id equals the
  query id from the run before scoring.
* Means are plain means over the evaluated queries, unrounded (MTEB rounds to 5 decimals).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from hardneg.core.errors import HardnegError

log = logging.getLogger(__name__)

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

#: The metrics ``hardneg evaluate`` reports, main one first.
DEFAULT_METRICS = ("ndcg@10", "ndcg@100", "map@100", "recall@10", "recall@100", "mrr@10", "p@10")

# our family name -> pytrec_eval measure family (its output key is f"{family}_{k}")
_PYTREC = {"ndcg": "ndcg_cut", "map": "map_cut", "recall": "recall", "p": "P"}
_NAME = re.compile(r"^(ndcg|map|recall|p|mrr)@([1-9][0-9]*)$")


@dataclass
class MetricScores:
    """Means and per-query values of each metric (per-query feeds paired bootstrap tests)."""

    means: dict[str, float]                  # metric -> mean over evaluated queries
    per_query: dict[str, dict[str, float]]   # metric -> {qid: value}
    n_queries: int


def parse_metric(name: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; unknown names are a HardnegError.

    >>> parse_metric("P@10")
    ('p', 10)
    """
    m = _NAME.match(name.strip().lower())
    if not m:
        raise HardnegError(f"unknown metric {name!r}: use ndcg@K, map@K, recall@K, p@K or mrr@K (e.g. ndcg@10)")
    return m.group(1), int(m.group(2))


def drop_identical_ids(run: Run) -> dict[str, dict[str, float]]:
    """Copy of ``run`` without docs whose id equals the query id (BEIR/MTEB ``ignore_identical_ids``).

    >>> drop_identical_ids({"q1": {"q1": 0.9, "d2": 0.5}})
    {'q1': {'d2': 0.5}}
    """
    return {q: {d: s for d, s in docs.items() if d != q} for q, docs in run.items()}


def judged_queries(qrels: Qrels) -> list[str]:
    """Query ids with at least one judged row, in qrels order (the queries MTEB evaluates)."""
    return [q for q, docs in qrels.items() if len(docs) > 0]


def mrr_at_k(qrels: Qrels, run: Run, k: int, qids: Iterable[str] | None = None) -> dict[str, float]:
    """Reciprocal rank of the first doc with grade > 0 within the top ``k``, per query (MTEB's MRR@k).

    Ranking: score descending, exact ties by doc id descending (as pytrec_eval, and MTEB since its
    issue #5092; before that MTEB kept the run's insertion order).

    >>> mrr_at_k({"q": {"a": 1, "b": 0}}, {"q": {"b": 0.9, "c": 0.8, "a": 0.7}}, 10)
    {'q': 0.3333333333333333}
    >>> mrr_at_k({"q": {"a": 1}}, {"q": {"b": 0.9, "c": 0.8, "a": 0.7}}, 2)
    {'q': 0.0}
    """
    out: dict[str, float] = {}
    for q in (qids if qids is not None else judged_queries(qrels)):
        relevant = {d for d, g in qrels.get(q, {}).items() if g > 0}
        ranked = sorted(run.get(q, {}).items(), key=lambda item: (item[1], item[0]), reverse=True)[:k]
        out[q] = next((1.0 / r for r, (d, _) in enumerate(ranked, 1) if d in relevant), 0.0)
    return out


def _pytrec(qrels: Qrels, run: Run, families: dict[str, set[int]], qids: list[str]) -> dict[str, dict[str, float]]:
    """pytrec_eval values ``{f"{family}@{k}": {qid: value}}`` for each of our families and cut-offs."""
    import pytrec_eval

    measures = {f"{_PYTREC[f]}.{','.join(map(str, sorted(ks)))}" for f, ks in families.items()}
    judged = {q: {str(d): int(g) for d, g in qrels[q].items()} for q in qids}
    # every judged query gets a run entry (possibly empty) so pytrec_eval scores it (0 when empty)
    trec_run = {q: {str(d): float(s) for d, s in run.get(q, {}).items()} for q in qids}
    raw = pytrec_eval.RelevanceEvaluator(judged, measures).evaluate(trec_run)
    out: dict[str, dict[str, float]] = {}
    for f, ks in families.items():
        for k in ks:
            out[f"{f}@{k}"] = {q: float(raw[q][f"{_PYTREC[f]}_{k}"]) for q in qids}
    return out


def score_run(qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS, *,
              ignore_identical_ids: bool = True) -> MetricScores:
    """Score ``run`` against ``qrels``: means and per-query values of each metric in ``metrics``.

    One query, relevant docs at ranks 1 and 3 of the run, nothing else relevant:
    ndcg@10 = (1 + 1/log2(4)) / (1 + 1/log2(3)) = 0.9197, mrr@10 = 1, p@10 = 0.2.

    >>> s = score_run({"q": {"a": 1, "c": 1}}, {"q": {"a": 0.9, "b": 0.8, "c": 0.7}})
    >>> round(s.means["ndcg@10"], 4), s.means["mrr@10"], s.means["p@10"]
    (0.9197, 1.0, 0.2)
    """
    names = list(dict.fromkeys(m.strip().lower() for m in metrics))
    parsed = {m: parse_metric(m) for m in names}
    qids = judged_queries(qrels)
    if not qids:
        raise HardnegError("no judged queries to evaluate: the qrels are empty")
    missing = sum(1 for q in qids if q not in run)
    if missing:
        log.warning("%d of %d judged queries have no run entry; they score 0", missing, len(qids))
    if ignore_identical_ids:
        run = drop_identical_ids(run)
    families: dict[str, set[int]] = {}
    for fam, k in parsed.values():
        if fam != "mrr":
            families.setdefault(fam, set()).add(k)
    values = _pytrec(qrels, run, families, qids) if families else {}
    for m, (fam, k) in parsed.items():
        if fam == "mrr":
            values[f"mrr@{k}"] = mrr_at_k(qrels, run, k, qids)
    per_query = {m: values[f"{parsed[m][0]}@{parsed[m][1]}"] for m in names}
    means = {m: sum(v.values()) / len(qids) for m, v in per_query.items()}
    return MetricScores(means=means, per_query=per_query, n_queries=len(qids))
