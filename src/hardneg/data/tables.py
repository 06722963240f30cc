"""Non-BEIR training inputs: FlagEmbedding-style pairs JSONL and query/positive tables.

Both become a ``RetrievalData`` whose ids are content hashes (identical texts share one id), so
the same file always yields the same ids. Use ``hardneg.data.load_data``, which dispatches here.

    {"query": "what is a cat", "pos": ["A cat is ..."], "neg": ["A dog is ..."]}
    -> queries {"q-65d47a55fbbc": "what is a cat"}, qrels {"q-65d47a55fbbc": {"p-...": 1}},
       given_negatives {"q-65d47a55fbbc": ["p-..."]}
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

from hardneg.core.errors import DataError
from hardneg.data.beir import iter_jsonl, log_warnings
from hardneg.data.types import Corpus, RetrievalData

QUERY_COLUMNS = ("query", "anchor", "question")
POS_COLUMNS = ("pos", "positive", "positives", "answer")
NEG_COLUMNS = ("neg", "negative", "negatives")


def text_id(prefix: str, text: str) -> str:
    """Stable content id: identical texts share one id.

    >>> text_id("q", "what is a cat")
    'q-65d47a55fbbc'
    """
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


class _PairsBuilder:
    """Collects (query, positives, negatives) rows into a RetrievalData with content-hash ids."""

    def __init__(self, path: Path, unit: str = "line"):
        self.path, self.unit = path, unit
        self.docs: dict[str, str] = {}  # passage id -> text, first-seen order
        self.queries: dict[str, str] = {}
        self.qrels: dict[str, dict[str, int]] = {}
        self.negs: dict[str, list[str]] = {}
        self.repeated_queries = 0

    def _fail(self, line: int, problem: str, fix: str) -> DataError:
        if self.unit == "line":
            return DataError(self.path, line, problem, fix)
        return DataError(self.path, None, f"{self.unit} {line}: {problem}", fix)  # table rows, not lines

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
        if not isinstance(query, str) or not query.strip():
            raise self._fail(line, f"'query' must be non-empty text, got {query!r:.60}", 'write "query": "..."')
        pos_texts = self._texts(line, pos_key, pos, required=True)
        neg_texts = self._texts(line, neg_key, neg, required=False)
        qid = text_id("q", query)
        self.repeated_queries += qid in self.queries
        self.queries[qid] = query
        docs = self.qrels.setdefault(qid, {})
        for t in pos_texts:
            pid = text_id("p", t)
            self.docs.setdefault(pid, t)
            docs[pid] = 1
        if neg_key and neg is not None:
            negs = self.negs.setdefault(qid, [])
            for t in neg_texts:
                pid = text_id("p", t)
                self.docs.setdefault(pid, t)
                negs.append(pid)

    def build(self, split: str) -> RetrievalData:
        if not self.queries:
            raise DataError(self.path, None, "no rows found", "give at least one query with a positive")
        warnings = []
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


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def load_table(path: str | Path, split: str = "train") -> RetrievalData:
    """Read query/positive rows from a parquet file or a HF ``datasets`` folder (``save_to_disk``).

    Columns: query|anchor|question and pos|positive|positives|answer (text or list of texts),
    optionally neg|negative|negatives.
    """
    path = Path(path)
    rows, columns = _read_table(path, split)
    qcol, pcol, ncol = _pick(columns, QUERY_COLUMNS), _pick(columns, POS_COLUMNS), _pick(columns, NEG_COLUMNS)
    if qcol is None or pcol is None:
        raise DataError(path, None, f"no query/positive columns; columns found: {columns}",
                        f"name them one of {'|'.join(QUERY_COLUMNS)} and one of {'|'.join(POS_COLUMNS)}")
    b = _PairsBuilder(path, unit="row")
    for i, row in enumerate(rows, 1):
        pos = row[pcol]
        pos = [pos] if isinstance(pos, str) else pos  # tables may hold a single positive text
        b.add(i, row[qcol], pos, row[ncol] if ncol else None, pos_key=pcol, neg_key=ncol or "")
    return b.build(split)


def _read_table(path: Path, split: str) -> tuple[Iterator[dict], list[str]]:
    if path.is_file():
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for a non-parquet file
            raise DataError(path, None, f"cannot read parquet: {e}", "pass a valid .parquet file") from None
        return iter(table.to_pylist()), table.column_names
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if split in ds:
            ds = ds[split]
        elif len(ds) == 1:
            ds = next(iter(ds.values()))
        else:
            raise DataError(path, None, f"split {split!r} not found", f"available splits: {sorted(ds)}")
    return iter(ds), list(ds.column_names)
