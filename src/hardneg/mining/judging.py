"""The judge step of ``mine()``: run a false-negative judge on every teacher's filtered pool, apply the
run's action to what it flags, and keep the audit trail.

Actions (``MineConfig.false_negatives``):

* ``remove`` (default): a flagged candidate is never a negative (counted as removed by ``judge``);
* ``keep``: flag only; the candidate stays eligible (to study what a judge would do);
* ``drop-query``: a query with more than ``drop_query_over`` distinct flagged passages is left out of
  the output (counted), and the other queries' flagged candidates are removed.

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


def apply_judge(judge: Judge, cands: list[Candidates], alive: list[np.ndarray], p: list[np.ndarray], data,
                known: dict[str, list[str]], action: str, drop_query_over: int,
                held_out: bool) -> JudgeStep:
    """Judge the pools (rows aligned with ``cands[0].qids``) and apply ``action`` to the flags."""
    context = JudgeContext(data, list(cands[0].qids), known, alive)
    outs = judge.judge([(c.doc_idx, c.scores) for c in cands], p, context)
    flags = [o.flags & a for o, a in zip(outs, alive)]
    qids = cands[0].qids
    ids = data.corpus.ids
    distinct = [len({int(c.doc_idx[r, j]) for c, f in zip(cands, flags) for j in np.flatnonzero(f[r])})
                for r in range(len(qids))]
    dropped = {q for q, n in zip(qids, distinct) if action == "drop-query" and n > drop_query_over}
    step = JudgeStep([a & ~f for a, f in zip(alive, flags)] if action != "keep" else list(alive),
                     [f.sum(axis=1) if action != "keep" else np.zeros(len(qids), np.int64) for f in flags],
                     dropped=dropped)
    for t, (c, f, o) in enumerate(zip(cands, flags, outs)):
        for r, j in zip(*np.nonzero(f)):
            qid = qids[r]
            decision = "query-dropped" if qid in dropped else ("kept" if action == "keep" else "removed")
            step.audit.setdefault(qid, []).append({
                "qid": qid, "doc_id": ids[c.doc_idx[r, j]], "teacher": c.teacher, "score": round(float(c.scores[r, j]), 6),
                "positive_score": None if np.isnan(p[t][r]) else round(float(p[t][r]), 6), "judge": judge.name,
                "judge_scores": {k: round(float(v[r, j]), 6) for k, v in o.scores.items()}, "decision": decision})
    if held_out:
        index = data.corpus.index
        hidden = [{index[d] for d in data.relevant(q)} - {index[d] for d in known[q]} for q in qids]
        step.quality = held_out_quality(flags, [(c.doc_idx, c.scores) for c in cands], alive, hidden)
    return step
