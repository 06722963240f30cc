"""Teacher ensembles (paper, section on teacher models): combine several teachers' picks for one row.

Input per row: one *queue* per teacher, the teacher's survivors in its selection's preference order
(``select.selection_order``), already filtered with that teacher's own positive scores. Output:
``n`` picks, each remembering the teacher it came from.

* ``cross-sample``: the row takes all its negatives from one teacher chosen uniformly at random.
* ``intra-dedup``: round-robin over teachers, each giving its next pick; a passage already taken
  is skipped and that teacher gives its next one instead.
* ``intra-nodedup``: round-robin, duplicates kept (the paper's best ensemble).

>>> qs = [Queue(np.array([1, 2, 3]), np.array([.9, .8, .7])), Queue(np.array([1, 4]), np.array([5., 4.]))]
>>> [(p.doc, p.teacher) for p in combine(qs, 3, "intra-nodedup")]
[(1, 0), (1, 1), (2, 0)]
>>> [(p.doc, p.teacher) for p in combine(qs, 3, "intra-dedup")]
[(1, 0), (4, 1), (2, 0)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ENSEMBLES = ("cross-sample", "intra-dedup", "intra-nodedup")


@dataclass(frozen=True)
class Queue:
    """One teacher's candidates for one row, in preference order: corpus rows and scores."""

    docs: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class Pick:
    doc: int        # corpus row
    score: float    # the picking teacher's score
    teacher: int    # index into the teacher list


def _take(q: Queue, t: int, i: int) -> Pick:
    return Pick(int(q.docs[i]), float(q.scores[i]), t)


def single(queue: Queue, n: int, teacher: int = 0) -> list[Pick]:
    """The first ``n`` of one teacher's queue."""
    return [_take(queue, teacher, i) for i in range(min(n, len(queue.docs)))]


def cross_sample(queues: list[Queue], n: int, rng: np.random.Generator) -> list[Pick]:
    """All ``n`` negatives from one teacher picked uniformly at random with ``rng``."""
    t = int(rng.integers(len(queues)))
    return single(queues[t], n, t)


def intra(queues: list[Queue], n: int, dedup: bool) -> list[Pick]:
    """Round-robin over teachers (teacher 0 first); with ``dedup`` a taken passage is skipped."""
    ptr = [0] * len(queues)
    taken: set[int] = set()
    picks: list[Pick] = []
    while len(picks) < n:
        progressed = False
        for t, q in enumerate(queues):
            if len(picks) >= n:
                break
            if dedup:
                while ptr[t] < len(q.docs) and int(q.docs[ptr[t]]) in taken:
                    ptr[t] += 1
            if ptr[t] >= len(q.docs):
                continue
            pick = _take(q, t, ptr[t])
            ptr[t] += 1
            taken.add(pick.doc)
            picks.append(pick)
            progressed = True
        if not progressed:
            break  # every teacher exhausted: a shortfall, reported by the caller
    return picks


def combine(queues: list[Queue], n: int, mode: str | None = None,
            rng: np.random.Generator | None = None) -> list[Pick]:
    """Up to ``n`` picks for one row; a single teacher ignores ``mode``."""
    if len(queues) == 1:
        return single(queues[0], n)
    if mode == "cross-sample":
        if rng is None:
            raise ValueError("cross-sample needs an rng")
        return cross_sample(queues, n, rng)
    if mode == "intra-dedup":
        return intra(queues, n, dedup=True)
    if mode == "intra-nodedup":
        return intra(queues, n, dedup=False)
    raise ValueError(f"unknown ensemble {mode!r}; choose one of {ENSEMBLES}")
