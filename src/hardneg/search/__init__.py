"""Search: THE ranking rule and its merges (``rank``), exact top-k (``exact``), streamed blocks
(``blocks``, the ``VectorBlocks`` seam the scale package provides), FAISS (``ann``) and the
dispatcher (``dispatch.search``). Imports only ``core``.
"""

from hardneg.search.ann import ANN_BACKENDS, SEARCH_BACKENDS, AnnConfig
from hardneg.search.blocks import VectorBlocks, search_blocks
from hardneg.search.dispatch import search
from hardneg.search.exact import topk
from hardneg.search.rank import default_key, id_order, merge_topk, rank

__all__ = ["ANN_BACKENDS", "AnnConfig", "SEARCH_BACKENDS", "VectorBlocks", "default_key", "id_order", "merge_topk",
           "rank", "search", "search_blocks", "topk"]
