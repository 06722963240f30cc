"""Mined rows (``NegRow``, one per (anchor, positive), grouped by anchor) -> the columns of
sentence-transformers' four ``mine_hard_negatives`` output formats.

Ids become texts through ``data.types.texts_of`` (the n-tuple through ``data.export.ntuple_columns``,
the step ``hardneg export`` and ``hardneg train`` share). ``keep_short`` decides what happens to a row
that cannot fill its format (an n-tuple with fewer than n negatives; a triplet or labeled-list row with
no negative at all): kept with ``None`` in the unfilled cells, or left out. Either way its 0-based
position in ``rows`` is returned in ``left_out`` / ``padded``, so nothing disappears uncounted.

>>> from hardneg.data.negatives import NegRow
>>> from hardneg.data.types import Corpus, RetrievalData
>>> data = RetrievalData(Corpus(["p", "n"], ["", ""], ["P", "N"]), {"q": "Q"}, {"q": {"p": 1}}, "x")
>>> rows = [NegRow("q", "p", 0.9, ["n"], [0.5], ["t"])]
>>> to_columns(rows, data, "triplet", num_negatives=1, output_scores=True).cols
{'query': ['Q'], 'answer': ['P'], 'negative': ['N'], 'scores': [[0.9, 0.5]]}
>>> to_columns(rows, data, "n-tuple", num_negatives=2, keep_short=True).cols
{'query': ['Q'], 'answer': ['P'], 'negative_1': ['N'], 'negative_2': [None]}
>>> to_columns(rows, data, "labeled-pair", num_negatives=1).cols
{'query': ['Q', 'Q'], 'answer': ['P', 'N'], 'label': [1, 0]}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hardneg.data.export import ntuple_columns
from hardneg.data.types import texts_of

OUTPUT_FORMATS = ("triplet", "n-tuple", "labeled-pair", "labeled-list")


@dataclass
class Table:
    cols: dict[str, list]
    left_out: list[int] = field(default_factory=list)  # rows of ``rows`` that produced no output row
    padded: list[int] = field(default_factory=list)    # rows kept with None cells (``keep_short``)


def to_columns(rows, data, output_format: str, *, num_negatives: int, output_scores: bool = False,
               keep_short: bool = False, anchor: str = "query", positive: str = "answer") -> Table:
    """The peer's columns for ``output_format`` (see the module docstring)."""
    build = {"triplet": _triplet, "n-tuple": _ntuple, "labeled-pair": _labeled_pair,
             "labeled-list": _labeled_list}[output_format]
    table = build(rows, data, num_negatives, output_scores, keep_short)
    renames = {"anchor": anchor, "positive": positive}
    table.cols = {renames.get(k, k): v for k, v in table.cols.items()}
    return table


def _triplet(rows, data, n, scores, keep_short) -> Table:
    t = Table({"anchor": [], "positive": [], "negative": [], **({"scores": []} if scores else {})})
    for i, r in enumerate(rows):
        query, (pos, *negs) = texts_of(data, r.qid, [r.pos_id, *r.neg_ids])
        pairs = list(zip(negs, r.neg_scores))
        if not pairs:
            if not keep_short:
                t.left_out.append(i)
                continue
            t.padded.append(i)
            pairs = [(None, None)]
        for text, s in pairs:
            t.cols["anchor"].append(query)
            t.cols["positive"].append(pos)
            t.cols["negative"].append(text)
            if scores:
                t.cols["scores"].append([r.pos_score, s])
    return t


def _ntuple(rows, data, n, scores, keep_short) -> Table:
    full, short = ntuple_columns(rows, data, n)  # short: 1-based numbers of the rows with < n negatives
    short0 = [s - 1 for s in short]
    if not keep_short:
        t = Table(full, left_out=short0)
        if scores:
            t.cols["scores"] = [[r.pos_score, *r.neg_scores[:n]] for r in rows if len(r.neg_ids) >= n]
        return t
    t = Table({k: [] for k in full} | ({"scores": []} if scores else {}), padded=short0)
    nxt = 0
    for i, r in enumerate(rows):
        if len(r.neg_ids) >= n:
            for k in full:
                t.cols[k].append(full[k][nxt])
            nxt += 1
        else:
            query, (pos, *negs) = texts_of(data, r.qid, [r.pos_id, *r.neg_ids])
            t.cols["anchor"].append(query)
            t.cols["positive"].append(pos)
            for j in range(1, n + 1):
                t.cols[f"negative_{j}"].append(negs[j - 1] if j <= len(negs) else None)
        if scores:
            t.cols["scores"].append([r.pos_score, *r.neg_scores[:n], *[None] * (n - len(r.neg_scores[:n]))])
    return t


def _labeled_pair(rows, data, n, scores, keep_short) -> Table:
    """Per anchor: its positives (label 1), then its negatives (label 0), deduplicated across its rows."""
    label = "score" if scores else "label"
    t = Table({"anchor": [], "positive": [], label: []})
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(r.qid, []).append(r)
    for qid, group in groups.items():
        negs: dict[str, float] = {}
        for r in group:
            for d, s in zip(r.neg_ids, r.neg_scores):
                negs.setdefault(d, s)
        query, pos_texts = texts_of(data, qid, [r.pos_id for r in group])
        _, neg_texts = texts_of(data, qid, list(negs))
        for text, value in [*zip(pos_texts, [r.pos_score if scores else 1 for r in group]),
                            *zip(neg_texts, list(negs.values()) if scores else [0] * len(negs))]:
            t.cols["anchor"].append(query)
            t.cols["positive"].append(text)
            t.cols[label].append(value)
    return t


def _labeled_list(rows, data, n, scores, keep_short) -> Table:
    label = "scores" if scores else "labels"
    t = Table({"anchor": [], "positive": [], label: []})
    for i, r in enumerate(rows):
        if not r.neg_ids:
            if not keep_short:
                t.left_out.append(i)
                continue
            t.padded.append(i)
        query, docs = texts_of(data, r.qid, [r.pos_id, *r.neg_ids])
        t.cols["anchor"].append(query)
        t.cols["positive"].append(docs)
        t.cols[label].append([r.pos_score, *r.neg_scores] if scores else [1] + [0] * len(r.neg_ids))
    return t
