"""The paper's random baseline: uniform random non-positives as a teacher.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np

from hardneg.mining.candidates import Candidates
from hardneg.mining.teachers.pool_cache import CachedTeacher

log = logging.getLogger(__name__)


class RandomTeacher(CachedTeacher):
    """Uniform random non-positives: the paper's random baseline.

    Scores: each query's non-positive passages are shuffled (seeded by ``seed`` and the query id,
    so a query's pool does not depend on which other queries are asked) and get evenly spaced
    scores in (0, 1) in shuffled order; every positive scores 1.0. Scores carry no information, so
    every method yields uniform random negatives: naive and shifted take a random subset, and
    percpos / marginpos (positive 1.0) and abs (threshold t) just skip the top 5% / 0.05 / 1 - t
    of a random order. Deeper pools extend shallower ones (same shuffle).

    >>> # RandomTeacher(seed=1).candidates(data, ["q1"], 3).doc_idx  -> e.g. [[4, 1, 5]]
    """

    def __init__(self, seed: int = 42, *, cache_dir: str | Path | None = None, cache: bool = False):
        super().__init__(cache_dir, cache)
        self.seed = int(seed)
        self.name = "random"
        self.fingerprint = f"random:seed={self.seed}"

    def _compute(self, data, qids: list[str], depth: int) -> Candidates:
        n = len(data.corpus)
        index = data.corpus.index
        idx = np.full((len(qids), depth), -1, dtype=np.int64)
        scores = np.full((len(qids), depth), -np.inf, dtype=np.float32)
        grid = 1.0 - np.arange(1, n + 1, dtype=np.float64) / (n + 1)  # (N,) descending in (0, 1)
        pos: dict[str, dict[str, float]] = {}
        for i, qid in enumerate(qids):
            rng = np.random.default_rng([self.seed, zlib.crc32(qid.encode("utf-8"))])
            perm = rng.permutation(n)
            rel = {index[d] for d in data.relevant(qid)}
            perm = perm[~np.isin(perm, list(rel))][:depth] if rel else perm[:depth]
            idx[i, : len(perm)] = perm
            scores[i, : len(perm)] = grid[: len(perm)]
            pos[qid] = {d: 1.0 for d in data.relevant(qid)}
        return Candidates(self.name, self.fingerprint, qids, idx, scores, pos)
