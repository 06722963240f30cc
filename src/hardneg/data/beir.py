"""BEIR folders: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``, ``qrels/<split>.tsv``.

A user's data error is a ``DataError`` naming file, line, problem and fix; what can be recovered
is a counted warning.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
from pathlib import Path
from typing import Iterator

from hardneg.core.errors import DataError
from hardneg.data.types import Corpus, RetrievalData

log = logging.getLogger(__name__)


QRELS_HEADER_FIX = ("the first line must be 'query-id<TAB>corpus-id<TAB>score' (BEIR), or every line "
                    "'query-id 0 corpus-id grade' (TREC, no header)")
GRADE_FIX = "the grade must be a whole number >= 0 (0 = judged not relevant)"
TREC_ITERATION = re.compile(r"Q?\d+")  # the ignored second column of TREC qrels ("0" or "Q0")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) of a UTF-8 file; a leading BOM is dropped, bytes that are not UTF-8
    are a DataError naming the line (not a UnicodeDecodeError with no line)."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(path, lineno, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at byte {e.start + 1} "
                                "of the line)", "save the file as UTF-8") from None
            yield lineno, line.removeprefix("\ufeff") if lineno == 1 else line


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; malformed JSON is a DataError."""
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(path, lineno, f"malformed JSON ({e.msg} at column {e.colno})",
                            "each line must be one complete JSON object") from None
        if not isinstance(obj, dict):
            raise DataError(path, lineno, f"expected a JSON object, got {type(obj).__name__}",
                            "each line must be one JSON object like {\"_id\": ..., \"text\": ...}")
        yield lineno, obj


