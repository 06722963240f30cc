"""BEIR folders: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``, ``qrels/<split>.tsv``.

A user's data error is a ``DataError`` naming file, line, problem and fix; what can be recovered
is a counted warning.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Iterator

from hardneg.core.errors import DataError
from hardneg.data.types import Corpus, RetrievalData

log = logging.getLogger(__name__)


QRELS_HEADER_FIX = "the first line must be 'query-id<TAB>corpus-id<TAB>score'"


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; malformed JSON is a DataError."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
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
        if "_id" not in obj:
            raise DataError(path, lineno, "missing '_id'", 'each corpus line needs {"_id": ..., "text": ...}')
        did = str(obj["_id"])
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
        if "_id" not in obj:
            raise DataError(path, lineno, "missing '_id'", 'each query line needs {"_id": ..., "text": ...}')
        qid = str(obj["_id"])
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
    """Read a BEIR qrels TSV with header ``query-id corpus-id score``.

    With ``queries`` / ``doc_ids`` given, every row must name a known query and document; the
    error names the qrels line. A repeated (query, doc) pair keeps the last grade (counted warning).
    """
    path = Path(path)
    warnings = warnings if warnings is not None else []
    qrels: dict[str, dict[str, int]] = {}
    repeated = 0
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise DataError(path, 1, "qrels file is empty", QRELS_HEADER_FIX)
        if [h.strip().lower() for h in header[:2]] != ["query-id", "corpus-id"]:
            raise DataError(path, 1, f"missing header, got {header!r}", QRELS_HEADER_FIX)
        for lineno, row in enumerate(reader, 2):
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) < 3:
                raise DataError(path, lineno, f"expected 3 tab-separated columns, got {len(row)}",
                                "write 'query-id<TAB>corpus-id<TAB>score'")
            qid, did = row[0].strip(), row[1].strip()
            try:
                grade = int(float(row[2]))
            except ValueError:
                raise DataError(path, lineno, f"score {row[2]!r} is not a number",
                                "the third column must be an integer grade (0 = judged not relevant)") from None
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
