"""Non-BEIR training inputs: FlagEmbedding-style pairs JSONL and anchor/positive tables.

Every one becomes a ``RetrievalData`` whose ids are content hashes (identical texts share one id), so
the same rows always yield the same ids. Use ``hardneg.data.load_data``, which dispatches here.

    {"query": "what is a cat", "pos": ["A cat is ..."], "neg": ["A dog is ..."]}
    -> queries {"q-65d47a55fbbc": "what is a cat"}, qrels {"q-65d47a55fbbc": {"p-...": 1}},
       given_negatives {"q-65d47a55fbbc": ["p-..."]}

Tables: a parquet file, a ``save_to_disk`` folder, a hub-style folder (``*.parquet`` / ``*.jsonl``
files, split by name: ``data/train-00000-of-00001.parquet``, ``test.jsonl``), or a ``datasets.Dataset``
/ ``DatasetDict`` object. Columns (``pick_columns``): the ones named (``anchor_column`` /
``positive_column``, as sentence-transformers' ``anchor_column_name`` / ``positive_column_name``), else
the first of ``QUERY_COLUMNS`` and of ``POS_COLUMNS`` present, else the first two columns when both
hold text (what ``mine_hard_negatives`` assumes). Negatives: a ``neg|negative|negatives`` column (text
or list) and ``negative_1 .. negative_n`` columns (sentence-transformers' n-tuple), in that order.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from hardneg.core.errors import DataError
from hardneg.data.beir import iter_jsonl, log_warnings
from hardneg.data.types import Corpus, RetrievalData

QUERY_COLUMNS = ("query", "anchor", "question")
POS_COLUMNS = ("pos", "positive", "positives", "answer")
NEG_COLUMNS = ("neg", "negative", "negatives")
TABLE_SUFFIXES = (".parquet", ".jsonl")  # the files of a hub-style dataset folder we read
SPLIT_WORDS = ("train", "test", "validation", "valid", "val", "dev", "eval")  # a file's split, from its path
_NEG_N = re.compile(r"^negative_(\d+)$")


def text_id(prefix: str, text: str) -> str:
    """Stable content id: identical texts share one id.

    >>> text_id("q", "what is a cat")
    'q-65d47a55fbbc'
    """
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


class _PairsBuilder:
    """Collects (query, positives, negatives) rows into a RetrievalData with content-hash ids."""

    def __init__(self, path, unit: str = "line"):
        self.path, self.unit = path, unit  # unit: "line" (JSONL) or "row" (tables); errors say which
        self.docs: dict[str, str] = {}  # passage id -> text, first-seen order
        self.queries: dict[str, str] = {}
        self.qrels: dict[str, dict[str, int]] = {}
        self.negs: dict[str, list[str]] = {}
        self.repeated_queries = 0

    def _fail(self, line: int, problem: str, fix: str) -> DataError:
        if self.unit == "line":
            return DataError(self.path, line, problem, fix)
        return DataError(self.path, None, f"{self.unit} {line}: {problem}", fix)  # table rows, not lines

    def text(self, line: int, key: str, value) -> str:
        if isinstance(value, str) and value.strip():
            return value
        got = f"{type(value).__name__} {value!r:.60}" if not isinstance(value, str) else "empty text"
        fix = (f'write "{key}": "..."' if self.unit == "line" else
               f"every cell of column {key!r} must be non-empty text (name the text columns with "
               "--anchor-column / --positive-column)")
        raise self._fail(line, f"{key!r} must be non-empty text, got {got}", fix)

    def _texts(self, line: int, key: str, value, required: bool) -> list[str]:
        if value is None and not required:
            return []
        if isinstance(value, str):
            raise self._fail(line, f"{key!r} is a string, not a list",
                             f'write "{key}": ["..."] (a list of passages)')
        if hasattr(value, "tolist"):  # numpy / arrow arrays from tables
            value = value.tolist()
        if not isinstance(value, list) or (required and not value):
            raise self._fail(line, f"{key!r} must be a non-empty list of strings, got {value!r:.60}",
                             f'write "{key}": ["passage text", ...]')
        for t in value:
            if not isinstance(t, str) or not t.strip():
                raise self._fail(line, f"{key!r} holds an empty or non-string passage {t!r:.60}",
                                 "every passage must be non-empty text")
        return value

    def add(self, line: int, query, pos, neg=None, pos_key: str = "pos", neg_key: str = "neg") -> None:
        query = self.text(line, "query", query)
        pos_texts = self._texts(line, pos_key, pos, required=True)
        neg_texts = self._texts(line, neg_key, neg, required=False) if neg_key and neg is not None else None
        self.add_texts(query, pos_texts, neg_texts)

    def add_texts(self, query: str, pos_texts: list[str], neg_texts: list[str] | None) -> None:
        """One validated row; ``neg_texts`` None: the input has no negatives (no given_negatives entry)."""
        qid = text_id("q", query)
        self.repeated_queries += qid in self.queries
        self.queries[qid] = query
        docs = self.qrels.setdefault(qid, {})
        for t in pos_texts:
            pid = text_id("p", t)
            self.docs.setdefault(pid, t)
            docs[pid] = 1
        if neg_texts is not None:
            negs = self.negs.setdefault(qid, [])
            for t in neg_texts:
                pid = text_id("p", t)
                self.docs.setdefault(pid, t)
                negs.append(pid)

    def build(self, split: str, warnings: Iterable[str] = ()) -> RetrievalData:
        if not self.queries:
            raise DataError(self.path, None, f"no rows found (split {split!r})",
                            "give at least one query with a positive")
        warnings = list(warnings)
        if self.repeated_queries:
            warnings.append(f"{self.path}: {self.repeated_queries} rows repeat an earlier query; their "
                            "positives and negatives were merged")
        negs = {q: [d for d in dict.fromkeys(n) if d not in self.qrels[q]] for q, n in self.negs.items()}
        dropped = sum(len(set(n)) for n in self.negs.values()) - sum(map(len, negs.values()))
        if dropped:
            warnings.append(f"{self.path}: {dropped} given negatives are also positives of their query; dropped")
        corpus = Corpus(list(self.docs), [""] * len(self.docs), list(self.docs.values()))
        return log_warnings(RetrievalData(corpus, self.queries, self.qrels, split, str(self.path), warnings, negs))


def load_pairs_jsonl(path: str | Path, split: str = "train") -> RetrievalData:
    """Read FlagEmbedding-style JSONL ``{"query": str, "pos": [str], "neg": [str]}``.

    Ids are content hashes (``q-<sha1[:12]>``, ``p-<sha1[:12]>``); every row is in ``split``; ``neg``
    lists become ``given_negatives`` and their texts join the corpus.
    """
    path = Path(path)
    b = _PairsBuilder(path)
    for lineno, obj in iter_jsonl(path):
        for key in ("query", "pos"):
            if key not in obj:
                raise DataError(path, lineno, f"missing {key!r}", 'each line needs {"query": "...", "pos": ["..."]}')
        b.add(lineno, obj["query"], obj["pos"], obj.get("neg"))
    return b.build(split)


def is_pairs_jsonl(path: str | Path) -> bool:
    """A FlagEmbedding pairs file: its first object has ``"query"`` and ``"pos"``; else a JSONL table
    (anchor/positive columns). Malformed or empty files are left to the pairs reader's errors."""
    try:
        _, first = next(iter_jsonl(Path(path)), (0, {"query": None, "pos": None}))
    except DataError:
        return True
    return "query" in first and "pos" in first