def _str_field(path: Path, lineno: int, obj: dict, key: str, what: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(path, lineno, f"{what}: {key!r} must be a string, got {type(value).__name__}",
                        f'write "{key}": "..."')
    return value


def _id_field(path: Path, lineno: int, obj: dict, what: str) -> str:
    """The line's ``_id`` as a str: a non-empty string or an integer (``7`` -> ``"7"``); null, bools,
    floats and containers are a DataError (``str(None)`` would silently become the id ``"None"``)."""
    if "_id" not in obj:
        raise DataError(path, lineno, "missing '_id'", f'each {what} line needs {{"_id": ..., "text": ...}}')
    value = obj["_id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise DataError(path, lineno, f"'_id' must be a non-empty string (or an integer), got {value!r:.40}",
                        f'write "_id": "..." for every {what}')
    return str(value)


def load_corpus(path: str | Path, warnings: list[str] | None = None) -> Corpus:
    """Read ``corpus.jsonl`` (``_id``, ``title``, ``text``).

    Exact duplicate lines are skipped with a counted warning; a repeated id with different text is
    an error naming both lines. Documents with empty title and text are an error.
    """
    path = Path(path)
    warnings = warnings if warnings is not None else []
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    first: dict[str, tuple[int, int]] = {}  # doc id -> (row, line of its first occurrence)
    dup_same = 0
    for lineno, obj in iter_jsonl(path):
        did = _id_field(path, lineno, obj, "document")
        if "text" not in obj:
            raise DataError(path, lineno, f"document {did!r} has no 'text' field",
                            'each corpus line needs {"_id": ..., "text": ...}')
        title = _str_field(path, lineno, obj, "title", f"document {did!r}")
        text = _str_field(path, lineno, obj, "text", f"document {did!r}")
        if not (title.strip() or text.strip()):
            raise DataError(path, lineno, f"document {did!r} has empty title and text",
                            "remove the line or give the document text")
        if did in first:
            j, line0 = first[did]
            if titles[j] == title and texts[j] == text:
                dup_same += 1
                continue
            raise DataError(path, lineno, f"duplicate _id {did!r} with different text "
                            f"(first at line {line0})", "ids must be unique: rename or drop one")
        first[did] = (len(ids), lineno)
        ids.append(did)
        titles.append(title)
        texts.append(text)
    if not ids:
        raise DataError(path, None, "corpus is empty", "add one JSON document per line")
    if dup_same:
        warnings.append(f"{path}: {dup_same} exact duplicate documents skipped")
    return Corpus(ids, titles, texts)


def load_queries(path: str | Path, warnings: list[str] | None = None) -> dict[str, str]:
    """Read ``queries.jsonl`` (``_id``, ``text``) -> {qid: text}."""
    path = Path(path)
    warnings = warnings if warnings is not None else []
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    dup_same = 0
    for lineno, obj in iter_jsonl(path):
        qid = _id_field(path, lineno, obj, "query")
        if "text" not in obj:
            raise DataError(path, lineno, f"query {qid!r} has no 'text' field",
                            'each query line needs {"_id": ..., "text": ...}')
        text = _str_field(path, lineno, obj, "text", f"query {qid!r}")
        if not text.strip():
            raise DataError(path, lineno, f"query {qid!r} has empty text", "remove the line or give it text")
        if qid in queries:
            if queries[qid] != text:
                raise DataError(path, lineno, f"duplicate query _id {qid!r} with different text "
                                f"(first at line {first_line[qid]})", "ids must be unique: rename or drop one")
            dup_same += 1
            continue
        first_line[qid] = lineno
        queries[qid] = text
    if dup_same:
        warnings.append(f"{path}: {dup_same} exact duplicate queries skipped")
    return queries


def load_qrels(path: str | Path, queries: dict[str, str] | None = None, doc_ids: dict[str, int] | None = None,
               warnings: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Read qrels: a BEIR TSV with header ``query-id corpus-id score``, or headerless TREC lines
    ``query-id 0 corpus-id grade`` (whitespace-separated; the second column is ignored).

    Grades are whole numbers >= 0 (``1.0`` reads as 1; ``0.5``, ``-1``, ``inf``, ``nan`` are errors
    naming the line), and a line with more columns than its format has is an error. With
    ``queries`` / ``doc_ids`` given, every row must name a known query and document. A repeated
    (query, doc) pair keeps the last grade (counted warning).
    """
    path = Path(path)
    warnings = warnings if warnings is not None else []
    qrels: dict[str, dict[str, int]] = {}
    repeated = 0
    for lineno, qid, did, grade in qrels_rows(path):
        if queries is not None and qid not in queries:
            raise DataError(path, lineno, f"query id {qid!r} is not in queries.jsonl",
                            "add the query or drop the row")
        if doc_ids is not None and did not in doc_ids:
            raise DataError(path, lineno, f"corpus id {did!r} (query {qid!r}) is not in corpus.jsonl",
                            "add the document or drop the row")
        docs = qrels.setdefault(qid, {})
        repeated += did in docs
        docs[did] = grade
    if repeated:
        warnings.append(f"{path}: {repeated} repeated (query, doc) rows; the last grade was kept")
    return qrels


def qrels_rows(path: Path) -> Iterator[tuple[int, str, str, int]]:
    """(line, query id, corpus id, grade) of each non-blank row of a BEIR or TREC qrels file."""
    lines = iter_lines(path)
    first = next(lines, None)
    if first is None:
        raise DataError(path, 1, "qrels file is empty", QRELS_HEADER_FIX)
    header = _cells(first[1])
    if [h.strip().lower() for h in header[:2]] == ["query-id", "corpus-id"]:
        if len(header) != 3:
            raise DataError(path, 1, f"header has {len(header)} columns, expected 3: {header!r}", QRELS_HEADER_FIX)
        for lineno, line in lines:
            row = _cells(line)
            if not row:
                continue
            if len(row) != 3:
                raise DataError(path, lineno, f"expected 3 tab-separated columns (query-id, corpus-id, score), "
                                f"got {len(row)}", "write 'query-id<TAB>corpus-id<TAB>score'; extra columns "
                                "are not read, remove them")
            yield lineno, row[0].strip(), row[1].strip(), _grade(path, lineno, row[2])
        return
    fields = first[1].split()
    if len(fields) != 4 or not TREC_ITERATION.fullmatch(fields[1]):
        raise DataError(path, 1, f"missing header, got {header!r}", QRELS_HEADER_FIX)
    log.info("%s: no BEIR header; reading TREC qrels (query-id iteration corpus-id grade)", path)
    for lineno, line in itertools.chain([first], lines):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4:
            raise DataError(path, lineno, f"TREC qrels line has {len(fields)} columns, expected 4",
                            "write 'query-id 0 corpus-id grade' on every line (the file has no header)")
        yield lineno, fields[0], fields[2], _grade(path, lineno, fields[3])


def _cells(line: str) -> list[str]:
    """Tab-separated cells of a line, without its line end and trailing empty cells."""
    row = line.rstrip("\r\n").split("\t")
    while row and not row[-1].strip():
        row.pop()
    return row


def _grade(path: Path, lineno: int, text: str) -> int:
    """A relevance grade: a whole number >= 0 (``"2"``, ``"1.0"``); anything else names the line."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise DataError(path, lineno, f"score {text!r} is not a number", GRADE_FIX) from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise DataError(path, lineno, f"score {text!r} is not a whole number >= 0",
                        f"{GRADE_FIX}: map other grades to 0, 1, 2, ... first")
    return int(value)


def load_beir(root: str | Path, split: str = "test") -> RetrievalData:
    """Load a BEIR directory; qrels must name known queries and documents."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, None, "data directory not found",
                        "pass a BEIR folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv, "
                        "or fetch one with 'hardneg data download NAME'")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (root / name).is_file():
            raise DataError(root / name, None, "file not found", "a BEIR folder needs corpus.jsonl and queries.jsonl")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise DataError(qrels_path, None, f"split {split!r} not found", f"available splits: {have or 'none'}")
    warnings: list[str] = []
    corpus = load_corpus(root / "corpus.jsonl", warnings)
    queries = load_queries(root / "queries.jsonl", warnings)
    qrels = load_qrels(qrels_path, queries, corpus.index, warnings)
    return log_warnings(RetrievalData(corpus, queries, qrels, split, str(root), warnings))


def log_warnings(data: RetrievalData) -> RetrievalData:
    """Log the collected warnings once, with their count."""
    if data.warnings:
        log.warning("%d data warning(s) in %s: %s", len(data.warnings), data.source, "; ".join(data.warnings))
    return data
