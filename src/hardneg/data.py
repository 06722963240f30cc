"""Load and validate retrieval data (BEIR layout); every stage after this works with ids.

Types:
    Corpus          ids + titles + texts, in file order; ``passage_texts()`` joins title and text
                    the way MTEB does for sentence-transformers models: ``f"{title} {text}".strip()``.
    RetrievalData   corpus, queries {qid: text}, qrels {qid: {doc_id: grade}} of one split.

Graded qrels: grade > 0 is relevant; grade 0 is judged not relevant (kept, so mining can treat those
passages as ordinary candidates and metrics can see the judgement).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from hardneg.errors import DataError

log = logging.getLogger(__name__)


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
        return [f"{t} {x}".strip() if t else x.strip() for t, x in zip(self.titles, self.texts)]


@dataclass
class RetrievalData:
    corpus: Corpus
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str
    source: str = ""
    warnings: list[str] = field(default_factory=list)

    def relevant(self, qid: str) -> list[str]:
        """Doc ids with grade > 0 for ``qid``, in qrels file order."""
        return [d for d, g in self.qrels.get(qid, {}).items() if g > 0]

    def query_ids(self) -> list[str]:
        """Query ids of this split that have at least one relevant doc, in qrels order."""
        return [q for q in self.qrels if any(g > 0 for g in self.qrels[q].values())]

    def fingerprint(self) -> str:
        """Hash of corpus, the split's queries and qrels: identifies the data a result came from."""
        h = hashlib.sha256()
        for d, t, x in zip(self.corpus.ids, self.corpus.titles, self.corpus.texts):
            h.update(json.dumps([d, t, x]).encode())
        for q in sorted(self.qrels):
            h.update(json.dumps([q, self.queries.get(q, ""), sorted(self.qrels[q].items())]).encode())
        return h.hexdigest()[:16]


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
                                "each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise DataError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def load_corpus(path: str | Path, warnings: list[str] | None = None) -> Corpus:
    """Read ``corpus.jsonl`` (``_id``, ``title``, ``text``)."""
    path = Path(path)
    warnings = warnings if warnings is not None else []
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    dup_same = 0
    for lineno, obj in iter_jsonl(path):
        if "_id" not in obj:
            raise DataError(path, lineno, "missing '_id'", 'each corpus line needs {"_id": ..., "text": ...}')
        if "text" not in obj:
            raise DataError(path, lineno, f"document {obj['_id']!r} has no 'text' field")
        did = str(obj["_id"])
        title = obj.get("title") or ""
        text = obj["text"] if obj["text"] is not None else ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise DataError(path, lineno, f"document {did!r}: 'title' and 'text' must be strings")
        if not (title.strip() or text.strip()):
            raise DataError(path, lineno, f"document {did!r} has empty title and text",
                            "remove it or give it text")
        if did in seen:
            j = seen[did]
            if titles[j] == title and texts[j] == text:
                dup_same += 1
                continue
            raise DataError(path, lineno, f"duplicate _id {did!r} with different text (first at line {lineno_of(seen, did)})",
                            "ids must be unique")
        seen[did] = len(ids)
        ids.append(did)
        titles.append(title)
        texts.append(text)
    if not ids:
        raise DataError(path, None, "corpus is empty")
    if dup_same:
        warnings.append(f"{path}: {dup_same} exact duplicate documents skipped")
    return Corpus(ids, titles, texts)


def lineno_of(seen: dict[str, int], did: str) -> str:
    return f"row {seen[did] + 1}"


def load_queries(path: str | Path) -> dict[str, str]:
    """Read ``queries.jsonl`` (``_id``, ``text``) -> {qid: text}."""
    path = Path(path)
    queries: dict[str, str] = {}
    for lineno, obj in iter_jsonl(path):
        if "_id" not in obj:
            raise DataError(path, lineno, "missing '_id'")
        qid = str(obj["_id"])
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, lineno, f"query {qid!r} has empty or missing 'text'")
        if qid in queries and queries[qid] != text:
            raise DataError(path, lineno, f"duplicate query _id {qid!r} with different text")
        queries[qid] = text
    return queries


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV with header ``query-id corpus-id score``."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise DataError(path, 1, "qrels file is empty")
        if [h.strip().lower() for h in header[:2]] != ["query-id", "corpus-id"]:
            raise DataError(path, 1, f"missing header, got {header!r}",
                            "the first line must be 'query-id<TAB>corpus-id<TAB>score'")
        for lineno, row in enumerate(reader, 2):
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) < 3:
                raise DataError(path, lineno, f"expected 3 tab-separated columns, got {len(row)}")
            try:
                grade = int(float(row[2]))
            except ValueError:
                raise DataError(path, lineno, f"score {row[2]!r} is not a number") from None
            qrels.setdefault(row[0].strip(), {})[row[1].strip()] = grade
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
            raise DataError(root / name, None, "file not found")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise DataError(qrels_path, None, f"split {split!r} not found", f"available splits: {have or 'none'}")
    warnings: list[str] = []
    corpus = load_corpus(root / "corpus.jsonl", warnings)
    queries = load_queries(root / "queries.jsonl")
    qrels = load_qrels(qrels_path)
    _check_qrels_ids(qrels_path, qrels, queries, corpus)
    for w in warnings:
        log.warning(w)
    return RetrievalData(corpus, queries, qrels, split, str(root), warnings)


def _check_qrels_ids(path: Path, qrels: dict[str, dict[str, int]], queries: dict[str, str], corpus: Corpus) -> None:
    idx = corpus.index
    for qid, docs in qrels.items():
        if qid not in queries:
            raise DataError(path, None, f"query id {qid!r} is not in queries.jsonl")
        for did in docs:
            if did not in idx:
                raise DataError(path, None, f"corpus id {did!r} (query {qid!r}) is not in corpus.jsonl")
