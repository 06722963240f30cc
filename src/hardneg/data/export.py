"""Export a negatives file (ids + scores) to the training formats of other libraries.

Ids become texts only here. A judge-relabelled positive (``NegRow.relabeled``) becomes a row of its
own with its query's negatives, as in training (``data.relabel``). Formats (one output row per negatives row, i.e. per (query, positive),
unless ``group_by_query``; grouping merges a query's rows: positives in order, negatives
deduplicated in order):

* ``flagembedding``: JSONL ``{"query", "pos": [text], "neg": [text], "pos_scores", "neg_scores"}``
  (FlagEmbedding's fine-tuning format; the scores are the teacher's, for its knowledge distillation).
* ``sentence-transformers``: the table ``mine_hard_negatives`` returns. ``n-tuple``: columns
  ``anchor, positive, negative_1 .. negative_n`` (a row with fewer than n negatives cannot fill
  the columns and is dropped, counted); ``triplet``: ``anchor, positive, negative``, one row per
  negative. With scores, a last column ``scores`` as ``mine_hard_negatives(output_scores=True)``
  writes it: ``[pos_score, neg_1_score, .., neg_n_score]`` (n-tuple), ``[pos_score, neg_score]``
  (triplet); sentence-transformers 6 treats a ``scores`` column as the label (MarginMSE), and losses
  without labels (MultipleNegativesRankingLoss) ignore it. ``.parquet`` output is written as parquet,
  anything else as JSONL (other table suffixes, e.g. ``.csv``, are refused).
* ``hf-dataset``: the same table as a ``datasets`` folder (``Dataset.save_to_disk``: ``load_from_disk``
  gives a ``Dataset`` for ``SentenceTransformerTrainer``), written to a temporary folder and renamed
  into place; an output named ``.parquet`` / ``.jsonl`` is that one file instead
  (``load_dataset("parquet" | "json", data_files=...)``).
* ``tevatron``: JSONL ``{"query_id", "query", "positive_passages": [{"docid", "title", "text", "score"}],
  "negative_passages": [...]}``; ``score`` (the teacher's) is what Tevatron's ``DistilTrainDataset``
  (``train_distil``) reads from each passage; its plain trainer ignores it.

Scores (``scores``; default ``SCORES_DEFAULT``: on where the format has always carried them or the
trainer ignores them, off for the two sentence-transformers tables, as ``output_scores=False``) are
the negatives file's numbers, unchanged. A positive without a score (``pos_score`` null, e.g. a
judge-relabelled positive) has none in the output: flagembedding leaves out both lists of that row,
tevatron that passage's ``score``, the tables write null; the returned ``scores_missing`` (and the
meta's ``scores``) counts those rows.

Passage text for flagembedding and the tables is ``title + " " + text`` (the MTEB join,
``Corpus.passage_texts``); tevatron keeps title and text apart.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from hardneg.core.errors import HardnegError
from hardneg.core.files import atomic_open, sha256_file
from hardneg.core.provenance import read_meta, write_meta
from hardneg.data.negatives import check_ids, read_negatives, require_rows
from hardneg.data.relabel import with_relabeled_rows
from hardneg.data.types import texts_of

log = logging.getLogger(__name__)

FORMATS = ("flagembedding", "sentence-transformers", "tevatron", "hf-dataset")
ST_FORMATS = ("n-tuple", "triplet")
TABLE_FORMATS = ("sentence-transformers", "hf-dataset")  # the mine_hard_negatives table, as a file or a folder
SCORES_DEFAULT = {"flagembedding": True, "tevatron": True, "sentence-transformers": False, "hf-dataset": False}
TABLE_SUFFIXES = (".parquet", ".csv", ".tsv", ".arrow", ".feather")  # not JSONL: refused unless written as such
FILE_SUFFIXES = (".parquet", ".jsonl")  # hf-dataset: one file; any other name is a save_to_disk folder


def check_output_format(fmt: str, output: str | Path) -> None:
    """Refuse an output whose suffix names a file type ``fmt`` does not write (it would get JSONL):
    only the tables write ``.parquet``; every format but hf-dataset writes JSONL to any other name.

    >>> check_output_format("sentence-transformers", "st.parquet")
    >>> check_output_format("hf-dataset", "st-data")
    >>> check_output_format("tevatron", "tev.parquet")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    hardneg.core.errors.HardnegError: --format tevatron writes JSONL, not .parquet: name the output tev.jsonl ...
    """
    suffix = Path(output).suffix.lower()
    if fmt == "hf-dataset":
        if suffix in TABLE_SUFFIXES + (".json",) and suffix not in FILE_SUFFIXES:
            raise HardnegError(f"--format hf-dataset writes a datasets folder (save_to_disk), a .parquet or a "
                               f".jsonl file, not {suffix}: name the output {Path(output).stem} (a folder) or "
                               f"{Path(output).with_suffix('.parquet').name}")
        return
    if suffix in TABLE_SUFFIXES and not (suffix == ".parquet" and fmt == "sentence-transformers"):
        writes = "parquet (.parquet) or JSONL" if fmt == "sentence-transformers" else "JSONL"
        raise HardnegError(f"--format {fmt} writes {writes}, not {suffix}: name the output "
                           f"{Path(output).with_suffix('.jsonl').name} (only --format sentence-transformers "
                           f"writes parquet, as does hf-dataset)")


def writes_folder(fmt: str, output: str | Path) -> bool:
    """True when ``fmt`` writes ``output`` as a folder (hf-dataset, unless named .parquet / .jsonl)."""
    return fmt == "hf-dataset" and Path(output).suffix.lower() not in FILE_SUFFIXES


def check_folder_output(output: str | Path) -> None:
    """A folder output replaces only an empty folder or an earlier hf-dataset export (its meta says so);
    anything else would be deleted by the swap, so it is refused."""
    output = Path(output)
    if not output.is_dir() or not any(output.iterdir()):
        return
    meta = read_meta(output, verify=False) or {}
    if (meta.get("config") or {}).get("format") != "hf-dataset":
        raise HardnegError(f"--output {output} is a folder that holds other files, not an earlier "
                           "'hardneg export --format hf-dataset': choose a new or empty folder")


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


def to_flagembedding(rows, data, group_by_query: bool = False, scores: bool = True) -> list[dict]:
    out = []
    for qid, pos, neg in group_rows(rows, group_by_query):
        query, pos_texts = texts_of(data, qid, [d for d, _ in pos])
        obj = {"query": query, "pos": pos_texts, "neg": texts_of(data, qid, [d for d, _ in neg])[1]}
        if scores and all(s is not None for _, s in pos):
            obj["pos_scores"] = [s for _, s in pos]
            obj["neg_scores"] = [s for _, s in neg]
        out.append(obj)
    return out


def to_tevatron(rows, data, group_by_query: bool = False, scores: bool = True) -> list[dict]:
    c, index = data.corpus, data.corpus.index

    def passage(d: str, s: float | None) -> dict:
        p = {"docid": d, "title": c.titles[index[d]], "text": c.texts[index[d]]}
        if scores and s is not None:
            p["score"] = s
        return p

    return [{"query_id": qid, "query": data.queries[qid], "positive_passages": [passage(d, s) for d, s in pos],
             "negative_passages": [passage(d, s) for d, s in neg]} for qid, pos, neg in group_rows(rows, group_by_query)]


def ntuple_columns(rows, data, n: int, pad: bool = False) -> tuple[dict[str, list[str]], list[int]]:
    """``anchor, positive, negative_1 .. negative_n`` texts of every row with at least ``n`` negatives
    (its first ``n``, in mined order), and the 1-based numbers of the rows that had fewer (left out).
    ``pad``: a row with fewer is kept, its empty slots filled with its own query's text: a placeholder the
    trainer's loss masks out by its code (``training.examples.PAD_CODE``), short (cheap to encode, and
    length-bucketed batches group such rows) and unique to the row (the no-duplicates batch rule holds).

    The one id -> text step that ``hardneg train`` and the sentence-transformers export share.
    """
    cols: dict[str, list[str]] = {"anchor": [], "positive": [], **{f"negative_{i}": [] for i in range(1, n + 1)}}
    short = []
    for i, r in enumerate(rows, 1):
        if len(r.neg_ids) < n:
            short.append(i)
            if not pad:
                continue
        query, (pos, *negs) = texts_of(data, r.qid, [r.pos_id, *r.neg_ids[:n]])
        negs += [query] * (n - len(negs))
        cols["anchor"].append(query)
        cols["positive"].append(pos)
        for j, text in enumerate(negs, 1):
            cols[f"negative_{j}"].append(text)
    return cols, short


def to_sentence_transformers(rows, data, st_format: str = "n-tuple", num_negatives: int | None = None,
                             scores: bool = False) -> tuple[dict[str, list], int]:
    """Columns of the table ``mine_hard_negatives`` returns, and the number of rows dropped.

    ``n-tuple`` with n = ``num_negatives`` (default: the most negatives any row has); a row with
    fewer cannot fill ``negative_1..n`` and is dropped; a row with more keeps its top n. ``scores``:
    the last column ``scores``, ``[pos, neg_1 .. neg_n]`` (``[pos, neg]`` per triplet), as
    ``mine_hard_negatives(output_scores=True)``.

    >>> from hardneg.data.negatives import NegRow
    >>> from hardneg.data.types import Corpus, RetrievalData
    >>> data = RetrievalData(Corpus(["a", "x", "y"], ["", "", ""], ["A", "X", "Y"]), {"q": "Q"}, {"q": {"a": 1}}, "train")
    >>> cols, dropped = to_sentence_transformers([NegRow("q", "a", 0.9, ["x", "y"], [0.5, 0.4], ["t", "t"])], data,
    ...                                          "triplet", scores=True)
    >>> cols, dropped
    ({'anchor': ['Q', 'Q'], 'positive': ['A', 'A'], 'negative': ['X', 'Y'], 'scores': [[0.9, 0.5], [0.9, 0.4]]}, 0)
    """
    if st_format not in ST_FORMATS:
        raise HardnegError(f"unknown sentence-transformers format {st_format!r}; choose one of {ST_FORMATS}")
    if st_format == "triplet":
        cols: dict[str, list] = {"anchor": [], "positive": [], "negative": [], **({"scores": []} if scores else {})}
        for r in rows:
            query, (pos, *negs) = texts_of(data, r.qid, [r.pos_id, *r.neg_ids])
            for text, s in zip(negs, r.neg_scores):
                cols["anchor"].append(query)
                cols["positive"].append(pos)
                cols["negative"].append(text)
                if scores:
                    cols["scores"].append([r.pos_score, s])
        return cols, sum(1 for r in rows if not r.neg_ids)
    n = num_negatives or max((len(r.neg_ids) for r in rows), default=0)
    cols, short = ntuple_columns(rows, data, n)
    if scores:
        cols["scores"] = [[r.pos_score, *r.neg_scores[:n]] for r in rows if len(r.neg_ids) >= n]
    return cols, len(short)


def _write_jsonl(path: Path, objs) -> None:
    with atomic_open(path) as f:
        for o in objs:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")


def _write_table(path: Path, cols: dict[str, list]) -> None:
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_open(path, "wb") as f:
            pq.write_table(pa.table(cols), f)
        return
    names = list(cols)
    n = len(cols[names[0]]) if names else 0
    _write_jsonl(path, ({k: cols[k][i] for k in names} for i in range(n)))


def _write_dataset_dir(path: Path, cols: dict[str, list]) -> None:
    """``Dataset.from_dict(cols).save_to_disk`` into a temporary sibling folder, then renamed into place
    (an earlier folder is moved aside first and deleted after: a kill leaves the old or the new one whole)."""
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = None
    try:
        quiet = not datasets.utils.are_progress_bars_disabled()
        if quiet:
            datasets.utils.disable_progress_bars()  # one bar per tiny save is noise in the CLI's output
        try:
            datasets.Dataset.from_dict(cols).save_to_disk(str(tmp))
        finally:
            if quiet:
                datasets.utils.enable_progress_bars()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700
        if path.exists():
            old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


_TMP_DIR = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def clean_stale_dataset_dirs(output: str | Path, before: float | None = None) -> list[Path]:
    """Remove temporary folders of ``output`` (``.NAME.XXXXXXXX.tmp``, left by a killed folder export)
    older than ``before`` (default: now). Call it only while holding the output's lock."""
    output, before = Path(output), time.time() if before is None else before
    if not output.parent.is_dir():
        return []
    removed = []
    for q in output.parent.iterdir():
        if (q.name.startswith(f".{output.name}.") and _TMP_DIR.match(q.name) and q.is_dir() and not q.is_symlink()
                and q.stat().st_mtime < before):
            shutil.rmtree(q, ignore_errors=True)
            removed.append(q)
            log.warning("removed %s, left by an interrupted earlier export", q)
    return removed


