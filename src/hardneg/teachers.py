"""Teachers: rank the corpus for training queries and hand mining a ``Candidates`` pool.

Implementations of ``hardneg.candidates.Teacher``:

* ``DenseTeacher``     an embedding model; exact dot-product search (or a FAISS index, ``hardneg.ann``), ties by id.
* ``BM25Teacher``      bm25s, k1 0.9, b 0.4, English stemmer + stopwords (BEIR's setting).
* ``RandomTeacher``    uniform random non-positives (the paper's random baseline).
* ``RescoredTeacher``  a base teacher's pool (and the positives) rescored by a cross-encoder.

Every teacher's pool is cached on disk per (teacher fingerprint, data fingerprint, qids, depth)
by ``hardneg.pools.PoolCache``, so re-mining with another method or setting skips encoding and search: a cached
pool of depth D >= d serves a request for depth d by slicing (the ranking is exact and
deterministic, so the top d of a top-D list is the top-d list).
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
import numpy as np

from hardneg.candidates import Candidates, Teacher
from hardneg.errors import HardnegError
from hardneg.io import sha256_texts
from hardneg.pools import PoolCache, _CachedTeacher, _h  # noqa: F401 - PoolCache re-exported
from hardneg.search import id_order, rank, search

log = logging.getLogger(__name__)


class DenseTeacher(_CachedTeacher):
    """An embedding model as teacher: exact top-``depth`` by dot product, ties by passage id.

    ``encoder`` is an ``Encoder``, or a zero-argument callable returning one (then ``fingerprint``
    is required): the model is loaded only when a pool is not in the cache. Corpus and query
    embeddings stay on the object, so a second call at a larger depth ("deepen") only searches.
    """

    def __init__(self, encoder, *, name: str | None = None, fingerprint: str | None = None,
                 cache_dir: str | Path | None = None, cache: bool = True, search_backend: str = "exact",
                 recall_check: int = 0, ann=None, engine=None):
        super().__init__(cache_dir, cache)
        from hardneg.engine import EngineConfig
        from hardneg.ann import BACKENDS

        if search_backend not in BACKENDS:
            raise HardnegError(f"unknown search backend {search_backend!r}: choose one of {', '.join(BACKENDS)}")
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
            self.fingerprint += f":search={search_backend}:{_h(repr(ann))}"
            self.sliceable = False
        self.search_info: dict = {"backend": search_backend, "engine": self.engine.to_dict()}  # + params, recall
        self.cache_dir = cache_dir
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
        is sharded (``max_memory`` / Ray; see ``hardneg.engine``)."""
        from hardneg.encode import encode_cached

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
        from hardneg.engine import Workers

        corpus_hash = sha256_texts(data.corpus.ids)
        new = [q for q in dict.fromkeys(qids) if q not in self._q or self._p_for != corpus_hash]
        factory = self._load if self._load is not None else (lambda enc=self._encoder: enc)
        with Workers(self.engine, factory, self.name, self._vectors_fp) as w:  # frees Ray's slots for search
            if self._p is None or self._p_for != corpus_hash:
                self._p = w.encode(data.corpus.passage_texts(), "passage", cache_dir=self.cache_dir)
                self._p_for, self._q = corpus_hash, {}
                self.search_info["corpus_shards"] = {"path": str(self._p.root), "shards": len(self._p.sizes),
                                                     "dtype": self._p.dtype}
            if new:
                emb = w.encode([data.queries[q] for q in new], "query", cache_dir=self.cache_dir).load()
                self._q.update(zip(new, emb))
        q = np.stack([self._q[x] for x in qids]) if qids else np.zeros((0, self._p.dim), np.float32)
        return q, self._p

    def _compute(self, data, qids: list[str], depth: int) -> Candidates:
        from hardneg.shards import ShardSet

        q, p = self._embeddings(data, qids)
        scores, idx = self._search(q, p, depth, id_order(data.corpus.ids))
        index = data.corpus.index
        rows = sorted({index[d] for qid in qids for d in data.relevant(qid)})
        vec = dict(zip(rows, p.rows(rows) if isinstance(p, ShardSet) else p[rows]))
        pos = {qid: {d: float(q[i] @ vec[index[d]]) for d in data.relevant(qid)} for i, qid in enumerate(qids)}
        return Candidates(self.name, self.fingerprint, qids, idx, scores, pos)

    def _search(self, q: np.ndarray, p: np.ndarray, depth: int, key: np.ndarray):
        """Top-``depth`` with the chosen backend; ANN runs record their index parameters and,
        with ``recall_check`` N > 0, recall@depth against exact search on N sampled queries."""
        from hardneg import engine

        params: dict = {}
        res = engine.search(self.engine, q, p, depth, backend=self.search_backend, key=key, ann=self.ann,
                            info=params, progress=len(q) > 1000)
        if self.search_backend == "exact":
            return res
        self.search_info.update(backend=self.search_backend, engine=self.engine.to_dict(), params=params)
        if self.recall_check > 0:
            from hardneg.ann import recall_check

            r = recall_check(q, res, lambda sub, rows: search(sub, p, depth, key=key), self.recall_check, seed=0)
            self.search_info["recall_check"] = {"queries": min(self.recall_check, len(q)), "depth": depth,
                                                "recall": round(r, 6)}
            log.info("%s: %s recall@%d = %.4f on %d sampled queries", self.name, self.search_backend, depth, r,
                     min(self.recall_check, len(q)))
        return res


