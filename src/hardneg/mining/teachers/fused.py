"""A hybrid teacher: several teachers' pools fused into one ranking by per-query z-scores.

``fuse:minilm+bm25`` asks each teacher for its top-``depth`` pool, turns each teacher's scores into
z-scores over its own pool (per query: minus the pool's mean, over its standard deviation), and ranks
the union of the pools by the weighted mean of the z-scores. A passage missing from one teacher's pool
takes that pool's lowest score for that teacher (an upper bound on its true score: it ranked below the
whole pool). The known positives are fused the same way from each teacher's exact positive score, so
positive-aware thresholds (PercPos, MarginPos) compare fused against fused.

Why: lexical and dense teachers err on different passages. On NFCorpus test (``benchmarks/teacher_quality.py``,
depth 100), MiniLM scores NDCG@10 0.3145, BM25 0.3177 and this fusion 0.3581: a teacher stronger than either,
which sentence-transformers' ``mine_hard_negatives`` (one embedding model) cannot use.

>>> a = Candidates("a", "fa", ["q"], np.array([[0, 1, 2]]), np.array([[3.0, 2.0, 1.0]], np.float32), {"q": {"p": 2.5}})
>>> b = Candidates("b", "fb", ["q"], np.array([[2, 3, 0]]), np.array([[9.0, 6.0, 4.5]], np.float32), {"q": {"p": 9.0}})
>>> f = fuse_pools([a, b], [1.0, 1.0], 3, key=np.arange(4), name="fuse:a+b", fingerprint="fuse:x")
>>> f.doc_idx.tolist(), f.scores.astype(float).round(3).tolist(), round(f.pos_scores["q"]["p"], 3)
([[0, 2, 1]], [[0.078, 0.056, -0.535]], 0.974)

Passage 1 is missing from b's pool, so b scores it 4.5 (that pool's lowest) before z-scoring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.mining.candidates import Candidates, Teacher
from hardneg.mining.teachers.pool_cache import CachedTeacher
from hardneg.search.rank import NO_KEY, id_order, rank

FUSE_PREFIX = "fuse:"


def parse_fuse_spec(spec: str) -> tuple[list[str], list[float]]:
    """``"fuse:minilm+bm25"`` -> (["minilm", "bm25"], [1.0, 1.0]); ``"fuse:minilm=2+bm25"`` weighs MiniLM 2:1.

    >>> parse_fuse_spec("fuse:minilm=2+bm25")
    (['minilm', 'bm25'], [2.0, 1.0])
    """
    parts = spec[len(FUSE_PREFIX):].split("+")
    names, weights = [], []
    for part in parts:
        name, eq, w = part.rpartition("=") if "=" in part else (part, "", "")
        try:
            weight = float(w) if eq else 1.0
        except ValueError:
            raise HardnegError(f"teacher {spec!r}: weight {w!r} of {name!r} is not a number") from None
        if not name.strip() or not weight > 0 or not np.isfinite(weight):
            raise HardnegError(f"teacher {spec!r}: each part is TEACHER or TEACHER=WEIGHT with a weight > 0, "
                               f"e.g. fuse:minilm+bm25 or fuse:minilm=2+bm25; got {part!r}")
        names.append(name.strip()), weights.append(weight)
    if len(names) < 2:
        raise HardnegError(f"teacher {spec!r}: fuse needs two or more teachers joined by '+', e.g. fuse:minilm+bm25")
    if any(n.startswith(FUSE_PREFIX) for n in names):
        raise HardnegError(f"teacher {spec!r}: a fused teacher cannot contain another fused teacher")
    return names, weights


def _zstats(scores: np.ndarray) -> tuple[float, float, float]:
    """(mean, std, min) of a pool row's finite scores; std 1 where the row is constant, (0, 1, 0) if empty."""
    s = scores[np.isfinite(scores)].astype(np.float64)
    if not len(s):
        return 0.0, 1.0, 0.0
    sd = float(s.std())
    return float(s.mean()), sd if sd > 0 else 1.0, float(s.min())