def export_negatives(negatives: str | Path, data, fmt: str, output: str | Path, *, group_by_query: bool = False,
                     st_format: str = "n-tuple", num_negatives: int | None = None,
                     scores: bool | None = None) -> dict:
    """Read ``negatives``, write ``output`` in ``fmt`` plus ``output.meta.json``; returns the stats.

    ``scores``: carry the teacher scores (None: ``SCORES_DEFAULT[fmt]``)."""
    if fmt not in FORMATS:
        raise HardnegError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    check_output_format(fmt, output)
    negatives, output = Path(negatives), Path(output)
    folder = writes_folder(fmt, output)
    if folder:
        check_folder_output(output)
    scores = SCORES_DEFAULT[fmt] if scores is None else bool(scores)
    rows = require_rows(read_negatives(negatives), negatives)
    check_ids(rows, data, negatives)
    _warn_other_data(negatives, data)
    n_in = len(rows)
    rows, relabeled = with_relabeled_rows(rows)  # judge-relabelled positives: one more row each, as in training
    dropped = 0
    if fmt in TABLE_FORMATS:
        cols, dropped = to_sentence_transformers(rows, data, st_format, num_negatives, scores)
        written = len(next(iter(cols.values()), []))
        _check_written(written, rows, st_format, num_negatives)
        missing = sum(row[0] is None for row in cols.get("scores", []))
        (_write_dataset_dir if folder else _write_table)(output, cols)
    else:
        objs = (to_flagembedding if fmt == "flagembedding" else to_tevatron)(rows, data, group_by_query, scores)
        _write_jsonl(output, objs)
        written = len(objs)
        missing = _missing_scores(objs, fmt) if scores else 0
    stats = {"rows_in": n_in, "relabeled_rows_added": relabeled, "rows_written": written, "rows_dropped": dropped}
    config = {"format": fmt, "negatives": str(negatives), "data": data.source, "split": data.split,
              "group_by_query": group_by_query, "st_format": st_format, "num_negatives": num_negatives,
              "scores": scores}
    write_meta(output, config, negatives_sha256=sha256_file(negatives), data_fingerprint=data.fingerprint(),
               stats=stats, scores={"written": scores, "rows_without_positive_score": missing})
    return {**stats, "scores": scores, "scores_missing": missing}


def _missing_scores(objs: list[dict], fmt: str) -> int:
    """Rows written without their positive's score (flagembedding: without both lists)."""
    if fmt == "flagembedding":
        return sum("pos_scores" not in o for o in objs)
    return sum(any("score" not in p for p in o["positive_passages"]) for o in objs)


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
