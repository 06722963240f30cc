"""Load and validate retrieval data; every stage after this works with ids.

Inputs (``load_data(spec, split)``):
    BEIR folder      ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``, ``qrels/<split>.tsv``
    dataset name     ``scifact``, ``nfcorpus`` ... found locally or downloaded (``resolve_data``)
    pairs JSONL      FlagEmbedding style ``{"query": str, "pos": [str], "neg": [str]}``
    table            a parquet file or a HF ``datasets`` folder (``save_to_disk``) with query/positive columns

Types:
    Corpus          ids + titles + texts, in file order; ``passage_texts()`` joins title and text
                    the way MTEB does for sentence-transformers models: ``f"{title} {text}".strip()``.
    RetrievalData   corpus, queries {qid: text}, qrels {qid: {doc_id: grade}} of one split, plus the
                    negatives an input file gave (``given_negatives``) and counted ``warnings``.

Graded qrels: grade > 0 is relevant; grade 0 is judged not relevant (kept, so mining can treat those
passages as ordinary candidates and metrics can see the judgement). A user's data error is a
``DataError`` naming file, line, problem and fix; what can be recovered is a counted warning.
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

QRELS_HEADER_FIX = "the first line must be 'query-id<TAB>corpus-id<TAB>score'"


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
    given_negatives: dict[str, list[str]] = field(default_factory=dict)

    def relevant(self, qid: str) -> list[str]:
        """Doc ids with grade > 0 for ``qid``, in qrels file order."""
        return [d for d, g in self.qrels.get(qid, {}).items() if g > 0]

    def query_ids(self) -> list[str]:
        """Query ids of this split that have at least one relevant doc, in qrels order."""
        return [q for q in self.qrels if any(g > 0 for g in self.qrels[q].values())]

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


# ----------------------------------------------------------------------------- BEIR folders


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


# ----------------------------------------------------------------------------- dispatch


def resolve_data(spec: str | Path) -> Path:
    """An existing path as is; else a known dataset name, found locally or downloaded.

    Lookup order for a name: ``$HARDNEG_DATA_DIR/NAME``, ``./shared/data/NAME``,
    ``../shared/data/NAME``, the download cache (``$HARDNEG_CACHE/datasets/NAME``); then download.
    """
    from hardneg import download

    path = Path(spec).expanduser()
    if path.exists():
        return path
    return download.find_or_download(str(spec))


def load_data(spec: str | Path, split: str = "train") -> RetrievalData:
    """Load a BEIR folder, a dataset name, a pairs JSONL, a parquet file or a HF ``datasets`` folder."""
    from hardneg.formats import load_pairs_jsonl, load_table

    path = resolve_data(spec)
    if path.is_dir():
        if (path / "corpus.jsonl").exists():
            return load_beir(path, split)
        if any((path / f).exists() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return load_table(path, split)
        subs = sorted(p.parent.name for p in path.glob("*/corpus.jsonl"))
        if subs:  # e.g. cqadupstack: one BEIR set per forum
            raise DataError(path, None, "this folder holds several BEIR sets",
                            f"pass one of them: {', '.join(str(path / s) for s in subs)}")
        raise DataError(path, None, "not a BEIR folder (no corpus.jsonl) nor a HF datasets folder",
                        "pass a BEIR folder, a .jsonl pairs file, a .parquet file or a save_to_disk folder")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return load_pairs_jsonl(path, split)
    if suffix == ".parquet":
        return load_table(path, split)
    raise DataError(path, None, f"unknown data file type {suffix!r}", "use .jsonl (query/pos/neg) or .parquet")