class BM25Teacher(_CachedTeacher):
    """bm25s with BEIR's setting (k1 0.9, b 0.4, Lucene idf, English stemmer + stopwords).

    Scores every corpus passage per query (``get_scores``), ranks with ``search.rank``; a
    positive's score is its entry in that row, whether or not it made the top ``depth``.
    """

    def __init__(self, *, k1: float = 0.9, b: float = 0.4, cache_dir: str | Path | None = None, cache: bool = True):
        super().__init__(cache_dir, cache)
        self.k1, self.b = k1, b
        self.name = "bm25"
        self.fingerprint = f"bm25s:k1={k1}:b={b}:lucene:english-stem-stop"
        self._index = None
        self._index_for = ""

    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        import bm25s
        import Stemmer

        return bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"),
                              return_ids=False, show_progress=False)

    def _model(self, data):
        import bm25s

        corpus_hash = sha256_texts(data.corpus.ids)
        if self._index is None or self._index_for != corpus_hash:
            self._index = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
            self._index.index(self._tokenize(data.corpus.passage_texts()), show_progress=False)
            self._index_for = corpus_hash
        return self._index

    def _compute(self, data, qids: list[str], depth: int, chunk: int = 256) -> Candidates:
        model = self._model(data)
        key = id_order(data.corpus.ids)
        index = data.corpus.index
        tokens = self._tokenize([data.queries[q] for q in qids]) if qids else []
        n = len(data.corpus)
        idx = np.full((len(qids), depth), -1, dtype=np.int64)
        scores = np.full((len(qids), depth), -np.inf, dtype=np.float32)
        pos: dict[str, dict[str, float]] = {}
        for s in range(0, len(qids), chunk):
            rows = np.zeros((min(chunk, len(qids) - s), n), dtype=np.float32)  # (B, N)
            for r in range(len(rows)):
                toks = [t for t in tokens[s + r] if t in model.vocab_dict]
                if toks:
                    rows[r] = model.get_scores(toks)
                qid = qids[s + r]
                pos[qid] = {d: float(rows[r, index[d]]) for d in data.relevant(qid)}
            sel = rank(rows, key, depth)
            idx[s : s + len(rows)] = sel
            scores[s : s + len(rows)] = np.take_along_axis(rows, sel, axis=1)
        return Candidates(self.name, self.fingerprint, qids, idx, scores, pos)


class RandomTeacher(_CachedTeacher):
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


class RescoredTeacher(_CachedTeacher):
    """``base``'s pool and the positives rescored by a sentence-transformers ``CrossEncoder``.

    All (query, passage) pairs of all requested queries go through ``predict`` in one batched
    call; the pool is then re-ranked by the cross-encoder score (ties by passage id). Thresholds in
    mining then apply to these scores. The pool at depth d is the base top-d re-ranked, so a cached
    deeper pool is not sliced (``sliceable = False``).
    """

    sliceable = False

    def __init__(self, base: Teacher, cross_encoder, *, batch_size: int = 32, name: str | None = None,
                 fingerprint: str | None = None, cache_dir: str | Path | None = None, cache: bool = True):
        super().__init__(cache_dir, cache)
        self.base = base
        self._ce = cross_encoder if not isinstance(cross_encoder, (str, Path)) else None
        self._ce_spec = str(cross_encoder) if self._ce is None else None
        self.batch_size = batch_size
        ce_name = name or (self._ce_spec or type(cross_encoder).__name__)
        self.name = f"{base.name}>{Path(ce_name).name}"
        ce_fp = fingerprint or (model_fingerprint(self._ce_spec, cache_dir) if self._ce_spec else ce_name)
        self.fingerprint = f"rescored:{base.fingerprint}|ce:{ce_fp}"

    @property
    def cross_encoder(self):
        if self._ce is None:
            self._ce = load_cross_encoder(self._ce_spec)
        return self._ce

    def _compute(self, data, qids: list[str], depth: int) -> Candidates:
        base = self.base.candidates(data, qids, depth)
        texts = data.corpus.passage_texts()
        pairs, where = [], []  # where: (row, col) in the pool, or (row, doc id) for a positive
        for r, qid in enumerate(base.qids):
            qt = data.queries[qid]
            for c in np.flatnonzero(base.doc_idx[r] >= 0):
                pairs.append((qt, texts[base.doc_idx[r, c]])), where.append((r, int(c)))
            for d in data.relevant(qid):
                pairs.append((qt, texts[data.corpus.index[d]])), where.append((r, d))
        out = np.asarray(self.cross_encoder.predict(pairs, batch_size=self.batch_size, convert_to_numpy=True,
                                                    show_progress_bar=len(pairs) > 5000), dtype=np.float32)
        out = out.reshape(len(pairs), -1)[:, 0] if len(pairs) else out
        scores = np.full(base.scores.shape, -np.inf, dtype=np.float32)
        pos: dict[str, dict[str, float]] = {q: {} for q in base.qids}
        for (r, c), s in zip(where, out.tolist()):
            if isinstance(c, int):
                scores[r, c] = s
            else:
                pos[base.qids[r]][c] = float(s)
        key = id_order(data.corpus.ids)
        tie = np.where(base.doc_idx >= 0, key[np.maximum(base.doc_idx, 0)], np.iinfo(np.int64).max)
        order = rank(scores, tie, base.depth)  # (Q, D) re-ranked columns; padding stays last
        return Candidates(self.name, self.fingerprint, base.qids, np.take_along_axis(base.doc_idx, order, 1),
                          np.take_along_axis(scores, order, 1), pos)


