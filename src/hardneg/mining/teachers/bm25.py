"""BM25 as teacher: bm25s with BEIR's setting (k1 0.9, b 0.4, Lucene idf, English stemmer + stopwords).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hardneg.core.files import sha256_texts
from hardneg.mining.candidates import Candidates
from hardneg.mining.teachers.pool_cache import CachedTeacher
from hardneg.search.rank import id_order, rank

log = logging.getLogger(__name__)


class BM25Teacher(CachedTeacher):
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
