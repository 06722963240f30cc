"""Mining filters: pure functions over one teacher's (Q, D) candidate matrix.

Every filter returns a boolean KEEP mask of shape (Q, D); ``run_chain`` applies them in order and
counts, per query, how many still-alive candidates each one removed (those counts become the run's
stats). ``s`` is the (Q, D) score matrix, ``p`` the (Q,) positive score used as the threshold.
All method comparisons are strict, as in method.md; every rule is sign-safe, so BM25 scores
(> 1) and dot-product scores (< 0) work as well as cosines.

>>> s = np.array([[0.9, 0.8, 0.5]]); p = np.array([0.85])
>>> perc_pos(s, p, 0.95).tolist()       # threshold 0.85 - 0.85 * 0.05 = 0.8075
[[False, True, True]]
"""

from __future__ import annotations

from typing import Callable

import numpy as np

METHODS = ("naive", "shifted", "abs", "marginpos", "percpos")
POSITIVE_SCORE = ("min", "mean", "max")
POSITIVE_METHODS = ("marginpos", "percpos")  # thresholds relative to the positive's score p

Mask = np.ndarray  # (Q, D) bool, True = keep


def not_padding(doc_idx: np.ndarray, s: np.ndarray) -> Mask:
    """Drop padding cells (row -1) and non-finite scores (-inf padding, NaN from a broken teacher)."""
    return (doc_idx >= 0) & np.isfinite(s)


def not_positive(doc_idx: np.ndarray, positives: list[set[int]]) -> Mask:
    """Drop known positives by corpus row (never by score).

    >>> not_positive(np.array([[3, 1, 2]]), [{1}]).tolist()
    [[True, False, True]]
    """
    keep = np.ones(doc_idx.shape, dtype=bool)
    for r, pos in enumerate(positives):
        if pos:
            keep[r] = ~np.isin(doc_idx[r], np.fromiter(pos, dtype=np.int64, count=len(pos)))
    return keep


def naive(s: np.ndarray) -> Mask:
    """Naive top-k: keep every candidate."""
    return np.ones(s.shape, dtype=bool)


def shifted(eligible: Mask, shift: int) -> Mask:
    """Keep candidates whose 0-based rank among ``eligible`` (non-positive, non-padding) is >= shift.

    Columns are already in rank order, so the rank is the count of eligible cells before it.

    >>> shifted(np.array([[True, False, True, True]]), 1).tolist()
    [[False, True, True, True]]
    """
    rank = np.cumsum(eligible, axis=1) - eligible  # eligible cells strictly before this one
    return ~eligible | (rank >= shift)


def absolute(s: np.ndarray, max_score: float) -> Mask:
    """TopK-Abs: keep s < max_score."""
    return s < max_score


def margin_pos(s: np.ndarray, p: np.ndarray, margin: float) -> Mask:
    """TopK-MarginPos: keep s < p - margin (p per query)."""
    return s < (np.asarray(p, dtype=np.float64) - margin)[:, None]


def perc_threshold(p: np.ndarray, perc: float) -> np.ndarray:
    """The sign-safe PercPos threshold ``p - |p| * (1 - perc)`` (float64), shared by ``perc_pos`` and the
    agreement judge.

    >>> perc_threshold(np.array([2.0, -2.0]), 0.95).tolist()
    [1.9, -2.1]
    """
    p = np.asarray(p, dtype=np.float64)
    return p - np.abs(p) * (1.0 - perc)


def perc_pos(s: np.ndarray, p: np.ndarray, perc: float) -> Mask:
    """TopK-PercPos, sign-safe: keep s < p - |p| * (1 - perc).

    For p > 0 this is s < p * perc; for p < 0 (dot products) the threshold still lies
    *below* the positive. Example: p = -2, perc 0.95 -> threshold -2.1, not -1.9.

    >>> perc_pos(np.array([[-2.05, -2.2]]), np.array([-2.0]), 0.95).tolist()
    [[False, True]]
    """
    return s < perc_threshold(p, perc)[:, None]


