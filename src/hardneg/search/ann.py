"""Approximate top-k with FAISS (``ivf-flat``, ``hnsw``, ``ivf-pq``), recall checks, per-query merges.

Every backend returns what ``search.topk`` returns: (scores (Q, k) float32, idx (Q, k) int64) with
-inf / -1 padding, ranked by the shared rule (score desc, then passage id asc). FAISS only proposes
candidates: with ``rescore=True`` (default) their scores are recomputed exactly from the vectors
(``ivf-pq`` scores are otherwise quantised) and re-ranked with ``search.rank``, so an ANN that
finds the exact candidates gives exactly the exact output.

Defaults, scaled by the corpus (or shard) size N and depth k (override any in ``AnnConfig``):

* ``nlist``  = round(sqrt(N)), at most N // 39 (FAISS wants >= 39 training points per cell);
* ``nprobe`` = ceil(nlist / 10): about a tenth of the corpus is scanned per query;
* ``m``      = 32 HNSW neighbours per node, ``ef_construction`` 80, ``ef_search`` = max(2k, 128);
* ``pq_m``   = the largest divisor of d that is <= d / 8 (48 sub-quantisers for 384-d), 8 bits per
  code when N >= 39 * 256, fewer on tiny corpora;
* training sample: min(N, 40 * nlist) rows (ivf-pq: at least 64 * 2^bits) drawn with ``seed``; k-means
  is seeded too.

Uniform random vectors are ANN's worst case (no cluster structure): measure with ``recall_check``.
HNSW construction is multi-threaded in FAISS and may differ in its last candidates between runs;
exact and IVF outputs are deterministic. Shards are indexed one by one and merged per query.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.files import atomic_path
from hardneg.search.blocks import as_blocks, merge_blocks
from hardneg.search.rank import merge_topk

log = logging.getLogger(__name__)


SEARCH_BACKENDS = ("exact", "ivf-flat", "hnsw", "ivf-pq")
ANN_BACKENDS = SEARCH_BACKENDS[1:]


@dataclass(frozen=True)
class AnnConfig:
    """FAISS index settings; ``None`` means the size-scaled default (module docstring)."""

    backend: str = "ivf-flat"
    nlist: int | None = None
    nprobe: int | None = None
    m: int = 32
    ef_construction: int = 80
    ef_search: int | None = None
    pq_m: int | None = None
    pq_bits: int | None = None
    seed: int = 0
    rescore: bool = True
    query_chunk: int = 512  # rescoring gathers (chunk, k, d) float32: 79 MB at k=100, d=384

    def __post_init__(self) -> None:
        if self.backend not in ANN_BACKENDS:
            raise HardnegError(f"unknown ANN backend {self.backend!r}: choose one of {', '.join(ANN_BACKENDS)}")
        for name in ("nlist", "nprobe", "ef_search", "pq_m", "pq_bits"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise HardnegError(f"{name} must be a positive integer, got {v}")

    def resolved(self, n: int, dim: int, k: int) -> dict:
        """The concrete parameters for N = ``n`` vectors of ``dim`` dims at depth ``k``.

        >>> AnnConfig("ivf-pq").resolved(1_000_000, 384, 100)["pq_m"]
        48
        """
        nlist = self.nlist or max(1, min(round(math.sqrt(n)), n // 39))
        nlist = max(1, min(nlist, n))
        out = {"backend": self.backend, "nlist": nlist, "nprobe": min(self.nprobe or math.ceil(nlist / 10), nlist),
               "m": self.m, "ef_construction": self.ef_construction,
               "ef_search": self.ef_search or max(2 * k, 128), "seed": self.seed, "rescore": self.rescore,
               "train_size": min(n, 40 * nlist)}
        pq_m = self.pq_m or max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)
        if dim % pq_m:
            raise HardnegError(f"pq_m {pq_m} must divide the embedding dimension {dim}")
        bits = self.pq_bits or max(1, min(8, int(math.log2(max(2, n // 39)))))
        out.update(pq_m=pq_m, pq_bits=bits)
        if self.backend == "ivf-pq":
            out["train_size"] = min(n, max(out["train_size"], 64 * 2 ** bits))
        return out


def build_index(passages: np.ndarray, params: dict, chunk: int = 65536):
    """A trained, filled FAISS inner-product index over ``passages`` (N, d), float32 or float16."""
    import faiss

    n, d = passages.shape
    b = params["backend"]
    if b == "hnsw":
        index = faiss.IndexHNSWFlat(d, params["m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["ef_construction"]
    else:
        quantizer = faiss.IndexFlatIP(d)
        if b == "ivf-flat":
            index = faiss.IndexIVFFlat(quantizer, d, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFPQ(quantizer, d, params["nlist"], params["pq_m"], params["pq_bits"],
                                     faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = params["seed"]  # (faiss's wrapper keeps the quantizer alive with the index)
        rows = np.sort(np.random.default_rng(params["seed"]).choice(n, params["train_size"], replace=False))
        index.train(np.ascontiguousarray(passages[rows], dtype=np.float32))
        index.nprobe = params["nprobe"]
    for s in range(0, n, chunk):
        index.add(np.ascontiguousarray(passages[s: s + chunk], dtype=np.float32))
    if b == "hnsw":
        index.hnsw.efSearch = params["ef_search"]
    return index


def _exact_scores(q: np.ndarray, passages: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """q (B, d) . passages[idx] (B, k, d) -> (B, k) float32; -inf where idx is -1."""
    rows = np.asarray(passages[np.maximum(idx, 0).ravel()], dtype=np.float32).reshape(*idx.shape, -1)
    s = np.einsum("bd,bkd->bk", q, rows).astype(np.float32)
    return np.where(idx >= 0, s, -np.inf).astype(np.float32)


def _search_one(index, q: np.ndarray, passages: np.ndarray, k: int, key: np.ndarray, off: int,
                exclude, rescore: bool, chunk: int, bar) -> tuple[np.ndarray, np.ndarray]:
    """Search one shard's index; rows come back as global ids (``off`` added), re-ranked by rule."""
    extra = max((len(e) for e in exclude), default=0) if exclude is not None else 0
    kk = min(k + extra, len(passages))
    out_s = np.empty((len(q), k), np.float32)
    out_i = np.empty((len(q), k), np.int64)
    for s in range(0, len(q), chunk):
        qb = q[s: s + chunk]
        dist, lab = index.search(qb, kk)  # (B, kk) scores and local rows, -1 when not found
        lab = lab.astype(np.int64)
        sc = _exact_scores(qb, passages, lab) if rescore else np.where(lab >= 0, dist, -np.inf).astype(np.float32)
        glob = np.where(lab >= 0, lab + off, -1)
        if exclude is not None:
            for r in range(len(qb)):
                if exclude[s + r]:
                    drop = np.isin(glob[r], list(exclude[s + r]))
                    sc[r, drop], glob[r, drop] = -np.inf, -1
        res = merge_topk([(sc, glob)], key, k)
        out_s[s: s + len(qb)], out_i[s: s + len(qb)] = res
        if bar is not None:
            bar.update(len(qb))
    return out_s, out_i


