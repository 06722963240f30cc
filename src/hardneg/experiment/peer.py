"""The peer pipeline of the ablation: sentence-transformers' own ``mine_hard_negatives``, run on the
same (query, known positive) pairs and corpus our miner sees, its output mapped back to ids and
written as a hardneg negatives file, so training and evaluation are the same as every other row's.

What the peer is given: ``relative_margin`` (sentence-transformers' PercPos: keep a candidate when
``s <= p - |p| * relative_margin``; 0.05 is PercPos 95%), ``num_negatives``, ``sampling_strategy="top"``,
``output_format="n-tuple"`` (a pair short of negatives is dropped, as its users get it) and everything
else at its defaults (``range_max = num_negatives * 10 + max positives`` when a margin is set).
Texts are the MTEB join (``Corpus.passage_texts``), the same strings our teachers encode.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from hardneg.core.errors import HardnegError
from hardneg.data.negatives import NegRow, write_negatives

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeerConfig:
    """What the peer's negatives were mined with (saved in the negatives file's meta)."""

    teacher: str
    relative_margin: float = 0.05
    num_negatives: int = 4
    sampling_strategy: str = "top"
    output_format: str = "n-tuple"
    max_length: int | None = None  # the teacher's truncation (None: the model's)
    seed: int = 0  # unused by "top" sampling; the negatives meta records a seed
    library: str = field(default="sentence-transformers")


@dataclass
class _PeerResult:
    rows: list
    stats: dict
    teachers: list
    data_fingerprint: str
    timings: dict
    search: list


def peer_negatives(data, teacher: str, path: str | Path, *, relative_margin: float = 0.05,
                   num_negatives: int = 4, max_length: int | None = None) -> Path:
    """Mine ``data``'s training pairs with ``sentence_transformers.util.mine_hard_negatives`` and
    write the result to ``path`` (+ meta); returns ``path``. ``max_length``: the teacher's
    truncation (``model.max_seq_length``; None keeps the model's)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, __version__ as st_version
    from sentence_transformers.util import mine_hard_negatives

    from hardneg.core.fingerprint import model_fingerprint
    from hardneg.encode.models import resolve_model

    if teacher in ("bm25", "random"):
        raise HardnegError(f"the peer row needs an embedding-model teacher, got {teacher!r}")
    t0 = time.perf_counter()
    model_path = resolve_model(teacher)
    model = SentenceTransformer(str(model_path), device="cpu")
    if max_length is not None:
        model.max_seq_length = max_length
    texts = data.corpus.passage_texts()
    pairs = [(q, d) for q in data.query_ids() for d in data.relevant(q)]
    queries = [data.queries[q] for q, _ in pairs]
    positives = [texts[data.corpus.index[d]] for _, d in pairs]
    mined = mine_hard_negatives(Dataset.from_dict({"query": queries, "positive": positives}), model, corpus=texts,
                                relative_margin=relative_margin, num_negatives=num_negatives,
                                sampling_strategy="top", output_format="n-tuple", output_scores=True, verbose=False)
    rows = rows_from_ntuple(mined.to_dict(), pairs, queries, positives, texts, data.corpus.ids, f"st:{teacher}")
    config = PeerConfig(teacher, relative_margin, num_negatives, max_length=max_length)
    stats = {"pairs": len(pairs), "rows": len(rows), "pairs_without_enough_negatives": len(pairs) - len(rows),
             "sentence_transformers": st_version}
    log.info("peer (sentence-transformers %s): %d of %d pairs got %d negatives", st_version, len(rows), len(pairs),
             num_negatives)
    result = _PeerResult(rows, stats, [{"name": f"st:{teacher}", "fingerprint": model_fingerprint(model_path)}],
                         data.fingerprint(), {"mining_s": round(time.perf_counter() - t0, 3)},
                         [{"backend": "sentence-transformers mine_hard_negatives (exact)"}])
    return write_negatives(path, result, config)


def rows_from_ntuple(table: dict[str, list], pairs: list[tuple[str, str]], queries: list[str], positives: list[str],
                     texts: list[str], ids: list[str], teacher: str) -> list[NegRow]:
    """sentence-transformers' n-tuple table (``query, positive, negative_1.., scores``) -> NegRows.

    Texts map back to ids through the pairs we gave it (a query + positive text -> our pair) and the
    corpus (first passage with that text).

    >>> t = {"query": ["q?"], "positive": ["P"], "negative_1": ["N"], "scores": [[0.9, 0.5]]}
    >>> rows_from_ntuple(t, [("q1", "p")], ["q?"], ["P"], ["P", "N"], ["p", "n"], "st:m")
    [NegRow(qid='q1', pos_id='p', pos_score=0.9, neg_ids=['n'], neg_scores=[0.5], neg_teachers=['st:m'], relabeled=[])]
    """
    by_pair = {(qt, pt): pair for pair, qt, pt in zip(pairs, queries, positives)}
    doc = {}
    for i, t in zip(ids, texts):
        doc.setdefault(t, i)
    negs = sorted((k for k in table if k.startswith("negative_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    rows = []
    for r in range(len(table["query"])):
        qid, pos_id = by_pair[(table["query"][r], table["positive"][r])]
        scores = table.get("scores", [[None] * (1 + len(negs))] * len(table["query"]))[r]
        neg_ids = [doc[table[k][r]] for k in negs]
        rows.append(NegRow(qid, pos_id, scores[0], neg_ids, [float(s) for s in scores[1:]], [teacher] * len(neg_ids)))
    return rows
