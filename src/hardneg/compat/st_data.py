"""The drop-in's input as hardneg data: (anchor, positive) pairs and an optional corpus, every text
identified by ``text_id`` (a hash of the text), so identical texts are one id and a query's own text in
the corpus has the query's id (``compat.window``'s ``exclude_anchor_text`` relies on that)."""

from __future__ import annotations

import hashlib
from collections import Counter

from hardneg.core.errors import HardnegError
from hardneg.data.types import Corpus, RetrievalData


class TextCorpus(Corpus):
    """A corpus whose passage text is the text exactly as given (no title join, no strip), so the
    vectors and the output rows are the caller's strings."""

    def passage_texts_at(self, row: int) -> str:
        return self.texts[row]


def text_id(text: str) -> str:
    """The id of a text: 24 hex characters of its UTF-8 sha256 (identical texts share one id).

    >>> text_id("Paris")
    '5dd272b4f316b776a7b8e3d0'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def to_data(dataset, anchor: str, positive: str, corpus) -> tuple[RetrievalData, dict, int]:
    """The pairs as hardneg data with text ids: corpus = ``corpus`` + positives, deduplicated in order
    (the peer's ``dict.fromkeys``); returns (data, {(qid, doc id): first input row}, max rows per anchor)."""
    queries, positives = list(dataset[anchor]), list(dataset[positive])
    for name, col in ((anchor, queries), (positive, positives)):
        bad = next((i for i, v in enumerate(col) if not isinstance(v, str)), None)
        if bad is not None:
            raise HardnegError(f"row {bad} of column {name!r} is {col[bad]!r}, not a text: fix or filter the dataset")
    extra = list(corpus) if corpus is not None else []
    if any(not isinstance(t, str) for t in extra):
        raise HardnegError("corpus must be a list of texts (str)")
    texts = list(dict.fromkeys(extra + positives))
    ids = [text_id(t) for t in texts]
    if len(set(ids)) != len(ids):
        raise HardnegError("two different corpus texts share a 96-bit id: report this (hardneg text_id)")
    qrels: dict[str, dict[str, int]] = {}
    qtexts: dict[str, str] = {}
    pair_rows: dict[tuple[str, str], int] = {}
    for i, (q, p) in enumerate(zip(queries, positives)):
        qid, did = text_id(q), text_id(p)
        qtexts[qid] = q
        qrels.setdefault(qid, {})[did] = 1
        pair_rows.setdefault((qid, did), i)
    max_positives = max(Counter(queries).values())
    data = RetrievalData(TextCorpus(ids, [""] * len(ids), texts), qtexts, qrels, "train", source="datasets.Dataset")
    return data, pair_rows, max_positives