def ann_search(queries: np.ndarray, passages, k: int, config: AnnConfig, *, key: np.ndarray | None = None,
               exclude: list[set[int]] | None = None, progress: bool = False, info: dict | None = None):
    """Top-k by a FAISS index: ``passages`` is an (N, d) array or blocks (``VectorBlocks`` such as a
    ``ShardSet``, or a list of ``(offset, array)``), each block indexed on its own and the results
    merged per query (``merge_blocks``). Indexes persist in the blocks' ``index_dir`` when it has one.

    Returns (scores, idx) shaped like ``topk``'s; ``info`` (a dict, optional) receives the resolved
    parameters (of the first, largest block) for the meta file.
    """
    from tqdm.auto import tqdm

    _, n_blocks, _, saved = as_blocks(passages)
    bar = tqdm(total=len(queries) * n_blocks, desc=f"search {config.backend}", unit="q", disable=not progress)
    params: dict = {}

    def one(i, off, arr, q, k, key):
        shard_params = config.resolved(len(arr), arr.shape[1], k)
        params.update(params or shard_params)
        index = _load_or_build(arr, shard_params, None if saved is None else index_path(saved, shard_params, i))
        return _search_one(index, q, arr, min(k, len(arr)), key, off, exclude, config.rescore, config.query_chunk, bar)

    best = merge_blocks(queries, passages, k, key, one)
    bar.close()
    if info is not None:
        info.update(params)
    return best


def index_path(root, params: dict, i: int):
    """Where shard ``i``'s index with these parameters is kept: ``<shards>/index-<hash>/shard-00000.faiss``."""
    import hashlib
    import json
    from pathlib import Path

    build = {k: v for k, v in params.items() if k not in ("nprobe", "ef_search", "rescore")}  # search-time only
    h = hashlib.sha256(json.dumps(build, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / f"index-{params['backend']}-{h}" / f"shard-{i:05d}.faiss"


def _load_or_build(arr: np.ndarray, params: dict, path):
    """A saved index (search-time parameters re-applied) or a new one, saved atomically when ``path``
    is given, so later runs over the same shards skip training and adding."""
    import faiss

    if path is not None and path.is_file():
        log.info("reusing %s index %s", params["backend"], path)
        index = faiss.read_index(str(path))
        if params["backend"] == "hnsw":
            index.hnsw.efSearch = params["ef_search"]
        else:
            index.nprobe = params["nprobe"]
        return index
    log.info("building %s index over %d rows: %s", params["backend"], len(arr), params)
    index = build_index(arr, params)
    if path is not None:
        try:
            with atomic_path(path) as tmp:
                faiss.write_index(index, tmp)
        except OSError as e:  # a read-only shard folder only costs the rebuild next time
            log.warning("could not save index %s: %s", path, e)
    return index


def recall_check(queries: np.ndarray, index_result: tuple[np.ndarray, np.ndarray],
                 exact_fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
                 n: int, seed: int = 0) -> float:
    """recall@depth of an ANN result: the share of the exact top-depth rows it also returned,
    over ``n`` queries sampled with ``seed`` (all queries when n >= Q); depth = result width.

    ``exact_fn(sub_queries, rows)`` returns the exact (scores, idx) at the same depth for
    ``queries[rows]``. Padding (-1) is not counted. An empty sample gives 1.0.

    >>> ann = (np.zeros((1, 2)), np.array([[4, 7]]))
    >>> recall_check(np.zeros((1, 3)), ann, lambda q, r: (None, np.array([[4, 5]])), 10)
    0.5
    """
    idx = np.asarray(index_result[1])
    nq = len(idx)
    m = min(int(n), nq)
    if m <= 0:
        return 1.0
    rows = np.sort(np.random.default_rng(seed).choice(nq, m, replace=False))
    _, exact = exact_fn(np.asarray(queries)[rows], rows)
    hits = total = 0
    for r, ex in zip(rows, np.asarray(exact)):
        ex = ex[ex >= 0]
        total += len(ex)
        hits += len(np.intersect1d(ex, idx[r][idx[r] >= 0]))
    return hits / total if total else 1.0


def with_backend(config: AnnConfig | None, backend: str) -> AnnConfig:
    """``config`` with ``backend`` set (a fresh default config when None)."""
    return AnnConfig(backend=backend) if config is None else replace(config, backend=backend)
