"""False-negative judges: is a surviving candidate probably an unlabelled positive of its query?

A judge runs after the method's filter, on every teacher's (Q, D) pool, and returns per pool a
(Q, D) boolean ``flags`` matrix (True = probably relevant) plus the (Q, D) score matrices it
decided on, for the audit file. What happens to a flagged candidate is the run's *action*
(``MineConfig.false_negatives``): ``remove`` (never a negative), ``relabel`` (never a negative, and an
extra positive of its query for training), ``keep`` (flag only, for study) or
``drop-query`` (a query with more than ``drop_query_over`` flags is left out).

Judges (the protocol is ``Judge``: ``name`` and ``judge(pools, p) -> [JudgeOut per pool]``):

* ``agreement``: several teachers vote; a candidate is flagged when at least ``min_votes``
  teachers score it at or above their own positive's threshold ``p - |p| * (1 - frac)`` (the
  sign-safe PercPos rule, ``filters.perc_threshold``). A teacher that did not retrieve the
  candidate does not vote for it. Cheap: it only reads the pools already mined.
* ``cross-encoder`` (``mining.teachers.judge.CrossEncoderJudge``): a cross-encoder scores each
  survivor and the query's known positives (all pairs of all queries in one batched call);
  flagged when ``ce(candidate) >= min ce(positive) - margin`` (``margin_flags``).
* ``llm`` (``mining.teachers.judge.LlmJudge``): a causal LM is asked a yes/no relevance prompt
  (``MineConfig.judge_prompt``) for each survivor and the known positives; its score is
  P(yes) = softmax over the next-token logits of " yes" and " no"; flagged when P(yes) >=
  ``judge_llm_threshold`` (or, relative, when P(yes) >= min P(yes | positive) - margin).

>>> pools = [(np.array([[4, 5, 6]]), np.array([[0.9, 0.6, 0.2]])), (np.array([[5, 4, 7]]), np.array([[8.0, 1.0, 0.5]]))]
>>> out = AgreementJudge(min_votes=2, frac=0.95).judge(pools, [np.array([0.8]), np.array([5.0])])
>>> out[0].flags.tolist(), out[0].scores["votes"].tolist()   # doc 4: teacher 0 yes, teacher 1 no (1.0 < 4.75)
([[False, False, False]], [[1.0, 1.0, 0.0]])
>>> AgreementJudge(min_votes=1, frac=0.95).judge(pools, [np.array([0.8]), np.array([5.0])])[1].flags.tolist()
[[True, True, False]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.mining.filters import perc_threshold

JUDGES = ("none", "agreement", "cross-encoder", "llm")
FN_ACTIONS = ("remove", "relabel", "keep", "drop-query")

Pool = tuple[np.ndarray, np.ndarray]  # (doc_idx (Q, D) int64, -1 = padding; scores (Q, D) float)


@dataclass
class JudgeOut:
    """One pool's verdicts: ``flags`` (Q, D) bool, and the (Q, D) float matrices behind them."""

    flags: np.ndarray
    scores: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class JudgeContext:
    """What a model-based judge needs besides the scores: the data, the pools' query ids (row
    order), each query's known positives and the cells still eligible (per pool (Q, D) bool)."""

    data: object
    qids: list[str]
    known: dict[str, list[str]]
    alive: list[np.ndarray]


class Judge(Protocol):
    name: str

    def judge(self, pools: Sequence[Pool], p: Sequence[np.ndarray], context: JudgeContext | None = None) -> list[JudgeOut]:
        """``pools[t]`` is teacher t's (doc_idx, scores), rows aligned by query; ``p[t]`` (Q,) its
        positive score per query (NaN when unknown: that teacher then never votes for the query)."""
        ...


@dataclass(frozen=True)
class AgreementJudge:
    """Flag a candidate when >= ``min_votes`` teachers score it at or above ``perc_threshold(p, frac)``."""

    min_votes: int = 2
    frac: float = 0.95
    name: str = "agreement"

    def __post_init__(self) -> None:
        if self.min_votes < 1:
            raise HardnegError(f"judge min_votes must be >= 1, got {self.min_votes}")
        if not 0.0 < self.frac <= 1.5:
            raise HardnegError(f"judge fraction must be in (0, 1.5], got {self.frac}")

    def judge(self, pools: Sequence[Pool], p: Sequence[np.ndarray], context: JudgeContext | None = None) -> list[JudgeOut]:
        votes = agreement_votes(pools, p, self.frac)
        return [JudgeOut(v >= self.min_votes, {"votes": v.astype(np.float64)}) for v in votes]


def agreement_votes(pools: Sequence[Pool], p: Sequence[np.ndarray], frac: float) -> list[np.ndarray]:
    """Per pool, (Q, D) counts of the teachers whose own score of that cell's passage reaches their
    threshold ``perc_threshold(p_u, frac)``; padding cells get 0."""
    thr = [perc_threshold(np.asarray(pu, dtype=np.float64), frac) for pu in p]
    n_q = pools[0][0].shape[0]
    hot: list[list[np.ndarray]] = []  # hot[u][q]: passages teacher u scores at or above its threshold
    for (idx, s), t in zip(pools, thr):
        with np.errstate(invalid="ignore"):
            ok = (idx >= 0) & np.isfinite(s) & (s >= t[:, None])
        hot.append([idx[q][ok[q]] for q in range(n_q)])
    out = []
    for idx, _ in pools:
        v = np.zeros(idx.shape, dtype=np.int64)
        for q in range(n_q):
            for u in range(len(pools)):
                if len(hot[u][q]):
                    v[q] += np.isin(idx[q], hot[u][q])
        out.append(np.where(idx >= 0, v, 0))
    return out


def margin_flags(cand: np.ndarray, pos: np.ndarray, margin: float) -> np.ndarray:
    """Cross-encoder rule: flag ``cand >= pos - margin`` (pos (Q,) per query; NaN never flags).

    >>> margin_flags(np.array([[2.0, 0.5]]), np.array([1.0]), 0.0).tolist()
    [[True, False]]
    """
    with np.errstate(invalid="ignore"):
        return np.asarray(cand, dtype=np.float64) >= (np.asarray(pos, dtype=np.float64) - margin)[:, None]


def held_out_quality(flags: Sequence[np.ndarray], pools: Sequence[Pool], eligible: Sequence[np.ndarray],
                     hidden: Sequence[set[int]]) -> dict:
    """Precision and recall of the flags against held-out positives (``hidden[q]``: corpus rows of the
    query's judged-relevant passages the miner was not told about), over the ``eligible`` cells
    (surviving candidates), distinct (query, passage) pairs across pools.

    >>> pools = [(np.array([[1, 2, 3]]), np.zeros((1, 3)))]
    >>> held_out_quality([np.array([[True, True, False]])], pools, [np.ones((1, 3), bool)], [{2, 3}])
    {'flagged': 2, 'flagged_held_out': 1, 'held_out_candidates': 2, 'precision': 0.5, 'recall': 0.5}
    """
    flagged, seen = set(), set()
    for f, (idx, _), el in zip(flags, pools, eligible):
        for q, d in zip(*np.nonzero(el)):
            pair = (int(q), int(idx[q, d]))
            if pair[1] in hidden[q]:
                seen.add(pair)
            if f[q, d]:
                flagged.add(pair)
    hits = sum(1 for q, d in flagged if d in hidden[q])
    return {"flagged": len(flagged), "flagged_held_out": hits, "held_out_candidates": len(seen),
            "precision": hits / len(flagged) if flagged else float("nan"),
            "recall": hits / len(seen) if seen else float("nan")}