def model_fingerprint(spec: str, cache_dir: str | Path | None = None) -> str:
    """Hash of a model's weight, tokenizer and config files, without loading it."""
    from hardneg.encode import resolve_model, weights_fingerprint

    return weights_fingerprint(resolve_model(spec), cache_dir)[:32]


def load_cross_encoder(spec: str):
    """A sentence-transformers ``CrossEncoder`` from a path or hub id; failure -> HardnegError."""
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(spec)
    except Exception as e:  # noqa: BLE001 - any failure here is the user's spec
        raise HardnegError(f"could not load cross-encoder {spec!r}: {e} "
                           "(pass a local folder or a hub id cached for offline use)") from None


def load_teacher(spec: str, *, backend: str = "torch", batch_size: int = 32, max_length: int | None = None,
                 query_prompt: str = "", passage_prompt: str = "", rescore_with: str | None = None,
                 cache_dir: str | Path | None = None, seed: int = 42, search_backend: str = "exact",
                 recall_check: int = 0, engine=None) -> Teacher:
    """``"bm25"``, ``"random"`` or any model ``hardneg.encode.load_encoder`` accepts.

    Dense models load lazily (only when a pool is not cached); a spec that is not a loadable model
    fails with a HardnegError naming it. ``rescore_with`` wraps the teacher in ``RescoredTeacher``.
    ``search_backend`` / ``recall_check`` / ``engine`` (``hardneg.engine.EngineConfig``) apply to dense
    teachers (see ``DenseTeacher``).
    """
    if spec == "bm25":
        teacher: Teacher = BM25Teacher(cache_dir=cache_dir)
    elif spec == "random":
        teacher = RandomTeacher(seed, cache_dir=cache_dir)
    else:
        teacher = _dense_teacher(spec, backend=backend, batch_size=batch_size, max_length=max_length,
                                 query_prompt=query_prompt, passage_prompt=passage_prompt, cache_dir=cache_dir,
                                 search_backend=search_backend, recall_check=recall_check, engine=engine)
    if rescore_with:
        from hardneg.encode import resolve_model

        ce_path = resolve_model(rescore_with)  # HardnegError naming the spec when it is not found
        teacher = RescoredTeacher(teacher, ce_path, batch_size=batch_size, cache_dir=cache_dir,
                                  name=rescore_with, fingerprint=model_fingerprint(ce_path, cache_dir))
    return teacher


def _dense_teacher(spec: str, *, cache_dir, search_backend: str = "exact", recall_check: int = 0, engine=None,
                   **kwargs) -> DenseTeacher:
    from hardneg.encode import load_encoder, resolve_model

    path = resolve_model(spec)
    settings = _h(":".join(f"{k}={v}" for k, v in sorted(kwargs.items())))

    def load():
        try:
            return load_encoder(spec, cache_dir=cache_dir, **kwargs)
        except HardnegError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure here is the user's spec
            raise HardnegError(f"could not load teacher {spec!r}: {e}") from None

    fp = f"dense:{model_fingerprint(path, cache_dir)}:{settings}"  # the model loads only on a cache miss
    return DenseTeacher(load, name=spec, fingerprint=fp, cache_dir=cache_dir, search_backend=search_backend,
                        recall_check=recall_check, engine=engine)
