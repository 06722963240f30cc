"""Search over corpus vectors held as blocks (e.g. shards on disk), one block in memory at a time.

``VectorBlocks`` is the seam between search and the scale package: search consumes anything
that yields ``(row_offset, array)`` blocks (``hardneg.scale.shards.ShardSet`` provides them), so
search never imports scale. ``merge_blocks`` is the one loop that runs a per-block search and
merges the per-query top-k under the rank rule; exact search (``search_blocks``) and FAISS
(``hardneg.search.ann``) both use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Protocol, runtime_checkable

import numpy as np

from hardneg.search.exact import QUERY_CHUNK, topk
from hardneg.search.rank import default_key, merge_running


@runtime_checkable
class VectorBlocks(Protocol):
    """Corpus vectors as consecutive blocks: ``len()`` rows in all, ``blocks()`` yields
    ``(row_offset, float32/float16 array (rows, d))`` reading one block at a time; ``n_blocks`` counts
    them; ``index_dir`` is a folder where FAISS indexes of the blocks may be kept (None: not kept)."""

    n_blocks: int
    index_dir: Path | None

    def __len__(self) -> int: ...

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]: ...


def as_blocks(passages) -> tuple[Callable[[], Iterator[tuple[int, np.ndarray]]], int, int, Path | None]:
    """(block iterator factory, number of blocks, rows, index dir) of an (N, d) array, a
    ``VectorBlocks`` or a list of ``(offset, array)`` pairs."""
    if isinstance(passages, np.ndarray):
        return (lambda: iter([(0, passages)])), 1, len(passages), None
    if isinstance(passages, VectorBlocks):
        return passages.blocks, passages.n_blocks, len(passages), passages.index_dir
    parts = list(passages)
    return (lambda: iter(parts)), len(parts), sum(len(a) for _, a in parts), None


BlockSearch = Callable[[int, int, np.ndarray, np.ndarray, int, np.ndarray], tuple[np.ndarray, np.ndarray]]


def merge_blocks(queries: np.ndarray, passages, k: int, key: np.ndarray | None,
                 search_block: BlockSearch) -> tuple[np.ndarray, np.ndarray]:
    """Run ``search_block(i, offset, block, queries, k, key)`` (-> scores, GLOBAL row ids) on each block
    and merge the running top-k per query under the rank rule (``merge_running``).

    Returns (scores (Q, k) float32, idx (Q, k) int64) with -inf / -1 padding, equal to one search over
    the concatenated matrix when each block's answer holds that block's exact top-k.
    """
    blocks, _, n, _ = as_blocks(passages)
    key = default_key(n) if key is None else np.asarray(key)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    k = max(0, min(k, n))
    if k == 0 or len(q) == 0:
        return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
    best = (np.full((len(q), 0), -np.inf, np.float32), np.full((len(q), 0), -1, np.int64))
    for i, (off, arr) in enumerate(blocks()):
        best = merge_running(best, search_block(i, off, arr, q, k, key), key, k)
        del arr  # before the next block is read
    return best


def search_blocks(queries: np.ndarray, passages, k: int, *, key: np.ndarray | None = None,
                  exclude: list[set[int]] | None = None, query_chunk: int = QUERY_CHUNK,
                  passage_chunk: int = 16384, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over blocks (``VectorBlocks`` or ``(offset, array)`` pairs), one block at a time.

    Each block goes through ``topk`` with its slice of the global tie-break ``key``, and the running
    top-k per query is merged under the same rule, so the result equals ``topk`` over the
    concatenated matrix. Working memory besides the block being read: FAISS's small score tiles (a
    float32 ``query_chunk`` x ``passage_chunk`` buffer, 64 MB at the defaults, only on topk's torch
    path for NaN vectors), the per-block candidates and the (Q, k) results.
    """
    def one(i, off, arr, q, k, key):
        rows = len(arr)
        local_ex = None if exclude is None else [{j - off for j in ex if off <= j < off + rows} for ex in exclude]
        s, idx = topk(q, arr, k, key=key[off: off + rows], query_chunk=query_chunk,
                      passage_chunk=passage_chunk, exclude=local_ex, progress=progress)
        return s, np.where(idx >= 0, idx + off, -1)

    return merge_blocks(queries, passages, k, key, one)