# ------------------------------------------------------------------------------------------ columns
@dataclass(frozen=True)
class Columns:
    """Which table columns hold the anchor (query), the positive(s) and given negatives."""

    anchor: str
    positive: str
    negatives: tuple[str, ...] = ()


def _pick(columns: list[str], names: tuple[str, ...], skip: str | None = None) -> str | None:
    lower = {c.lower(): c for c in columns if c != skip}
    return next((lower[n] for n in names if n in lower), None)


def _is_text(v) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(t, str) for t in v))


def pick_columns(columns: list[str], first_row: dict | None, where, anchor_column: str | None = None,
                 positive_column: str | None = None) -> Columns:
    """The anchor / positive / negative columns of a table (rules in the module docstring).

    >>> pick_columns(["question", "answer", "id"], None, "t.parquet")
    Columns(anchor='question', positive='answer', negatives=())
    >>> pick_columns(["q", "doc", "negative_2", "negative_1"], {"q": "a", "doc": "b"}, "t.parquet")
    Columns(anchor='q', positive='doc', negatives=('negative_1', 'negative_2'))
    """
    for flag, name in (("--anchor-column", anchor_column), ("--positive-column", positive_column)):
        if name is not None and name not in columns:
            raise DataError(where, None, f"no column {name!r} ({flag}); columns found: {columns}",
                            f"pass {flag} with one of those names")
    anchor = anchor_column or _pick(columns, QUERY_COLUMNS, skip=positive_column)
    positive = positive_column or _pick(columns, POS_COLUMNS, skip=anchor)
    if (anchor is None or positive is None) and len(columns) >= 2 and first_row is not None:
        first_two = [c for c in columns if c not in (anchor, positive)][:2 - (anchor is not None) - (positive is not None)]
        if all(_is_text(first_row.get(c)) for c in first_two):  # sentence-transformers: first two columns
            anchor = anchor or first_two.pop(0)
            positive = positive or first_two.pop(0)
    if anchor is None or positive is None or anchor == positive:
        raise DataError(where, None, f"no query/positive columns; columns found: {columns}",
                        f"name them one of {'|'.join(QUERY_COLUMNS)} and one of {'|'.join(POS_COLUMNS)}, "
                        "or pass --anchor-column and --positive-column")
    negs = [c for c in columns if c.lower() in NEG_COLUMNS and c not in (anchor, positive)][:1]
    negs += sorted((c for c in columns if _NEG_N.match(c) and c not in (anchor, positive)),
                   key=lambda c: int(_NEG_N.match(c).group(1)))
    return Columns(anchor, positive, tuple(negs))


