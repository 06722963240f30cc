"""Candidate-pool cache: a teacher's ranked pool stored per (teacher, data, qids, depth).

A cached pool of depth D >= d serves a request for depth d by slicing (the ranking is exact and
deterministic, so the top d of a top-D list is the top-d list); ``_CachedTeacher`` gives every
teacher that lookup-else-compute ``candidates()``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.files import atomic_open, sha256_texts
from hardneg.core.paths import cache_root
from hardneg.mining.candidates import Candidates

log = logging.getLogger(__name__)


def short_hash(*parts: str) -> str:
    return sha256_texts(parts)[:16]


class PoolCache:
    """Candidate pools as ``.npz`` files under ``<cache>/pools``, written atomically.

    ``get`` returns a stored pool covering all requested qids at depth >= the request (sliced to
    the request) when ``sliceable``, else only a pool of exactly that depth.
    """

    def __init__(self, cache_dir: str | Path | None = None):
        self.dir = cache_root(cache_dir) / "pools"

    def _prefix(self, teacher_fp: str, data_fp: str) -> str:
        return f"pool-{short_hash(teacher_fp, data_fp)}"

    def get(self, teacher_fp: str, data_fp: str, qids: list[str], depth: int,
            sliceable: bool = True) -> Candidates | None:
        if not self.dir.is_dir():
            return None
        found = []
        for f in self.dir.glob(self._prefix(teacher_fp, data_fp) + "-d*-*.npz"):
            try:
                d = int(f.name.split("-d")[1].split("-")[0])
            except (IndexError, ValueError):
                continue
            if d == depth or (sliceable and d > depth):
                found.append((d, f))
        want = set(qids)
        for _, f in sorted(found):  # shallowest usable pool first: least to load
            try:
                c = self._load(f)
            except (OSError, ValueError, KeyError) as e:
                log.warning("ignoring unreadable pool cache %s: %s", f, e)
                continue
            if want <= set(c.qids):
                c = c.subset(list(qids))
                log.info("pool cache hit %s (depth %d -> %d)", f.name, c.depth, depth)
                return Candidates(c.teacher, c.fingerprint, c.qids, c.doc_idx[:, :depth].copy(),
                                  c.scores[:, :depth].copy(), c.pos_scores)
        return None

    def put(self, cand: Candidates, data_fp: str) -> Path:
        name = f"{self._prefix(cand.fingerprint, data_fp)}-d{cand.depth}-{short_hash(*cand.qids)[:8]}.npz"
        pq, pd, ps = [], [], []
        for i, q in enumerate(cand.qids):
            for d, s in cand.pos_scores.get(q, {}).items():
                pq.append(i), pd.append(d), ps.append(s)
        path = self.dir / name
        with atomic_open(path, "wb") as f:
            np.savez(f, teacher=np.array(cand.teacher), fingerprint=np.array(cand.fingerprint),
                     qids=np.array(cand.qids, dtype=str), doc_idx=cand.doc_idx, scores=cand.scores,
                     pos_q=np.array(pq, dtype=np.int64), pos_doc=np.array(pd, dtype=str),
                     pos_s=np.array(ps, dtype=np.float64))
        return path

    @staticmethod
    def _load(path: Path) -> Candidates:
        with np.load(path, allow_pickle=False) as z:
            qids = [str(q) for q in z["qids"]]
            pos: dict[str, dict[str, float]] = {q: {} for q in qids}
            for i, d, s in zip(z["pos_q"].tolist(), z["pos_doc"].tolist(), z["pos_s"].tolist()):
                pos[qids[i]][str(d)] = float(s)
            return Candidates(str(z["teacher"]), str(z["fingerprint"]), qids, z["doc_idx"].astype(np.int64),
                              z["scores"].astype(np.float32), pos)


class CachedTeacher:
    """Shared ``candidates()``: pool cache lookup, else ``_compute`` and store.

    ``search_description()`` is what the returned ``Candidates.search`` says when the pool came from
    the cache (a computed pool carries its own)."""

    name: str
    fingerprint: str
    sliceable = True  # top-d of a cached top-D pool is this teacher's top-d pool

    def __init__(self, cache_dir: str | Path | None = None, cache: bool = True):
        self.pool_cache = PoolCache(cache_dir) if cache else None

    def candidates(self, data, qids: list[str], depth: int) -> Candidates:
        qids = list(qids)
        unknown = [q for q in qids if q not in data.queries]
        if unknown:
            raise HardnegError(f"teacher {self.name}: unknown query ids {unknown[:5]} (not in the queries file)")
        depth = max(0, min(int(depth), len(data.corpus)))
        dfp = data.fingerprint() if self.pool_cache else ""
        if self.pool_cache:
            hit = self.pool_cache.get(self.fingerprint, dfp, qids, depth, self.sliceable)
            if hit is not None:
                hit.search = hit.search or self.search_description()
                return hit
        cand = self._compute(data, qids, depth)
        if self.pool_cache and qids:
            self.pool_cache.put(cand, dfp)
        return cand

    def search_description(self) -> dict:
        return {}

    def _compute(self, data, qids: list[str], depth: int) -> Candidates:
        raise NotImplementedError
