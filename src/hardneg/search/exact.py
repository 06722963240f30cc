"""Exact dot-product top-k in bounded memory (``topk``).

Memory is bounded by ``query_chunk x passage_chunk`` scores plus the running top-k, never the full
queries x corpus matrix. Ranking follows ``hardneg.search.rank`` exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hardneg.search.rank import default_key, rank

if TYPE_CHECKING:
    import torch


QUERY_CHUNK = 1024  # queries per score block (the Ray engine cuts its tasks in whole multiples)


def _as_tensor(block) -> "torch.Tensor":
    """A float32 torch view of a passage block (copied only when float16 or non-contiguous).

    The score matmul runs in torch rather than numpy because alternating OpenBLAS (numpy) and
    torch's OpenMP pool on the same cores makes both spin-wait: measured 7.9 ns per
    query-passage pair for numpy matmul + torch.topk vs 6.6 ns all in torch (2 cores).
    Read-only memory-mapped shards are wrapped without a copy (torch warns they are not
    writable; nothing writes to them).
    """
    import warnings

    import torch

    arr = np.ascontiguousarray(block, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr)


def _set_exact_row(vals: np.ndarray, cols: np.ndarray, r: int, row: np.ndarray, key: np.ndarray, k: int) -> None:
    """Overwrite candidate row ``r`` (k + 1 columns) with the exact top-k of its full score ``row``
    (1, C) under the rank rule; column k becomes a -inf filler (it ranks last)."""
    exact = rank(row, key, k)[0]
    cols[r, :k], vals[r, :k] = exact, row[0, exact]
    cols[r, k], vals[r, k] = exact[0], -np.inf


def _block_topk(sc: np.ndarray, key: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidates holding this block's exact top-``k`` under the rank rule: (scores (B, m), cols (B, m)),
    unordered, m = min(k + 1, C); entries with score -inf may repeat a column (they rank last).

    ``sc`` is a scratch score block owned by the caller: NaN is overwritten with -inf in place.
    ``torch.topk`` keeps k + 1 per row. Where the k-th and (k+1)-th values differ, the top k are
    exactly determined and the extra one is harmless; where they are equal, a tie straddles rank
    k (torch may have kept the wrong tied ids) and that row goes through ``rank``.
    """
    import torch

    t = torch.from_numpy(sc)
    torch.nan_to_num_(t, nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    m = min(k + 1, sc.shape[1])
    vals, cols = torch.topk(t, m, dim=1, sorted=False)
    vals, cols = vals.numpy(), cols.numpy()
    if m <= k:  # the whole block is kept: nothing to break
        return vals, cols
    last2 = -np.partition(-vals, (k - 1, k), axis=1)[:, k - 1 : k + 1]  # (B, 2): k-th and (k+1)-th
    tied = np.flatnonzero(last2[:, 0] == last2[:, 1])
    for r in tied:
        _set_exact_row(vals, cols, r, sc[r : r + 1], key, k)
    return vals, cols


def _faiss_block(qb: np.ndarray, pb: np.ndarray, key: np.ndarray, k: int,
                 ex: dict[int, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``_block_topk`` for a block with more than k passages, scored by ``faiss.knn`` (BLAS sgemm +
    heap selection in small tiles: no (B, C) score matrix, ~25% faster than torch matmul + topk here).

    FAISS breaks ties arbitrarily, so rows where the k-th and (k+1)-th scores tie, rows with a
    non-finite score and rows with an excluded passage in this block are re-ranked exactly from
    their full score row. Returns (scores (B, k+1), cols (B, k+1)).
    """
    import faiss

    vals, cols = faiss.knn(qb, pb, k + 1, metric=faiss.METRIC_INNER_PRODUCT)  # sorted desc
    cols = cols.astype(np.int64)
    bad = (vals[:, k - 1] == vals[:, k]) | ~np.isfinite(vals).all(axis=1)
    bad[list(ex)] = True
    for r in np.flatnonzero(bad):
        sc = np.asarray(qb[r : r + 1] @ pb.T, dtype=np.float32)  # (1, C)
        sc[np.isnan(sc)] = -np.inf
        sc[0, ex.get(r, [])] = -np.inf
        _set_exact_row(vals, cols, r, sc, key, k)
    return vals, cols


def _block_exclusions(exclude: list[set[int]] | None, qs: int, nb: int, ps: int, np_: int) -> dict[int, list[int]]:
    """{row in the query block: excluded columns of the passage block [ps, ps + np_)}."""
    ex: dict[int, list[int]] = {}
    if exclude is not None:
        for r in range(nb):
            cols = [j - ps for j in exclude[qs + r] if ps <= j < ps + np_]
            if cols:
                ex[r] = cols
    return ex


def _torch_block(qb: np.ndarray, pb: np.ndarray, buf: np.ndarray, key: np.ndarray, k: int,
                 ex: dict[int, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """``_block_topk`` of the block's scores, computed by torch into the reused buffer ``buf``."""
    import torch

    sc = buf[: len(qb), : len(pb)]
    torch.matmul(_as_tensor(qb), _as_tensor(pb).T, out=torch.from_numpy(sc))  # (B, C)
    for r, cols in ex.items():
        sc[r, cols] = -np.inf
    return _block_topk(sc, key, min(k, len(pb)))


def topk(
    queries: np.ndarray,
    passages: np.ndarray,
    k: int,
    *,
    key: np.ndarray | None = None,
    query_chunk: int = QUERY_CHUNK,
    passage_chunk: int = 65536,
    exclude: list[set[int]] | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact dot-product top-k: returns (scores (Q, k) float32, indices (Q, k) int64).

    Normalise vectors beforehand for cosine. ``exclude[q]`` holds passage rows never returned for
    query q (e.g. the query's own id, as BEIR/MTEB do). Rows with fewer than k eligible passages
    are padded with index -1 and score -inf. ``passages`` may be float16 (converted per block).

    Per query block: each passage block's exact top-k is kept (``_faiss_block``: FAISS's tiled
    sgemm + heaps, exact re-ranking where ties straddle rank k; NaN or tiny blocks go through a
    torch score buffer), and one ``rank`` over the kept candidates (B, (k+1) x blocks) gives the
    block's answer: the global top-k under the rank rule lies in the union of the per-block top-k's.
    """
    import torch  # noqa: F401 - loaded before FAISS on every path, as it always was (both bring OpenMP)

    q = np.ascontiguousarray(queries, dtype=np.float32)
    nq, n = q.shape[0], passages.shape[0]
    key = default_key(n) if key is None else np.asarray(key)
    k = max(0, min(k, n))
    out_s = np.full((nq, k), -np.inf, dtype=np.float32)
    out_i = np.full((nq, k), -1, dtype=np.int64)
    if k == 0 or nq == 0:
        return out_s, out_i
    # FAISS scores blocks unless a vector holds NaN (its selection is undefined there); the
    # torch path (one reused score buffer) takes NaN blocks and blocks of at most k passages
    finite = not (np.isnan(q).any() or any(np.isnan(passages[s : s + 65536]).any() for s in range(0, n, 65536)))
    buf = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=nq, desc="search", unit="q")
    for qs in range(0, nq, query_chunk):
        qb = q[qs : qs + query_chunk]
        cand_s, cand_i = [], []
        for ps in range(0, n, passage_chunk):
            pb = np.ascontiguousarray(passages[ps : ps + passage_chunk], dtype=np.float32)
            ex = _block_exclusions(exclude, qs, len(qb), ps, len(pb))
            if finite and len(pb) > k:
                s, c = _faiss_block(qb, pb, key[ps : ps + len(pb)], k, ex)
            else:
                if buf is None:
                    buf = np.empty((min(query_chunk, nq), min(passage_chunk, n)), dtype=np.float32)
                s, c = _torch_block(qb, pb, buf, key[ps : ps + len(pb)], k, ex)
            cand_s.append(s)
            cand_i.append(c + ps)
        cs, ci = np.concatenate(cand_s, axis=1), np.concatenate(cand_i, axis=1)
        sel = rank(cs, key[ci], k)
        best_s = np.take_along_axis(cs, sel, axis=1)
        best_i = np.where(np.isneginf(best_s), -1, np.take_along_axis(ci, sel, axis=1))
        out_s[qs : qs + len(qb)] = best_s
        out_i[qs : qs + len(qb)] = best_i
        if bar is not None:
            bar.update(len(qb))
    if bar is not None:
        bar.close()
    return out_s, out_i
