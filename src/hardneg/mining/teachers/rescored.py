"""A base teacher's pool (and the positives) rescored by a cross-encoder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.fingerprint import model_fingerprint
from hardneg.encode.models import resolve_model
from hardneg.mining.candidates import Candidates, Teacher
from hardneg.mining.teachers.pool_cache import CachedTeacher
from hardneg.search.rank import NO_KEY, id_order, rank

log = logging.getLogger(__name__)


class RescoredTeacher(CachedTeacher):
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
        ce_fp = fingerprint or (model_fingerprint(resolve_model(self._ce_spec), cache_dir) if self._ce_spec else ce_name)
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
        tie = np.where(base.doc_idx >= 0, key[np.maximum(base.doc_idx, 0)], NO_KEY)
        order = rank(scores, tie, base.depth)  # (Q, D) re-ranked columns; padding stays last
        return Candidates(self.name, self.fingerprint, base.qids, np.take_along_axis(base.doc_idx, order, 1),
                          np.take_along_axis(scores, order, 1), pos)


def load_cross_encoder(spec: str):
    """A sentence-transformers ``CrossEncoder`` from a path or hub id; failure -> HardnegError."""
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(spec)
    except Exception as e:  # noqa: BLE001 - any failure here is the user's spec
        raise HardnegError(f"could not load cross-encoder {spec!r}: {e} "
                           "(pass a local folder or a hub id cached for offline use)") from None
