"""Negatives file: JSONL, one row per (query, positive), written atomically with a provenance file.

Row: ``{"qid", "pos_id", "pos_score", "neg_ids", "neg_scores", "neg_teachers"}``; scores are the
teachers' own, rounded to 6 decimals. Optional ``"relabeled"``: passages the false-negative judge
turned into extra positives of the query (``--false-negatives relabel``); written only when non-empty,
so files without a relabelling judge are unchanged. Nothing run-dependent (time, paths) goes into the JSONL, so
the same data, teachers, config and seed give a byte-identical file; timings live in the meta.

This is the contract between mining (which writes it) and training, export, diagnostics and
the ablation (which read it), so it lives with the data formats, not inside mining.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from hardneg.core.errors import DataError
from hardneg.core.files import atomic_open
from hardneg.core.provenance import read_meta, write_meta
from hardneg.data.beir import iter_jsonl

FIELDS = ("qid", "pos_id", "pos_score", "neg_ids", "neg_scores", "neg_teachers")


@dataclass
class NegRow:
    """One output row: a (query, positive) pair and its negatives (ids, teacher scores, teachers)."""

    qid: str
    pos_id: str
    pos_score: float | None
    neg_ids: list[str]
    neg_scores: list[float]
    neg_teachers: list[str]
    relabeled: list[str] = field(default_factory=list)  # judge-found extra positives of the query


def _r6(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def row_json(row) -> str:
    """One JSONL line (no newline) for a ``NegRow``, keys in ``FIELDS`` order."""
    obj = {"qid": row.qid, "pos_id": row.pos_id, "pos_score": _r6(row.pos_score),
           "neg_ids": list(row.neg_ids), "neg_scores": [_r6(s) for s in row.neg_scores],
           "neg_teachers": list(row.neg_teachers)}
    if getattr(row, "relabeled", None):
        obj["relabeled"] = list(row.relabeled)
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def audit_path(path: str | Path) -> Path:
    """Where the judge's audit of a negatives file goes: ``neg.jsonl`` -> ``neg.audit.jsonl``."""
    path = Path(path)
    if not path.name:  # "" or "/": there is no file name to put the audit beside
        raise DataError(path, None, "not a file path", "give the negatives file, e.g. runs/negatives.jsonl")
    return path.with_name(path.name.removesuffix(".jsonl") + ".audit.jsonl")


def write_negatives(path: str | Path, result, config, **extra) -> Path:
    """Write ``result.rows`` to ``path`` and ``path.meta.json`` (and the judge's flagged candidates to
    ``audit_path(path)`` when a judge ran); returns ``path``."""
    path = Path(path)
    audit = getattr(result, "audit", None)
    if audit is not None:
        with atomic_open(audit_path(path)) as f:
            for entry in audit:
                f.write(json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n")
        extra = {"audit": {"path": audit_path(path).name, "entries": len(audit)}, **extra}
    with atomic_open(path) as f:
        for row in result.rows:
            f.write(row_json(row) + "\n")
    write_meta(path, config, with_files=[audit_path(path)] if audit is not None else [],  # meta last: the commit
               teachers=result.teachers, data_fingerprint=result.data_fingerprint, seed=config.seed,
               timings=result.timings, stats=result.stats,
               **{"search": getattr(result, "search", None) or [{"backend": "n/a"}] * len(result.teachers), **extra})
    return path


def _finite(x) -> bool:
    """A JSON number that is not NaN/Infinity (``json`` reads those literals) and not a bool."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_row(path: Path, lineno: int, obj: dict) -> None:
    missing = [k for k in FIELDS if k not in obj]
    if missing:
        raise DataError(path, lineno, f"missing field(s) {missing}", f"each row needs {list(FIELDS)}")
    if not isinstance(obj["qid"], str) or not isinstance(obj["pos_id"], str):
        raise DataError(path, lineno, "'qid' and 'pos_id' must be strings")
    for k in ("neg_ids", "neg_scores", "neg_teachers"):
        if not isinstance(obj[k], list):
            raise DataError(path, lineno, f"'{k}' must be a list")
    if not (len(obj["neg_ids"]) == len(obj["neg_scores"]) == len(obj["neg_teachers"])):
        raise DataError(path, lineno, "neg_ids, neg_scores and neg_teachers differ in length",
                        "they are parallel lists, one entry per negative")
    if not all(_finite(s) for s in obj["neg_scores"]):
        raise DataError(path, lineno, "neg_scores must be finite numbers (not NaN, Infinity, text or true/false)",
                        "mine the file again with 'hardneg mine'")
    if obj["pos_score"] is not None and not _finite(obj["pos_score"]):
        raise DataError(path, lineno, "pos_score must be a finite number or null")
    for k in ("neg_ids", "neg_teachers"):
        if not all(isinstance(v, str) for v in obj[k]):
            raise DataError(path, lineno, f"'{k}' must be a list of strings")
    if obj["pos_id"] in obj["neg_ids"]:
        raise DataError(path, lineno, f"positive {obj['pos_id']!r} is also listed as a negative")
    extra = obj.get("relabeled", [])
    if not isinstance(extra, list) or not all(isinstance(d, str) for d in extra):
        raise DataError(path, lineno, "'relabeled' must be a list of document ids")
    clash = set(extra) & set(obj["neg_ids"])
    if clash:
        raise DataError(path, lineno, f"relabeled positive {sorted(clash)[0]!r} is also listed as a negative")


def read_audit(path: str | Path) -> list[dict]:
    """The audit entries written beside the negatives file ``path`` (``[]`` when there is none)."""
    p = audit_path(path)
    return [obj for _, obj in iter_jsonl(p)] if p.is_file() else []


def read_negatives(path: str | Path) -> list:
    """Read and validate a negatives file -> list of ``NegRow`` (errors name file and line)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "negatives file not found", "create it with 'hardneg mine'")
    read_meta(path)  # HardnegError when a meta beside it commits other bytes (a run died before its meta)
    rows = []
    for lineno, obj in iter_jsonl(path):
        _check_row(path, lineno, obj)
        rows.append(NegRow(obj["qid"], obj["pos_id"], obj["pos_score"], [str(d) for d in obj["neg_ids"]],
                           [float(s) for s in obj["neg_scores"]], [str(t) for t in obj["neg_teachers"]],
                           list(obj.get("relabeled", []))))
    return rows


def require_rows(rows: list, path: str | Path) -> list:
    """``rows`` when there is at least one; a DataError ("no rows") for an empty negatives file, which
    export, ``inspect`` and training would otherwise turn into an empty result with exit 0."""
    if not rows:
        raise DataError(path, None, "no rows: the negatives file is empty",
                        "mine it again ('hardneg mine'); a run whose rows were all dropped (--on-shortfall drop) "
                        "writes an empty file")
    return rows


def check_ids(rows, data, path: str | Path = "<negatives>") -> None:
    """Every qid must be a query of ``data`` and every pos/neg id a corpus id (DataError: row's line).

    Line numbers assume one row per line (what ``hardneg mine`` writes).
    """
    index = data.corpus.index
    for i, r in enumerate(rows, 1):
        if r.qid not in data.queries:
            raise DataError(path, i, f"query {r.qid!r} is not in the queries of {data.source or 'the data'}",
                            "use the --data (and split) the file was mined from")
        for d in [r.pos_id, *r.neg_ids, *getattr(r, "relabeled", [])]:
            if d not in index:
                raise DataError(path, i, f"document {d!r} is not in the corpus of {data.source or 'the data'}",
                                "use the --data (and split) the file was mined from")
