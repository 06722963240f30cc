"""Exact top-k search in bounded memory, and the one ranking rule used everywhere.

Ranking rule (shared by search, mining and evaluation): score descending, ties broken by
passage id ascending (string order). Memory is bounded by ``query_chunk x corpus_chunk`` scores
plus the running top-k, never the full queries x corpus matrix.
"""

from __future__ import annotations

import numpy as np


def id_order(ids: list[str]) -> np.ndarray:
    """Tie-break key per corpus row: the row's position in the ids sorted as strings.

    >>> id_order(["b", "a", "c"]).tolist()
    [1, 0, 2]
    """
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    key = np.empty(len(ids), dtype=np.int64)
    key[order] = np.arange(len(ids))
    return key


def rank(scores: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the top ``k`` per row of ``scores`` (B, N): score desc, then ``key`` asc.

    ``key`` (N,) or (B, N) is the tie-break (see ``id_order``). NaN scores rank last.

    >>> rank(np.array([[0.5, 0.9, 0.9]]), np.array([2, 1, 0]), 2).tolist()
    [[2, 1]]
    """
    scores = np.asarray(scores)
    b, n = scores.shape
    k = min(k, n)
    if k <= 0:
        return np.empty((b, 0), dtype=np.int64)
    s = np.where(np.isnan(scores), -np.inf, scores)
    if k < n:
        return _rank_partial(s, key, k)
    kk = np.broadcast_to(key, s.shape)
    return np.lexsort((kk, -s), axis=1)[:, :k].astype(np.int64)


def _rank_partial(s: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    """``rank`` for k < N: ``torch.topk`` preselects k per row (~4x faster than numpy's
    argpartition here), then a (B, k) lexsort orders them by (score desc, key asc).

    Only rows where more than k scores reach the k-th value (a tie straddling rank k, where the
    preselection may have kept the wrong tied ids) take the exact per-row path.
    """
    import torch

    part = torch.topk(torch.from_numpy(np.ascontiguousarray(s)), k, dim=1, sorted=False).indices.numpy()
    part_s = np.take_along_axis(s, part, axis=1)  # (B, k) unordered top-k
    part_key = np.take_along_axis(key, part, axis=1) if key.ndim == 2 else key[part]
    out = np.take_along_axis(part, np.lexsort((part_key, -part_s), axis=1), axis=1).astype(np.int64)
    kth = part_s.min(axis=1, keepdims=True)
    for r in np.flatnonzero((s >= kth).sum(axis=1) > k):
        cand = np.flatnonzero(s[r] >= kth[r])
        kr = key[r, cand] if key.ndim == 2 else key[cand]
        out[r] = cand[np.lexsort((kr, -s[r, cand]))[:k]]
    return out


def topk(
    queries: np.ndarray,
    passages: np.ndarray,
    k: int,
    *,
    key: np.ndarray | None = None,
    query_chunk: int = 1024,
    passage_chunk: int = 65536,
    exclude: list[set[int]] | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact dot-product top-k: returns (scores (Q, k) float32, indices (Q, k) int64).

    Normalise vectors beforehand for cosine. ``exclude[q]`` holds passage rows never returned for
    query q (e.g. the query's own id, as BEIR/MTEB do). Rows with fewer than k eligible passages
    are padded with index -1 and score -inf.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    p = np.ascontiguousarray(passages, dtype=np.float32)
    nq, n = q.shape[0], p.shape[0]
    key = id_order([str(i) for i in range(n)]) if key is None else np.asarray(key)
    k = max(0, min(k, n))
    out_s = np.full((nq, k), -np.inf, dtype=np.float32)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    if k == 0 or nq == 0:
        return out_s, out_i
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=nq, desc="search", unit="q")
    for qs in range(0, nq, query_chunk):
        qb = q[qs : qs + query_chunk]
        best_s = np.full((len(qb), 0), -np.inf, dtype=np.float32)
        best_i = np.full((len(qb), 0), -1, dtype=np.int64)
        for ps in range(0, n, passage_chunk):
            sc = qb @ p[ps : ps + passage_chunk].T  # (B, C)
            if exclude is not None:
                for r in range(len(qb)):
                    for j in exclude[qs + r]:
                        if ps <= j < ps + sc.shape[1]:
                            sc[r, j - ps] = -np.inf
            # this block's own top-k first (exact under the rank rule), then merge with the
            # running top-k on a small (B, 2k) array: the global top-k lies in their union
            top = rank(sc, key[ps : ps + sc.shape[1]], k)  # (B, k) block-local columns
            cand_s = np.concatenate([best_s, np.take_along_axis(sc, top, axis=1)], axis=1)
            cand_i = np.concatenate([best_i, top + ps], axis=1)
            cand_key = np.where(cand_i >= 0, key[np.maximum(cand_i, 0)], np.iinfo(np.int64).max)
            sel = rank(cand_s, cand_key, k)
            best_s = np.take_along_axis(cand_s, sel, axis=1)
            best_i = np.take_along_axis(cand_i, sel, axis=1)
        best_i = np.where(np.isneginf(best_s), -1, best_i)
        out_s[qs : qs + len(qb), : best_s.shape[1]] = best_s
        out_i[qs : qs + len(qb), : best_i.shape[1]] = best_i
        if bar is not None:
            bar.update(len(qb))
    if bar is not None:
        bar.close()
    return out_s, out_i


def search(
    queries: np.ndarray,
    passages,
    k: int,
    *,
    backend: str = "exact",
    key: np.ndarray | None = None,
    exclude: list[set[int]] | None = None,
    ann=None,
    progress: bool = False,
    info: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One search interface over an (N, d) array or corpus shards (``hardneg.shards.ShardSet``).

    ``backend``: "exact" (``topk``; shards are streamed with a running top-k per query) or a
    FAISS index "ivf-flat" / "hnsw" / "ivf-pq" (``hardneg.ann``; ``ann`` an ``AnnConfig`` with
    non-default settings, ``info`` receives the resolved index parameters). Same output as ``topk``.
    """
    if backend == "exact":
        if isinstance(passages, np.ndarray):
            return topk(queries, passages, k, key=key, exclude=exclude, progress=progress)
        from hardneg.shards import search_shards

        return search_shards(queries, passages, k, key=key, exclude=exclude, progress=progress)
    from hardneg.ann import ann_search, with_backend

    return ann_search(queries, passages, k, with_backend(ann, backend), key=key, exclude=exclude,
                      progress=progress, info=info)
