"""``search()``: one interface over exact search and the FAISS backends, for arrays and blocks.
"""

from __future__ import annotations

import numpy as np

from hardneg.search.ann import ann_search, with_backend
from hardneg.search.blocks import search_blocks
from hardneg.search.exact import topk


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
    """One search interface over an (N, d) array or corpus blocks (``hardneg.search.blocks.VectorBlocks``, e.g. a ``ShardSet``).

    ``backend``: "exact" (``topk``; shards are streamed with a running top-k per query) or a
    FAISS index "ivf-flat" / "hnsw" / "ivf-pq" (``hardneg.search.ann``; ``ann`` an ``AnnConfig`` with
    non-default settings, ``info`` receives the resolved index parameters). Same output as ``topk``.
    """
    if backend == "exact":
        if isinstance(passages, np.ndarray):
            return topk(queries, passages, k, key=key, exclude=exclude, progress=progress)
        return search_blocks(queries, passages, k, key=key, exclude=exclude, progress=progress)
    return ann_search(queries, passages, k, with_backend(ann, backend), key=key, exclude=exclude,
                      progress=progress, info=info)
