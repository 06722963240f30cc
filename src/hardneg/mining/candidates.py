"""The candidate pool a teacher hands to mining: ranked corpus rows and scores per query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Candidates:
    """One teacher's ranked pool for a list of queries.

    doc_idx (Q, D) int64 corpus rows ranked by ``hardneg.search.rank.rank`` (score desc, then id), -1 = padding;
    scores (Q, D) float32 teacher scores, -inf at padding. Candidates INCLUDE positives: mining
    removes them by id and counts it. ``pos_scores[qid][doc_id]`` is the teacher's score of each
    known positive, whether or not it was retrieved. ``search`` describes how the pool was searched
    (backend, engine, index parameters, recall check, corpus shards) for the run's meta file.
    """

    teacher: str
    fingerprint: str
    qids: list[str]
    doc_idx: np.ndarray
    scores: np.ndarray
    pos_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    search: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.doc_idx.shape != self.scores.shape or self.doc_idx.shape[0] != len(self.qids):
            raise ValueError(f"Candidates: doc_idx {self.doc_idx.shape}, scores {self.scores.shape} "
                             f"and {len(self.qids)} qids disagree")

    @property
    def depth(self) -> int:
        return int(self.doc_idx.shape[1])

    def subset(self, qids: list[str]) -> "Candidates":
        """The rows of ``qids`` (in that order)."""
        pos = {q: i for i, q in enumerate(self.qids)}
        rows = np.array([pos[q] for q in qids], dtype=np.int64)
        return Candidates(self.teacher, self.fingerprint, list(qids), self.doc_idx[rows], self.scores[rows],
                          {q: self.pos_scores.get(q, {}) for q in qids}, dict(self.search))


@runtime_checkable
class Teacher(Protocol):
    """Anything that can rank the corpus for queries: dense encoder, BM25, random, rescored pools."""

    name: str
    fingerprint: str

    def candidates(self, data, qids: list[str], depth: int) -> Candidates: ...