def _add_table_rows(b: _PairsBuilder, rows: Iterable[tuple[int, dict]], cols: Columns) -> None:
    for i, row in rows:
        query = b.text(i, cols.anchor, row.get(cols.anchor))
        pos = row.get(cols.positive)  # one text, or a list of texts
        pos = b._texts(i, cols.positive, pos, True) if isinstance(pos, list) or hasattr(pos, "tolist") else [
            b.text(i, cols.positive, pos)]
        negs = None
        if cols.negatives:
            negs = []
            for c in cols.negatives:
                v = row.get(c)
                negs += b._texts(i, c, [v] if isinstance(v, str) else v, required=False)
        b.add_texts(query, pos, negs)


def _numbered(rows: Iterable[dict]) -> Iterator[tuple[int, dict]]:
    return enumerate(rows, 1)


def _table_data(sources: list[tuple[Path | str, str, list[str], Iterable[tuple[int, dict]]]], where, split: str,
                anchor_column: str | None, positive_column: str | None, warnings=()) -> RetrievalData:
    """``sources``: (path, unit, columns, numbered rows) per file; every file is read with its own columns."""
    b = _PairsBuilder(where, unit="row")
    for path, unit, columns, rows in sources:
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            continue  # an empty file adds nothing; no rows at all is an error in build()
        b.path, b.unit = path, unit
        cols = pick_columns(columns, first[1], path, anchor_column, positive_column)
        _add_table_rows(b, _chain(first, rows), cols)
    b.path, b.unit = where, "row"
    return b.build(split, warnings)


def _chain(first, rest):
    yield first
    yield from rest


