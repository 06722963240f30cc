"""The data types every stage after loading works with: ids, texts, graded qrels.

    Corpus          ids + titles + texts, in file order; ``passage_texts()`` joins title and text
                    the way MTEB does for sentence-transformers models: ``f"{title} {text}".strip()``.
    RetrievalData   corpus, queries {qid: text}, qrels {qid: {doc_id: grade}} of one split, plus the
                    negatives an input file gave (``given_negatives``) and counted ``warnings``.

Graded qrels: grade > 0 is relevant; grade 0 is judged not relevant (kept, so mining can treat those
passages as ordinary candidates and metrics can see the judgement).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field


@dataclass
class Corpus:
    ids: list[str]
    titles: list[str]
    texts: list[str]

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.titles) == len(self.texts)):
            raise ValueError("Corpus ids, titles and texts must have the same length")
        self._pos: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def index(self) -> dict[str, int]:
        """doc id -> row position."""
        if self._pos is None:
            self._pos = {d: i for i, d in enumerate(self.ids)}
        return self._pos

    def passage_texts(self) -> list[str]:
        """Title and text joined as MTEB does for sentence-transformers models."""
        return [self.passage_texts_at(i) for i in range(len(self.ids))]

    def passage_texts_at(self, row: int) -> str:
        """``passage_texts()[row]`` without building the whole list.

        >>> Corpus(["d"], ["A title"], ["a text "]).passage_texts_at(0)
        'A title a text'
        """
        t, x = self.titles[row], self.texts[row]
        return f"{t} {x}".strip() if t else x.strip()


@dataclass
class RetrievalData:
    corpus: Corpus
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    given_negatives: dict[str, list[str]] = field(default_factory=dict)

    def relevant(self, qid: str) -> list[str]:
        """Doc ids with grade > 0 for ``qid``, in qrels file order."""
        return [d for d, g in self.qrels.get(qid, {}).items() if g > 0]

    def query_ids(self) -> list[str]:
        """Query ids of this split that have at least one relevant doc, in qrels order."""
        return [q for q in self.qrels if any(g > 0 for g in self.qrels[q].values())]

    def summary(self) -> dict[str, object]:
        """Counts for ``hardneg data info``, keyed by their printed labels, in print order (the mean is a
        float, the mean and max are None without queries)."""
        n_pos = [len(self.relevant(q)) for q in self.query_ids()]
        return {
            "source": self.source,
            "split": self.split,
            "documents": len(self.corpus),
            "queries (file)": len(self.queries),
            "queries (split, with a positive)": len(n_pos),
            "qrels rows": sum(len(d) for d in self.qrels.values()),
            "judged not relevant (grade 0)": sum(g <= 0 for docs in self.qrels.values() for g in docs.values()),
            "positives per query mean": sum(n_pos) / len(n_pos) if n_pos else None,
            "positives per query max": max(n_pos) if n_pos else None,
            "given negatives": sum(len(v) for v in self.given_negatives.values()),
            "fingerprint": self.fingerprint(),
            "warnings": len(self.warnings),
        }

    def fingerprint(self) -> str:
        """Hash of corpus, the split's queries, qrels and given negatives: identifies the data."""
        h = hashlib.sha256()
        for d, t, x in zip(self.corpus.ids, self.corpus.titles, self.corpus.texts):
            h.update(json.dumps([d, t, x]).encode())
        for q in sorted(self.qrels):
            h.update(json.dumps([q, self.queries.get(q, ""), sorted(self.qrels[q].items())]).encode())
        for q in sorted(self.given_negatives):  # empty for BEIR: their hashes are unchanged
            h.update(json.dumps(["neg", q, self.given_negatives[q]]).encode())
        return h.hexdigest()[:16]


def texts_of(data: RetrievalData, qid: str, doc_ids) -> tuple[str, list[str]]:
    """(query text, passage texts) of ``qid`` and ``doc_ids``: the one id -> text step that training
    and export share (passage text = ``Corpus.passage_texts``' MTEB join)."""
    c, index = data.corpus, data.corpus.index
    return data.queries[qid], [c.passage_texts_at(index[d]) for d in doc_ids]
