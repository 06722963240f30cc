"""An embedding model as teacher: exact (or FAISS) top-k by dot product, ties by passage id.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.files import sha256_texts
from hardneg.mining.candidates import Candidates
from hardneg.mining.teachers.pool_cache import CachedTeacher, short_hash
from hardneg.search.rank import id_order

log = logging.getLogger(__name__)
from hardneg.search.dispatch import search


class DenseTeacher(CachedTeacher):
    """An embedding model as teacher: exact top-``depth`` by dot product, ties by passage id.

    ``encoder`` is an ``Encoder``, or a zero-argument callable returning one (then ``fingerprint``
    is required): the model is loaded only when a pool is not in the cache. Corpus and query
    embeddings stay on the object, so a second call at a larger depth ("deepen") only searches.
    """

    def __init__(self, encoder, *, name: str | None = None, fingerprint: str | None = None,
                 cache_dir: str | Path | None = None, cache: bool = True, search_backend: str = "exact",
                 recall_check: int = 0, ann=None, engine=None):
        super().__init__(cache_dir, cache)
        from hardneg.scale.engine import EngineConfig
        from hardneg.search.ann import SEARCH_BACKENDS

        if search_backend not in SEARCH_BACKENDS:
            raise HardnegError(f"unknown search backend {search_backend!r}: choose one of {', '.join(SEARCH_BACKENDS)}")
        lazy = callable(encoder) and not hasattr(encoder, "encode_passages")
        if lazy and not (name and fingerprint):
            raise ValueError("DenseTeacher with a lazy encoder needs name and fingerprint")
        self._encoder = None if lazy else encoder
        self._load = encoder if lazy else None
        self.name = name or encoder.name
        self.fingerprint = fingerprint or f"dense:{encoder.fingerprint}"
        self._vectors_fp = self.fingerprint  # names the vectors (shard folders); the search suffix does not
        self.engine = engine or EngineConfig()
        # an ANN pool is not the exact pool: other cache entries, and no slicing of deeper pools
        self.search_backend, self.recall_check, self.ann = search_backend, int(recall_check), ann
        if search_backend != "exact":
            self.fingerprint += f":search={search_backend}:{short_hash(repr(ann))}"
            self.sliceable = False
        self.cache_dir = cache_dir
        self._shards_info: dict | None = None  # where the corpus shards are (sharded engines)
        self._p: np.ndarray | None = None  # (N, d) corpus embeddings
        self._p_for = ""                   # corpus hash they belong to
        self._q: dict[str, np.ndarray] = {}

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = self._load()
        return self._encoder

    def _embeddings(self, data, qids: list[str]):
        """(queries (Q, d), corpus): the corpus an (N, d) array, or a ``ShardSet`` when the engine
        is sharded (``max_memory`` / Ray; see ``hardneg.scale.engine``)."""
        from hardneg.encode.cache import encode_cached

        if self.engine.sharded:
            return self._sharded_embeddings(data, qids)
        corpus_hash = sha256_texts(data.corpus.ids)
        if self._p is None or self._p_for != corpus_hash:
            self._p = encode_cached(self.encoder, data.corpus.passage_texts(), kind="passage",
                                    cache_dir=self.cache_dir)
            self._p_for, self._q = corpus_hash, {}
        new = [q for q in dict.fromkeys(qids) if q not in self._q]
        if new:
            emb = encode_cached(self.encoder, [data.queries[q] for q in new], kind="query", cache_dir=self.cache_dir)
            self._q.update(zip(new, emb))
        q = np.stack([self._q[x] for x in qids]) if qids else np.zeros((0, self._p.shape[1]), np.float32)
        return q, self._p

    def _sharded_embeddings(self, data, qids: list[str]):
        from hardneg.scale.engine import Workers

        corpus_hash = sha256_texts(data.corpus.ids)
        new = [q for q in dict.fromkeys(qids) if q not in self._q or self._p_for != corpus_hash]
        factory = self._load if self._load is not None else (lambda enc=self._encoder: enc)
        with Workers(self.engine, factory, self.name, self._vectors_fp) as w:  # frees Ray's slots for search
            if self._p is None or self._p_for != corpus_hash:
                self._p = w.encode(data.corpus.passage_texts(), "passage", cache_dir=self.cache_dir)
                self._p_for, self._q = corpus_hash, {}
                self._shards_info = {"path": str(self._p.root), "shards": len(self._p.sizes),
                                                     "dtype": self._p.dtype}
            if new:
                emb = w.encode([data.queries[q] for q in new], "query", cache_dir=self.cache_dir).load()
                self._q.update(zip(new, emb))
        q = np.stack([self._q[x] for x in qids]) if qids else np.zeros((0, self._p.dim), np.float32)
        return q, self._p

    def _compute(self, data, qids: list[str], depth: int) -> Candidates:
        from hardneg.scale.shards import ShardSet

        q, p = self._embeddings(data, qids)
        (scores, idx), info = self._search(q, p, depth, id_order(data.corpus.ids))
        index = data.corpus.index
        rows = sorted({index[d] for qid in qids for d in data.relevant(qid)})
        vec = dict(zip(rows, p.rows(rows) if isinstance(p, ShardSet) else p[rows]))
        pos = {qid: {d: float(q[i] @ vec[index[d]]) for d in data.relevant(qid)} for i, qid in enumerate(qids)}
        return Candidates(self.name, self.fingerprint, qids, idx, scores, pos, info)

    def search_description(self) -> dict:
        """What ``Candidates.search`` records: backend and engine (+ corpus shards when sharded)."""
        out = {"backend": self.search_backend, "engine": self.engine.to_dict()}
        return {**out, "corpus_shards": self._shards_info} if self._shards_info else out

    def _search(self, q: np.ndarray, p: np.ndarray, depth: int, key: np.ndarray):
        """Top-``depth`` with the chosen backend; ANN runs record their index parameters and,
        with ``recall_check`` N > 0, recall@depth against exact search on N sampled queries.
        Returns ((scores, idx), search description for ``Candidates.search``)."""
        from hardneg.scale import engine

        params: dict = {}
        res = engine.search(self.engine, q, p, depth, backend=self.search_backend, key=key, ann=self.ann,
                            info=params, progress=len(q) > 1000)
        info = self.search_description()
        if self.search_backend == "exact":
            return res, info
        info["params"] = params
        if self.recall_check > 0:
            from hardneg.search.ann import recall_check

            r = recall_check(q, res, lambda sub, rows: search(sub, p, depth, key=key), self.recall_check, seed=0)
            info["recall_check"] = {"queries": min(self.recall_check, len(q)), "depth": depth,
                                    "recall": round(r, 6)}
            log.info("%s: %s recall@%d = %.4f on %d sampled queries", self.name, self.search_backend, depth, r,
                     min(self.recall_check, len(q)))
        return res, info