def fuse_pools(pools: list[Candidates], weights: list[float], depth: int, *, key: np.ndarray, name: str,
               fingerprint: str) -> Candidates:
    """The weighted mean z-score ranking of the union of ``pools`` (same qids, same order), top ``depth``.

    ``key``: the corpus rows' tie-break keys (``search.rank.id_order``), so ties go by passage id as in
    every other ranking. Positives: each pool's ``pos_scores``, z-scored with that pool's statistics
    (a teacher without a score for a positive contributes its pool minimum).
    """
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    qids = pools[0].qids
    if any(p.qids != qids for p in pools):
        raise ValueError("fuse_pools: the pools must list the same queries in the same order")
    width = sum(p.depth for p in pools)
    doc_idx = np.full((len(qids), width), -1, dtype=np.int64)
    fused = np.full((len(qids), width), -np.inf, dtype=np.float64)
    pos: dict[str, dict[str, float]] = {}
    for r, qid in enumerate(qids):
        stats = [_zstats(p.scores[r]) for p in pools]
        docs = np.unique(np.concatenate([p.doc_idx[r][p.doc_idx[r] >= 0] for p in pools]))
        total = np.zeros(len(docs))
        for t, (p, (mu, sd, lo)) in enumerate(zip(pools, stats)):
            raw = np.full(len(docs), lo)
            ok = p.doc_idx[r] >= 0
            where = np.searchsorted(docs, p.doc_idx[r][ok])
            raw[where] = p.scores[r][ok]
            total += w[t] * (raw - mu) / sd
        doc_idx[r, :len(docs)], fused[r, :len(docs)] = docs, total
        pos_ids = dict.fromkeys(d for p in pools for d in p.pos_scores.get(qid, {}))
        pos[qid] = {d: float(sum(w[t] * (p.pos_scores.get(qid, {}).get(d, st[2]) - st[0]) / st[1]
                                 for t, (p, st) in enumerate(zip(pools, stats)))) for d in pos_ids}
    tie = np.where(doc_idx >= 0, key[np.maximum(doc_idx, 0)], NO_KEY)
    order = rank(fused, tie, min(depth, width))
    return Candidates(name, fingerprint, list(qids), np.take_along_axis(doc_idx, order, 1),
                      np.take_along_axis(fused, order, 1).astype(np.float32), pos,
                      {"fusion": "weighted mean of per-query z-scores", "weights": [float(x) for x in w],
                       "teachers": [p.search or {} for p in pools]})


class FusedTeacher(CachedTeacher):
    """Several teachers fused by per-query z-scores (see the module docstring); a ``Teacher``."""

    sliceable = False  # the z statistics depend on the pools' depth: a deeper cached pool is not this one

    def __init__(self, teachers: list[Teacher], weights: list[float] | None = None, *, name: str | None = None,
                 cache_dir: str | Path | None = None, cache: bool = True):
        super().__init__(cache_dir, cache)
        if len(teachers) < 2:
            raise HardnegError("a fused teacher needs two or more teachers")
        self.teachers = list(teachers)
        self.weights = list(weights) if weights is not None else [1.0] * len(teachers)
        if len(self.weights) != len(self.teachers) or not all(w > 0 for w in self.weights):
            raise HardnegError(f"fused teacher: {len(self.teachers)} teachers need as many weights > 0, "
                               f"got {self.weights}")
        self.name = name or FUSE_PREFIX + "+".join(t.name for t in self.teachers)
        self.fingerprint = "fuse:z:" + "|".join(f"{t.fingerprint}@{w:g}" for t, w in zip(self.teachers, self.weights))

    def _compute(self, data, qids: list[str], depth: int) -> Candidates:
        pools = [t.candidates(data, qids, depth) for t in self.teachers]
        return fuse_pools(pools, self.weights, depth, key=id_order(data.corpus.ids), name=self.name,
                          fingerprint=self.fingerprint)
