"""Data: loading + validation (BEIR folders, pairs JSONL, tables, downloads), the negatives file (the
contract between mining and training) and export to other libraries' formats.

Modules: ``types`` (Corpus, RetrievalData), ``beir``, ``tables`` (pairs JSONL, parquet, HF folders),
``download``, ``load`` (``load_data`` dispatches over all of them), ``negatives``, ``export``.
"""

from hardneg.data.beir import iter_jsonl, load_beir, load_corpus, load_qrels, load_queries
from hardneg.data.load import load_data, resolve_data
from hardneg.data.negatives import NegRow, read_negatives, write_negatives
from hardneg.data.types import Corpus, RetrievalData

__all__ = ["Corpus", "NegRow", "RetrievalData", "iter_jsonl", "load_beir", "load_corpus", "load_data", "load_qrels",
           "load_queries", "read_negatives", "resolve_data", "write_negatives"]
