"""Pure statistics for comparing retrieval systems: paired bootstrap, mean ± std.

Everything here is numpy over plain dicts ``{qid: score}``; no model or benchmark knowledge.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delta:
    """Mean per-query difference ``other - base`` with a two-sided bootstrap interval."""

    mean: float
    lo: float
    hi: float
    n: int  # number of paired queries

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return self.lo > 0 or self.hi < 0

    def fmt(self, digits: int = 4) -> str:
        """``+0.0123 [+0.0040, +0.0201]``."""
        return f"{self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def paired_bootstrap(base: Mapping[str, float], other: Mapping[str, float], *, n_resamples: int = 2000,
                     seed: int = 0, level: float = 0.95, chunk: int = 250) -> Delta:
    """Percentile bootstrap over queries of the mean difference ``other - base``.

    Queries are resampled with replacement *as pairs*, so the per-query correlation of the two
    systems is kept. Only queries present in both are used (a warning names how many were not).

    >>> d = paired_bootstrap({"a": .5, "b": .7}, {"a": .6, "b": .8})
    >>> round(d.mean, 6), round(d.lo, 6), round(d.hi, 6)
    (0.1, 0.1, 0.1)
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    qids = sorted(set(base) & set(other))
    if not qids:
        raise ValueError("paired_bootstrap: the two systems share no query ids")
    missing = len(set(base) ^ set(other))
    if missing:
        log.warning("paired_bootstrap: %d queries are scored by only one system; using the %d shared",
                    missing, len(qids))
    d = np.array([other[q] for q in qids], dtype=np.float64) - np.array([base[q] for q in qids], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, chunk):  # bounded memory: (chunk, n) indices at a time
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, len(d), size=(stop - start, len(d)))
        means[start:stop] = d[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return Delta(float(d.mean()), float(lo), float(hi), len(d))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value).

    >>> mean_std([1.0, 3.0])
    (2.0, 1.4142135623730951)
    """
    if len(values) == 0:
        return math.nan, math.nan
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def mean_per_query(runs: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Average several seeds' per-query scores, query by query (queries present in every run).

    >>> mean_per_query([{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 0.0}])
    {'a': 0.5, 'b': 0.0}
    """
    runs = list(runs)
    if not runs:
        return {}
    shared = [q for q in runs[0] if all(q in r for r in runs[1:])]
    return {q: float(np.mean([r[q] for r in runs])) for q in shared}


def metric_key(metrics: Mapping[str, object], name: str) -> str:
    """Find ``name`` (e.g. ``"ndcg@10"``) among differently spelt keys.

    >>> metric_key({"ndcg_cut_10": 0.5, "recall_100": 0.9}, "NDCG@10")
    'ndcg_cut_10'
    >>> metric_key({"ndcg_at_10": 0.5}, "ndcg@10")
    'ndcg_at_10'
    """
    want = _norm(name)
    for key in metrics:
        if _norm(key) == want:
            return key
    raise KeyError(f"metric {name!r} not found; have {sorted(metrics)}")


def _norm(name: str) -> str:
    s = re.sub(r"[^a-z0-9]", "", name.lower())
    return re.sub(r"(cut|at)(?=\d+$)", "", s)