def floor(s: np.ndarray, min_score: float) -> Mask:
    """Optional floor: keep s >= min_score (inclusive, so ``--min-score 0`` keeps zero scores)."""
    return s >= min_score


def method_mask(method: str, s: np.ndarray, p: np.ndarray, eligible: Mask, *, shift: int = 10,
                max_score: float = 0.7, margin: float = 0.05, perc: float = 0.95) -> Mask:
    """The KEEP mask of one of ``METHODS`` (``eligible`` is only used by ``shifted``)."""
    if method == "naive":
        return naive(s)
    if method == "shifted":
        return shifted(eligible, shift)
    if method == "abs":
        return absolute(s, max_score)
    if method == "marginpos":
        return margin_pos(s, p, margin)
    if method == "percpos":
        return perc_pos(s, p, perc)
    raise ValueError(f"unknown mining method {method!r}; choose one of {METHODS}")


def zero_threshold(p: np.ndarray, method: str) -> np.ndarray:
    """(Q,) True where a positive-relative method's threshold sits on a zero positive score.

    BM25 scores 0 a positive that shares no term with its query; with ``p = 0`` PercPos keeps only
    ``s < 0`` and MarginPos ``s < -margin``, which BM25 never scores, so the query yields nothing
    (with ``positive_score="min"`` one such positive is enough). Other methods ignore ``p``.

    >>> zero_threshold(np.array([0.0, 3.2, -0.0]), "percpos").tolist()
    [True, False, True]
    >>> zero_threshold(np.array([0.0]), "abs").tolist()
    [False]
    """
    p = np.asarray(p, dtype=np.float64)
    if method not in POSITIVE_METHODS:
        return np.zeros(p.shape, dtype=bool)
    return np.abs(p) <= 1e-9


def aggregate_positive(scores: list[float], how: str = "min") -> float:
    """One threshold score from a query's positives: min (default, NVIDIA's choice), mean or max.

    >>> aggregate_positive([0.9, 0.5], "min"), aggregate_positive([0.9, 0.5], "mean")
    (0.5, 0.7)
    """
    if not scores:
        return float("nan")
    if how == "min":
        return float(min(scores))
    if how == "max":
        return float(max(scores))
    if how == "mean":
        return float(np.mean(scores))
    raise ValueError(f"unknown positive-score aggregation {how!r}; choose one of {POSITIVE_SCORE}")


Step = tuple[str, Callable[[Mask], Mask]]


def run_chain(shape: tuple[int, int], steps: list[Step]) -> tuple[Mask, dict[str, np.ndarray]]:
    """Apply filters in order; return (alive mask, {name: (Q,) count each step removed}).

    Each step gets the mask of candidates alive so far (``shifted`` needs it) and returns its KEEP
    mask; a candidate removed by an earlier step is never counted again.

    >>> alive, removed = run_chain((1, 3), [("a", lambda m: np.array([[1, 0, 1]], bool)),
    ...                                     ("b", lambda m: np.array([[0, 0, 1]], bool))])
    >>> alive.tolist(), {k: v.tolist() for k, v in removed.items()}
    ([[False, False, True]], {'a': [1], 'b': [1]})
    """
    alive = np.ones(shape, dtype=bool)
    removed: dict[str, np.ndarray] = {}
    for name, fn in steps:
        keep = np.asarray(fn(alive), dtype=bool)
        removed[name] = (alive & ~keep).sum(axis=1)
        alive &= keep
    return alive, removed


def mining_chain(doc_idx: np.ndarray, s: np.ndarray, p: np.ndarray, positives: list[set[int]], method: str,
                 *, min_score: float | None = None, **params) -> tuple[Mask, dict[str, np.ndarray]]:
    """The standard chain: padding -> positives (by id) -> method -> optional min-score floor."""
    steps: list[Step] = [
        ("padding", lambda m: not_padding(doc_idx, s)),
        ("positive", lambda m: not_positive(doc_idx, positives)),
        (method, lambda m: method_mask(method, s, p, m, **params)),
    ]
    if min_score is not None:
        steps.append(("min_score", lambda m: floor(s, min_score)))
    return run_chain(s.shape, steps)
