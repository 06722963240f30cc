"""The judge step of ``mine()``: run a false-negative judge on every teacher's filtered pool, apply the
run's action to what it flags, and keep the audit trail.

Actions (``MineConfig.false_negatives``):

* ``remove`` (default): a flagged candidate is never a negative (counted as removed by ``judge``);
* ``relabel``: as ``remove``, and the flagged passages become extra positives of their query
  (``NegRow.relabeled``, best first): the trainer adds a row for each and masks them, by id, out of
  every negative of that query (in-batch and hard);
* ``keep``: flag only; the candidate stays eligible (to study what a judge would do);
* ``drop-query``: a query with more than ``drop_query_over`` distinct flagged passages is left out of
  the output (counted), and the other queries' flagged candidates are removed.

Voters (``n_select`` < number of pools): the pools after the first ``n_select`` belong to teachers that
only vote (e.g. BM25 judging a dense teacher's negatives); they are judged too but supply no negatives,
so the audit, the relabelled passages and the held-out quality count the first ``n_select`` pools.

The audit has one entry per flagged (query, passage, teacher): the teacher's score, its positive
score, the judge's scores and the decision. With ``anchor_only`` (held-out positives exist) the
judge's precision and recall against them are measured as well (``judges.held_out_quality``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardneg.mining.candidates import Candidates
from hardneg.mining.judges import Judge, JudgeContext, held_out_quality


@dataclass
class JudgeStep:
    alive: list[np.ndarray]                 # per pool (Q, D): candidates still eligible after the action
    removed: list[np.ndarray]               # per pool (Q,): cells the action removed
    audit: dict[str, list[dict]] = field(default_factory=dict)  # qid -> flagged entries
    dropped: set[str] = field(default_factory=set)              # queries left out (drop-query)
    quality: dict | None = None             # precision / recall against held-out positives
    relabeled: dict[str, list[str]] = field(default_factory=dict)  # qid -> new positives (relabel)


def apply_judge(judge: Judge, cands: list[Candidates], alive: list[np.ndarray], p: list[np.ndarray], data,
                known: dict[str, list[str]], action: str, drop_query_over: int,
                held_out: bool, n_select: int | None = None) -> JudgeStep:
    """Judge the pools (rows aligned with ``cands[0].qids``) and apply ``action`` to the flags;
    only the first ``n_select`` pools (default all) supply negatives, the rest vote."""
    n_select = len(cands) if n_select is None else n_select
    context = JudgeContext(data, list(cands[0].qids), known, alive)
    outs = judge.judge([(c.doc_idx, c.scores) for c in cands], p, context)
    flags = [o.flags & a for o, a in zip(outs, alive)]
    qids = cands[0].qids
    ids = data.corpus.ids
    sel = list(zip(cands[:n_select], flags[:n_select]))
    distinct = [len({int(c.doc_idx[r, j]) for c, f in sel for j in np.flatnonzero(f[r])})
                for r in range(len(qids))]
    dropped = {q for q, n in zip(qids, distinct) if action == "drop-query" and n > drop_query_over}
    step = JudgeStep([a & ~f for a, f in zip(alive, flags)] if action != "keep" else list(alive),
                     [f.sum(axis=1) if action != "keep" else np.zeros(len(qids), np.int64) for f in flags],
                     dropped=dropped)
    decided = {"keep": "kept", "relabel": "relabeled"}.get(action, "removed")
    for t, (c, f, o) in enumerate(zip(cands[:n_select], flags, outs)):
        for r, j in zip(*np.nonzero(f)):
            qid = qids[r]
            decision = "query-dropped" if qid in dropped else decided
            step.audit.setdefault(qid, []).append({
                "qid": qid, "doc_id": ids[c.doc_idx[r, j]], "teacher": c.teacher, "score": round(float(c.scores[r, j]), 6),
                "positive_score": None if np.isnan(p[t][r]) else round(float(p[t][r]), 6), "judge": judge.name,
                "judge_scores": {k: round(float(v[r, j]), 6) for k, v in o.scores.items()}, "decision": decision})
    if action == "relabel":
        step.relabeled = relabeled_passages(sel, qids, ids)
    if held_out:
        index = data.corpus.index
        hidden = [{index[d] for d in data.relevant(q)} - {index[d] for d in known[q]} for q in qids]
        step.quality = held_out_quality(flags[:n_select], [(c.doc_idx, c.scores) for c in cands[:n_select]],
                                        alive[:n_select], hidden)
    return step


def relabeled_passages(pools: list[tuple[Candidates, np.ndarray]], qids: list[str], ids: list[str]) -> dict[str, list[str]]:
    """Per query, the distinct flagged passages of the selection pools, best first (by the highest
    score a pool gave them, pools in order; a passage flagged twice is listed once).

    >>> from hardneg.mining.candidates import Candidates
    >>> c = Candidates("t", "fp", ["q"], np.array([[0, 1, 2]]), np.array([[0.7, 0.8, 0.9]]))
    >>> relabeled_passages([(c, np.array([[False, True, True]]))], ["q"], ["a", "b", "c"])
    {'q': ['c', 'b']}
    """
    out: dict[str, list[str]] = {}
    for r, qid in enumerate(qids):
        seen: dict[int, float] = {}
        for c, f in pools:
            for j in np.flatnonzero(f[r]):
                d = int(c.doc_idx[r, j])
                seen.setdefault(d, float(c.scores[r, j]))
        if seen:
            out[qid] = [ids[d] for d, _ in sorted(seen.items(), key=lambda kv: -kv[1])]
    return out
