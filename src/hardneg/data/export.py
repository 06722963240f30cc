"""Export a negatives file (ids + scores) to the training formats of other libraries.

Ids become texts only here. A judge-relabelled positive (``NegRow.relabeled``) becomes a row of its
own with its query's negatives, as in training (``data.relabel``). Formats (one output row per negatives row, i.e. per (query, positive),
unless ``group_by_query``; grouping merges a query's rows: positives in order, negatives
deduplicated in order):

* ``flagembedding``: JSONL ``{"query", "pos": [text], "neg": [text], "pos_scores", "neg_scores"}``
  (FlagEmbedding's fine-tuning format; the scores are the teacher's, usable for distillation).
* ``sentence-transformers``: the table ``mine_hard_negatives`` returns. ``n-tuple``: columns
  ``anchor, positive, negative_1 .. negative_n`` (a row with fewer than n negatives cannot fill
  the columns and is dropped, counted); ``triplet``: ``anchor, positive, negative``, one row per
  negative. ``.parquet`` output is written as parquet, anything else as JSONL (other table suffixes,
  e.g. ``.csv``, are refused).
* ``tevatron``: JSONL ``{"query_id", "query", "positive_passages": [{"docid", "title", "text"}],
  "negative_passages": [...]}``.

Passage text for flagembedding and sentence-transformers is ``title + " " + text`` (the MTEB
join, ``Corpus.passage_texts``); tevatron keeps title and text apart.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hardneg.core.errors import HardnegError
from hardneg.core.files import atomic_open, sha256_file
from hardneg.core.provenance import read_meta, write_meta
from hardneg.data.negatives import check_ids, read_negatives, require_rows
from hardneg.data.relabel import with_relabeled_rows
from hardneg.data.types import texts_of

log = logging.getLogger(__name__)

FORMATS = ("flagembedding", "sentence-transformers", "tevatron")
ST_FORMATS = ("n-tuple", "triplet")
TABLE_SUFFIXES = (".parquet", ".csv", ".tsv", ".arrow", ".feather")  # not JSONL: refused unless written as such


def check_output_format(fmt: str, output: str | Path) -> None:
    """Refuse an output whose suffix names a file type ``fmt`` does not write (it would get JSONL):
    only sentence-transformers writes ``.parquet``; every format writes JSONL to any other name.

    >>> check_output_format("sentence-transformers", "st.parquet")
    >>> check_output_format("tevatron", "tev.parquet")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    hardneg.core.errors.HardnegError: --format tevatron writes JSONL, not .parquet: name the output tev.jsonl ...
    """
    suffix = Path(output).suffix.lower()
    if suffix in TABLE_SUFFIXES and not (suffix == ".parquet" and fmt == "sentence-transformers"):
        writes = "parquet (.parquet) or JSONL" if fmt == "sentence-transformers" else "JSONL"
        raise HardnegError(f"--format {fmt} writes {writes}, not {suffix}: name the output "
                           f"{Path(output).with_suffix('.jsonl').name} (only --format sentence-transformers "
                           f"writes parquet)")




def group_rows(rows, group_by_query: bool) -> list[tuple[str, list, list]]:
    """-> [(qid, [(pos_id, pos_score)], [(neg_id, neg_score)])], one per row or per query.

    >>> from types import SimpleNamespace as R
    >>> rows = [R(qid="q", pos_id="a", pos_score=1, neg_ids=["x", "y"], neg_scores=[.5, .4]),
    ...         R(qid="q", pos_id="b", pos_score=.9, neg_ids=["y", "z"], neg_scores=[.4, .3])]
    >>> [(q, [p for p, _ in ps], [n for n, _ in ns]) for q, ps, ns in group_rows(rows, True)]
    [('q', ['a', 'b'], ['x', 'y', 'z'])]
    """
    if not group_by_query:
        return [(r.qid, [(r.pos_id, r.pos_score)], list(zip(r.neg_ids, r.neg_scores))) for r in rows]
    groups: dict[str, tuple[dict, dict]] = {}
    for r in rows:
        pos, neg = groups.setdefault(r.qid, ({}, {}))
        pos.setdefault(r.pos_id, r.pos_score)
        for d, s in zip(r.neg_ids, r.neg_scores):
            neg.setdefault(d, s)
    return [(q, list(p.items()), [(d, s) for d, s in n.items() if d not in p]) for q, (p, n) in groups.items()]


def to_flagembedding(rows, data, group_by_query: bool = False) -> list[dict]:
    out = []
    for qid, pos, neg in group_rows(rows, group_by_query):
        query, pos_texts = texts_of(data, qid, [d for d, _ in pos])
        obj = {"query": query, "pos": pos_texts, "neg": texts_of(data, qid, [d for d, _ in neg])[1]}
        if all(s is not None for _, s in pos):
            obj["pos_scores"] = [s for _, s in pos]
            obj["neg_scores"] = [s for _, s in neg]
        out.append(obj)
    return out


def to_tevatron(rows, data, group_by_query: bool = False) -> list[dict]:
    c, index = data.corpus, data.corpus.index

    def passage(d: str) -> dict:
        return {"docid": d, "title": c.titles[index[d]], "text": c.texts[index[d]]}

    return [{"query_id": qid, "query": data.queries[qid], "positive_passages": [passage(d) for d, _ in pos],
             "negative_passages": [passage(d) for d, _ in neg]} for qid, pos, neg in group_rows(rows, group_by_query)]


def ntuple_columns(rows, data, n: int) -> tuple[dict[str, list[str]], list[int]]:
    """``anchor, positive, negative_1 .. negative_n`` texts of every row with at least ``n`` negatives
    (its first ``n``, in mined order), and the 1-based numbers of the rows that had fewer (left out).

    The one id -> text step that ``hardneg train`` and the sentence-transformers export share.
    """
    cols: dict[str, list[str]] = {"anchor": [], "positive": [], **{f"negative_{i}": [] for i in range(1, n + 1)}}
    short = []
    for i, r in enumerate(rows, 1):
        if len(r.neg_ids) < n:
            short.append(i)
            continue
        query, (pos, *negs) = texts_of(data, r.qid, [r.pos_id, *r.neg_ids[:n]])
        cols["anchor"].append(query)
        cols["positive"].append(pos)
        for j, text in enumerate(negs, 1):
            cols[f"negative_{j}"].append(text)
    return cols, short


def to_sentence_transformers(rows, data, st_format: str = "n-tuple",
                             num_negatives: int | None = None) -> tuple[dict[str, list[str]], int]:
    """Columns of the table ``mine_hard_negatives`` returns, and the number of rows dropped.

    ``n-tuple`` with n = ``num_negatives`` (default: the most negatives any row has); a row with
    fewer cannot fill ``negative_1..n`` and is dropped; a row with more keeps its top n.
    """
    if st_format not in ST_FORMATS:
        raise HardnegError(f"unknown sentence-transformers format {st_format!r}; choose one of {ST_FORMATS}")
    if st_format == "triplet":
        cols: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
        for r in rows:
            query, (pos, *negs) = texts_of(data, r.qid, [r.pos_id, *r.neg_ids])
            for text in negs:
                cols["anchor"].append(query)
                cols["positive"].append(pos)
                cols["negative"].append(text)
        return cols, sum(1 for r in rows if not r.neg_ids)
    cols, short = ntuple_columns(rows, data, num_negatives or max((len(r.neg_ids) for r in rows), default=0))
    return cols, len(short)


def _write_jsonl(path: Path, objs) -> None:
    with atomic_open(path) as f:
        for o in objs:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")


def _write_table(path: Path, cols: dict[str, list[str]]) -> None:
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_open(path, "wb") as f:
            pq.write_table(pa.table(cols), f)
        return
    names = list(cols)
    n = len(cols[names[0]]) if names else 0
    _write_jsonl(path, ({k: cols[k][i] for k in names} for i in range(n)))


def export_negatives(negatives: str | Path, data, fmt: str, output: str | Path, *, group_by_query: bool = False,
                     st_format: str = "n-tuple", num_negatives: int | None = None) -> dict:
    """Read ``negatives``, write ``output`` in ``fmt`` plus ``output.meta.json``; returns the stats."""
    if fmt not in FORMATS:
        raise HardnegError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    check_output_format(fmt, output)
    negatives, output = Path(negatives), Path(output)
    rows = require_rows(read_negatives(negatives), negatives)
    check_ids(rows, data, negatives)
    _warn_other_data(negatives, data)
    n_in = len(rows)
    rows, relabeled = with_relabeled_rows(rows)  # judge-relabelled positives: one more row each, as in training
    dropped = 0
    if fmt == "sentence-transformers":
        cols, dropped = to_sentence_transformers(rows, data, st_format, num_negatives)
        written = len(next(iter(cols.values()), []))
        _check_written(written, rows, st_format, num_negatives)
        _write_table(output, cols)
    else:
        objs = (to_flagembedding if fmt == "flagembedding" else to_tevatron)(rows, data, group_by_query)
        _write_jsonl(output, objs)
        written = len(objs)
    stats = {"rows_in": n_in, "relabeled_rows_added": relabeled, "rows_written": written, "rows_dropped": dropped}
    config = {"format": fmt, "negatives": str(negatives), "data": data.source, "split": data.split,
              "group_by_query": group_by_query, "st_format": st_format, "num_negatives": num_negatives}
    write_meta(output, config, negatives_sha256=sha256_file(negatives), data_fingerprint=data.fingerprint(),
               stats=stats)
    return stats


def _check_written(written: int, rows, st_format: str, num_negatives: int | None) -> None:
    """A sentence-transformers export that would write no row is an error (before anything is written)."""
    if written:
        return
    most = max((len(r.neg_ids) for r in rows), default=0)
    if st_format == "triplet" or not most:
        raise HardnegError(f"no row of the {len(rows)} has a negative, so there is nothing to write: mine with "
                           "a looser filter or a larger --depth (see the warnings of 'hardneg mine')")
    raise HardnegError(f"no row of the {len(rows)} has {num_negatives} negatives (the most is {most}), so no "
                       f"{num_negatives}-tuple can be filled: lower --num-negatives to {most} or less")


def _warn_other_data(negatives: Path, data) -> None:
    mined_from = (read_meta(negatives) or {}).get("data_fingerprint")
    if mined_from and mined_from != data.fingerprint():
        log.warning("%s was mined from data %s, exporting with data %s (split %s): ids match, texts may not",
                    negatives, mined_from, data.fingerprint(), data.split)