# ------------------------------------------------------------------------------------------ readers
def _read_parquet(path: Path) -> tuple[list[str], list[dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a non-parquet file
        raise DataError(path, None, f"cannot read parquet: {e}", "pass a valid .parquet file") from None
    return table.column_names, table.to_pylist()


def _read_jsonl_table(path: Path) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    rows = list(iter_jsonl(path))
    columns = list(dict.fromkeys(k for _, obj in rows[:1] for k in obj))
    return columns, iter(rows)


def _file_source(path: Path):
    if path.suffix.lower() == ".jsonl":
        columns, rows = _read_jsonl_table(path)
        return path, "line", columns, rows
    columns, rows = _read_parquet(path)
    return path, "row", columns, _numbered(rows)


def load_table(path: str | Path, split: str = "train", *, anchor_column: str | None = None,
               positive_column: str | None = None) -> RetrievalData:
    """Read anchor/positive rows from a parquet or JSONL table file or a ``save_to_disk`` folder."""
    path = Path(path)
    if path.is_file():
        return _table_data([_file_source(path)], path, split, anchor_column, positive_column)
    import datasets

    return from_dataset(datasets.load_from_disk(str(path)), split, anchor_column=anchor_column,
                        positive_column=positive_column, source=str(path))


def from_dataset(ds, split: str = "train", *, anchor_column: str | None = None, positive_column: str | None = None,
                 source: str | None = None) -> RetrievalData:
    """A ``datasets.Dataset`` or ``DatasetDict`` (its ``split``) -> ``RetrievalData``, ids from the texts.

    A ``DatasetDict`` without ``split`` is an error listing its splits, unless it has only one (used,
    with a warning). A plain ``Dataset`` has no splits: its rows are ``split``.
    """
    warnings = []
    if isinstance(ds, dict):  # DatasetDict
        where = source or f"DatasetDict{sorted(ds)}"
        if split in ds:
            ds = ds[split]
        elif len(ds) == 1:
            (only, ds), = ds.items()
            warnings.append(f"{where}: no split {split!r}; read its only split {only!r}")
        else:
            raise DataError(where, None, f"split {split!r} not found", f"available splits: {sorted(ds)}")
    columns = getattr(ds, "column_names", None)
    if not isinstance(columns, list):
        raise DataError(source, None, f"expected a datasets.Dataset or DatasetDict, got {type(ds).__name__}",
                        "pass a Dataset with anchor/positive text columns")
    where = source or f"datasets.Dataset({len(ds)} rows, fingerprint {getattr(ds, '_fingerprint', '?')})"
    return _table_data([(where, "row", columns, _numbered(iter(ds)))], where, split, anchor_column,
                       positive_column, warnings)


# ------------------------------------------------------------------------------ hub-style folders
def split_of(rel: Path) -> str:
    """The split a file of a hub-style folder belongs to: the first word of its path (folders, then
    name, split at ``- _ . /``) that is a split name; ``train`` when none is (the hub's default).

    >>> [split_of(Path(p)) for p in ("data/train-00000-of-00001.parquet", "test.jsonl", "dev/x.parquet", "pairs.parquet")]
    ['train', 'test', 'dev', 'train']
    """
    words = re.split(r"[-_./]", rel.with_suffix("").as_posix().lower())
    return next((w for w in words if w in SPLIT_WORDS), "train")


def hub_files(folder: str | Path) -> dict[str, list[Path]]:
    """``{split: [files]}`` of the ``*.parquet`` / ``*.jsonl`` files under ``folder`` (hidden ones skipped),
    each split's files in path order."""
    folder = Path(folder)
    groups: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.suffix.lower() in TABLE_SUFFIXES and p.is_file() and not any(s.startswith(".") for s in rel.parts):
            groups.setdefault(split_of(rel), []).append(p)
    return groups


def load_hub_folder(folder: str | Path, split: str = "train", *, anchor_column: str | None = None,
                    positive_column: str | None = None) -> RetrievalData:
    """Read a hub-style dataset folder: the files of ``split`` (``hub_files``), concatenated in path order."""
    folder = Path(folder)
    groups = hub_files(folder)
    warnings = []
    if split not in groups:
        if len(groups) != 1:
            found = ", ".join(f"{s} ({len(f)} files)" for s, f in sorted(groups.items())) or "no .parquet/.jsonl files"
            raise DataError(folder, None, f"split {split!r} not found", f"available splits: {found}")
        (only, _), = groups.items()
        warnings.append(f"{folder}: no split {split!r}; read its only split {only!r}")
        split_files = groups[only]
    else:
        split_files = groups[split]
    return _table_data([_file_source(p) for p in split_files], folder, split, anchor_column, positive_column, warnings)
