"""Model-based false-negative judges (they need texts and a model, so they live with the teachers).

``CrossEncoderJudge``: a sentence-transformers ``CrossEncoder`` scores every still-eligible candidate
and every known positive of its query, all pairs of all queries in one batched ``predict`` call
(pairs shared by several teachers' pools are scored once); a candidate is flagged when its score
reaches the query's lowest positive score minus ``margin`` (``judges.margin_flags``).
``load_judge(config, teachers)`` builds the judge a ``MineConfig`` names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.mining.judges import Judge, JudgeContext, JudgeOut, Pool, margin_flags
from hardneg.mining.teachers.rescored import load_cross_encoder


class CrossEncoderJudge:
    name = "cross-encoder"

    def __init__(self, cross_encoder, *, margin: float = 0.0, batch_size: int = 32):
        self._ce = cross_encoder if not isinstance(cross_encoder, (str, Path)) else None
        self._spec = None if self._ce is not None else str(cross_encoder)
        self.margin, self.batch_size = float(margin), int(batch_size)

    @property
    def model(self):
        if self._ce is None:
            self._ce = load_cross_encoder(self._spec)
        return self._ce

    def judge(self, pools: Sequence[Pool], p: Sequence[np.ndarray], context: JudgeContext | None = None) -> list[JudgeOut]:
        if context is None:
            raise HardnegError("the cross-encoder judge needs the texts: run it through mine(..., judge=...)")
        data, texts = context.data, context.data.corpus.passage_texts()
        index = data.corpus.index
        pairs: dict[tuple[int, int], int] = {}  # (query row, corpus row) -> position in the batch
        for (idx, _), alive in zip(pools, context.alive):
            for r, j in zip(*np.nonzero(alive)):
                pairs.setdefault((int(r), int(idx[r, j])), len(pairs))
        for r, q in enumerate(context.qids):
            for d in context.known[q]:
                pairs.setdefault((r, index[d]), len(pairs))
        batch = [(data.queries[context.qids[r]], texts[d]) for r, d in pairs]
        scores = np.asarray(self.model.predict(batch, batch_size=self.batch_size, convert_to_numpy=True,
                                               show_progress_bar=len(batch) > 5000), dtype=np.float64)
        scores = scores.reshape(len(batch), -1)[:, 0] if len(batch) else scores
        pos = np.array([min((scores[pairs[(r, index[d])]] for d in context.known[q]), default=np.nan)
                        for r, q in enumerate(context.qids)])
        outs = []
        for (idx, _), alive in zip(pools, context.alive):
            ce = np.full(idx.shape, np.nan)
            for r, j in zip(*np.nonzero(alive)):
                ce[r, j] = scores[pairs[(int(r), int(idx[r, j]))]]
            outs.append(JudgeOut(margin_flags(ce, pos, self.margin) & alive,
                                 {"cross_encoder": ce, "cross_encoder_positive": np.repeat(pos[:, None], idx.shape[1], 1)}))
        return outs


def load_judge(config, n_teachers: int, *, batch_size: int = 32) -> Judge | None:
    """The judge ``config.judge`` (a ``MineConfig``) names: None, the agreement judge, or a
    ``CrossEncoderJudge`` over ``config.judge_model`` (a cross-encoder folder or cached hub id)."""
    model, margin = config.judge_model, config.judge_margin
    if config.judge != "cross-encoder":
        from hardneg.mining.mine import make_judge

        return make_judge(config, n_teachers)
    if not model:
        raise HardnegError("--judge cross-encoder needs --judge-model (a cross-encoder folder or cached hub id)")
    from hardneg.encode.models import resolve_model

    return CrossEncoderJudge(resolve_model(model), margin=margin, batch_size=batch_size)
